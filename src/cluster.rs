//! A throwaway PostgreSQL cluster in a temporary directory, for `clockwatch demo` and for tests
//! that must restart or pause a server of their own. Built from the server binaries installed on
//! the machine; as root they run as the `postgres` system user, since the server refuses root.
//! Stopped and removed when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};

pub struct Cluster {
    dir: tempfile::TempDir,
    bindir: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl Cluster {
    /// initdb and start. `durable_commits`: synchronous_commit on (a test that crashes the server
    /// needs "committed" to mean committed); fsync stays off either way (the machine does not crash).
    pub fn start(durable_commits: bool) -> Result<Cluster> {
        let bindir = server_bindir().ok_or_else(|| {
            Error::Input(
                "no PostgreSQL server binaries found (initdb, pg_ctl): install them (Debian/Ubuntu: \
                 apt-get install postgresql; Fedora: dnf install postgresql-server; macOS: brew install postgresql) \
                 or pass --database-url to use a server you have"
                    .into(),
            )
        })?;
        let cluster = Cluster::empty(bindir)?;
        let data = cluster.data();
        cluster.pg(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        cluster.add_settings(&format!(
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\nfsync = off\nsynchronous_commit = {}\n",
            cluster.port,
            cluster.dir.path().display(),
            if durable_commits { "on" } else { "off" }
        ))?;
        cluster.pg_ctl(&["-w", "start"])?;
        Ok(cluster)
    }

    /// A streaming replica of this cluster (pg_basebackup -R, asynchronous), started.
    pub fn standby(&self) -> Result<Cluster> {
        let cluster = Cluster::empty(self.bindir.clone())?;
        cluster.pg(
            "pg_basebackup",
            &[
                "-D",
                &cluster.data(),
                "-R",
                "-X",
                "stream",
                "--no-sync",
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ],
        )?;
        // The copied settings name the primary's port and directory; later lines win.
        cluster.add_settings(&format!(
            "port = {}\nunix_socket_directories = '{}'\n",
            cluster.port,
            cluster.dir.path().display()
        ))?;
        cluster.pg_ctl(&["-w", "start"])?;
        Ok(cluster)
    }

    /// Make a standby the primary.
    pub fn promote(&self) -> Result<()> {
        self.pg_ctl(&["-w", "promote"])
    }

    /// Stop the server: `mode` is pg_ctl's shutdown mode (fast, immediate).
    pub fn stop(&self, mode: &str) -> Result<()> {
        self.pg_ctl(&["-m", mode, "-w", "stop"])
    }

    /// Start the server again after [`Cluster::stop`].
    pub fn start_again(&self) -> Result<()> {
        self.pg_ctl(&["-w", "start"])
    }

    /// A temporary directory the server's user owns, and a free port.
    fn empty(bindir: PathBuf) -> Result<Cluster> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let as_postgres = unsafe { libc::geteuid() } == 0;
        let dir = tempfile::Builder::new()
            .prefix("clockwatch-pg-")
            .tempdir()
            .map_err(|e| Error::Output(format!("temporary directory: {e}")))?;
        if as_postgres {
            let status = Command::new("chown")
                .arg("postgres:")
                .arg(dir.path())
                .status();
            if !matches!(status, Ok(s) if s.success()) {
                return Err(Error::Input(
                    "running as root needs the 'postgres' system user to run the server (the postgresql package creates it)".into(),
                ));
            }
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| Error::Output(format!("find a free port: {e}")))?;
        Ok(Cluster {
            dir,
            bindir,
            port,
            as_postgres,
        })
    }

    /// Append settings to postgresql.auto.conf (read at the next start or restart).
    fn add_settings(&self, settings: &str) -> Result<()> {
        let path = self.dir.path().join("data").join("postgresql.auto.conf");
        let io = |e: std::io::Error| Error::Output(format!("{}: {e}", path.display()));
        let mut existing = std::fs::read_to_string(&path).unwrap_or_default();
        existing.push_str(settings);
        existing.push('\n');
        std::fs::write(&path, existing).map_err(io)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Connection string for the `postgres` database as the `postgres` superuser.
    pub fn url(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        )
    }

    /// Write a file the server reads (a TLS key or certificate) into the cluster's directory,
    /// readable by the server's user only, as the server demands of a private key.
    pub fn add_file(&self, name: &str, contents: &[u8]) -> Result<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.path().join(name);
        let io = |e: std::io::Error| Error::Output(format!("{}: {e}", path.display()));
        std::fs::write(&path, contents).map_err(io)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        if self.as_postgres {
            let status = Command::new("chown").arg("postgres:").arg(&path).status();
            if !matches!(status, Ok(s) if s.success()) {
                return Err(Error::Output(format!("chown postgres {}", path.display())));
            }
        }
        Ok(path)
    }

    /// Add server settings and replace pg_hba.conf, then restart to apply them.
    pub fn reconfigure(&self, settings: &str, hba: &str) -> Result<()> {
        self.add_settings(settings)?;
        let path = self.dir.path().join("data").join("pg_hba.conf");
        std::fs::write(&path, hba)
            .map_err(|e| Error::Output(format!("{}: {e}", path.display())))?;
        self.restart("fast")
    }

    /// Restart the server: `mode` is pg_ctl's shutdown mode (fast, immediate).
    pub fn restart(&self, mode: &str) -> Result<()> {
        self.pg_ctl(&["-m", mode, "-w", "restart"])
    }

    fn data(&self) -> String {
        self.dir.path().join("data").to_string_lossy().into_owned()
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<()> {
        let data = self.data();
        let log = self
            .dir
            .path()
            .join("server.log")
            .to_string_lossy()
            .into_owned();
        let mut all = vec!["-D", data.as_str(), "-l", log.as_str()];
        all.extend_from_slice(args);
        self.pg("pg_ctl", &all)
    }

    fn pg(&self, program: &str, args: &[&str]) -> Result<()> {
        let path = self.bindir.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        // A server unpacked from a tarball (scripts/pg-major) carries its own libpq, which its
        // walreceiver must load rather than the system's older one.
        if let Some(lib) = self.bindir.parent().map(|p| p.join("lib")) {
            if lib.join("libpq.so.5").exists() {
                cmd.env("LD_LIBRARY_PATH", lib);
            }
        }
        let out = cmd
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .map_err(|e| Error::Input(format!("{}: {e}", path.display())))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let last = err
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no message");
            return Err(Error::Input(format!("{program} failed: {last}")));
        }
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["-m", "immediate", "-w", "stop"]);
    }
}

/// The directory holding initdb and pg_ctl: `$CLOCKWATCH_PG_BINDIR` (the tests of another major
/// version set it), else `pg_config --bindir`, else the newest Debian-style
/// /usr/lib/postgresql/<version>/bin.
fn server_bindir() -> Option<PathBuf> {
    let from_env = std::env::var_os("CLOCKWATCH_PG_BINDIR").map(PathBuf::from);
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let debian = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|entries| {
            let mut versions: Vec<PathBuf> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect();
            versions.sort_by_key(|p| {
                p.parent()
                    .and_then(|v| v.file_name())
                    .and_then(|v| v.to_str())
                    .and_then(|v| v.parse::<u32>().ok())
            });
            versions.pop()
        });
    from_env
        .into_iter()
        .chain(from_pg_config)
        .chain(debian)
        .find(|dir| dir.join("initdb").exists() && dir.join("pg_ctl").exists())
}

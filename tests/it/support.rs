//! Helpers shared by the integration tests.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use clockwatch::drain::{BatchReport, Drainer};
use clockwatch::Config;
use tokio_postgres::{Client, NoTls, Row};

pub const HOST_SQL: &str = include_str!("../fixtures/host.sql");
pub const SEED_SQL: &str = include_str!("../fixtures/seed.sql");

pub fn admin_url() -> String {
    std::env::var("CLOCKWATCH_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:55432/postgres".into())
}

/// Drop the databases of earlier test runs. A test's database outlives it (dropping it from
/// `Drop` would need a runtime there), so each process clears, once, what runs that have ended
/// left: without this, repeated runs filled the disk at about 10 MB a database. A database is
/// named after the process that runs the tests (nextest, or the test binary's parent under cargo
/// test), and only those whose runner has exited are dropped: DROP DATABASE forces a checkpoint,
/// and dropping finished tests' databases during a run made a write-heavy test ten times slower.
/// A database still in use (by a run on another machine, which this one cannot see) refuses DROP
/// DATABASE, and is left alone.
async fn drop_leftovers(admin: &Client) {
    static DONE: AtomicBool = AtomicBool::new(false);
    if DONE.swap(true, Ordering::SeqCst) {
        return;
    }
    let names: Vec<String> = admin
        .query(
            r"select datname::text from pg_database where datname like 'cw\_test\_%'",
            &[],
        )
        .await
        .expect("list test databases")
        .iter()
        .map(|r| r.get(0))
        .collect();
    for name in names {
        let Some(runner) = name.split('_').nth(2).and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{runner}")).exists() {
            // Another process may be dropping it too: its error is no concern of this test.
            let _ = admin
                .batch_execute(&format!("drop database if exists {name}"))
                .await;
        }
    }
}

/// A fresh database for one test.
pub struct TestDb {
    pub url: String,
}

impl TestDb {
    pub async fn new() -> TestDb {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "cw_test_{}_{}_{}_{}",
            std::os::unix::process::parent_id(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let admin = connect(&admin_url()).await;
        drop_leftovers(&admin).await;
        admin
            .batch_execute(&format!("create database {name}"))
            .await
            .expect("create test database");
        TestDb {
            url: url_with_db(&admin_url(), &name),
        }
    }

    /// A fresh database holding the example host schema and its seed rows.
    pub async fn with_host() -> TestDb {
        let db = TestDb::new().await;
        let client = db.client().await;
        client.batch_execute(HOST_SQL).await.expect("host schema");
        client.batch_execute(SEED_SQL).await.expect("seed rows");
        db
    }

    pub async fn client(&self) -> Client {
        connect(&self.url).await
    }

    /// This database's URL, logging in as `role` instead of the superuser.
    pub fn url_as(&self, role: &str) -> String {
        self.url.replacen("postgres@", &format!("{role}@"), 1)
    }
}

fn url_with_db(url: &str, db: &str) -> String {
    // postgres://user@host:port/dbname?params -> replace dbname
    let (base, params) = match url.split_once('?') {
        Some((b, p)) => (b, Some(p)),
        None => (url, None),
    };
    let prefix = match base.rfind('/') {
        Some(i) if i > "postgres://".len() => &base[..i],
        _ => base,
    };
    match params {
        Some(p) => format!("{prefix}/{db}?{p}"),
        None => format!("{prefix}/{db}"),
    }
}

pub async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("connect to test server");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// The example config (config/clockwatch.toml) that maps tests/fixtures/host.sql.
pub fn example_config() -> Config {
    Config::from_toml(include_str!("../../config/clockwatch.toml")).expect("example config parses")
}

pub async fn install(client: &mut Client, config: &Config) {
    clockwatch::install::install(client, config)
        .await
        .expect("install");
}

pub async fn enable_all(client: &Client, config: &Config, workspace: &str) {
    clockwatch::workspace::set_enabled(client, &config.schema, workspace, None, true)
        .await
        .expect("enable");
}

/// Installed example schema with workspace 1 fully enabled.
pub async fn installed_host() -> (TestDb, Client, Config) {
    let db = TestDb::with_host().await;
    let mut client = db.client().await;
    let config = example_config();
    install(&mut client, &config).await;
    enable_all(&client, &config, "1").await;
    (db, client, config)
}

/// A fresh database holding the host tables `ddl` creates, Clockwatch installed with the config
/// `toml` and `workspace` audited in every category.
pub async fn audited_tables(ddl: &str, toml: &str, workspace: &str) -> (TestDb, Client, Config) {
    let db = TestDb::new().await;
    let mut client = db.client().await;
    client.batch_execute(ddl).await.unwrap();
    let config = Config::from_toml(toml).unwrap();
    install(&mut client, &config).await;
    enable_all(&client, &config, workspace).await;
    (db, client, config)
}

/// Run statements in one transaction as the given actor (None: no actor set, i.e. System).
pub async fn act(client: &mut Client, actor: Option<&str>, sql: &str) {
    act_with(client, actor, None, sql).await
}

pub async fn act_with(client: &mut Client, actor: Option<&str>, origin: Option<&str>, sql: &str) {
    let tx = client.transaction().await.unwrap();
    if let Some(actor) = actor {
        tx.execute("select set_config('clockwatch.actor', $1, true)", &[&actor])
            .await
            .unwrap();
    }
    if let Some(origin) = origin {
        tx.execute(
            "select set_config('clockwatch.origin', $1, true)",
            &[&origin],
        )
        .await
        .unwrap();
    }
    tx.batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("host statement failed: {e:?}\n{sql}"));
    tx.commit().await.unwrap();
}

/// Drain staging into events the way the daemon does.
pub async fn drain(client: &mut Client, config: &Config) -> BatchReport {
    client
        .batch_execute(&format!("set search_path = {}, pg_catalog", config.schema))
        .await
        .unwrap();
    let report = Drainer::new(config.clone())
        .drain_all(client)
        .await
        .expect("drain");
    client.batch_execute("reset search_path").await.unwrap();
    report
}

/// Rows of audit_log.report for a workspace, oldest first.
pub async fn report(client: &Client, workspace: &str) -> Vec<Row> {
    client
        .query(
            "select * from audit_log.report where workspace_id = $1 order by event_id",
            &[&workspace],
        )
        .await
        .expect("query report")
}

/// (action_code, author) of each report row.
pub fn actions(rows: &[Row]) -> Vec<(String, String)> {
    rows.iter()
        .map(|r| (r.get("action_code"), r.get("author")))
        .collect()
}

pub async fn count(client: &Client, sql: &str) -> i64 {
    client
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

/// The first and last day, in `zone`, of the events in the log: the range a test reports on.
/// Taken from the events the test wrote, never from the clock, so that a test started just
/// before midnight, or on any day of the year, covers the same events.
pub async fn event_days(client: &Client, zone: &str) -> (String, String) {
    let row = client
        .query_one(
            "select to_char(min(occurred_at) at time zone $1, 'YYYY-MM-DD'),
                    to_char(max(occurred_at) at time zone $1, 'YYYY-MM-DD')
             from audit_log.events",
            &[&zone],
        )
        .await
        .unwrap();
    let (from, to): (Option<String>, Option<String>) = (row.get(0), row.get(1));
    (
        from.expect("events in the log"),
        to.expect("events in the log"),
    )
}

/// How many changes wait in staging.
pub async fn staged(client: &Client) -> i64 {
    count(client, "select count(*) from audit_log.staging").await
}

/// The first column of every row `sql` returns.
pub async fn column<T>(client: &Client, sql: &str) -> Vec<T>
where
    T: for<'a> tokio_postgres::types::FromSql<'a>,
{
    client
        .query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Poll until `check` holds or the deadline passes (no fixed sleeps).
pub async fn eventually<F, Fut>(what: &str, deadline: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Path of the built binary.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_clockwatch")
}

/// Write a config file into a temporary directory and return its path (the directory lives as
/// long as the returned guard).
pub fn config_file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clockwatch.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// The example config file, for runs of the binary.
pub const EXAMPLE_CONFIG_PATH: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/config/clockwatch.toml");

/// Run the binary with the example config against the database at `url`.
pub fn cli(url: &str, args: &[&str]) -> std::process::Output {
    cli_at(url, std::path::Path::new(EXAMPLE_CONFIG_PATH), args)
}

/// Run the binary with the config file at `config` against the database at `url`.
pub fn cli_at(url: &str, config: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(binary())
        .arg("--config")
        .arg(config)
        .args(args)
        .env("CLOCKWATCH_DATABASE_URL", url)
        .output()
        .expect("run clockwatch")
}

/// Run the CLI with a config file of the test's own and expect it to succeed: its stdout.
pub fn cli_with(url: &str, config: &std::path::Path, args: &[&str]) -> String {
    let out = cli_at(url, config, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// A role name no other test of this cluster's life has used. Roles belong to the cluster, not
/// to a test's database, so they outlive it; a process id alone repeats within one run once the
/// machine's PIDs wrap (pid_max is 32768 on small containers), hence the clock as well.
pub fn unique_role(kind: &str) -> String {
    use std::sync::atomic::AtomicU64;
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    format!(
        "{kind}_{}_{}_{nanos:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// Connect as a fresh login role that may use the host schema and nothing of Clockwatch's: the
/// host application's own role.
pub async fn app_role(db: &TestDb, admin: &Client) -> Client {
    let role = unique_role("app");
    create_app_login(admin, &role).await;
    connect(&db.url_as(&role)).await
}

/// Create `role` as a login that may use the host schema and nothing of Clockwatch's.
pub async fn create_app_login(admin: &Client, role: &str) {
    admin
        .batch_execute(&format!(
            "create role {role} login;
             grant usage on schema app to {role};
             grant select, insert, update, delete on all tables in schema app to {role};
             grant usage on all sequences in schema app to {role};"
        ))
        .await
        .unwrap();
}

/// Connect as a fresh login role with DML on every table of `schema` and nothing else: the
/// application's role for a test's own host schema.
pub async fn dml_role(db: &TestDb, admin: &Client, schema: &str) -> Client {
    let role = unique_role("dml");
    admin
        .batch_execute(&format!(
            "create role {role} login;
             grant usage on schema {schema} to {role};
             grant select, insert, update, delete on all tables in schema {schema} to {role};"
        ))
        .await
        .unwrap();
    connect(&db.url_as(&role)).await
}

/// A fresh login role for the daemon, reading the example host schema's tables for names.
pub async fn daemon_login(admin: &Client) -> String {
    let role = unique_role("daemon");
    admin
        .batch_execute(&format!(
            "create role {role} login;
             grant usage on schema app to {role};
             grant select on all tables in schema app to {role};"
        ))
        .await
        .unwrap();
    role
}

/// Create a login role for the daemon, able to read the host schema, and install with it as
/// `daemon_role`. Returns the role and a URL that connects as it.
pub async fn with_daemon_role(
    db: &TestDb,
    admin: &mut Client,
    config: &mut Config,
) -> (String, String) {
    let role = daemon_login(admin).await;
    config.daemon_role = Some(role.clone());
    install(admin, config).await;
    let url = db.url_as(&role);
    (role, url)
}

/// Run `clockwatch run` with the example config until staging is empty, then stop it. Returns
/// its peak resident memory, in kB.
pub async fn drain_with_daemon_process(db: &TestDb, client: &Client, deadline: Duration) -> u64 {
    let (_dir, config) = config_file(include_str!("../../config/clockwatch.toml"));
    let mut daemon = daemon_process(&db.url, &config);
    eventually("the backlog is drained", deadline, || async {
        staged(client).await == 0
    })
    .await;
    let peak_kb = peak_rss_kb(daemon.id());
    kill_hard(&mut daemon);
    peak_kb
}

/// SIGKILL a process the test started and reap it, then remove the semaphore and shared memory
/// that libfaketime (the suite's run with the clock a year ahead, scripts/test-anywhere) names
/// after its pid: a process killed so never removes them, and a server process later given the
/// same pid, as another user, could then neither create nor open its own, and fail to start.
pub fn kill_hard(child: &mut std::process::Child) {
    let pid = child.id();
    let _ = child.kill();
    let _ = child.wait();
    for leftover in [
        format!("/dev/shm/sem.faketime_sem_{pid}"),
        format!("/dev/shm/faketime_shm_{pid}"),
    ] {
        let _ = std::fs::remove_file(leftover);
    }
}

/// The peak resident memory of a running process, in kB.
pub fn peak_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .expect("VmHWM in /proc/pid/status")
}

/// Start `clockwatch run` as a process with the config file at `config` (its log discarded).
pub fn daemon_process(url: &str, config: &std::path::Path) -> std::process::Child {
    std::process::Command::new(binary())
        .arg("--config")
        .arg(config)
        .arg("run")
        .env("CLOCKWATCH_DATABASE_URL", url)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// A daemon running in-process, with its lifecycle notices.
pub struct Running {
    pub stop: tokio::sync::watch::Sender<bool>,
    pub lifecycle: tokio::sync::mpsc::UnboundedReceiver<clockwatch::daemon::Lifecycle>,
    pub task: tokio::task::JoinHandle<clockwatch::Result<()>>,
}

/// Start a daemon in-process for `config` on the database at `url`.
pub fn start_daemon(config: &Config, url: &str) -> Running {
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let (tx, lifecycle) = tokio::sync::mpsc::unbounded_channel();
    let daemon = clockwatch::daemon::Daemon::new(config.clone(), url, shutdown)
        .unwrap()
        .with_lifecycle(tx);
    Running {
        stop,
        lifecycle,
        task: tokio::spawn(daemon.run()),
    }
}

impl Running {
    /// Wait for the next Ready (connected, listening, first drain done).
    pub async fn ready(&mut self) {
        loop {
            let event = tokio::time::timeout(Duration::from_secs(30), self.lifecycle.recv())
                .await
                .expect("daemon became ready in time")
                .expect("daemon still running");
            if event == clockwatch::daemon::Lifecycle::Ready {
                return;
            }
        }
    }

    /// Ask for shutdown; the daemon must exit cleanly.
    pub async fn stop(self) {
        self.stop.send(true).unwrap();
        let result = tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("daemon stops")
            .unwrap();
        result.expect("daemon exits cleanly");
    }
}

/// The test server's host and port, from CLOCKWATCH_TEST_DATABASE_URL (what a pooler or a
/// client of another language is pointed at).
pub fn server_address() -> (String, u16) {
    let config: tokio_postgres::Config = admin_url().parse().expect("a valid test database URL");
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        _ => "127.0.0.1".to_string(),
    };
    (host, config.get_ports().first().copied().unwrap_or(5432))
}

/// A PgBouncer (Debian's package) in front of the server at `host:port`, pooling by transaction
/// into ONE server connection per database and user, so that every client's transactions share
/// a session and anything one of them left in it would show in the next. Stopped when dropped.
pub struct PgBouncer {
    child: std::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl PgBouncer {
    /// Start it for the login roles `users` (trusted, as the test server trusts them).
    pub fn start(host: &str, port: u16, users: &[&str]) -> PgBouncer {
        use std::process::Command;
        let dir = tempfile::tempdir().unwrap();
        let listen = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
        // auth_type = trust still wants each user listed.
        let listed: String = users.iter().map(|u| format!("\"{u}\" \"\"\n")).collect();
        std::fs::write(path("users.txt"), listed).unwrap();
        std::fs::write(
            path("pgbouncer.ini"),
            format!(
                "[databases]\n* = host={host} port={port}\n\
                 [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {listen}\nunix_socket_dir =\n\
                 auth_type = trust\nauth_file = {}\npool_mode = transaction\n\
                 default_pool_size = 1\nmax_client_conn = 50\nlogfile = {}\n",
                path("users.txt"),
                path("pgbouncer.log"),
            ),
        )
        .unwrap();
        let binary = ["/usr/sbin/pgbouncer", "pgbouncer"]
            .into_iter()
            .find(|b| Command::new(b).arg("--version").output().is_ok())
            .expect("pgbouncer installed (scripts/deps installs it: apt-get install -y pgbouncer)");
        // PgBouncer refuses to run as root.
        let as_root = unsafe { libc::geteuid() } == 0;
        let mut command = if as_root {
            Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(dir.path())
                .status()
                .unwrap();
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", binary]);
            c
        } else {
            Command::new(binary)
        };
        // From its own folder, which `postgres` owns: the test's working directory may be one
        // that user cannot enter.
        let child = command
            .arg(path("pgbouncer.ini"))
            .current_dir(dir.path())
            .spawn()
            .unwrap();
        PgBouncer {
            child,
            port: listen,
            dir,
        }
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A libpq connection string through it, as `user` to `dbname`.
    pub fn url(&self, user: &str, dbname: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={user} dbname={dbname}",
            self.port
        )
    }

    /// What it has logged, for a failure's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pgbouncer.log")).unwrap_or_default()
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        // runuser passes SIGTERM on to PgBouncer.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

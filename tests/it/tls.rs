//! TLS with libpq's settings, against a server of the test's own with `ssl = on` and a CA and
//! certificates made for the test by the openssl command.

use std::path::{Path, PathBuf};
use std::process::Command;

use clockwatch::cluster::Cluster;

use crate::support::*;

/// Run the openssl command in `dir`, failing the test with its message.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (Debian: apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A certificate authority: its certificate's path; its key lies beside it as NAME.key.
fn authority(dir: &Path, name: &str) -> PathBuf {
    let (crt, key) = (format!("{name}.crt"), format!("{name}.key"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &crt,
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    dir.join(crt)
}

/// A certificate for `common_name` signed by `ca` (a path from authority()), valid for
/// `alt_names` when given: the paths of the certificate and its key.
fn issue(
    dir: &Path,
    ca: &Path,
    name: &str,
    common_name: &str,
    alt_names: Option<&str>,
) -> (PathBuf, PathBuf) {
    let ca_key = ca.with_extension("key");
    let (crt, key, csr) = (
        format!("{name}.crt"),
        format!("{name}.key"),
        format!("{name}.csr"),
    );
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={common_name}"),
        ],
    );
    let ext = dir.join(format!("{name}.ext"));
    std::fs::write(
        &ext,
        alt_names.map_or(String::new(), |n| format!("subjectAltName={n}\n")),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca.to_string_lossy(),
            "-CAkey",
            &ca_key.to_string_lossy(),
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "2",
            "-extfile",
            &ext.to_string_lossy(),
        ],
    );
    (dir.join(crt), dir.join(key))
}

struct TlsServer {
    cluster: Cluster,
    _pki: tempfile::TempDir,
    ca: PathBuf,
    other_ca: PathBuf,
    client: (PathBuf, PathBuf),
}

impl TlsServer {
    /// A server with `ssl = on` and a certificate for `localhost` only, signed by `ca`; the role
    /// `certified` may log in over TLS with a client certificate and nothing else.
    fn start() -> TlsServer {
        let pki = tempfile::tempdir().unwrap();
        let dir = pki.path();
        let ca = authority(dir, "ca");
        let other_ca = authority(dir, "other-ca");
        let (server_crt, server_key) =
            issue(dir, &ca, "server", "localhost", Some("DNS:localhost"));
        let client = issue(dir, &ca, "client", "certified", None);

        let cluster = Cluster::start(false).expect("throwaway cluster");
        let read = |p: &Path| std::fs::read(p).unwrap();
        let crt = cluster.add_file("server.crt", &read(&server_crt)).unwrap();
        let key = cluster.add_file("server.key", &read(&server_key)).unwrap();
        let root = cluster.add_file("root.crt", &read(&ca)).unwrap();
        cluster
            .reconfigure(
                &format!(
                    "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\nssl_ca_file = '{}'",
                    crt.display(),
                    key.display(),
                    root.display()
                ),
                "local all all trust\n\
                 hostssl all certified 127.0.0.1/32 cert\n\
                 hostssl all all 127.0.0.1/32 trust\n",
            )
            .unwrap();
        TlsServer {
            cluster,
            _pki: pki,
            ca,
            other_ca,
            client,
        }
    }

    fn url(&self, host: &str, user: &str, tls: &str) -> String {
        format!(
            "postgres://{user}@{host}:{}/postgres?{tls}",
            self.cluster.port()
        )
    }
}

/// The error line of a connection that must fail.
async fn refusal(url: &str) -> String {
    match clockwatch::db::connect_once(url, "test").await {
        Ok(_) => panic!("{url} connected"),
        Err(e) => e.to_string(),
    }
}

async fn encrypted(url: &str) -> bool {
    let client = clockwatch::db::connect_once(url, "test")
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    client
        .query_one(
            "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn sslmodes_root_certificates_and_client_certificates_mean_what_they_mean_to_libpq() {
    let server = TlsServer::start();
    let ca = format!("sslrootcert={}", server.ca.display());

    // verify-full: the CA signed it and it names the host connected to.
    let url = server.url(
        "localhost",
        "postgres",
        &format!("sslmode=verify-full&{ca}"),
    );
    assert!(encrypted(&url).await);
    // Every subcommand connects the same way: the CLI installs over it.
    let admin = clockwatch::db::connect_once(&url, "test").await.unwrap();
    admin.batch_execute(HOST_SQL).await.unwrap();
    let out = cli(&url, &["install"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The certificate names localhost, not 127.0.0.1.
    let err = refusal(&server.url(
        "127.0.0.1",
        "postgres",
        &format!("sslmode=verify-full&{ca}"),
    ))
    .await;
    assert!(
        err.contains("certificate was refused") && err.contains("sslmode=verify-full"),
        "{err}"
    );
    assert!(err.contains("host"), "{err}");
    // verify-ca checks the signature, not the name.
    assert!(
        encrypted(&server.url("127.0.0.1", "postgres", &format!("sslmode=verify-ca&{ca}"))).await
    );
    // A CA that did not sign it.
    let other = format!(
        "sslmode=verify-ca&sslrootcert={}",
        server.other_ca.display()
    );
    let err = refusal(&server.url("localhost", "postgres", &other)).await;
    assert!(
        err.contains("certificate was refused") && err.contains("sslrootcert="),
        "{err}"
    );
    // require encrypts without checking; prefer takes TLS when the server offers it.
    assert!(encrypted(&server.url("127.0.0.1", "postgres", "sslmode=require")).await);
    assert!(encrypted(&server.url("127.0.0.1", "postgres", "sslmode=prefer")).await);
    // verify-* without a CA to check against is refused before connecting, naming the setting.
    let err = refusal(&server.url("localhost", "postgres", "sslmode=verify-full")).await;
    assert!(err.contains("sslrootcert"), "{err}");

    // Client certificate authentication (pg_hba.conf: hostssl ... cert), as a key=value string.
    admin
        .batch_execute("create role certified login")
        .await
        .unwrap();
    let (crt, key) = &server.client;
    let kv = format!(
        "host=localhost port={} user=certified dbname=postgres sslmode=verify-full sslrootcert='{}' sslcert='{}' sslkey='{}'",
        server.cluster.port(),
        server.ca.display(),
        crt.display(),
        key.display()
    );
    assert!(encrypted(&kv).await);
    let err = refusal(&server.url(
        "localhost",
        "certified",
        &format!("sslmode=verify-full&{ca}"),
    ))
    .await;
    assert!(err.contains("certificate"), "{err}");

    // libpq's environment variables, for a subcommand: PGSSLMODE and PGSSLROOTCERT.
    let out = Command::new(binary())
        .args(["--config", EXAMPLE_CONFIG_PATH, "status"])
        .env(
            "CLOCKWATCH_DATABASE_URL",
            server.url("127.0.0.1", "postgres", ""),
        )
        .env("PGSSLMODE", "verify-full")
        .env("PGSSLROOTCERT", &server.ca)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("certificate was refused") && stderr.lines().count() == 1,
        "{stderr}"
    );
}

#[tokio::test]
async fn a_plain_text_server_is_refused_under_require_and_accepted_under_prefer() {
    let db = TestDb::new().await;
    let url = db.url.clone();
    let with = |tls: &str| format!("{url}{}{tls}", if url.contains('?') { "&" } else { "?" });
    let err = refusal(&with("sslmode=require")).await;
    assert!(
        err.contains("does not accept TLS") && err.contains("sslmode=require"),
        "{err}"
    );
    assert!(!encrypted(&with("sslmode=prefer")).await);
    assert!(!encrypted(&with("sslmode=disable")).await);
    let out = cli(&with("sslmode=require"), &["status"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

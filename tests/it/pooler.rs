//! The host application behind PgBouncer in transaction mode (Debian's pgbouncer package): who
//! acted still reaches the capture triggers when the application names the actor inside its
//! transaction, as the README says to.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use clockwatch::cluster::Cluster;

use crate::support::*;

/// A PgBouncer in front of `server_port`, pooling by transaction into ONE server connection, so
/// that every client's transactions share a session and anything left in it would show.
struct PgBouncer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl PgBouncer {
    fn start(server_port: u16) -> PgBouncer {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
        std::fs::write(path("users.txt"), "\"postgres\" \"\"\n").unwrap();
        std::fs::write(
            path("pgbouncer.ini"),
            format!(
                "[databases]\n* = host=127.0.0.1 port={server_port}\n\
                 [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                 auth_type = trust\nauth_file = {}\npool_mode = transaction\n\
                 default_pool_size = 1\nmax_client_conn = 20\nlogfile = {}\n",
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
            port,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        )
    }

    fn log(&self) -> PathBuf {
        self._dir.path().join("pgbouncer.log")
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        // runuser passes SIGTERM on to PgBouncer.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// A client of the pooler, retried until PgBouncer listens.
async fn through(bouncer: &PgBouncer) -> tokio_postgres::Client {
    for _ in 0..100 {
        if let Ok((client, connection)) =
            tokio_postgres::connect(&bouncer.url(), tokio_postgres::NoTls).await
        {
            tokio::spawn(connection);
            return client;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "PgBouncer did not accept connections: {}",
        std::fs::read_to_string(bouncer.log()).unwrap_or_default()
    );
}

/// The server process behind a pooled client's next transaction.
async fn backend(client: &tokio_postgres::Client) -> String {
    let rows = client
        .simple_query("select pg_backend_pid()")
        .await
        .unwrap();
    rows.iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .unwrap()
}

#[tokio::test]
async fn the_actor_set_inside_a_pooled_transaction_reaches_the_triggers_and_no_other_client() {
    let cluster = Cluster::start(false).expect("throwaway cluster");
    let mut direct = connect(&cluster.url()).await;
    direct.batch_execute(HOST_SQL).await.unwrap();
    direct.batch_execute(SEED_SQL).await.unwrap();
    let config = example_config();
    install(&mut direct, &config).await;
    enable_all(&direct, &config, "1").await;
    let bouncer = PgBouncer::start(cluster.port());
    let (bob, carol) = (through(&bouncer).await, through(&bouncer).await);

    // An ORM's way: one statement per round trip inside an explicit transaction (simple
    // protocol: PgBouncer 1.18 in transaction mode cannot keep named prepared statements).
    for sql in [
        "begin",
        "select set_config('clockwatch.actor', '2', true)",
        "insert into app.time_entry (id, workspace_id, user_id, description, start_at) values (501, 1, 2, 'bob', now())",
        "commit",
    ] {
        bob.batch_execute(sql).await.unwrap();
    }
    // Carol's transaction runs on the same server session next, naming nobody: System.
    carol
        .batch_execute(
            "begin; insert into app.time_entry (id, workspace_id, user_id, description, start_at) values (502, 1, 3, 'job', now()); commit",
        )
        .await
        .unwrap();
    carol
        .batch_execute(
            "begin; select set_config('clockwatch.actor', '3', true); update app.time_entry set description = 'carol' where id = 501; commit",
        )
        .await
        .unwrap();
    assert_eq!(
        backend(&bob).await,
        backend(&carol).await,
        "both clients' transactions ran in one server session"
    );

    drain(&mut direct, &config).await;
    let authors: Vec<(String, String, Option<String>)> = direct
        .query(
            "select action_code, target_id, author_id from audit_log.events
             where target_id in ('501', '502') order by event_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        authors,
        [
            ("time_entry.created".into(), "501".into(), Some("2".into())),
            ("time_entry.created".into(), "502".into(), None),
            ("time_entry.updated".into(), "501".into(), Some("3".into())),
        ]
    );
}

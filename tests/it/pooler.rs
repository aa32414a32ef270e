//! The host application behind PgBouncer in transaction mode (Debian's pgbouncer package): who
//! acted still reaches the capture triggers when the application names the actor inside its
//! transaction, as the README says to.

use std::time::Duration;

use clockwatch::cluster::Cluster;

use crate::support::*;

/// A client of the pooler, retried until PgBouncer listens.
async fn through(bouncer: &PgBouncer) -> tokio_postgres::Client {
    for _ in 0..100 {
        if let Ok((client, connection)) =
            tokio_postgres::connect(&bouncer.url("postgres", "postgres"), tokio_postgres::NoTls)
                .await
        {
            tokio::spawn(connection);
            return client;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("PgBouncer did not accept connections: {}", bouncer.log());
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
    let bouncer = PgBouncer::start("127.0.0.1", cluster.port(), &["postgres"]);
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

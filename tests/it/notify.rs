//! The notification queue is shared by the whole cluster, and any session can fill it (a
//! listener that never reads holds every notification sent after it). A NOTIFY that does not fit
//! fails its transaction at COMMIT, so capture must never be the NOTIFY that fails a host's write.
//!
//! The queue is 8 GB on PostgreSQL 16 and older; 17 made it configurable, and `scripts/pg-up`
//! gives the clusters it creates for 17+ a queue of 64 pages (512 kB) that a test fills in a
//! second. `scripts/test` runs this module alone, on PostgreSQL 18 (filling the queue while other
//! tests run would take their daemons' wake-ups away).

use crate::support::*;

#[tokio::test]
async fn a_full_notification_queue_never_fails_a_host_write() {
    let (db, admin, _config) = installed_host().await;
    let pages: String = admin
        .query_one("show max_notify_queue_pages", &[])
        .await
        .expect("a server with max_notify_queue_pages (PostgreSQL 17+, scripts/pg-up)")
        .get(0);
    assert_eq!(
        pages, "64",
        "scripts/pg-up sets a 64-page queue on PostgreSQL 17+"
    );

    // A listener that never reads, in an open transaction, holds the queue.
    let holder = db.client().await;
    holder.batch_execute("listen held").await.unwrap();
    holder.batch_execute("begin; select 1").await.unwrap();
    let filler = app_role(&db, &admin).await;
    let mut full = false;
    for _ in 0..10_000 {
        match filler
            .batch_execute("select pg_notify('held', repeat('x', 7900))")
            .await
        {
            Ok(()) => {}
            Err(e) => {
                let message = e.as_db_error().map(|d| d.message().to_string());
                assert_eq!(
                    message.as_deref(),
                    Some("too many notifications in the NOTIFY queue"),
                    "{e:?}"
                );
                full = true;
                break;
            }
        }
    }
    assert!(full, "the queue never filled");

    // The daemon is idle (the flag capture reads before it wakes the daemon).
    admin
        .batch_execute("select setval('audit_log.wakeup_idle', 2)")
        .await
        .unwrap();
    let mut app = app_role(&db, &admin).await;
    act(
        &mut app,
        Some("1"),
        "insert into app.tag (workspace_id, name) values (1, 'written while the queue is full')",
    )
    .await;
    assert_eq!(staged(&admin).await, 1);
    drop(holder);
}

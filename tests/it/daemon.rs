//! The daemon: wakes on NOTIFY, catches up after (re)connecting, and never doubles a change when
//! several run at once.

use std::time::Duration;

use clockwatch::daemon::Daemon;
use tokio::sync::watch;

use crate::support::*;

async fn events(client: &tokio_postgres::Client) -> i64 {
    count(client, "select count(*) from audit_log.events").await
}

#[tokio::test]
async fn the_daemon_catches_up_then_follows_notifications() {
    let (db, mut client, config) = installed_host().await;
    // Staged before the daemon starts: drained on connect.
    act(
        &mut client,
        Some("1"),
        "insert into app.tag (workspace_id, name) values (1, 'early')",
    )
    .await;
    let mut daemon = start_daemon(&config, &db.url);
    daemon.ready().await;
    assert_eq!(events(&client).await, 1, "ready means caught up");
    for i in 0..20 {
        act(
            &mut client,
            Some("2"),
            &format!("insert into app.tag (workspace_id, name) values (1, 'tag {i}')"),
        )
        .await;
    }
    eventually("all tags recorded", Duration::from_secs(20), || async {
        events(&client).await == 21
    })
    .await;
    // With a daemon connected and nothing waiting, status is healthy (exit 0).
    let status = cli(&db.url, &["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert_eq!(status.status.code(), Some(0), "{text}");
    assert!(
        text.contains("1 daemon(s) connected, 0 change(s) staged"),
        "{text}"
    );
    assert!(
        text.contains("events: 21 in the last hour, 21 in the last day"),
        "{text}"
    );
    daemon.stop().await;
}

#[tokio::test]
async fn a_terminated_connection_is_replaced_and_nothing_is_missed() {
    let (db, mut client, config) = installed_host().await;
    let mut daemon = start_daemon(&config, &db.url);
    daemon.ready().await;
    let killed = count(
        &client,
        "select count(pg_terminate_backend(pid)) from pg_stat_activity
         where datname = current_database() and application_name = 'clockwatch daemon'",
    )
    .await;
    assert_eq!(killed, 1);
    // Written while the daemon may be disconnected: its NOTIFY can be lost, the rows cannot.
    act(
        &mut client,
        Some("1"),
        "insert into app.tag (workspace_id, name) values (1, 'while away')",
    )
    .await;
    daemon.ready().await;
    eventually(
        "the change is recorded after reconnecting",
        Duration::from_secs(20),
        || async { events(&client).await == 1 },
    )
    .await;
    daemon.stop().await;
}

#[tokio::test]
async fn three_daemons_record_each_change_exactly_once_in_order() {
    let (db, client, config) = installed_host().await;
    let mut daemons = Vec::new();
    for _ in 0..3 {
        let mut d = start_daemon(&config, &db.url);
        d.ready().await;
        daemons.push(d);
    }
    // Four concurrent writers, each creating and then updating its own entries.
    let mut writers = Vec::new();
    for w in 0..4 {
        let url = db.url.clone();
        writers.push(tokio::spawn(async move {
            let mut c = connect(&url).await;
            for i in 0..50 {
                let id = w * 1000 + i + 1;
                act(&mut c, Some("2"), &format!(
                    "insert into app.time_entry (id, workspace_id, user_id, description, start_at) values ({id}, 1, 2, 'v0', now());
                     update app.time_entry set description = 'v1' where id = {id};"
                )).await;
                act(&mut c, Some("2"), &format!("update app.time_entry set description = 'v2' where id = {id}")).await;
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    eventually("every change recorded", Duration::from_secs(60), || async {
        count(&client, "select count(*) from audit_log.staging").await == 0
            && events(&client).await >= 600
    })
    .await;
    for d in daemons {
        d.stop().await;
    }
    assert_eq!(
        events(&client).await,
        600,
        "4 writers x 50 entries x (create + 2 updates)"
    );
    assert_eq!(
        count(
            &client,
            "select count(distinct event_id) from audit_log.events"
        )
        .await,
        600
    );
    // Per record, event order (event_id) follows the order of the changes.
    let out_of_order = count(
        &client,
        "select count(*) from (
             select target_id, array_agg(coalesce(new_value ->> 'description', row_data ->> 'description') order by event_id) as seq
             from audit_log.report group by target_id) s
         where seq <> array['v0', 'v1', 'v2']",
    )
    .await;
    assert_eq!(out_of_order, 0);
}

#[tokio::test]
async fn a_change_committed_after_the_drain_passed_its_id_is_still_drained() {
    // During a backlog each claim starts after the last one's highest id. A change staged
    // before the backlog but committed after the drain went past it must still be found.
    let (db, client, mut config) = installed_host().await;
    config.daemon.batch_size = 10;
    let mut late = connect(&db.url).await;
    let late_tx = late.transaction().await.unwrap();
    late_tx
        .batch_execute(
            "select set_config('clockwatch.actor', '2', true);
             insert into app.time_entry (id, workspace_id, user_id, description, start_at)
             values (9001, 1, 2, 'late', now())",
        )
        .await
        .unwrap();
    let mut writer = connect(&db.url).await;
    act(
        &mut writer,
        Some("2"),
        "insert into app.time_entry (id, workspace_id, user_id, description, start_at)
         select 9100 + g, 1, 2, 'early ' || g, now() from generate_series(1, 35) g",
    )
    .await;

    let mut drainer = clockwatch::drain::Drainer::new(config.clone());
    let mut conn = connect(&db.url).await;
    conn.batch_execute("set search_path = audit_log, pg_catalog")
        .await
        .unwrap();
    for _ in 0..2 {
        assert_eq!(drainer.drain_batch(&mut conn).await.unwrap().events, 10);
    }
    late_tx.commit().await.unwrap();
    // The rest of the backlog, past where the drain got to; then a look from the start, as the
    // daemon's next look is.
    let rest = drainer.drain_all(&mut conn).await.unwrap();
    let after = drainer.drain_all(&mut conn).await.unwrap();
    assert_eq!(rest.events + after.events, 16, "{rest:?} then {after:?}");
    assert_eq!(staged(&client).await, 0);
    assert_eq!(
        count(
            &client,
            "select count(*) from audit_log.events where target_id = '9001'"
        )
        .await,
        1
    );
    assert_eq!(events(&client).await, 36);
}

#[tokio::test]
async fn a_missing_install_stops_the_daemon_with_a_clear_error() {
    let db = TestDb::with_host().await;
    let (_stop, shutdown) = watch::channel(false);
    let result = Daemon::new(example_config(), &db.url, shutdown)
        .unwrap()
        .run()
        .await;
    let err = result.unwrap_err().to_string();
    assert_eq!(
        err,
        "clockwatch is not installed in schema \"audit_log\": run `clockwatch install` first"
    );
}

#[tokio::test]
async fn a_schema_purged_under_the_running_daemon_stops_it_with_a_clear_error() {
    let (db, mut client, config) = installed_host().await;
    let mut daemon = start_daemon(&config, &db.url);
    daemon.ready().await;
    clockwatch::install::uninstall(&mut client, "audit_log", true)
        .await
        .unwrap();
    // Its next look at staging (at the latest on the poll timer) meets the schema gone.
    let result = tokio::time::timeout(Duration::from_secs(30), daemon.task)
        .await
        .expect("the daemon stops by itself")
        .unwrap();
    assert_eq!(
        result.unwrap_err().to_string(),
        "clockwatch was uninstalled from schema \"audit_log\" while the daemon ran: the daemon stops; run `clockwatch install` before starting it again"
    );
}

#[tokio::test]
async fn sigterm_during_a_backlog_loses_and_doubles_nothing() {
    let (db, mut client, _config) = installed_host().await;
    act(
        &mut client,
        Some("1"),
        "insert into app.time_entry (workspace_id, user_id, description, start_at)
         select 1, 1, 'bulk ' || g, now() from generate_series(1, 5000) g",
    )
    .await;
    let text = include_str!("../../config/clockwatch.toml")
        .replace("batch_size = 1000", "batch_size = 10");
    let (_dir, config) = config_file(&text);
    let spawn = || daemon_process(&db.url, &config);
    let mut daemon = spawn();
    eventually(
        "the daemon has started draining",
        Duration::from_secs(30),
        || async { events(&client).await > 0 },
    )
    .await;
    let pid = daemon.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    assert!(daemon.wait().unwrap().success(), "clean exit on SIGTERM");
    let staged = count(&client, "select count(*) from audit_log.staging").await;
    assert_eq!(
        events(&client).await + staged,
        5000,
        "every change is an event or still staged"
    );

    let mut daemon = spawn();
    eventually(
        "the rest is drained after a restart",
        Duration::from_secs(60),
        || async { events(&client).await == 5000 },
    )
    .await;
    kill_hard(&mut daemon);
    assert_eq!(
        count(
            &client,
            "select count(distinct event_id) from audit_log.events"
        )
        .await,
        5000
    );
}

#[tokio::test]
async fn an_unknown_database_or_role_stops_the_daemon_instead_of_retrying() {
    let base = admin_url();
    let prefix = &base[..base.rfind('/').unwrap()];
    let cases = [
        (
            format!("{prefix}/no_such_database_here"),
            "database \"no_such_database_here\" does not exist",
        ),
        (
            base.replacen("postgres@", "no_such_role@", 1),
            "role \"no_such_role\" does not exist",
        ),
    ];
    for (url, expected) in cases {
        let (_stop, shutdown) = watch::channel(false);
        let run = Daemon::new(example_config(), &url, shutdown).unwrap().run();
        let result = tokio::time::timeout(Duration::from_secs(30), run)
            .await
            .expect("gives up at once");
        let err = result.unwrap_err().to_string();
        assert!(
            err.starts_with("cannot connect to the database: ") && err.contains(expected),
            "{err}"
        );
    }
}

/// Capture notifies only while the idle flag (the `wakeup_idle` sequence) says a daemon is
/// waiting. Notifications arrive in commit order, so when the second change's notification
/// comes first, the first change sent none.
#[tokio::test]
async fn capture_notifies_only_while_a_daemon_is_idle() {
    let (db, mut client, config) = installed_host().await;
    let url = clockwatch::db::parse_url(&db.url, "test listener").unwrap();
    let (listener, mut notifications) = clockwatch::db::connect(&url).await.unwrap();
    listener
        .batch_execute(&format!("listen {}", config.channel()))
        .await
        .unwrap();
    let flag = "select pg_sequence_last_value('audit_log.wakeup_idle')";
    assert_eq!(
        count(&client, flag).await,
        2,
        "idle until a daemon says otherwise"
    );

    client
        .batch_execute("select setval('audit_log.wakeup_idle', 1)")
        .await
        .unwrap();
    act(
        &mut client,
        Some("1"),
        "insert into app.tag (workspace_id, name) values (1, 'while busy')",
    )
    .await;
    client
        .batch_execute("select setval('audit_log.wakeup_idle', 2)")
        .await
        .unwrap();
    act(
        &mut client,
        Some("1"),
        "insert into app.tag (workspace_id, name) values (1, 'while idle')",
    )
    .await;
    // Marks the end: the listener's own NOTIFY is delivered after both changes'.
    listener
        .batch_execute(&format!("notify {}, 'end'", config.channel()))
        .await
        .unwrap();
    let mut payloads = Vec::new();
    while let Some(n) = notifications.recv().await {
        payloads.push(n.payload().to_string());
        if n.payload() == "end" {
            break;
        }
    }
    assert_eq!(
        payloads,
        ["", "end"],
        "one wake-up, for the change made while idle"
    );
    assert_eq!(
        count(&client, "select count(*) from audit_log.staging").await,
        2
    );
}

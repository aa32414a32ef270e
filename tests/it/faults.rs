//! Fault injection: the daemon killed at random, PostgreSQL restarted under load, a frozen
//! connection, a long outage. After each, every committed host change has exactly one event and
//! no rolled-back change has any.
//!
//! Repetition counts are small for CI; CLOCKWATCH_SOAK=N multiplies them for soak runs.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clockwatch::daemon::Lifecycle;
use rand::Rng;

use crate::support::*;

fn soak() -> u32 {
    std::env::var("CLOCKWATCH_SOAK")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
        .max(1)
}

/// A host application writing continuously: each round creates a time entry (as user 2), then
/// renames it in a second transaction; every fifth round's rename is rolled back. Survives the
/// server going away (it reconnects); what counts is what the host table holds at the end.
struct Writer {
    stop: Arc<AtomicBool>,
    rounds: Arc<AtomicI64>,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    fn start(url: String) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let rounds = Arc::new(AtomicI64::new(0));
        let (s, r) = (stop.clone(), rounds.clone());
        let task = tokio::spawn(async move {
            let mut n: i64 = 0;
            while !s.load(Ordering::SeqCst) {
                let Ok((mut client, conn)) =
                    tokio_postgres::connect(&url, tokio_postgres::NoTls).await
                else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                tokio::spawn(conn);
                while !s.load(Ordering::SeqCst) {
                    n += 1;
                    if let Err(e) = write_round(&mut client, n).await {
                        if !clockwatch::db::is_transient(&e) {
                            panic!("the writer's statement failed: {e:?}");
                        }
                        break; // the server went away: reconnect
                    }
                    r.store(n, Ordering::SeqCst);
                }
            }
        });
        Writer { stop, rounds, task }
    }

    async fn finish(self) -> i64 {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap();
        self.rounds.load(Ordering::SeqCst)
    }
}

async fn write_round(
    client: &mut tokio_postgres::Client,
    n: i64,
) -> Result<(), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.execute("select set_config('clockwatch.actor', '2', true)", &[])
        .await?;
    tx.execute(
        "insert into app.time_entry (id, workspace_id, user_id, description, start_at)
         values ($1::bigint, 1, 2, 'w' || $1::bigint::text, now())",
        &[&(1_000_000 + n)],
    )
    .await?;
    tx.commit().await?;
    let tx = client.transaction().await?;
    tx.execute("select set_config('clockwatch.actor', '2', true)", &[])
        .await?;
    tx.execute(
        "update app.time_entry set description = description || ' v2' where id = $1",
        &[&(1_000_000 + n)],
    )
    .await?;
    if n % 5 == 0 {
        tx.rollback().await
    } else {
        tx.commit().await
    }
}

/// Every committed writer change has exactly one event; rolled-back ones have none.
async fn assert_exactly_once(client: &tokio_postgres::Client) {
    assert_exactly_once_in(client, client).await;
}

/// The same, with the log in a database of its own (`log`): host rows read on the host, events
/// in the log. Staged rows are compared by id, the log's events matched back to the host's rows.
async fn assert_exactly_once_in(client: &tokio_postgres::Client, log: &tokio_postgres::Client) {
    let rows = count(
        client,
        "select count(*) from app.time_entry where id > 1000000",
    )
    .await;
    assert!(rows > 0, "the writer wrote nothing");
    let created = count(
        log,
        "select count(*) from audit_log.events where action_code = 'time_entry.created' and target_id::bigint > 1000000",
    )
    .await;
    assert_eq!(created, rows, "one creation event per committed row");
    let renamed = count(
        client,
        "select count(*) from app.time_entry where id > 1000000 and description like '% v2'",
    )
    .await;
    let updates = count(
        log,
        "select count(*) from audit_log.events where action_code = 'time_entry.updated' and target_id::bigint > 1000000",
    )
    .await;
    assert_eq!(
        updates, renamed,
        "one update event per committed rename, none for rolled-back ones"
    );
    assert_eq!(
        count(
            log,
            "select count(*) - count(distinct event_id) from audit_log.events"
        )
        .await,
        0
    );
    // Read apart and compared here: the events may be in another database than the rows.
    let renamed: std::collections::BTreeSet<String> = column(
        client,
        "select id::text from app.time_entry where id > 1000000 and description like '% v2'",
    )
    .await
    .into_iter()
    .collect();
    let updated: Vec<String> = column(
        log,
        "select target_id from audit_log.events
         where action_code = 'time_entry.updated' and target_id::bigint > 1000000",
    )
    .await;
    assert!(
        updated.iter().all(|id| renamed.contains(id)),
        "no event for a rolled-back rename"
    );
    assert_eq!(
        updated
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        updated.len(),
        "one update event per rename"
    );
    assert_eq!(
        count(log, "select count(*) from audit_log.dead_letter").await,
        0
    );
}

async fn wait_drained(client: &tokio_postgres::Client) {
    eventually("staging drained", Duration::from_secs(120), || async {
        staged(client).await == 0
    })
    .await;
}

fn small_batches_config() -> (tempfile::TempDir, std::path::PathBuf) {
    config_file(&small_batches_text())
}

fn small_batches_text() -> String {
    include_str!("../../config/clockwatch.toml")
        .replace("batch_size = 1000", "batch_size = 20")
        .replace("poll_interval_ms = 1000", "poll_interval_ms = 100")
}

#[tokio::test]
async fn daemon_killed_at_random_moments_loses_and_doubles_nothing() {
    let (db, client, _config) = installed_host().await;
    let (_dir, config) = small_batches_config();
    let writer = Writer::start(db.url.clone());
    for _ in 0..5 * soak() {
        let mut daemon = daemon_process(&db.url, &config);
        let alive = rand::thread_rng().gen_range(100..600);
        tokio::time::sleep(Duration::from_millis(alive)).await;
        kill_hard(&mut daemon); // SIGKILL: no chance to finish the batch in hand
    }
    let mut daemon = daemon_process(&db.url, &config);
    let rounds = writer.finish().await;
    assert!(rounds > 10, "the writer kept writing ({rounds} rounds)");
    wait_drained(&client).await;
    kill_hard(&mut daemon);
    assert_exactly_once(&client).await;
}

/// A server of the test's own (it is restarted or crashed) with the example host schema,
/// Clockwatch installed and workspace 1 audited; the daemon reconnects within half a second.
async fn throwaway_host(
    cluster: &clockwatch::cluster::Cluster,
) -> (tokio_postgres::Client, clockwatch::Config) {
    let mut client = connect(&cluster.url()).await;
    client.batch_execute(HOST_SQL).await.unwrap();
    client.batch_execute(SEED_SQL).await.unwrap();
    let mut config = example_config();
    config.daemon.max_backoff_ms = 500;
    install(&mut client, &config).await;
    enable_all(&client, &config, "1").await;
    (client, config)
}

/// Stop (SIGSTOP) the one server process of `pg_stat_activity` matching `condition`; its pid.
async fn freeze_server_process(client: &tokio_postgres::Client, condition: &str) -> i32 {
    let sql = format!("select pid from pg_stat_activity where {condition}");
    let pid: i32 = client.query_one(&sql, &[]).await.unwrap().get(0);
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    pid
}

/// Wait until the daemon has noticed its connection die, reconnected and drained: a
/// Reconnecting notice, then Ready.
async fn reconnected(daemon: &mut Running, after: &str) {
    let mut saw_reconnect = false;
    loop {
        match tokio::time::timeout(Duration::from_secs(60), daemon.lifecycle.recv())
            .await
            .unwrap_or_else(|_| panic!("the daemon recovers from {after}"))
        {
            Some(Lifecycle::Reconnecting) => saw_reconnect = true,
            Some(Lifecycle::Ready) if saw_reconnect => return,
            Some(_) => {}
            None => panic!(
                "the daemon stopped after {after}: {:?}",
                daemon.task.is_finished()
            ),
        }
    }
}

// Multi-threaded: restarting the server blocks the test's thread (pg_ctl) while the daemon runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_restarted_fast_and_immediate_under_load() {
    let cluster = clockwatch::cluster::Cluster::start(true).expect("throwaway cluster");
    let url = cluster.url();
    let (_client, mut config) = throwaway_host(&cluster).await;
    config.daemon.poll_interval_ms = 100;

    let mut daemon = start_daemon(&config, &url);
    daemon.ready().await;
    let writer = Writer::start(url.clone());
    for mode in ["fast", "immediate"]
        .iter()
        .cycle()
        .take(2 * soak() as usize)
    {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cluster.restart(mode).unwrap();
        // The daemon notices, backs off, reconnects and says so.
        reconnected(&mut daemon, &format!("a {mode} restart")).await;
    }
    let rounds = writer.finish().await;
    assert!(rounds > 10, "the writer kept writing ({rounds} rounds)");
    let client = connect(&url).await;
    wait_drained(&client).await;
    assert!(
        !daemon.task.is_finished(),
        "the daemon keeps running through restarts"
    );
    daemon.stop().await;
    assert_exactly_once(&client).await;
}

/// The daemon commits without waiting for its WAL to reach disk (src/daemon.rs). A crash that
/// loses such a commit (the machine going down before the WAL writer wrote it out) undoes the
/// batch's staging deletes along with its events, so the changes are drained again, once each.
/// The WAL writer is stopped, so that the daemon's commit is still only in the server's memory,
/// and then killed: the server crash-restarts, as after a power cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_drained_batch_lost_in_a_crash_is_drained_again_once() {
    let cluster = clockwatch::cluster::Cluster::start(true).expect("throwaway cluster");
    let url = cluster.url();
    let (mut client, config) = throwaway_host(&cluster).await;
    // Autovacuum's commits would flush the daemon's WAL for it.
    for sql in [
        "alter system set autovacuum = off",
        "select pg_reload_conf()",
    ] {
        client.batch_execute(sql).await.unwrap();
    }
    let mut daemon = start_daemon(&config, &url);
    daemon.ready().await;

    let walwriter = freeze_server_process(&client, "backend_type = 'walwriter'").await;
    // The host commits synchronously: its own backend writes its WAL out.
    act(
        &mut client,
        Some("1"),
        "insert into app.tag (workspace_id, name) values (1, 'before the crash')",
    )
    .await;
    const RECORDED: &str =
        "select recorded_at::text from audit_log.events where target = 'before the crash'";
    eventually("the change is drained", Duration::from_secs(30), || async {
        !client.query(RECORDED, &[]).await.unwrap().is_empty()
    })
    .await;
    let first: String = client.query_one(RECORDED, &[]).await.unwrap().get(0);

    assert_eq!(unsafe { libc::kill(walwriter, libc::SIGKILL) }, 0);
    reconnected(&mut daemon, "the crash").await;
    let client = connect(&url).await;
    // Ready comes after the first drain of the new connection: the change is back in the log.
    let rows = client.query(RECORDED, &[]).await.unwrap();
    assert_eq!(rows.len(), 1, "exactly one event for the change");
    let again: String = rows[0].get(0);
    assert_ne!(
        again, first,
        "the daemon's commit survived the crash, so this test exercised nothing: something \
         flushed the WAL after it"
    );
    assert_eq!(staged(&client).await, 0);
    assert_eq!(
        count(&client, "select count(*) from audit_log.dead_letter").await,
        0
    );
    daemon.stop().await;
}

#[tokio::test]
async fn a_frozen_connection_is_dropped_and_replaced() {
    let (db, mut client, mut config) = installed_host().await;
    config.daemon.query_timeout_ms = 1000;
    config.daemon.poll_interval_ms = 100;
    let mut daemon = start_daemon(&config, &db.url);
    daemon.ready().await;
    // Freeze the daemon's server process: its socket stays open but nothing answers, like a
    // half-open connection or a hung server.
    let pid = freeze_server_process(
        &client,
        "datname = current_database() and application_name = 'clockwatch daemon'",
    )
    .await;
    act(
        &mut client,
        Some("1"),
        "insert into app.tag (workspace_id, name) values (1, 'while frozen')",
    )
    .await;
    let outcome = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match daemon.lifecycle.recv().await {
                Some(Lifecycle::Ready) => return,
                Some(Lifecycle::Reconnecting) => {}
                None => panic!("daemon stopped"),
            }
        }
    })
    .await;
    unsafe { libc::kill(pid, libc::SIGCONT) };
    outcome.expect("the frozen connection was detected and replaced");
    eventually(
        "the change made while frozen is recorded",
        Duration::from_secs(30),
        || async {
            count(
                &client,
                "select count(*) from audit_log.events where target = 'while frozen'",
            )
            .await
                == 1
        },
    )
    .await;
    daemon.stop().await;
}

#[tokio::test]
async fn a_long_outage_is_caught_up_in_order_with_bounded_memory() {
    let (db, client, _config) = installed_host().await;
    let changes = 25_000 * i64::from(soak());
    // The daemon is away while the host makes `changes` creations and as many updates.
    client
        .batch_execute(&format!(
            "insert into app.time_entry (id, workspace_id, user_id, description, start_at)
             select 2000000 + g, 1, 2, 'v1', now() from generate_series(1, {changes}) g;
             update app.time_entry set description = 'v2' where id > 2000000;"
        ))
        .await
        .unwrap();
    let peak_kb = drain_with_daemon_process(&db, &client, Duration::from_secs(900)).await;
    assert_eq!(
        count(&client, "select count(*) from audit_log.events").await,
        2 * changes
    );
    // In order per record: each entry's creation comes before its update.
    assert_eq!(
        count(
            &client,
            "select count(*) from audit_log.events c join audit_log.events u using (target_id)
             where c.action_code = 'time_entry.created' and u.action_code = 'time_entry.updated'
               and u.event_id < c.event_id",
        )
        .await,
        0
    );
    assert!(
        peak_kb < 200 * 1024,
        "peak RSS {peak_kb} kB while catching up {} changes",
        2 * changes
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_schema_changes_while_writing_never_fail_the_host_and_are_reported() {
    let (db, mut client, mut config) = installed_host().await;
    config.daemon.poll_interval_ms = 100;
    let mut daemon = start_daemon(&config, &db.url);
    daemon.ready().await;
    // The writer panics if any of its statements fails for a reason other than a lost connection.
    let writer = Writer::start(db.url.clone());
    for ddl in [
        "alter table app.time_entry add column note text default 'n'",
        "alter table app.time_entry rename column hourly_rate to rate",
        "alter table app.time_entry drop column cost_rate",
        "alter table app.time_entry alter column type type varchar(40)",
        "drop table app.tag cascade;
         create table app.tag (id bigint generated by default as identity primary key,
                               workspace_id bigint not null, name text not null)",
    ] {
        tokio::time::sleep(Duration::from_millis(150)).await;
        client.batch_execute(ddl).await.unwrap();
    }
    act(
        &mut client,
        Some("1"),
        "insert into app.tag (workspace_id, name) values (1, 'uncaptured')",
    )
    .await;

    // status names each mismatch and exits 2; the daemon keeps running.
    let status = cli(&db.url, &["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert_eq!(status.status.code(), Some(2), "{text}");
    for expected in [
        "PROBLEM: source app.time_entry (time_entries): fields.billable_rate: column \"hourly_rate\" not found in app.time_entry",
        "PROBLEM: source app.time_entry (time_entries): fields.cost_rate: column \"cost_rate\" not found in app.time_entry",
        "PROBLEM: source app.tag (tags): capture triggers missing or disabled on app.tag (table recreated?",
    ] {
        assert!(text.contains(expected), "{expected}\nin\n{text}");
    }

    // Put the columns back and reinstall: the recreated table is captured again.
    client
        .batch_execute(
            "alter table app.time_entry rename column rate to hourly_rate;
             alter table app.time_entry add column cost_rate numeric(12, 2);",
        )
        .await
        .unwrap();
    install(&mut client, &config).await;
    act(
        &mut client,
        Some("1"),
        "insert into app.tag (workspace_id, name) values (1, 'captured again')",
    )
    .await;

    let rounds = writer.finish().await;
    assert!(rounds > 10, "the writer kept writing ({rounds} rounds)");
    wait_drained(&client).await;
    assert!(
        !daemon.task.is_finished(),
        "schema changes never stop the daemon"
    );
    daemon.stop().await;
    assert_exactly_once(&client).await;
    let tags: Vec<String> = client
        .query(
            "select target from audit_log.events where category = 'tags'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(tags, ["captured again"]);
}

/// Failover: the primary stops under load, its asynchronous standby is promoted, and the daemon,
/// given both hosts with target_session_attrs=read-write, finds the new primary by itself. What
/// the standby had replayed is a prefix of the primary's history, host rows and staged changes
/// together, so on the new primary every committed change has exactly one event: a change the
/// standby never received is gone with its staged copy, and a batch drained on the old primary
/// but not replayed is drained again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failover_to_a_promoted_standby_loses_and_doubles_nothing() {
    let primary = clockwatch::cluster::Cluster::start(true).expect("primary");
    let (_client, mut config) = throwaway_host(&primary).await;
    config.daemon.poll_interval_ms = 100;
    let standby = primary.standby().expect("standby");
    let url = format!(
        "host=127.0.0.1,127.0.0.1 port={},{} user=postgres dbname=postgres target_session_attrs=read-write connect_timeout=2",
        primary.port(),
        standby.port()
    );
    let mut daemon = start_daemon(&config, &url);
    daemon.ready().await;
    let writer = Writer::start(url.clone());
    let replica = connect(&standby.url()).await;
    eventually(
        "the standby replays writes",
        Duration::from_secs(60),
        || async {
            count(
                &replica,
                "select count(*) from audit_log.events where target_id::bigint > 1000000",
            )
            .await
                > 20
        },
    )
    .await;

    primary.stop("immediate").unwrap();
    let before = count(
        &replica,
        "select count(*) from app.time_entry where id > 1000000",
    )
    .await;
    standby.promote().unwrap();
    reconnected(&mut daemon, "the failover").await;
    let new_primary = connect(&standby.url()).await;
    eventually(
        "writes reach the new primary",
        Duration::from_secs(60),
        || async {
            count(
                &new_primary,
                "select count(*) from app.time_entry where id > 1000000",
            )
            .await
                > before + 20
        },
    )
    .await;
    writer.finish().await;
    wait_drained(&new_primary).await;
    daemon.stop().await;
    assert_exactly_once(&new_primary).await;
}

/// A change whose row image cannot be read is kept in dead_letter with who made it, when and in
/// which workspace, so that it can still be replayed and credited to its author.
#[tokio::test]
async fn an_unreadable_change_keeps_its_author_time_and_workspace_in_dead_letter() {
    let (_db, mut client, config) = installed_host().await;
    client
        .batch_execute(
            "insert into audit_log.staging (op, txid, stmt_at, depth, actor, origin, workspace_id, shape, new_row)
             select 'I', 42, '2026-11-24 09:00Z', 1, chr(31) || '7', 'manual', '1', s.id, '(not a record'
             from audit_log.shape s where s.relid = 'app.tag'::regclass order by s.id limit 1",
        )
        .await
        .unwrap();
    drain(&mut client, &config).await;
    let kept = client
        .query_one(
            "select change ->> 'actor', change ->> 'workspace_id', change ->> 'origin',
                    (change ->> 'occurred_at')::timestamptz = '2026-11-24 09:00Z', change ->> 'category'
             from audit_log.dead_letter",
            &[],
        )
        .await
        .unwrap();
    let (actor, workspace, origin, at, category): (String, String, String, bool, String) = (
        kept.get(0),
        kept.get(1),
        kept.get(2),
        kept.get(3),
        kept.get(4),
    );
    assert_eq!(
        (
            actor.as_str(),
            workspace.as_str(),
            origin.as_str(),
            at,
            category.as_str()
        ),
        ("7", "1", "manual", true, "tags")
    );
}

#[tokio::test]
async fn with_the_log_apart_the_daemon_killed_at_random_moments_loses_and_doubles_nothing() {
    let host = TestDb::with_host().await;
    let log = TestDb::new().await;
    let (_dir, config) = config_file(&format!(
        "log_database_url = '{}'\n{}",
        log.url,
        small_batches_text()
    ));
    cli_with(&host.url, &config, &["install"]);
    cli_with(&host.url, &config, &["enable", "--workspace", "1"]);
    let (client, log_client) = (host.client().await, log.client().await);
    let writer = Writer::start(host.url.clone());
    for _ in 0..5 * soak() {
        let mut daemon = daemon_process(&host.url, &config);
        let alive = rand::thread_rng().gen_range(100..600);
        tokio::time::sleep(Duration::from_millis(alive)).await;
        kill_hard(&mut daemon);
    }
    let mut daemon = daemon_process(&host.url, &config);
    let rounds = writer.finish().await;
    assert!(rounds > 10, "the writer kept writing ({rounds} rounds)");
    wait_drained(&client).await;
    kill_hard(&mut daemon);
    assert_exactly_once_in(&client, &log_client).await;
}

/// Two servers of the test's own: the host (as [`throwaway_host`]) and the log's, Clockwatch
/// installed in both.
async fn throwaway_split() -> (
    clockwatch::cluster::Cluster,
    clockwatch::cluster::Cluster,
    clockwatch::Config,
) {
    let host = clockwatch::cluster::Cluster::start(true).expect("throwaway host cluster");
    let log = clockwatch::cluster::Cluster::start(true).expect("throwaway log cluster");
    let mut client = connect(&host.url()).await;
    client.batch_execute(HOST_SQL).await.unwrap();
    client.batch_execute(SEED_SQL).await.unwrap();
    let mut config = example_config();
    config.daemon.max_backoff_ms = 500;
    config.daemon.poll_interval_ms = 100;
    config.log_database_url = Some(log.url());
    let mut log_client = connect(&log.url()).await;
    clockwatch::install::install_log(&mut log_client, &config)
        .await
        .expect("install the log database");
    install(&mut client, &config).await;
    enable_all(&client, &config, "1").await;
    (host, log, config)
}

// Multi-threaded: restarting a server blocks the test's thread (pg_ctl) while the daemon runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_the_log_apart_either_server_restarted_immediately_loses_and_doubles_nothing() {
    let (host, log, config) = throwaway_split().await;
    let mut daemon = start_daemon(&config, &host.url());
    daemon.ready().await;
    let writer = Writer::start(host.url());
    for _ in 0..soak() {
        for (server, name) in [(&host, "the host"), (&log, "the log database")] {
            tokio::time::sleep(Duration::from_millis(300)).await;
            server.restart("immediate").unwrap();
            reconnected(&mut daemon, &format!("an immediate restart of {name}")).await;
        }
    }
    let rounds = writer.finish().await;
    assert!(rounds > 10, "the writer kept writing ({rounds} rounds)");
    let client = connect(&host.url()).await;
    wait_drained(&client).await;
    daemon.stop().await;
    assert_exactly_once_in(&client, &connect(&log.url()).await).await;
}

/// The log's server down for a minute: the host's writes go on (the writer stops the test on
/// any error of its own), staging holds what they change, and once the log is back every
/// change reaches it, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_the_log_database_down_for_a_minute_the_host_writes_on_and_nothing_is_lost() {
    let (host, log, config) = throwaway_split().await;
    let mut daemon = start_daemon(&config, &host.url());
    daemon.ready().await;
    let writer = Writer::start(host.url());
    tokio::time::sleep(Duration::from_millis(300)).await;
    log.stop("immediate").unwrap();
    let before = writer.rounds.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(60)).await;
    let during = writer.rounds.load(Ordering::SeqCst) - before;
    let client = connect(&host.url()).await;
    assert!(
        during > 100,
        "the host kept writing while the log was down ({during} rounds)"
    );
    assert!(
        staged(&client).await > 0,
        "staging holds the changes meanwhile"
    );
    log.start_again().unwrap();
    reconnected(&mut daemon, "the log database's outage").await;
    let rounds = writer.finish().await;
    assert!(rounds > 10, "the writer kept writing ({rounds} rounds)");
    wait_drained(&client).await;
    daemon.stop().await;
    assert_exactly_once_in(&client, &connect(&log.url()).await).await;
}

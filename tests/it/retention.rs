//! Retention: whole partitions dropped, the boundary partition trimmed, nothing inside the window
//! touched; partitions created ahead.

use crate::support::*;

/// Insert an event straight into the log at a given time (old events cannot be made by the
/// pipeline without waiting a year).
async fn old_event(client: &tokio_postgres::Client, id: i64, at: &str) {
    client
        .execute(
            "select audit_log.ensure_partition($1::text::timestamptz)",
            &[&at],
        )
        .await
        .unwrap();
    client
        .execute(
            "insert into audit_log.events (event_id, occurred_at, workspace_id, category, action_code,
                                           action, author, txid, source)
             values ($1, $2::text::timestamptz, '1', 'tags', 'tag.created', 'Created tag', 'System', 0, 'app.tag')",
            &[&id, &at],
        )
        .await
        .unwrap();
}

fn prune(db: &TestDb, dry_run: bool) -> String {
    let args: &[&str] = if dry_run {
        &["prune", "--dry-run"]
    } else {
        &["prune"]
    };
    let out = cli(&db.url, args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn prune_drops_expired_partitions_and_trims_the_boundary_one_only() {
    let (db, client, _config) = installed_host().await;
    // Two and a half years of history, relative to now, with retention 365 days.
    let mut expected_kept = 0;
    let history: [i32; 9] = [900, 800, 500, 400, 366, 364, 200, 30, 1];
    for (id, days) in (1_000_000..).zip(history) {
        let when: String = client
            .query_one("select (now() - make_interval(days => $1))::text", &[&days])
            .await
            .unwrap()
            .get(0);
        old_event(&client, id, &when).await;
        if days < 365 {
            expected_kept += 1;
        }
    }
    let partitions_before =
        count(&client, "select count(*) from audit_log.event_partitions()").await;

    let dry = prune(&db, true);
    assert!(
        dry.contains("would remove 5 events older than 365 days"),
        "{dry}"
    );
    assert_eq!(
        count(&client, "select count(*) from audit_log.events").await,
        9,
        "a dry run changes nothing"
    );

    let done = prune(&db, false);
    assert!(
        done.contains("removed 5 events older than 365 days"),
        "{done}"
    );
    assert!(done.contains("drop partition"), "{done}");
    assert_eq!(
        count(&client, "select count(*) from audit_log.events").await,
        expected_kept
    );
    assert_eq!(
        count(
            &client,
            "select count(*) from audit_log.events where occurred_at < now() - interval '365 days'"
        )
        .await,
        0
    );
    // Whole months before the cutoff are gone as partitions, not just emptied.
    let partitions_after =
        count(&client, "select count(*) from audit_log.event_partitions()").await;
    assert!(
        partitions_after < partitions_before,
        "{partitions_before} -> {partitions_after}"
    );
    assert_eq!(
        count(&client, "select count(*) from audit_log.event_partitions() where ends <= now() - interval '365 days'").await,
        0
    );
    // Pruning again finds nothing, and reports keep reading what is left.
    assert!(prune(&db, false).contains("removed 0 events"));
    assert_eq!(
        count(&client, "select count(*) from audit_log.report").await,
        expected_kept
    );
}

#[tokio::test]
async fn maintenance_creates_partitions_ahead_and_prunes_once_a_day() {
    let (_db, client, _config) = installed_host().await;
    let ahead = count(
        &client,
        "select count(*) from audit_log.event_partitions() where starts > now()",
    )
    .await;
    assert_eq!(
        ahead, 2,
        "next two months exist before any event needs them"
    );
    old_event(&client, 1, "2020-01-15 00:00Z").await;
    let removed: i64 = client
        .query_one("select audit_log.maintain()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(removed, 1);
    old_event(&client, 2, "2020-02-15 00:00Z").await;
    let again: i64 = client
        .query_one("select audit_log.maintain()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(again, 0, "the daily prune already ran");
    // A day later it is due again.
    let later: i64 = client
        .query_one(
            "select audit_log.maintain(now() + interval '25 hours')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(later, 1);
}

#[tokio::test]
async fn only_one_session_prunes_at_a_time() {
    let (db, client, _config) = installed_host().await;
    old_event(&client, 1, "2020-01-15 00:00Z").await;
    // Another daemon is pruning: it holds the prune lock in its transaction.
    let mut other = connect(&db.url).await;
    let holder = other.transaction().await.unwrap();
    holder
        .execute(
            "select from audit_log.job_lock where job = 'prune' for update",
            &[],
        )
        .await
        .unwrap();
    let rows = client
        .query("select * from audit_log.prune()", &[])
        .await
        .unwrap();
    assert!(rows.is_empty(), "a second pruner steps aside");
    assert_eq!(
        count(&client, "select count(*) from audit_log.events").await,
        1
    );
    holder.rollback().await.unwrap();
    let rows = client
        .query("select * from audit_log.prune()", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        count(&client, "select count(*) from audit_log.events").await,
        0
    );
}

/// Rows of event_tally, and of author_tally, that disagree with a count of the events themselves.
async fn tally_mismatches(client: &tokio_postgres::Client) -> i64 {
    let authors = count(
        client,
        "select count(*)
         from (select workspace_id, date_trunc('month', occurred_at at time zone 'UTC')::date as month,
                      coalesce(author_id, 'system') as author_id, count(*) as events
               from audit_log.events group by 1, 2, 3) c
         full join (select * from audit_log.author_tally where events <> 0) t
              on t.workspace_id = c.workspace_id and t.month = c.month and t.author_id = c.author_id
         where c.events is distinct from t.events",
    )
    .await;
    authors + count(
        client,
        "select count(*)
         from (select workspace_id, date_trunc('month', occurred_at at time zone 'UTC')::date as month,
                      count(*) as events
               from audit_log.events group by 1, 2) c
         full join (select * from audit_log.event_tally where events <> 0) t
              on t.workspace_id = c.workspace_id and t.month = c.month
         where c.events is distinct from t.events",
    )
    .await
}

#[tokio::test]
async fn prune_counts_from_a_tally_that_every_writer_keeps() {
    let (db, mut client, config) = installed_host().await;
    // Events from the pipeline (append_events), straight inserts, an update moving an event to
    // another month, a delete: the tally follows all of them.
    act(
        &mut client,
        Some("1"),
        "insert into app.tag (workspace_id, name) values (1, 'a'), (1, 'b'), (1, 'c');",
    )
    .await;
    assert_eq!(drain(&mut client, &config).await.events, 3);
    for (id, days) in (3_000_000..).zip([400, 400, 380, 364, 3]) {
        let when: String = client
            .query_one("select (now() - make_interval(days => $1))::text", &[&days])
            .await
            .unwrap()
            .get(0);
        old_event(&client, id, &when).await;
    }
    client
        .batch_execute(
            "select audit_log.ensure_partition(now() - interval '43 days');
             update audit_log.events set occurred_at = occurred_at - interval '40 days'
             where event_id = 3000004;
             delete from audit_log.events where event_id = 3000001;",
        )
        .await
        .unwrap();
    assert_eq!(
        count(
            &client,
            "select sum(events)::bigint from audit_log.event_tally"
        )
        .await,
        7
    );
    assert_eq!(tally_mismatches(&client).await, 0);

    // 400 and 380 days ago (one of the 400 was deleted): two expired events, whichever
    // partitions they fall in, and the tally still agrees once they are gone.
    let done = prune(&db, false);
    assert!(
        done.contains("removed 2 events older than 365 days"),
        "{done}"
    );
    assert_eq!(tally_mismatches(&client).await, 0);
    assert_eq!(
        count(
            &client,
            "select sum(events)::bigint from audit_log.event_tally"
        )
        .await,
        5
    );
}

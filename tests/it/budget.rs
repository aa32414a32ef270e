//! What the host can store, the daemon can drain: batches bounded by bytes as well as count, a
//! change too large to log set aside whole, and a batch PostgreSQL refuses for its data split
//! until the change it cannot take is alone and set aside, the rest logged.

use crate::support::*;
use std::time::Duration;

/// The example config with one setting of `[daemon]` replaced.
fn config_with(key: &str, value: &str) -> String {
    let text = include_str!("../../config/clockwatch.toml");
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{key} =")))
        .unwrap_or_else(|| panic!("{key} in the example config"));
    text.replace(line, &format!("{key} = {value}"))
}

#[tokio::test]
async fn values_of_600_kb_drain_in_batches_of_bounded_bytes_and_memory() {
    let (db, client, _config) = installed_host().await;
    // The application's role writes 200 entries of 600 KB: 120 MB of images, which one batch of
    // 1,000 changes would take whole.
    let mut app = app_role(&db, &client).await;
    act(
        &mut app,
        Some("2"),
        "insert into app.time_entry (workspace_id, user_id, description, start_at)
         select 1, 2, g || repeat('x', 600000), now() from generate_series(1, 200) g",
    )
    .await;
    let peak_kb = drain_with_daemon_process(&db, &client, Duration::from_secs(300)).await;
    assert_eq!(
        count(
            &client,
            "select count(*) from audit_log.report where length(row_data ->> 'description') > 600000"
        )
        .await,
        200
    );
    assert_eq!(
        count(&client, "select count(*) from audit_log.dead_letter").await,
        0
    );
    assert!(peak_kb < 200 * 1024, "peak RSS {peak_kb} kB");
}

#[tokio::test]
async fn a_change_too_large_to_log_is_set_aside_whole_and_the_rest_are_logged() {
    let (_db, mut client, _config) = installed_host().await;
    let config =
        clockwatch::Config::from_toml(&config_with("max_change_bytes", "1048576")).unwrap();
    act(
        &mut client,
        Some("2"),
        "insert into app.tag (workspace_id, name) values (1, 'before');
         insert into app.tag (workspace_id, name) values (1, 'huge' || repeat('y', 2000000));
         insert into app.tag (workspace_id, name) values (1, 'after');",
    )
    .await;
    let drained = drain(&mut client, &config).await;
    assert_eq!((drained.events, drained.dead_lettered), (2, 1));
    let (reason, kept) = the_dead_letter(&client).await;
    assert!(
        reason.contains("more than daemon.max_change_bytes"),
        "{reason}"
    );
    assert!(
        kept.contains(&"y".repeat(2_000_000)),
        "the image is kept whole"
    );
    assert_eq!(
        count(
            &client,
            "select count(*) from audit_log.report where target in ('before', 'after')"
        )
        .await,
        2
    );
}

#[tokio::test]
async fn a_batch_refused_for_one_change_is_split_and_only_that_change_set_aside() {
    let (_db, mut client, config) = json_docs().await;
    act(
        &mut client,
        Some("u"),
        "insert into h.doc select g, 1, '{}' from generate_series(1, 5) g",
    )
    .await;
    // json keeps a \u0000 escape that jsonb refuses. A row holding one is logged (the event keeps
    // the row's text), and the report shows that value as a string.
    act(
        &mut client,
        Some("u"),
        r#"insert into h.doc values (6, 1, '{"a": "\u0000"}')"#,
    )
    .await;
    // An update to such a value cannot be written: the changed columns are jsonb.
    for (id, body) in [
        (1, r#"{"a": 1}"#),
        (2, r#"{"a": 2}"#),
        (3, r#"{"a": "\u0000"}"#),
        (4, r#"{"a": 4}"#),
        (5, r#"{"a": 5}"#),
    ] {
        act(
            &mut client,
            Some("u"),
            &format!("update h.doc set body = '{body}' where id = {id}"),
        )
        .await;
    }
    let drained = drain(&mut client, &config).await;
    assert_eq!((drained.events, drained.dead_lettered), (10, 1));
    let body: String = client
        .query_one(
            "select row_data ->> 'body' from audit_log.report where target_id = '6'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(body, r#"{"a": "\u0000"}"#);
    let (reason, kept) = the_dead_letter(&client).await;
    assert!(reason.contains("Unicode"), "{reason}");
    assert!(kept.contains(r#"\\u0000"#), "{kept}");
    assert_eq!(staged(&client).await, 0);
}

/// One change jsonb refuses in the middle of a 300-row UPDATE: the refused batch is split down to
/// that change, which is set aside alone, and the other 299 changes of the statement are logged,
/// each with its own row's values.
#[tokio::test]
async fn a_refused_change_inside_a_large_statement_is_set_aside_alone() {
    let (_db, mut client, config) = json_docs().await;
    act(
        &mut client,
        Some("u"),
        "insert into h.doc select g, 1, json_build_object('was', g) from generate_series(1, 300) g",
    )
    .await;
    act(
        &mut client,
        Some("u"),
        r#"update h.doc set body = case when id = 150 then '{"a": "\u0000"}'::json
                                       else json_build_object('a', id) end"#,
    )
    .await;
    let drained = drain(&mut client, &config).await;
    assert_eq!((drained.events, drained.dead_lettered), (599, 1));
    let (reason, kept) = the_dead_letter(&client).await;
    assert!(reason.contains("Unicode"), "{reason}");
    assert!(kept.starts_with("(150,1,"), "{kept}");
    // Every other row's update is logged once, its values before and after its own.
    assert_eq!(
        count(
            &client,
            "select count(distinct target_id) from audit_log.report
             where action_code = 'tag.updated'
               and (previous_value -> 'body' ->> 'was')::int = target_id::int
               and (new_value -> 'body' ->> 'a')::int = target_id::int"
        )
        .await,
        299
    );
    assert_eq!(staged(&client).await, 0);
}

/// A host table of json documents, audited in workspace 1.
async fn json_docs() -> (TestDb, tokio_postgres::Client, clockwatch::Config) {
    audited_tables(
        "create schema h; create table h.doc (id int primary key, ws int, body json);",
        "[[source]]\ncategory = 'tags'\ntable = 'h.doc'\nworkspace_column = 'ws'\n",
        "1",
    )
    .await
}

/// The one change set aside in dead_letter: why, and its new image as staged.
async fn the_dead_letter(client: &tokio_postgres::Client) -> (String, String) {
    client
        .query_one("select reason, new_row from audit_log.dead_letter", &[])
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap()
}

//! Staged images are records' text without names: each is read with the columns its table had
//! when it was captured, whatever happened to the table before the daemon drained it.

use crate::support::*;
use serde_json::{json, Value};

/// The row_data of the time entry with `id`, event by event, oldest first.
async fn rows_of(client: &tokio_postgres::Client, id: i64) -> Vec<Value> {
    client
        .query(
            "select row_data from audit_log.report
             where category = 'time_entries' and target_id = $1 order by event_id",
            &[&id.to_string()],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn entry(client: &mut tokio_postgres::Client, id: i64, description: &str) {
    act(
        client,
        Some("1"),
        &format!(
            "insert into app.time_entry (id, workspace_id, user_id, description, start_at, hourly_rate)
             values ({id}, 1, 1, '{description}', '2026-11-02 09:00:00+00', 50)"
        ),
    )
    .await;
}

/// Changes captured before and after each kind of column change, drained together afterwards,
/// keep their own columns: nothing shifts into a neighbour's place or takes another name.
#[tokio::test]
async fn a_column_change_between_capture_and_drain_shifts_and_mislabels_nothing() {
    let (_db, mut client, config) = installed_host().await;
    entry(&mut client, 501, "before any change").await;
    client
        .batch_execute("alter table app.time_entry add column note text default 'n'")
        .await
        .unwrap();
    entry(&mut client, 502, "after add").await;
    client
        .batch_execute("alter table app.time_entry drop column cost_rate")
        .await
        .unwrap();
    entry(&mut client, 503, "after drop").await;
    client
        .batch_execute("alter table app.time_entry rename column description to title")
        .await
        .unwrap();
    act(
        &mut client,
        Some("1"),
        "insert into app.time_entry (id, workspace_id, user_id, title, start_at, hourly_rate)
         values (504, 1, 1, 'after rename', '2026-11-02 09:00:00+00', 50)",
    )
    .await;
    client
        .batch_execute("alter table app.time_entry alter column hourly_rate type text")
        .await
        .unwrap();
    act(
        &mut client,
        Some("1"),
        "update app.time_entry set hourly_rate = 'fifty' where id = 504",
    )
    .await;
    // Drop one column and add another: the column count is what it was.
    client
        .batch_execute(
            "alter table app.time_entry drop column note;
             alter table app.time_entry add column memo text default 'm'",
        )
        .await
        .unwrap();
    act(
        &mut client,
        Some("1"),
        "insert into app.time_entry (id, workspace_id, user_id, title, start_at)
         values (505, 1, 1, 'after drop and add', '2026-11-02 09:00:00+00')",
    )
    .await;

    let drained = drain(&mut client, &config).await;
    assert_eq!((drained.events, drained.dead_lettered), (6, 0));

    let first = &rows_of(&client, 501).await[0];
    assert_eq!(first["description"], json!("before any change"));
    assert_eq!(first["hourly_rate"].to_string(), "50.00");
    assert!(first.get("note").is_none() && first.get("cost_rate").is_some());

    let added = &rows_of(&client, 502).await[0];
    assert_eq!(added["note"], json!("n"));
    assert_eq!(added["description"], json!("after add"));

    let dropped = &rows_of(&client, 503).await[0];
    assert!(dropped.get("cost_rate").is_none(), "{dropped}");
    assert_eq!(dropped["note"], json!("n"));
    assert_eq!(dropped["hourly_rate"].to_string(), "50.00");

    let renamed = rows_of(&client, 504).await;
    assert_eq!(renamed[0]["title"], json!("after rename"));
    assert!(renamed[0].get("description").is_none());
    assert_eq!(
        renamed[0]["hourly_rate"].to_string(),
        "50.00",
        "a number then"
    );
    assert_eq!(
        renamed[1]["hourly_rate"],
        json!("fifty"),
        "text since the retype"
    );
    let changed: Value = client
        .query_one(
            "select new_value from audit_log.report where target_id = '504' and action_code = 'time_entry.updated'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(changed, json!({"hourly_rate": "fifty"}));

    let swapped = &rows_of(&client, 505).await[0];
    assert_eq!(swapped["memo"], json!("m"));
    assert!(swapped.get("note").is_none(), "{swapped}");
    assert_eq!(swapped["title"], json!("after drop and add"));
}

/// While a table's columns differ from those its capture function was compiled for, changes are
/// still captured in full (the slower path) and `status` says to run install; install compiles
/// the function again.
#[tokio::test]
async fn status_asks_for_install_after_a_column_change_and_install_clears_it() {
    let (db, mut client, config) = installed_host().await;
    client
        .batch_execute("alter table app.tag add column color text")
        .await
        .unwrap();
    act(
        &mut client,
        Some("1"),
        "insert into app.tag (workspace_id, name, color) values (1, 'blue', 'blue')",
    )
    .await;
    let drained = drain(&mut client, &config).await;
    assert_eq!(drained.events, 1);
    let status = cli(&db.url, &["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("source app.tag (tags): the columns of app.tag changed since install"),
        "{text}"
    );
    install(&mut client, &config).await;
    let status = cli(&db.url, &["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(!text.contains("changed since install"), "{text}");
    let color: Value = client
        .query_one("select row_data -> 'color' from audit_log.report", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(color, json!("blue"));
}

/// A role that owns a type can define a cast from it to json; capture never calls it, so it
/// never runs with the rights of Clockwatch's owner.
#[tokio::test]
async fn a_cast_the_application_defines_never_runs_as_the_owner() {
    let (db, mut admin, config) = installed_host().await;
    let role = unique_role("app_owner");
    admin
        .batch_execute(&format!(
            "create role {role} login;
             grant usage, create on schema app to {role};
             alter table app.tag owner to {role};
             create table app.seen (by_role text);
             grant insert on app.seen to public;"
        ))
        .await
        .unwrap();
    let mut app = connect(&db.url_as(&role)).await;
    app.batch_execute(
        "create type app.mood as enum ('ok', 'meh');
         create function app.mood_json(app.mood) returns json language plpgsql as $$
         begin
             insert into app.seen values (current_user);
             return to_json('spied'::text);
         end $$;
         create cast (app.mood as json) with function app.mood_json(app.mood);
         alter table app.tag add column mood app.mood default 'meh';",
    )
    .await
    .unwrap();
    act(
        &mut app,
        Some("1"),
        "insert into app.tag (workspace_id, name) values (1, 'moody')",
    )
    .await;
    drain(&mut admin, &config).await;
    assert_eq!(
        count(&admin, "select count(*) from app.seen").await,
        0,
        "the cast ran"
    );
    let mood: Value = admin
        .query_one("select row_data -> 'mood' from audit_log.report", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(mood, json!("meh"));
}

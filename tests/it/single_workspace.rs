//! A single-workspace application: its tables have no workspace column, and the config's
//! top-level `workspace` says which workspace every row belongs to.

use crate::support::*;

/// A tracker with one workspace and no workspace column anywhere.
const SCHEMA: &str = "
create schema solo;
create table solo.users (id int primary key, username text not null, alias text);
create table solo.timesheet (
    id          bigserial primary key,
    user_id     int not null references solo.users,
    description text,
    begin_at    timestamptz not null
);
insert into solo.users values (1, 'susan', 'Susan Admin'), (2, 'tony', null);
";

const CONFIG: &str = r#"
workspace = "main"

[[source]]
category = "users"
table = "solo.users"
name_column = "alias"

[[source]]
category = "time_entries"
table = "solo.timesheet"
[source.fields]
user = "user_id"
description = "description"
start = "begin_at"
"#;

#[tokio::test]
async fn a_single_workspace_application_maps_with_config_alone() {
    let db = TestDb::new().await;
    let mut client = db.client().await;
    client.batch_execute(SCHEMA).await.unwrap();
    let (_dir, config) = config_file(CONFIG);
    cli_with(&db.url, &config, &["install"]);
    // Only the categories the config has a source for.
    assert_eq!(
        cli_with(&db.url, &config, &["enable", "--workspace", "main"]),
        "workspace main: auditing time_entries, users\n"
    );
    act(
        &mut client,
        Some("1"),
        "insert into solo.timesheet (user_id, description, begin_at) values (2, 'Front desk', '2026-11-24 08:00Z');
         update solo.timesheet set description = 'Front desk shift';",
    )
    .await;
    act(
        &mut client,
        Some("1"),
        "update solo.users set alias = 'Tony T' where id = 2",
    )
    .await;
    let cfg = clockwatch::Config::from_toml(CONFIG).unwrap();
    drain(&mut client, &cfg).await;
    let events: Vec<(String, String, String)> = client
        .query(
            "select workspace_id, action_code, author from audit_log.events order by event_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let expected = [
        ("main", "time_entry.created", "Susan Admin"),
        ("main", "time_entry.updated", "Susan Admin"),
        ("main", "user.profile_updated", "Susan Admin"),
    ];
    assert_eq!(
        events,
        expected.map(|(w, a, b)| (w.to_string(), a.to_string(), b.to_string()))
    );
    let (from, to) = event_days(&client, "UTC").await;
    let report = cli_with(
        &db.url,
        &config,
        &[
            "report",
            "--workspace",
            "main",
            "--from",
            &from,
            "--to",
            &to,
        ],
    );
    assert!(report.contains("Front desk shift"));

    // Turned off, the workspace's changes are no longer staged: the test folded into the capture
    // function follows enable() and disable() like any other.
    cli_with(&db.url, &config, &["disable", "--workspace", "main"]);
    act(
        &mut client,
        Some("1"),
        "update solo.timesheet set description = 'x'",
    )
    .await;
    assert_eq!(staged(&client).await, 0);
}

#[test]
fn a_source_without_a_workspace_is_refused_naming_it_and_both_ways_out() {
    let err = clockwatch::Config::from_toml(&CONFIG.replace("workspace = \"main\"", ""))
        .unwrap_err()
        .to_string();
    assert!(err.contains("source solo.users (users)"), "{err}");
    assert!(
        err.contains("workspace_column = ") && err.contains("workspace = \"ID\""),
        "{err}"
    );
    let err =
        clockwatch::Config::from_toml(&CONFIG.replace("workspace = \"main\"", "workspace = \"\""))
            .unwrap_err()
            .to_string();
    assert!(err.contains("workspace: empty"), "{err}");
}

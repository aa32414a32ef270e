//! A schema modelled on Kimai 2, one of the most used self-hosted time trackers, mapped with
//! config alone: one workspace (no workspace column anywhere), tags in a link table, boolean
//! `visible` flags, users whose display name may be null, and times stored as `timestamp
//! without time zone` in UTC. A scripted day on it, each event checked as a reader expects it.

use crate::support::*;

const SCHEMA: &str = "
create schema kimai;
create table kimai.kimai2_users (
    id       serial primary key,
    username varchar(180) not null,
    alias    varchar(60)
);
create table kimai.kimai2_customers (id serial primary key, name varchar(150) not null, visible boolean not null default true);
create table kimai.kimai2_projects (
    id          serial primary key,
    customer_id int not null references kimai.kimai2_customers,
    name        varchar(150) not null,
    visible     boolean not null default true
);
create table kimai.kimai2_tags (id serial primary key, name varchar(100) not null);
create table kimai.kimai2_timesheet (
    id          serial primary key,
    \"user\"    int not null references kimai.kimai2_users,
    project_id  int not null references kimai.kimai2_projects,
    start_time  timestamp not null,
    end_time    timestamp,
    duration    int,
    description text,
    billable    boolean not null default true,
    modified_at timestamp
);
create table kimai.kimai2_timesheet_tags (
    timesheet_id int not null references kimai.kimai2_timesheet on delete cascade,
    tag_id       int not null references kimai.kimai2_tags on delete cascade,
    primary key (timesheet_id, tag_id)
);
insert into kimai.kimai2_users (id, username, alias) values (1, 'susan', 'Susan Admin'), (2, 'tony', null);
insert into kimai.kimai2_customers (id, name) values (1, 'ACME');
insert into kimai.kimai2_projects (id, customer_id, name) values (1, 1, 'Website'), (2, 1, 'Retired');
insert into kimai.kimai2_tags (id, name) values (1, 'urgent'), (2, 'billable-review'), (3, 'onsite');
";

const CONFIG: &str = r#"
workspace = "1"
timezone = "Europe/Berlin"
naive_timestamps = "UTC"

[[source]]
category = "users"
table = "kimai.kimai2_users"
name_column = ["alias", "username"]

[[source]]
category = "clients"
table = "kimai.kimai2_customers"
name_column = "name"
soft_delete_column = "visible"
soft_delete_inverted = true

[[source]]
category = "projects"
table = "kimai.kimai2_projects"
name_column = "name"
soft_delete_column = "visible"
soft_delete_inverted = true
[source.fields]
client = "customer_id"

[[source]]
category = "tags"
table = "kimai.kimai2_tags"
name_column = "name"

[[source]]
category = "time_entries"
table = "kimai.kimai2_timesheet"
name_column = "description"
ignore_columns = ["modified_at"]
[source.fields]
user = "user"
project = "project_id"
description = "description"
start = "start_time"
end = "end_time"
duration = "duration"
billable = "billable"
tags = "kimai.kimai2_timesheet_tags.tag_id"
"#;

/// (action, author, target, tags detail, previous_value, new_value) of every event, oldest first.
async fn events(client: &tokio_postgres::Client) -> Vec<[String; 6]> {
    client
        .query(
            "select action, author, coalesce(target, '#' || target_id), coalesce(tags, ''),
                    coalesce(previous_value::text, ''), coalesce(new_value::text, '')
             from audit_log.report order by event_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| [0, 1, 2, 3, 4, 5].map(|i| r.get::<_, String>(i)))
        .collect()
}

#[tokio::test]
async fn a_kimai_schema_maps_with_config_alone_and_its_day_reads_as_expected() {
    let db = TestDb::new().await;
    let mut client = db.client().await;
    client.batch_execute(SCHEMA).await.unwrap();
    let (_dir, path) = config_file(CONFIG);
    let run = |args: &[&str]| cli_with(&db.url, &path, args);
    run(&["install"]);
    run(&["enable", "--workspace", "1"]);
    let config = clockwatch::Config::from_toml(CONFIG).unwrap();

    // 09:00 UTC: Tony, who has no alias, starts an entry with two tags, in one transaction as
    // the application saves it.
    act(
        &mut client,
        Some("2"),
        "insert into kimai.kimai2_timesheet (id, \"user\", project_id, start_time, description)
             values (10, 2, 1, '2026-11-24 09:00:00', 'Landing page');
         insert into kimai.kimai2_timesheet_tags values (10, 1), (10, 2);",
    )
    .await;
    // He stops it, renames it and swaps a tag: entry columns and link rows in one transaction.
    act(
        &mut client,
        Some("2"),
        "update kimai.kimai2_timesheet set end_time = '2026-11-24 10:45:00', duration = 6300,
             description = 'Landing page copy', modified_at = now() where id = 10;
         delete from kimai.kimai2_timesheet_tags where timesheet_id = 10 and tag_id = 2;
         insert into kimai.kimai2_timesheet_tags values (10, 3);",
    )
    .await;
    // Susan removes a tag and moves the entry to another project.
    act(
        &mut client,
        Some("1"),
        "delete from kimai.kimai2_timesheet_tags where timesheet_id = 10 and tag_id = 1;
         update kimai.kimai2_timesheet set project_id = 2 where id = 10;",
    )
    .await;
    // Only the ignored column: nothing to log, tags or not.
    act(
        &mut client,
        Some("1"),
        "update kimai.kimai2_timesheet set modified_at = now() + interval '1 minute' where id = 10",
    )
    .await;
    // Susan hides a project (Kimai's way of deleting one).
    act(
        &mut client,
        Some("1"),
        "update kimai.kimai2_projects set visible = false where id = 2",
    )
    .await;
    // A second entry, deleted with its tags by a foreign-key cascade: one event, no tag noise.
    act(
        &mut client,
        Some("2"),
        "insert into kimai.kimai2_timesheet (id, \"user\", project_id, start_time, description)
             values (11, 2, 1, '2026-11-24 11:00:00', 'Oops');
         insert into kimai.kimai2_timesheet_tags values (11, 1);",
    )
    .await;
    act(
        &mut client,
        Some("2"),
        "delete from kimai.kimai2_timesheet where id = 11",
    )
    .await;
    // A script with an actor the users table does not have.
    act(
        &mut client,
        Some("99"),
        "insert into kimai.kimai2_tags (id, name) values (4, 'imported')",
    )
    .await;
    drain(&mut client, &config).await;

    let s = |v: &str| v.to_string();
    assert_eq!(
        events(&client).await,
        vec![
            [
                s("Created time entry"),
                s("tony"),
                s("Landing page"),
                s("billable-review, urgent"),
                s(""),
                s("")
            ],
            [
                s("Updated time entry"),
                s("tony"),
                s("Landing page copy"),
                s("onsite, urgent"),
                s(
                    r#"{"tags": ["billable-review", "urgent"], "duration": null, "end_time": null, "description": "Landing page"}"#
                ),
                s(
                    r#"{"tags": ["onsite", "urgent"], "duration": 6300, "end_time": "2026-11-24T10:45:00", "description": "Landing page copy"}"#
                ),
            ],
            [
                s("Updated time entry"),
                s("Susan Admin"),
                s("Landing page copy"),
                s("onsite"),
                s(r#"{"tags": ["onsite", "urgent"], "project_id": 1}"#),
                s(r#"{"tags": ["onsite"], "project_id": 2}"#),
            ],
            [
                s("Deleted project"),
                s("Susan Admin"),
                s("Retired"),
                s(""),
                s(r#"{"visible": true}"#),
                s(r#"{"visible": false}"#)
            ],
            [
                s("Created time entry"),
                s("tony"),
                s("Oops"),
                s("urgent"),
                s(""),
                s("")
            ],
            [
                s("Deleted time entry"),
                s("tony"),
                s("Oops"),
                s(""),
                s(""),
                s("")
            ],
            [
                s("Created tag"),
                s("#99"),
                s("imported"),
                s(""),
                s(""),
                s("")
            ],
        ]
    );

    // The changes were made now (their entries say the 24th): reports cover the days they were
    // made on, in the config's zone.
    let (from, to) = event_days(&client, "Europe/Berlin").await;
    let day = ["--from", from.as_str(), "--to", to.as_str()];

    // Naive UTC times are shown in the config's zone, in the details and in the changes alike;
    // the duration column reads as the Duration detail does.
    let report = run(&[&["report", "--workspace", "1", "--details"][..], &day].concat());
    assert!(report.starts_with("Times in Europe/Berlin\n"), "{report}");
    assert!(report.contains("    Start time: 10:00:00\n"), "{report}");
    assert!(report.contains("    End time: 11:45:00\n"), "{report}");
    assert!(report.contains("    Duration: 01:45:00\n"), "{report}");
    assert!(
        report.contains("    Changed: duration: (empty) -> 01:45:00\n"),
        "{report}"
    );
    assert!(
        report.contains("    Changed: end_time: (empty) -> 2026-11-24 11:45:00\n"),
        "{report}"
    );
    assert!(
        report.contains("    Changed: tags: billable-review, urgent -> onsite, urgent\n"),
        "{report}"
    );
    assert!(report.contains("    Tags: onsite, urgent\n"), "{report}");
    // Ids of mapped fields read as names, flags as Yes/No, in the details and the changes.
    assert!(
        report.contains("    Changed: project_id: Website -> Retired\n"),
        "{report}"
    );
    assert!(report.contains("    Billable: Yes\n"), "{report}");

    // Any author id in the log filters, named or not, as "99" or "#99"; the CLI and
    // events_between read the same day and the same authors.
    let by_id = run(&[&["report", "--workspace", "1", "--author", "99"][..], &day].concat());
    assert!(by_id.contains("Created tag"), "{by_id}");
    assert_eq!(by_id.lines().count(), 2, "{by_id}");
    let by_name = run(&[
        &["report", "--workspace", "1", "--author", "tony"][..],
        &day,
    ]
    .concat());
    assert_eq!(by_name.lines().count(), 5, "{by_name}");
    let cli_today = run(&[
        &[
            "report",
            "--workspace",
            "1",
            "--author",
            "tony",
            "--author",
            "#99",
        ][..],
        &day,
    ]
    .concat());
    let sql_today = count(
        &client,
        &format!(
            "select count(*) from audit_log.events_between('1', '{from}', '{to}',
                 p_authors => array['Tony', '#99'], p_timezone => 'Europe/Berlin')"
        ),
    )
    .await;
    assert_eq!(sql_today, 5);
    assert_eq!(
        cli_today.lines().count() as i64,
        sql_today + 1,
        "{cli_today}"
    );
    let csv = run(&[&["export", "--workspace", "1"][..], &day].concat());
    assert!(csv.starts_with("Time (Europe/Berlin),"), "{csv}");
}

/// The Kimai schema installed and enabled through the library, with the config it was given.
async fn installed(batch_size: i64) -> (TestDb, tokio_postgres::Client, clockwatch::Config) {
    let db = TestDb::new().await;
    let mut client = db.client().await;
    client.batch_execute(SCHEMA).await.unwrap();
    let mut config = clockwatch::Config::from_toml(CONFIG).unwrap();
    config.daemon.batch_size = batch_size;
    install(&mut client, &config).await;
    enable_all(&client, &config, "1").await;
    (db, client, config)
}

#[tokio::test]
async fn a_transaction_cut_by_a_full_batch_is_still_one_event() {
    let (_db, mut client, config) = installed(2).await;
    act(
        &mut client,
        Some("1"),
        "insert into kimai.kimai2_timesheet (id, \"user\", project_id, start_time, description)
             values (10, 1, 1, '2026-11-24 09:00:00', 'Review')",
    )
    .await;
    drain(&mut client, &config).await;
    // Three staged changes in one transaction; a batch takes two.
    act(
        &mut client,
        Some("1"),
        "update kimai.kimai2_timesheet set description = 'Review notes' where id = 10;
         insert into kimai.kimai2_timesheet_tags values (10, 1);
         insert into kimai.kimai2_timesheet_tags values (10, 3);",
    )
    .await;
    let report = drain(&mut client, &config).await;
    assert_eq!((report.staged, report.events), (3, 1), "{report:?}");
    let changes: Vec<String> = column(
        &client,
        "select new_value::text from audit_log.events where action_code = 'time_entry.updated'",
    )
    .await;
    assert_eq!(
        changes,
        [r#"{"tags": ["onsite", "urgent"], "description": "Review notes"}"#]
    );
}

#[tokio::test]
async fn a_link_table_truncated_or_changed_under_capture_never_fails_the_host() {
    let (_db, mut client, config) = installed(1000).await;
    act(
        &mut client,
        Some("1"),
        "insert into kimai.kimai2_timesheet (id, \"user\", project_id, start_time, description)
             values (10, 1, 1, '2026-11-24 09:00:00', 'A'), (11, 1, 1, '2026-11-24 10:00:00', 'B');
         insert into kimai.kimai2_timesheet_tags values (10, 1), (10, 2), (11, 3);",
    )
    .await;
    drain(&mut client, &config).await;
    // TRUNCATE: each entry is logged as losing its tags.
    act(
        &mut client,
        Some("1"),
        "truncate kimai.kimai2_timesheet_tags",
    )
    .await;
    drain(&mut client, &config).await;
    let lost: Vec<String> = column(
        &client,
        "select target || ': ' || previous_value::text || ' -> ' || new_value::text
         from audit_log.events where action_code = 'time_entry.updated' order by target",
    )
    .await;
    assert_eq!(
        lost,
        [
            r#"A: {"tags": ["billable-review", "urgent"]} -> {"tags": []}"#,
            r#"B: {"tags": ["onsite"]} -> {"tags": []}"#,
        ]
    );
    // The tag column renamed under the installed triggers: the host's write goes through, and
    // the change that could not be read is kept in dead_letter with why, never dropped unseen.
    client
        .batch_execute("alter table kimai.kimai2_timesheet_tags rename column tag_id to label_id")
        .await
        .unwrap();
    act(
        &mut client,
        Some("1"),
        "insert into kimai.kimai2_timesheet_tags values (10, 3)",
    )
    .await;
    assert_eq!(
        count(&client, "select count(*) from kimai.kimai2_timesheet_tags").await,
        1
    );
    drain(&mut client, &config).await;
    let kept: Vec<String> = column(&client, "select change::text from audit_log.dead_letter").await;
    assert_eq!(kept.len(), 1);
    assert!(kept[0].contains("tags not captured"), "{kept:?}");
}

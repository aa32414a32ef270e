//! Configuration that fits a real application's schema without changing it: rows shared by every
//! workspace, a filter on what counts as a record, durations counted in hours, days without a
//! time, translated names and names kept in another table.

use crate::support::*;

const SCHEMA: &str = r#"
create schema fit;
create table fit.person (id int primary key, partner_id int);
create table fit.partner (id int primary key, name text not null);
create table fit.employee (id int primary key, name text not null);
create table fit.project (id int primary key, company_id int, name jsonb not null);
create table fit.line (id int primary key, company_id int, project_id int, employee_id int,
                       name text, day date not null, unit_amount numeric not null,
                       kind text not null default 'timesheet');
insert into fit.partner values (10, 'Marc Demo'), (11, 'Mitchell Admin');
insert into fit.person values (2, 10), (1, 11);
insert into fit.employee values (7, 'Audrey Peterson');
create table fit.login (id int generated always as identity primary key, create_uid int not null,
                        create_date timestamp not null default now());
"#;

const CONFIG: &str = r#"
name_locale = "fr_BE"

[logins]
table = "fit.login"
user_column = "create_uid"

[authors]
table = "fit.person"
name_column = { column = "partner_id", table = "fit.partner", name_column = "name" }

[[source]]
category = "projects"
table = "fit.project"
workspace_column = "company_id"
workspace_if_null = "*"
name_column = "name"

[[source]]
category = "time_entries"
table = "fit.line"
workspace_column = "company_id"
name_column = "name"
filter = "project_id is not null and kind in ('timesheet')"
[source.fields]
user = { column = "employee_id", table = "fit.employee", name_column = "name" }
project = "project_id"
start = "day"
duration = { column = "unit_amount", unit = "hours" }
"#;

#[tokio::test]
async fn a_schema_nobody_here_wrote_is_mapped_by_config_alone() {
    let (db, mut client, config) = audited_tables(SCHEMA, CONFIG, "1").await;
    enable_all(&client, &config, "2").await;
    act(
        &mut client,
        Some("2"),
        r#"insert into fit.project values (1, 1, '{"en_US": "Website", "fr_BE": "Site web"}'),
                                         (2, null, '{"en_US": "Shared"}');
           insert into fit.line values (1, 1, 1, 7, 'Design', '2026-11-24', 1.5),
                                       (2, 1, null, 7, 'Vendor bill line', '2026-11-24', 3);
           update fit.line set unit_amount = 3.0 where id = 1;
           update fit.line set project_id = null where id = 1;
           update fit.line set project_id = 1 where id = 2;"#,
    )
    .await;
    // Logging in adds a row; nobody has to say who acts.
    act(
        &mut client,
        None,
        "insert into fit.login (create_uid) values (1)",
    )
    .await;
    drain(&mut client, &config).await;
    let rows = client
        .query(
            "select action, coalesce(target, ''), author, workspace_id, coalesce(\"user\", ''),
                    coalesce(start_date, ''), coalesce(start_time, ''), coalesce(duration, '')
             from audit_log.report order by event_id",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<Vec<String>> = rows
        .iter()
        .map(|r| (0..8).map(|i| r.get::<_, String>(i)).collect())
        .collect();
    let row = |cells: [&str; 8]| cells.map(String::from).to_vec();
    assert_eq!(
        got,
        [
            row([
                "Created project",
                "Site web",
                "Marc Demo",
                "1",
                "",
                "",
                "",
                ""
            ]),
            row([
                "Created project",
                "Shared",
                "Marc Demo",
                "*",
                "",
                "",
                "",
                ""
            ]),
            // Only lines with a project are time entries; hours read as a duration, the day
            // as a date with no time, the person through the employee table.
            row([
                "Created time entry",
                "Design",
                "Marc Demo",
                "1",
                "Audrey Peterson",
                "2026-11-24",
                "",
                "01:30:00"
            ]),
            row([
                "Updated time entry",
                "Design",
                "Marc Demo",
                "1",
                "Audrey Peterson",
                "2026-11-24",
                "",
                "03:00:00"
            ]),
            // Leaving the filter is a deletion, entering it a creation.
            row([
                "Deleted time entry",
                "Design",
                "Marc Demo",
                "1",
                "Audrey Peterson",
                "2026-11-24",
                "",
                "03:00:00"
            ]),
            row([
                "Created time entry",
                "Vendor bill line",
                "Marc Demo",
                "1",
                "Audrey Peterson",
                "2026-11-24",
                "",
                "03:00:00"
            ]),
            row([
                "Logged in",
                "Mitchell Admin",
                "Mitchell Admin",
                "*",
                "Mitchell Admin",
                "",
                "",
                ""
            ]),
        ]
    );
    // The shared project is in every workspace's report.
    let (from, to) = event_days(&client, "UTC").await;
    for workspace in ["1", "2"] {
        let out = cli_with(
            &db.url,
            &config_file(CONFIG).1,
            &[
                "report",
                "--workspace",
                workspace,
                "--from",
                &from,
                "--to",
                &to,
            ],
        );
        assert!(out.contains("Shared"), "{workspace}: {out}");
        assert!(out.contains("Logged in"), "{workspace}: {out}");
    }
    // A changed duration reads in its unit.
    let out = cli_with(
        &db.url,
        &config_file(CONFIG).1,
        &[
            "report",
            "--workspace",
            "1",
            "--from",
            &from,
            "--to",
            &to,
            "--target",
            "1",
        ],
    );
    assert!(out.contains("unit_amount: 01:30:00 -> 03:00:00"), "{out}");
}

#[tokio::test]
async fn a_row_with_no_workspace_is_set_aside_naming_the_key_that_places_it() {
    let config = CONFIG.replace("workspace_if_null = \"*\"\n", "");
    let (_db, mut client, config) = audited_tables(SCHEMA, &config, "1").await;
    act(
        &mut client,
        Some("2"),
        r#"insert into fit.project values (2, null, '{"en_US": "Shared"}')"#,
    )
    .await;
    drain(&mut client, &config).await;
    let reasons: Vec<String> = column(&client, "select reason from audit_log.dead_letter").await;
    assert_eq!(reasons.len(), 1);
    assert!(
        reasons[0].contains("\"company_id\" is NULL") && reasons[0].contains("workspace_if_null"),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn install_refuses_a_column_that_cannot_serve_its_detail_or_filter() {
    for (from, to, says) in [
        (
            "start = \"day\"",
            "start = \"name\"",
            "fields.start: column \"name\" is text",
        ),
        (
            "duration = { column = \"unit_amount\", unit = \"hours\" }",
            "duration = \"name\"",
            "fields.duration: column \"name\" is text",
        ),
        (
            "filter = \"project_id is not null and kind in ('timesheet')\"",
            "filter = \"length(name) > 3\"",
            "calls no function",
        ),
        (
            "filter = \"project_id is not null and kind in ('timesheet')\"",
            "filter = \"nowhere is null\"",
            "filter: column \"nowhere\" not found",
        ),
        (
            "filter = \"project_id is not null and kind in ('timesheet')\"",
            "filter = \"name > 0\"",
            "filter: operator does not exist: text > integer",
        ),
    ] {
        let db = TestDb::new().await;
        let client = db.client().await;
        client.batch_execute(SCHEMA).await.unwrap();
        let (_dir, path) = config_file(&CONFIG.replace(from, to));
        let out = cli_at(&db.url, &path, &["install"]);
        let text = String::from_utf8_lossy(&out.stderr).to_string()
            + &String::from_utf8_lossy(&out.stdout);
        assert_ne!(out.status.code(), Some(0), "{to}: {text}");
        assert!(text.contains(says), "{to}: {text}");
        assert_eq!(text.trim().lines().count(), 1, "{text}");
    }
}

/// A filter column renamed or retyped after install (to a type of the host's, with an implicit
/// cast of its own) never fails a host write nor runs the host's cast as Clockwatch's owner: the
/// slow path stages every row until install runs again.
#[tokio::test]
async fn a_filter_column_changed_after_install_costs_the_filter_not_the_write() {
    let (db, mut client, config) = audited_tables(SCHEMA, CONFIG, "1").await;
    client
        .batch_execute(
            "create table fit.probe (who text);
             grant insert on fit.probe to public;
             create type fit.kind as enum ('timesheet', 'bill');
             create function fit.spy(fit.kind) returns text language plpgsql as $$
             begin insert into fit.probe values (current_user); return $1::text; end $$;
             create cast (fit.kind as text) with function fit.spy(fit.kind) as implicit;
             alter table fit.line alter column kind drop default;
             alter table fit.line alter column kind type fit.kind using kind::text::fit.kind;",
        )
        .await
        .unwrap();
    let mut app = dml_role(&db, &client, "fit").await;
    act(
        &mut app,
        Some("2"),
        "insert into fit.line (id, company_id, project_id, employee_id, name, day, unit_amount, kind)
         values (10, 1, null, 7, 'after the retype', '2026-11-24', 1, 'bill')",
    )
    .await;
    client
        .batch_execute("alter table fit.line rename column project_id to project")
        .await
        .unwrap();
    act(
        &mut app,
        Some("2"),
        "insert into fit.line (id, company_id, project, employee_id, name, day, unit_amount, kind)
         values (11, 1, null, 7, 'after the rename', '2026-11-24', 1, 'bill')",
    )
    .await;
    assert_eq!(
        column::<String>(&client, "select who from fit.probe").await,
        Vec::<String>::new()
    );
    drain(&mut client, &config).await;
    let targets: Vec<String> = column(
        &client,
        "select coalesce(target, '') from audit_log.events order by event_id",
    )
    .await;
    assert_eq!(targets, ["after the retype", "after the rename"]);
}

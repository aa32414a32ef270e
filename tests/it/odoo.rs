//! Odoo's timesheets, projects, tasks, customers and expenses, audited by configuration alone:
//! tables with Odoo's names, columns and types (translated jsonb names, companies that may be
//! NULL, tasks and partners that refer to themselves, a link table for tags, users named
//! through their partner, expenses by employee), and a day of requests as Odoo's ORM issues
//! them, each in a transaction of its own.

use crate::support::*;

const SCHEMA: &str = r#"
create table res_company (id serial primary key, name varchar not null);
create table res_partner (
    id serial primary key,
    name varchar,
    company_id integer references res_company on delete set null,
    parent_id integer references res_partner on delete set null,
    commercial_partner_id integer references res_partner on delete set null,
    active boolean default true,
    customer_rank integer default 0,
    create_uid integer, write_uid integer,
    create_date timestamp without time zone, write_date timestamp without time zone
);
create table res_users (
    id serial primary key,
    login varchar not null unique,
    partner_id integer not null references res_partner,
    company_id integer not null references res_company,
    active boolean default true
);
create table res_users_log (
    id serial primary key,
    create_uid integer references res_users on delete set null,
    create_date timestamp without time zone default (now() at time zone 'utc')
);
create table hr_employee (
    id serial primary key,
    name varchar,
    user_id integer references res_users,
    company_id integer not null references res_company
);
create table project_project (
    id serial primary key,
    name jsonb not null,
    company_id integer references res_company,
    partner_id integer references res_partner on delete set null,
    active boolean,
    create_uid integer, write_uid integer, write_date timestamp without time zone
);
create table project_task (
    id serial primary key,
    name varchar not null,
    project_id integer references project_project on delete set null,
    parent_id integer references project_task on delete set null,
    company_id integer references res_company,
    active boolean,
    create_uid integer, write_uid integer, write_date timestamp without time zone
);
create table project_tags (id serial primary key, name jsonb not null, color integer);
create table project_tags_project_task_rel (
    project_task_id integer not null references project_task on delete cascade,
    project_tags_id integer not null references project_tags on delete cascade,
    primary key (project_task_id, project_tags_id)
);
create table account_analytic_line (
    id serial primary key,
    name varchar,
    date date not null,
    amount numeric not null default 0,
    unit_amount double precision,
    partner_id integer references res_partner on delete set null,
    user_id integer references res_users,
    company_id integer not null references res_company,
    project_id integer references project_project on delete restrict,
    task_id integer references project_task on delete set null,
    employee_id integer references hr_employee,
    create_uid integer, write_uid integer, write_date timestamp without time zone
);
create table hr_expense (
    id serial primary key,
    name varchar not null,
    date date,
    employee_id integer not null references hr_employee,
    total_amount numeric,
    company_id integer not null references res_company,
    create_uid integer, write_uid integer, write_date timestamp without time zone
);

insert into res_company (id, name) values (1, 'YourCompany'), (2, 'My Belgian Company');
insert into res_partner (id, name, company_id) values
    (1, 'YourCompany', 1), (2, 'My Belgian Company', 2),
    (3, 'Mitchell Admin', 1), (7, 'Marc Demo', 1), (10, 'Audrey Peterson', 1);
insert into res_users (id, login, partner_id, company_id) values (2, 'admin', 3, 1), (6, 'demo', 7, 1);
insert into hr_employee (id, name, user_id, company_id) values (1, 'Mitchell Admin', 2, 1), (20, 'Audrey Peterson', null, 1);
insert into project_tags (id, name) values (1, '{"en_US": "Urgent", "fr_BE": "Urgent"}');
select setval(pg_get_serial_sequence(t, 'id'), 100)
from unnest(array['res_partner', 'project_project', 'project_task', 'project_tags',
                  'account_analytic_line', 'hr_expense']) t;
"#;

/// The README's Odoo example, word for word (a test reads it from there too).
const CONFIG: &str = r#"
name_locale = "en_US"
system_actors = ["1"]                # OdooBot (__system__): scheduled actions

[workspaces]
table = "public.res_company"
name_column = "name"

[authors]
table = "public.res_users"
name_column = { column = "partner_id", table = "public.res_partner", name_column = "name" }

[logins]
table = "public.res_users_log"
user_column = "create_uid"

[[source]]
category = "time_entries"
table = "public.account_analytic_line"
workspace_column = "company_id"
name_column = "name"
filter = "project_id is not null"
ignore_columns = ["write_uid", "write_date"]
actor_column = "write_uid"           # who wrote the row: the author when nothing else says
[source.fields]
user = { column = "employee_id", table = "public.hr_employee", name_column = "name" }
description = "name"
project = "project_id"
task = "task_id"
start = "date"
duration = { column = "unit_amount", unit = "hours" }

[[source]]
category = "projects"
table = "public.project_project"
workspace_column = "company_id"
workspace_if_null = "*"
name_column = "name"
soft_delete_column = "active"        # archived: false
soft_delete_inverted = true
ignore_columns = ["write_uid", "write_date"]
actor_column = "write_uid"           # who wrote the row: the author when nothing else says
[source.fields]
client = "partner_id"

[[source]]
category = "tasks"
table = "public.project_task"
workspace_column = "company_id"
workspace_if_null = "*"
name_column = "name"
ignore_columns = ["write_uid", "write_date"]
actor_column = "write_uid"           # who wrote the row: the author when nothing else says
[source.fields]
project = "project_id"
tags = "public.project_tags_project_task_rel.project_tags_id"

[[source]]
category = "tags"
table = "public.project_tags"
workspace_if_null = "*"
name_column = "name"

[[source]]
category = "clients"
table = "public.res_partner"
workspace_column = "company_id"
workspace_if_null = "*"
name_column = "name"
filter = "customer_rank > 0"         # customers, not every contact
ignore_columns = ["write_uid", "write_date"]
actor_column = "write_uid"           # who wrote the row: the author when nothing else says

[[source]]
category = "expenses"
table = "public.hr_expense"
workspace_column = "company_id"
name_column = "name"
ignore_columns = ["write_uid", "write_date"]
actor_column = "write_uid"           # who wrote the row: the author when nothing else says
[source.fields]
user = { column = "employee_id", table = "public.hr_employee", name_column = "name" }
"#;

/// (action, target, author, linked, caused_by as the index of the event it points at, workspace)
type Seen = (String, String, String, bool, Option<usize>, String);

fn seen(action: &str, target: &str, author: &str, cause: Option<usize>, workspace: &str) -> Seen {
    (
        action.into(),
        target.into(),
        author.into(),
        cause.is_some(),
        cause,
        workspace.into(),
    )
}

#[tokio::test]
async fn a_day_of_odoo_is_logged_right_by_config_alone() {
    let (db, mut client, config) = audited_tables(SCHEMA, CONFIG, "1").await;
    enable_all(&client, &config, "2").await;
    // Installed again the way an admin does, from the config file.
    let (_dir, path) = config_file(CONFIG);
    cli_with(&db.url, &path, &["install"]);
    // Marc Demo (uid 6) and Mitchell Admin (uid 2) at work, one request a transaction, as Odoo
    // issues them: nothing says who acts but the rows' write_uid (None: no actor setting), until
    // the afternoon's deletions, which only a setting can name (a module of the deployment's
    // sets clockwatch.actor; without it a deletion is System's).
    let day = [
        (None, "insert into res_users_log (create_uid) values (6)"),
        (
            None,
            r#"insert into project_project (id, name, company_id, active, create_uid, write_uid)
               values (101, '{"en_US": "Website", "fr_BE": "Site web"}', 1, true, 6, 6)"#,
        ),
        (
            None,
            // One transaction creates a task with its tag: one "Created" event listing it.
            "insert into project_task (id, name, project_id, company_id, active, create_uid, write_uid)
             values (101, 'Design', 101, 1, true, 6, 6);
             insert into project_task (id, name, project_id, parent_id, company_id, active, create_uid, write_uid)
             values (102, 'Mockups', 101, 101, 1, true, 6, 6), (103, 'Call the client', 101, null, 1, true, 6, 6);
             insert into project_tags_project_task_rel values (101, 1);",
        ),
        (
            None,
            "insert into account_analytic_line (id, name, date, unit_amount, user_id, company_id, project_id, task_id, employee_id, create_uid, write_uid)
             values (101, 'Wireframes', '2026-11-24', 1.5, 6, 1, 101, 101, 20, 6, 6)",
        ),
        // A vendor bill's analytic line: no project, not a timesheet.
        (
            None,
            "insert into account_analytic_line (id, name, date, amount, company_id, create_uid, write_uid)
             values (102, 'Office chairs', '2026-11-24', -420, 1, 2, 2)",
        ),
        // A customer shared by every company.
        (
            None,
            "insert into res_partner (id, name, company_id, customer_rank, create_uid, write_uid)
             values (101, 'Deco Addict', null, 1, 2, 2);
             update res_partner set commercial_partner_id = 101 where id = 101;",
        ),
        // A new user's own contact: no customer, not logged.
        (
            None,
            "insert into res_partner (id, name, company_id) values (102, 'Anita Oliver', 1)",
        ),
        (
            None,
            r#"update project_project set name = '{"en_US": "Website v2", "fr_BE": "Site web v2"}', write_uid = 6 where id = 101"#,
        ),
        (
            None,
            "update account_analytic_line set unit_amount = 3.0, write_uid = 6 where id = 101",
        ),
        (Some("6"), "delete from project_task where id = 103"),
        (Some("2"), "delete from project_task where id = 101"),
        (
            None,
            "insert into hr_expense (id, name, date, employee_id, total_amount, company_id, create_uid, write_uid)
             values (101, 'Taxi to the client', '2026-11-24', 20, 35.50, 1, 2, 2)",
        ),
        // A scheduled action, run as OdooBot: System's.
        (
            None,
            "update project_project set partner_id = 101, write_uid = 1 where id = 101",
        ),
    ];
    for (actor, sql) in day {
        act(&mut client, actor, sql).await;
    }
    drain(&mut client, &config).await;
    assert_eq!(
        count(&client, "select count(*) from audit_log.dead_letter").await,
        0
    );
    let rows = client
        .query(
            "select event_id, action, coalesce(target, ''), author, linked, caused_by, workspace_id
             from audit_log.events order by event_id",
            &[],
        )
        .await
        .unwrap();
    let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    let got: Vec<Seen> = rows
        .iter()
        .map(|r| {
            let cause: Option<i64> = r.get(5);
            (
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                cause.map(|c| ids.iter().position(|i| *i == c).expect("a logged cause")),
                r.get(6),
            )
        })
        .collect();
    let marc = "Marc Demo";
    let mitchell = "Mitchell Admin";
    assert_eq!(
        got,
        [
            seen("Logged in", marc, marc, None, "*"),
            seen("Created project", "Website", marc, None, "1"),
            seen("Created task", "Design", marc, None, "1"),
            seen("Created task", "Mockups", marc, None, "1"),
            seen("Created task", "Call the client", marc, None, "1"),
            seen("Created time entry", "Wireframes", marc, None, "1"),
            seen("Created client", "Deco Addict", mitchell, None, "*"),
            seen("Updated client", "Deco Addict", mitchell, None, "*"),
            seen("Updated project", "Website v2", marc, None, "1"),
            seen("Updated time entry", "Wireframes", marc, None, "1"),
            seen("Deleted task", "Call the client", marc, None, "1"),
            seen("Deleted task", "Design", mitchell, None, "1"),
            seen("Updated task", "Mockups", "System", Some(11), "1"),
            seen("Updated time entry", "Wireframes", "System", Some(11), "1"),
            seen("Created expense", "Taxi to the client", mitchell, None, "1"),
            seen("Updated project", "Website v2", "System", None, "1"),
        ]
    );
    // Every creation and update named by its row, none by a setting.
    assert_eq!(
        column::<String>(
            &client,
            "select distinct coalesce(actor_source, '-') from audit_log.report
             where action !~ '^(Deleted|Logged)' and caused_by is null and author <> 'System'"
        )
        .await,
        ["column"]
    );

    // What the report shows of them: hours as a duration, the day with no time, the person of
    // an expense and a timesheet through the employee table, names in the configured locale.
    let (from, to) = event_days(&client, "UTC").await;
    let report = cli_with(
        &db.url,
        &path,
        &[
            "report",
            "--workspace",
            "1",
            "--from",
            &from,
            "--to",
            &to,
            "--details",
        ],
    );
    for expected in [
        "Workspace 1 (YourCompany)",
        "Duration: 01:30:00",
        "Duration: 03:00:00",
        "unit_amount: 01:30:00 -> 03:00:00",
        "Start date: 2026-11-24",
        "User: Audrey Peterson",
        "Project: Website v2",
        "Tags: Urgent",
    ] {
        assert!(report.contains(expected), "{expected}:\n{report}");
    }
    assert!(!report.contains("Office chairs"), "{report}");
    // The shared customer is in the other company's log too.
    let other = cli_with(
        &db.url,
        &path,
        &["report", "--workspace", "2", "--from", &from, "--to", &to],
    );
    assert!(other.contains("Deco Addict"), "{other}");
    assert!(!other.contains("Wireframes"), "{other}");
}

#[test]
fn the_readmes_odoo_example_is_the_config_this_test_runs() {
    let readme = include_str!("../../README.md");
    let example = readme
        .split("<!-- odoo-config -->")
        .nth(1)
        .and_then(|s| s.split("```toml\n").nth(1))
        .and_then(|s| s.split("```").next())
        .expect("README.md holds the Odoo example between <!-- odoo-config --> markers");
    assert_eq!(example.trim(), CONFIG.trim());
}

//! Linked changes on tables that refer to themselves (sub-tasks, client hierarchies, managers):
//! a statement's own rows are its author's, and only rows that a foreign-key action or a host
//! trigger changed are linked, each pointing at the change that set it off.

use tokio_postgres::Client;

use crate::support::*;

const SCHEMA: &str = r#"
create schema sr;
create table sr.person (id int primary key, name text not null);
insert into sr.person values (1, 'Ann Admin'), (2, 'Bob Builder');
-- A sub-task's parent is unset when the parent goes.
create table sr.task (id int primary key, ws int not null, name text not null,
                      parent_id int references sr.task on delete set null);
-- A client's subsidiaries go with it.
create table sr.client (id int primary key, ws int not null, name text not null,
                        parent_id int references sr.client on delete cascade);
-- A project with sub-projects cannot be deleted.
create table sr.project (id int primary key, ws int not null, name text not null,
                         parent_id int references sr.project);
create table sr.tag (id int primary key, ws int not null, name text not null,
                     parent_id int references sr.tag on delete restrict);
"#;

const CONFIG: &str = r#"
[authors]
table = "sr.person"
id_column = "id"
name_column = "name"

[[source]]
category = "tasks"
table = "sr.task"
workspace_column = "ws"
name_column = "name"

[[source]]
category = "clients"
table = "sr.client"
workspace_column = "ws"
name_column = "name"

[[source]]
category = "projects"
table = "sr.project"
workspace_column = "ws"
name_column = "name"

[[source]]
category = "tags"
table = "sr.tag"
workspace_column = "ws"
name_column = "name"
"#;

/// (action, target, author, linked, caused_by as the index of the event it points at) of each
/// event, in the order they were captured.
type Seen = (String, String, String, bool, Option<usize>);

async fn events(client: &Client) -> Vec<Seen> {
    let rows = client
        .query(
            "select event_id, action, coalesce(target, ''), author, linked, caused_by
             from audit_log.events order by event_id",
            &[],
        )
        .await
        .unwrap();
    let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    rows.iter()
        .map(|r| {
            let cause: Option<i64> = r.get(5);
            (
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                cause.map(|c| ids.iter().position(|i| *i == c).expect("cause is an event")),
            )
        })
        .collect()
}

fn seen(action: &str, target: &str, author: &str, linked: bool, cause: Option<usize>) -> Seen {
    (action.into(), target.into(), author.into(), linked, cause)
}

/// The schema with `rows` already in it when Clockwatch is installed (they make no event).
async fn schema(rows: &str) -> (TestDb, Client, clockwatch::config::Config) {
    audited_tables(&format!("{SCHEMA}{rows}"), CONFIG, "1").await
}

#[tokio::test]
async fn deleting_a_row_of_a_self_referencing_table_with_no_children_is_its_authors() {
    let (_db, mut client, config) = schema(
        "insert into sr.task values (1, 1, 'Design', null);
             insert into sr.client values (1, 1, 'Acme', null);",
    )
    .await;
    act(&mut client, Some("2"), "delete from sr.task where id = 1").await;
    act(&mut client, Some("2"), "delete from sr.client where id = 1").await;
    drain(&mut client, &config).await;
    assert_eq!(
        events(&client).await,
        [
            seen("Deleted task", "Design", "Bob Builder", false, None),
            seen("Deleted client", "Acme", "Bob Builder", false, None),
        ]
    );
}

#[tokio::test]
async fn set_null_on_the_same_table_links_the_children_to_the_deletion() {
    let (_db, mut client, config) = schema(
            "insert into sr.task values (1, 1, 'Design', null), (2, 1, 'Sketch', 1), (3, 1, 'Review', 1),
                                        (4, 1, 'Other', null);",
    )
    .await;
    act(&mut client, Some("2"), "delete from sr.task where id = 1").await;
    // An update of a row that is someone's parent is its author's too.
    act(
        &mut client,
        Some("1"),
        "update sr.task set name = 'Other work' where id = 4",
    )
    .await;
    drain(&mut client, &config).await;
    assert_eq!(
        events(&client).await,
        [
            seen("Deleted task", "Design", "Bob Builder", false, None),
            seen("Updated task", "Sketch", "System", true, Some(0)),
            seen("Updated task", "Review", "System", true, Some(0)),
            seen("Updated task", "Other work", "Ann Admin", false, None),
        ]
    );
}

#[tokio::test]
async fn a_two_level_cascade_on_the_same_table_is_linked_to_the_deletion_that_set_it_off() {
    let (_db, mut client, config) = schema(
        "insert into sr.client values (1, 1, 'Acme', null), (2, 1, 'Acme East', 1),
                                          (3, 1, 'Acme East Retail', 2), (4, 1, 'Beta', null),
                                          (5, 1, 'Beta North', 4), (6, 1, 'Gamma', null),
                                          (7, 1, 'Gamma Sub', 6), (8, 1, 'Delta', null);",
    )
    .await;
    act(&mut client, Some("1"), "delete from sr.client where id = 1").await;
    // Two deletions in one statement: each's own, their subsidiaries linked.
    act(
        &mut client,
        Some("2"),
        "delete from sr.client where id in (4, 5)",
    )
    .await;
    // Two deletions, one with a subsidiary: it points at its own parent's deletion, not at the
    // other one, captured nearer to it.
    act(
        &mut client,
        Some("1"),
        "delete from sr.client where id in (6, 8)",
    )
    .await;
    drain(&mut client, &config).await;
    assert_eq!(
        events(&client).await,
        [
            seen("Deleted client", "Acme", "Ann Admin", false, None),
            seen("Deleted client", "Acme East", "System", true, Some(0)),
            seen(
                "Deleted client",
                "Acme East Retail",
                "System",
                true,
                Some(0)
            ),
            seen("Deleted client", "Beta", "Bob Builder", false, None),
            seen("Deleted client", "Beta North", "Bob Builder", false, None),
            seen("Deleted client", "Gamma", "Ann Admin", false, None),
            seen("Deleted client", "Delta", "Ann Admin", false, None),
            seen("Deleted client", "Gamma Sub", "System", true, Some(5)),
        ]
    );
}

#[tokio::test]
async fn restrict_and_no_action_on_the_same_table_leave_the_deletion_its_authors() {
    let (_db, mut client, config) = schema(
        "insert into sr.project values (1, 1, 'Website', null), (2, 1, 'Landing page', 1);
             insert into sr.tag values (1, 1, 'Urgent', null), (2, 1, 'Very urgent', 1);",
    )
    .await;
    // With children, the deletion fails and nothing is captured.
    for sql in [
        "delete from sr.project where id = 1",
        "delete from sr.tag where id = 1",
    ] {
        let err = client.batch_execute(sql).await.expect_err(sql);
        assert_eq!(err.code().map(|c| c.code()), Some("23503"), "{sql}");
    }
    assert_eq!(staged(&client).await, 0);
    // Without, the child then the parent: both the author's.
    act(
        &mut client,
        Some("2"),
        "delete from sr.project where id = 2; delete from sr.project where id = 1;
         delete from sr.tag where id = 2; delete from sr.tag where id = 1;",
    )
    .await;
    drain(&mut client, &config).await;
    assert_eq!(
        events(&client).await,
        [
            seen(
                "Deleted project",
                "Landing page",
                "Bob Builder",
                false,
                None
            ),
            seen("Deleted project", "Website", "Bob Builder", false, None),
            seen("Deleted tag", "Very urgent", "Bob Builder", false, None),
            seen("Deleted tag", "Urgent", "Bob Builder", false, None),
        ]
    );
}

/// One statement that changes two tables (a CTE): the cascade its deletion sets off on the
/// other table is linked, and its own change to that table stays its own, whichever of the two
/// PostgreSQL finishes first.
#[tokio::test]
async fn a_statement_changing_a_table_its_cascade_also_changes_keeps_its_own_change() {
    let (_db, mut client, config) = schema(
            "insert into sr.task values (1, 1, 'Design', null), (2, 1, 'Sketch', 1), (3, 1, 'Plan', null);",
    )
    .await;
    act(
        &mut client,
        Some("2"),
        "with gone as (delete from sr.task where id = 1 returning id)
         update sr.task set name = 'Plan B' where id = 3",
    )
    .await;
    drain(&mut client, &config).await;
    let got = events(&client).await;
    let at = |target: &str| got.iter().position(|e| e.1 == target).unwrap();
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(
        got[at("Design")],
        seen("Deleted task", "Design", "Bob Builder", false, None)
    );
    assert_eq!(
        got[at("Plan B")],
        seen("Updated task", "Plan B", "Bob Builder", false, None)
    );
    assert_eq!(
        got[at("Sketch")],
        seen("Updated task", "Sketch", "System", true, Some(at("Design")))
    );
}

/// The count of linked rows is written by the session's row trigger and read by capture, which
/// pins its settings: a session in another time zone and date style still has its actions'
/// changes linked.
#[tokio::test]
async fn a_session_in_another_time_zone_still_has_its_actions_changes_linked() {
    let (_db, mut client, config) =
        schema("insert into sr.task values (1, 1, 'Design', null), (2, 1, 'Sketch', 1);").await;
    act(
        &mut client,
        Some("2"),
        "set local timezone = 'Pacific/Chatham'; set local datestyle = 'SQL, DMY';
         delete from sr.task where id = 1;",
    )
    .await;
    drain(&mut client, &config).await;
    assert_eq!(
        events(&client).await,
        [
            seen("Deleted task", "Design", "Bob Builder", false, None),
            seen("Updated task", "Sketch", "System", true, Some(0)),
        ]
    );
}

/// Names that need quoting (mixed case, as ORMs such as Prisma write them; a reserved word):
/// a cascade into them is counted, linked and never fails the host's deletion. (The config
/// names a table as it is, unquoted.)
#[tokio::test]
async fn a_cascade_into_tables_whose_names_need_quoting_is_linked() {
    let (_db, mut client, config) = audited_tables(
        r#"
        create schema "Sr";
        create table "Sr"."Project" (id int primary key, ws int not null, name text not null);
        create table "Sr"."order" (id int primary key, ws int not null, name text not null,
                                   "projectId" int references "Sr"."Project" on delete cascade);
        insert into "Sr"."Project" values (1, 1, 'Ares');
        insert into "Sr"."order" values (1, 1, 'First', 1), (2, 1, 'Second', 1);
        "#,
        r#"
        [[source]]
        category = "projects"
        table = "Sr.Project"
        workspace_column = "ws"
        name_column = "name"

        [[source]]
        category = "tasks"
        table = "Sr.order"
        workspace_column = "ws"
        name_column = "name"
        "#,
        "1",
    )
    .await;
    act(
        &mut client,
        Some("2"),
        r#"delete from "Sr"."Project" where id = 1"#,
    )
    .await;
    drain(&mut client, &config).await;
    assert_eq!(
        events(&client).await,
        [
            seen("Deleted project", "Ares", "#2", false, None),
            seen("Deleted task", "First", "System", true, Some(0)),
            seen("Deleted task", "Second", "System", true, Some(0)),
        ]
    );
}

/// Two connections draining one backlog: when one has claimed a project's deletion and not yet
/// committed, the other, holding the deletion's SET NULL changes, puts them back until the
/// deletion is in the log, rather than logging them as the user's own.
#[tokio::test]
async fn a_cascade_drained_beside_its_cause_in_flight_waits_for_it() {
    let (db, mut client, config) = installed_host().await;
    act(
        &mut client,
        Some("1"),
        "insert into app.project (id, workspace_id, name) values (60, 1, 'Doomed');
         insert into app.time_entry (id, workspace_id, user_id, project_id, start_at)
         values (600, 1, 1, 60, now()), (601, 1, 1, 60, now())",
    )
    .await;
    drain(&mut client, &config).await;
    act(
        &mut client,
        Some("2"),
        "delete from app.project where id = 60",
    )
    .await;
    // The other connection's batch: the deletion claimed, not yet committed.
    let mut other = db.client().await;
    let in_flight = other.transaction().await.unwrap();
    let deletion: i64 = in_flight
        .query_one(
            "select s.id from audit_log.staging s join audit_log.shape h on h.id = s.shape
             where h.source = 'app.project' and s.op = 'D' for update of s",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    client
        .batch_execute(&format!("set search_path = {}, pg_catalog", config.schema))
        .await
        .unwrap();
    let mut drainer = clockwatch::drain::Drainer::new(config.clone());
    drainer.set_claim(clockwatch::drain::Claim::Together);
    let put_back = drainer.drain_batch(&mut client).await.unwrap();
    assert_eq!((put_back.events, put_back.more), (0, true));
    in_flight.rollback().await.unwrap();
    drain(&mut client, &config).await;
    let entries: Vec<(String, Option<String>, bool, Option<i64>)> = client
        .query(
            "select target_id, author_id, linked, caused_by from audit_log.events
             where action_code = 'time_entry.updated' order by target_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let linked = |id: &str| (id.to_string(), None, true, Some(deletion));
    assert_eq!(entries, [linked("600"), linked("601")]);
}

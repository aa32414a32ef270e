//! Capture and normalisation: real host transactions in, rows of the report views out.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn every_category_and_action_reaches_the_report() {
    let (_db, mut client, config) = installed_host().await;

    act_with(&mut client, Some("1"), Some("quickbooks"), "insert into app.client (id, workspace_id, name, source) values (10, 1, 'Hooli', 'quickbooks')").await;
    act(
        &mut client,
        Some("1"),
        "insert into app.project (id, workspace_id, client_id, name) values (10, 1, 10, 'Gemini')",
    )
    .await;
    act(
        &mut client,
        Some("1"),
        "insert into app.task (id, workspace_id, project_id, name) values (10, 1, 10, 'Build')",
    )
    .await;
    act(
        &mut client,
        Some("1"),
        "insert into app.tag (id, workspace_id, name) values (10, 1, 'billable-later')",
    )
    .await;
    act(
        &mut client,
        Some("2"),
        "insert into app.time_entry (id, workspace_id, user_id, description, project_id, task_id, start_at, end_at,
                                     hourly_rate, tag_ids, source)
         values (10, 1, 2, 'Wireframes', 10, 10, '2026-11-02 09:00Z', '2026-11-02 10:30Z', 50, '{1,10}', 'timer')",
    )
    .await;
    // Names are resolved when the daemon normalises a change, normally milliseconds after it;
    // drain here as the daemon would, before the project is renamed below.
    drain(&mut client, &config).await;
    act(
        &mut client,
        Some("2"),
        "update app.time_entry set description = 'Wireframes v2', updated_at = now() where id = 10",
    )
    .await;
    act(
        &mut client,
        Some("1"),
        "update app.time_entry set deleted_at = now() where id = 10",
    )
    .await;
    act(
        &mut client,
        Some("1"),
        "update app.time_entry set deleted_at = null where id = 10",
    )
    .await;
    act(
        &mut client,
        Some("1"),
        "update app.project set name = 'Gemini II' where id = 10",
    )
    .await;
    act(
        &mut client,
        Some("1"),
        "update app.task set name = 'Build it' where id = 10",
    )
    .await;
    act(
        &mut client,
        Some("1"),
        "update app.client set name = 'Hooli XYZ' where id = 10",
    )
    .await;
    act(
        &mut client,
        Some("1"),
        "update app.tag set name = 'later' where id = 10",
    )
    .await;
    act(&mut client, Some("2"), "insert into app.expense (id, workspace_id, user_id, project_id, amount, note) values (10, 1, 2, 10, 12.50, 'Train')").await;
    act(
        &mut client,
        Some("2"),
        "update app.expense set amount = 13.00 where id = 10",
    )
    .await;
    act(
        &mut client,
        Some("2"),
        "update app.expense set deleted_at = now() where id = 10",
    )
    .await;
    act(
        &mut client,
        Some("2"),
        "update app.expense set deleted_at = null where id = 10",
    )
    .await;
    act(
        &mut client,
        Some("2"),
        "delete from app.expense where id = 10",
    )
    .await;
    act(
        &mut client,
        Some("2"),
        "update app.membership set last_login_at = now(), updated_at = now() where id = 2",
    )
    .await;
    act(
        &mut client,
        Some("1"),
        "update app.membership set role = 'manager' where id = 2",
    )
    .await;
    act(
        &mut client,
        Some("2"),
        "update app.membership set name = 'Bob B.' where id = 2",
    )
    .await;
    act(
        &mut client,
        Some("1"),
        "insert into app.membership (id, workspace_id, user_id, name) values (10, 1, 3, 'Cleo C.')",
    )
    .await;
    act(
        &mut client,
        Some("1"),
        "delete from app.membership where id = 10",
    )
    .await;
    act(&mut client, Some("1"), "delete from app.tag where id = 10").await;
    act(
        &mut client,
        Some("1"),
        "delete from app.time_entry where id = 10",
    )
    .await;

    let drained = drain(&mut client, &config).await;
    assert_eq!(drained.dead_lettered, 0);
    let rows = report(&client, "1").await;
    let codes: Vec<String> = rows.iter().map(|r| r.get("action_code")).collect();
    assert_eq!(
        codes,
        [
            "client.created",
            "project.created",
            "task.created",
            "tag.created",
            "time_entry.created",
            "time_entry.updated",
            "time_entry.deleted",
            "time_entry.restored",
            "project.updated",
            "task.updated",
            "client.updated",
            "tag.updated",
            "expense.created",
            "expense.updated",
            "expense.deleted",
            "expense.restored",
            "expense.deleted",
            "user.logged_in",
            "user.role_changed",
            "user.profile_updated",
            "user.created",
            "user.deleted",
            "tag.deleted",
            "time_entry.deleted",
        ]
    );
    let labels: Vec<String> = rows.iter().map(|r| r.get("action")).collect();
    assert_eq!(labels[6], "Deleted time entry");
    assert_eq!(labels[17], "Logged in");
    assert_eq!(labels[18], "Role changed");

    // Origins: from the row's column (mapped), else from clockwatch.origin.
    let origin = |i: usize| rows[i].get::<_, Option<String>>("origin");
    assert_eq!(origin(0).as_deref(), Some("QuickBooks"));
    assert_eq!(origin(1).as_deref(), Some("Manual"));
    assert_eq!(origin(4).as_deref(), Some("Timer"));

    // Authors resolved to names; the created time entry's details resolved through other sources.
    let entry = &rows[4];
    assert_eq!(entry.get::<_, String>("author"), "Bob Builder");
    assert_eq!(
        entry.get::<_, Option<String>>("author_id").as_deref(),
        Some("2")
    );
    assert_eq!(
        entry.get::<_, Option<String>>("target").as_deref(),
        Some("Wireframes")
    );
    assert_eq!(
        entry.get::<_, Option<String>>("target_id").as_deref(),
        Some("10")
    );
    let detail = |name: &str| entry.get::<_, Option<String>>(name);
    assert_eq!(detail("user").as_deref(), Some("Bob Builder"));
    assert_eq!(detail("project").as_deref(), Some("Gemini"));
    assert_eq!(detail("task").as_deref(), Some("Build"));
    assert_eq!(
        detail("client").as_deref(),
        Some("Hooli"),
        "client comes from the project"
    );
    assert_eq!(detail("start_date").as_deref(), Some("2026-11-02"));
    assert_eq!(detail("start_time").as_deref(), Some("09:00:00"));
    assert_eq!(detail("end_time").as_deref(), Some("10:30:00"));
    assert_eq!(detail("duration").as_deref(), Some("01:30:00"));
    assert_eq!(detail("billable_rate").as_deref(), Some("50.00"));
    assert_eq!(detail("tags").as_deref(), Some("urgent, billable-later"));
    assert_eq!(detail("type").as_deref(), Some("REGULAR"));

    // The update records only what changed, leaving out the ignored updated_at.
    let update = &rows[5];
    assert_eq!(
        update.get::<_, Option<serde_json::Value>>("previous_value"),
        Some(json!({"description": "Wireframes"}))
    );
    assert_eq!(
        update.get::<_, Option<serde_json::Value>>("new_value"),
        Some(json!({"description": "Wireframes v2"}))
    );

    // The excluded pin_hash column never reaches events.
    let leaked = count(
        &client,
        "select count(*) from audit_log.report where row_data ? 'pin_hash'",
    )
    .await;
    assert_eq!(leaked, 0);

    // The final hard delete still knows what the entry said.
    let deleted = rows.last().unwrap();
    assert_eq!(
        deleted.get::<_, Option<String>>("description").as_deref(),
        Some("Wireframes v2")
    );
    assert_eq!(
        deleted.get::<_, Option<String>>("project").as_deref(),
        Some("Gemini II")
    );
    assert_eq!(
        count(&client, "select count(*) from audit_log.staging").await,
        0
    );
}

#[tokio::test]
async fn no_actor_is_system_and_cascades_are_linked_to_their_primary_event() {
    let (_db, mut client, config) = installed_host().await;
    act(
        &mut client,
        Some("2"),
        "insert into app.time_entry (id, workspace_id, user_id, description, project_id, task_id, start_at)
         values (20, 1, 2, 'a', 1, 1, now()), (21, 1, 2, 'b', 1, null, now())",
    )
    .await;
    act(
        &mut client,
        None,
        "update app.time_entry set approved = true where id = 20",
    )
    .await;
    // Deleting the project deletes its task (cascade) and unlinks its entries (set null).
    act(
        &mut client,
        Some("1"),
        "delete from app.project where id = 1",
    )
    .await;
    // Small batches: most linked changes find their primary among events already written.
    let mut small = config.clone();
    small.daemon.batch_size = 2;
    drain(&mut client, &small).await;

    let rows = report(&client, "1").await;
    let got = actions(&rows);
    assert_eq!(got[0], ("time_entry.created".into(), "Bob Builder".into()));
    assert_eq!(
        got[2],
        ("time_entry.updated".into(), "System".into()),
        "no actor set: System"
    );
    assert!(rows[2].get::<_, Option<String>>("author_id").is_none());

    let primary = rows
        .iter()
        .find(|r| r.get::<_, String>("action_code") == "project.deleted")
        .expect("project deleted");
    assert_eq!(primary.get::<_, String>("author"), "Ann Admin");
    assert_eq!(
        primary.get::<_, Option<String>>("target").as_deref(),
        Some("Apollo")
    );
    assert!(primary.get::<_, Option<i64>>("caused_by").is_none());
    let primary_id: i64 = primary.get("event_id");

    let linked: Vec<_> = rows
        .iter()
        .filter(|r| r.get::<_, Option<i64>>("caused_by").is_some())
        .collect();
    let mut linked_codes: Vec<String> = linked.iter().map(|r| r.get("action_code")).collect();
    linked_codes.sort();
    // Entry 20 is updated twice: its project is unset, and its task (deleted by the cascade) too.
    assert_eq!(
        linked_codes,
        [
            "task.deleted",
            "time_entry.updated",
            "time_entry.updated",
            "time_entry.updated"
        ]
    );
    for r in &linked {
        assert_eq!(r.get::<_, String>("author"), "System");
        assert_eq!(r.get::<_, Option<i64>>("caused_by"), Some(primary_id));
    }
    // The unlinked entry's event still names the deleted project as it was (previous value).
    let unlinked = linked
        .iter()
        .find(|r| r.get::<_, Option<String>>("target_id").as_deref() == Some("21"))
        .unwrap();
    assert_eq!(
        unlinked.get::<_, Option<serde_json::Value>>("previous_value"),
        Some(json!({"project_id": 1}))
    );
}

#[tokio::test]
async fn a_host_trigger_change_is_linked_too() {
    let (_db, mut client, config) = installed_host().await;
    // A host trigger that renames a project's tasks when the project is renamed.
    client
        .batch_execute(
            "create function app.rename_tasks() returns trigger language plpgsql as $$
             begin update app.task set name = new.name || ' task' where project_id = new.id; return null; end $$;
             create trigger rename_tasks after update on app.project for each row execute function app.rename_tasks();",
        )
        .await
        .unwrap();
    act(
        &mut client,
        Some("1"),
        "update app.project set name = 'Artemis' where id = 1",
    )
    .await;
    // One change per batch: the task's change (captured first) is drained while its primary is
    // still staged beyond the batch.
    let mut one_by_one = config.clone();
    one_by_one.daemon.batch_size = 1;
    drain(&mut client, &one_by_one).await;
    let rows = report(&client, "1").await;
    assert_eq!(rows.len(), 2);
    let project = rows
        .iter()
        .find(|r| r.get::<_, String>("action_code") == "project.updated")
        .unwrap();
    let task = rows
        .iter()
        .find(|r| r.get::<_, String>("action_code") == "task.updated")
        .unwrap();
    assert_eq!(project.get::<_, String>("author"), "Ann Admin");
    assert_eq!(task.get::<_, String>("author"), "System");
    assert_eq!(
        task.get::<_, Option<i64>>("caused_by"),
        Some(project.get::<_, i64>("event_id"))
    );
}

#[tokio::test]
async fn no_op_and_ignored_only_updates_make_no_event() {
    let (_db, mut client, config) = installed_host().await;
    act(
        &mut client,
        Some("1"),
        "insert into app.time_entry (id, workspace_id, user_id, start_at) values (30, 1, 1, now())",
    )
    .await;
    act(
        &mut client,
        Some("1"),
        "update app.time_entry set description = description where id = 30",
    )
    .await;
    act(
        &mut client,
        Some("1"),
        "update app.time_entry set updated_at = now() + interval '1 hour' where id = 30",
    )
    .await;
    act(
        &mut client,
        Some("1"),
        "update app.membership set updated_at = now() + interval '1 hour'",
    )
    .await;
    drain(&mut client, &config).await;
    let rows = report(&client, "1").await;
    assert_eq!(
        actions(&rows),
        [("time_entry.created".to_string(), "Ann Admin".to_string())]
    );
}

#[tokio::test]
async fn only_enabled_workspaces_and_categories_are_captured() {
    let db = TestDb::with_host().await;
    let mut client = db.client().await;
    let config = example_config();
    install(&mut client, &config).await;
    // Workspace 1: time entries only. Workspace 2: nothing.
    let enabled = clockwatch::workspace::set_enabled(
        &client,
        "audit_log",
        "1",
        Some(&[clockwatch::config::Category::TimeEntries]),
        true,
    )
    .await
    .unwrap();
    assert_eq!(enabled, ["time_entries"]);
    act(
        &mut client,
        Some("1"),
        "insert into app.time_entry (id, workspace_id, user_id, start_at) values (40, 1, 1, now()), (41, 2, 3, now());
         insert into app.tag (workspace_id, name) values (1, 'ignored');
         update app.project set name = 'Zeus 2' where id = 2;",
    )
    .await;
    assert_eq!(
        count(&client, "select count(*) from audit_log.staging").await,
        1,
        "only the enabled change is staged"
    );
    drain(&mut client, &config).await;
    assert_eq!(report(&client, "1").await.len(), 1);
    assert_eq!(report(&client, "2").await.len(), 0);

    // Disabling stops capture; the SQL function works for applications too.
    client
        .batch_execute("select audit_log.disable('1', array['time_entries'])")
        .await
        .unwrap();
    act(
        &mut client,
        Some("1"),
        "update app.time_entry set description = 'x' where id = 40",
    )
    .await;
    assert_eq!(
        count(&client, "select count(*) from audit_log.staging").await,
        0
    );
    let err = client
        .batch_execute("select audit_log.enable('1', array['invoices'])")
        .await
        .unwrap_err();
    assert!(
        err.as_db_error()
            .unwrap()
            .message()
            .contains("unknown category \"invoices\""),
        "{err:?}"
    );
}

/// The staged workspaces, in the order staged.
async fn staged_workspaces(client: &tokio_postgres::Client) -> Vec<Option<String>> {
    column(
        client,
        "select workspace_id from audit_log.staging order by id",
    )
    .await
}

#[tokio::test]
async fn enabling_every_workspace_audits_those_never_named_and_connected_sessions_see_it_at_once() {
    let db = TestDb::with_host().await;
    let mut admin = db.client().await;
    let config = example_config();
    install(&mut admin, &config).await;
    admin
        .batch_execute("insert into app.workspace (id, name) values (3, 'New Co')")
        .await
        .unwrap();
    // The application's session has run its capture function before the switch: what it
    // compiled then must not outlive enable() and disable().
    let mut app = app_role(&db, &admin).await;
    let insert = "insert into app.time_entry (workspace_id, user_id, start_at) values (2, 3, now()), (3, 3, now())";
    act(&mut app, Some("3"), insert).await;
    assert!(staged_workspaces(&admin).await.is_empty());

    admin
        .batch_execute("select audit_log.enable('*', array['time_entries'])")
        .await
        .unwrap();
    act(&mut app, Some("3"), insert).await;
    assert_eq!(
        staged_workspaces(&admin).await,
        [Some("2".to_string()), Some("3".to_string())]
    );
    // Other categories are still off.
    act(
        &mut app,
        Some("3"),
        "insert into app.tag (workspace_id, name) values (2, 't')",
    )
    .await;
    assert_eq!(staged_workspaces(&admin).await.len(), 2);

    // One workspace cannot be left out of "every workspace": said, not silently ignored.
    let err = admin
        .batch_execute("select audit_log.disable('2')")
        .await
        .unwrap_err();
    let err = err.as_db_error().unwrap();
    assert!(
        err.message()
            .contains("every workspace is audited for time_entries"),
        "{err:?}"
    );
    assert_eq!(
        err.hint(),
        Some("disable \"*\" first, then enable the workspaces to audit one by one")
    );

    admin
        .batch_execute("select audit_log.disable('*'); truncate audit_log.staging")
        .await
        .unwrap();
    act(&mut app, Some("3"), insert).await;
    assert!(staged_workspaces(&admin).await.is_empty());
}

#[tokio::test]
async fn more_workspaces_than_a_capture_function_lists_are_looked_up_in_the_table() {
    let db = TestDb::with_host().await;
    let mut admin = db.client().await;
    let config = example_config();
    install(&mut admin, &config).await;
    admin
        .batch_execute(
            "insert into app.workspace (id, name) select g, 'w' || g from generate_series(3, 80) g;
             select audit_log.enable(g::text, array['time_entries']) from generate_series(11, 80) g;",
        )
        .await
        .unwrap();
    let source: String = admin
        .query_one(
            "select pg_get_functiondef(('audit_log.' || function)::regproc) from audit_log.captured_table
             where relid = 'app.time_entry'::regclass",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        source.contains("e.workspace_id = r.ws"),
        "the capture function probes the table:\n{source}"
    );
    let mut app = app_role(&db, &admin).await;
    act(
        &mut app,
        Some("3"),
        "insert into app.time_entry (workspace_id, user_id, start_at)
         select g, 3, now() from generate_series(1, 80) g;
         update app.time_entry set workspace_id = 10 where workspace_id = 80;
         update app.time_entry set workspace_id = 79 where workspace_id = 9;",
    )
    .await;
    let staged: Vec<(String, String)> = admin
        .query(
            "select op::text, workspace_id from audit_log.staging order by id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut expected: Vec<(String, String)> = (11..=80)
        .map(|w| ("I".to_string(), w.to_string()))
        .collect();
    // A move out of an audited workspace is recorded there; a move into one, in it.
    expected.push(("U".to_string(), "80".to_string()));
    expected.push(("U".to_string(), "79".to_string()));
    assert_eq!(staged, expected);
}

#[tokio::test]
async fn multi_row_updates_pair_each_rows_before_and_after() {
    let (_db, mut client, config) = installed_host().await;
    act(
        &mut client,
        Some("1"),
        "insert into app.time_entry (id, workspace_id, user_id, description, start_at)
         select 1000 + g, 1, 1, 'entry ' || g, now() from generate_series(1, 300) g",
    )
    .await;
    // Each row gets a different new value, and the key itself changes, so mispairing would show.
    act(
        &mut client,
        Some("1"),
        "update app.time_entry set description = 'moved ' || id, id = id + 5000 where id > 1000",
    )
    .await;
    drain(&mut client, &config).await;
    let mismatched = count(
        &client,
        "select count(*) from audit_log.report
         where action_code = 'time_entry.updated'
           and (previous_value ->> 'id')::int + 5000 <> (new_value ->> 'id')::int
            or (action_code = 'time_entry.updated'
                and new_value ->> 'description' <> 'moved ' || (previous_value ->> 'id'))",
    )
    .await;
    assert_eq!(mismatched, 0);
    assert_eq!(
        count(
            &client,
            "select count(*) from audit_log.report where action_code = 'time_entry.updated'"
        )
        .await,
        300
    );
}

#[tokio::test]
async fn report_changes_shows_one_row_per_changed_field() {
    let (_db, mut client, config) = installed_host().await;
    act(&mut client, Some("1"), "insert into app.time_entry (id, workspace_id, user_id, description, start_at, billable) values (50, 1, 1, 'x', '2026-11-02 09:00Z', true)").await;
    act(
        &mut client,
        Some("2"),
        "update app.time_entry set description = 'y', billable = false where id = 50",
    )
    .await;
    drain(&mut client, &config).await;
    let rows = client
        .query("select field, previous_value, new_value, author from audit_log.report_changes where workspace_id = '1' order by field", &[])
        .await
        .unwrap();
    let got: Vec<(String, Option<String>, Option<String>, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        got,
        [
            (
                "billable".into(),
                Some("true".into()),
                Some("false".into()),
                "Bob Builder".into()
            ),
            (
                "description".into(),
                Some("x".into()),
                Some("y".into()),
                "Bob Builder".into()
            ),
        ]
    );
}

#[tokio::test]
async fn author_names_survive_the_users_deletion_and_unknown_actors_show_their_id() {
    let (_db, mut client, config) = installed_host().await;
    act(
        &mut client,
        Some("3"),
        "insert into app.tag (workspace_id, name) values (1, 'by cleo')",
    )
    .await;
    drain(&mut client, &config).await;
    // Cleo leaves; her earlier and later-named changes keep her name.
    client
        .batch_execute(
            "delete from app.membership where user_id = 3; delete from app.app_user where id = 3",
        )
        .await
        .unwrap();
    act(
        &mut client,
        Some("3"),
        "insert into app.tag (workspace_id, name) values (1, 'after leaving')",
    )
    .await;
    act(
        &mut client,
        Some("no-such-user"),
        "insert into app.tag (workspace_id, name) values (1, 'ghost')",
    )
    .await;
    drain(&mut client, &config).await;
    let authors: Vec<String> = report(&client, "1")
        .await
        .iter()
        .map(|r| r.get("author"))
        .collect();
    assert_eq!(
        authors,
        ["Cleo Contractor", "Cleo Contractor", "#no-such-user"]
    );
}

#[tokio::test]
async fn host_schema_changes_never_fail_host_writes() {
    let (_db, mut client, config) = installed_host().await;
    for ddl in [
        "alter table app.time_entry add column note text",
        "alter table app.time_entry rename column description to title",
        "alter table app.time_entry drop column cost_rate",
        "alter table app.time_entry alter column hourly_rate type text",
    ] {
        client.batch_execute(ddl).await.unwrap();
        act(
            &mut client,
            Some("1"),
            "insert into app.time_entry (workspace_id, user_id, start_at) values (1, 1, now())",
        )
        .await;
        act(
            &mut client,
            Some("1"),
            "update app.time_entry set approved = not approved where workspace_id = 1",
        )
        .await;
    }
    // Even the workspace column renamed: the host write succeeds, and the change is kept aside.
    client
        .batch_execute("alter table app.tag rename column workspace_id to ws")
        .await
        .unwrap();
    act(
        &mut client,
        Some("1"),
        "insert into app.tag (ws, name) values (1, 'after rename')",
    )
    .await;

    let drained = drain(&mut client, &config).await;
    assert_eq!(drained.dead_lettered, 1);
    let reason: String = client
        .query_one("select reason from audit_log.dead_letter", &[])
        .await
        .unwrap()
        .get(0);
    assert!(reason.contains("\"workspace_id\""), "{reason}");
    assert_eq!(
        count(&client, "select count(*) from audit_log.staging").await,
        0
    );
    assert_eq!(
        count(
            &client,
            "select count(*) from audit_log.report where category = 'time_entries'"
        )
        .await,
        4 + 1 + 2 + 3 + 4,
        "every insert and update still recorded"
    );
    // The renamed name column: targets now have no name, but the detail still comes from the row.
    let renamed: Option<String> = client
        .query_one("select target from audit_log.report where category = 'time_entries' order by event_id desc limit 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(renamed, None);
}

#[tokio::test]
async fn a_project_deleted_before_the_daemon_saw_its_entries_is_still_named() {
    let (_db, mut client, config) = installed_host().await;
    let day =
        "insert into app.time_entry (id, workspace_id, user_id, description, project_id, start_at)
               values ({id}, 1, 2, 'on a short-lived project', {project}, now());
               delete from app.project where id = {project};";
    // Everything in one batch: the name comes from the batch's own rows.
    act(
        &mut client,
        Some("1"),
        "insert into app.project (id, workspace_id, client_id, name) values (60, 1, 1, 'Mayfly')",
    )
    .await;
    act(
        &mut client,
        Some("2"),
        &day.replace("{id}", "60").replace("{project}", "60"),
    )
    .await;
    // Across batches: the project was drained earlier, so the log remembers it.
    act(
        &mut client,
        Some("1"),
        "insert into app.project (id, workspace_id, client_id, name) values (61, 1, 1, 'Cicada')",
    )
    .await;
    drain(&mut client, &config).await;
    act(
        &mut client,
        Some("2"),
        &day.replace("{id}", "61").replace("{project}", "61"),
    )
    .await;
    drain(&mut client, &config).await;

    let rows = client
        .query(
            "select project, client from audit_log.report
             where action_code = 'time_entry.created' order by event_id",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(Option<String>, Option<String>)> =
        rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let named = |p: &str| (Some(p.to_string()), Some("Globex".to_string()));
    assert_eq!(got, [named("Mayfly"), named("Cicada")]);
}

#[tokio::test]
async fn a_renamed_name_column_costs_the_names_not_the_changes() {
    let (_db, mut client, config) = installed_host().await;
    client
        .batch_execute("set search_path = audit_log, pg_catalog")
        .await
        .unwrap();
    // One drainer throughout, as a running daemon has: its lookups were prepared before the DDL.
    let mut drainer = clockwatch::drain::Drainer::new(config.clone());
    let entry = |id: i32| {
        format!("insert into app.time_entry (id, workspace_id, user_id, project_id, start_at) values ({id}, 1, 1, 1, now())")
    };
    act(&mut client, Some("1"), &entry(80)).await;
    drainer.drain_all(&mut client).await.unwrap();
    client
        .batch_execute("alter table app.project rename column name to title")
        .await
        .unwrap();
    act(&mut client, Some("1"), &entry(81)).await;
    let first = drainer.drain_all(&mut client).await.unwrap();
    act(&mut client, Some("1"), &entry(82)).await;
    let second = drainer.drain_all(&mut client).await.unwrap();
    assert_eq!(
        (first.events, second.events),
        (1, 1),
        "the changes still become events"
    );
    let projects: Vec<Option<String>> = client
        .query(
            "select project from report where category = 'time_entries' order by event_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    // Before the rename: the name; after: what the log remembers of project 1.
    assert_eq!(
        projects,
        [
            Some("Apollo".to_string()),
            Some("Apollo".to_string()),
            Some("Apollo".to_string())
        ]
    );
    // The other lookups of the same batch still name what they name.
    let users: Vec<Option<String>> = client
        .query(
            "select \"user\" from report where category = 'time_entries' order by event_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(users, vec![Some("Ann Admin".to_string()); 3]);
}

/// Two tags created and the first one's staged change edited by hand (`set`, a SET list on
/// staging) before a drain, which must log the other and set this one aside. Returns the
/// reason it was set aside with and the change as kept in dead_letter.
async fn drain_with_first_change_edited(set: &str) -> (String, serde_json::Value) {
    let (_db, mut client, config) = installed_host().await;
    act(
        &mut client,
        Some("1"),
        "insert into app.tag (workspace_id, name) values (1, 'a'), (1, 'b')",
    )
    .await;
    client
        .batch_execute(&format!(
            "update audit_log.staging set {set}
             where id = (select min(id) from audit_log.staging)"
        ))
        .await
        .unwrap();
    let drained = drain(&mut client, &config).await;
    assert_eq!((drained.events, drained.dead_lettered), (1, 1));
    client
        .query_one("select reason, change from audit_log.dead_letter", &[])
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap()
}

/// A staged image that is not a record's text (only a hand-edited staging row can have one) is
/// set aside with its reason and the rest of the batch goes through.
#[tokio::test]
async fn a_staged_image_that_is_not_a_record_is_set_aside() {
    let (reason, kept) = drain_with_first_change_edited("new_row = '[1, 2]'").await;
    assert!(reason.starts_with("row image is not a record"), "{reason}");
    assert_eq!(kept["new_row"], json!("[1, 2]"));
}

/// An UPDATE of more than 1,024 rows is paired in chunks of 256 rows rather than one array per
/// table (which fails past 1 GB of row text): each staged change still holds one row before and
/// the same row after, across the chunks' boundaries.
#[tokio::test]
async fn an_update_of_more_than_1024_rows_pairs_each_row_with_itself() {
    let (_db, mut client, _config) = audited_tables(
        "create schema h;
         create table h.big (id int primary key, ws int, v int, body text);
         insert into h.big select g, 1, g, md5(g::text) from generate_series(1, 1300) g;",
        "[[source]]\ncategory = 'tags'\ntable = 'h.big'\nworkspace_column = 'ws'\n",
        "1",
    )
    .await;
    // Rows 1-1,299 change; row 1,300 does not (and is not staged).
    act(
        &mut client,
        Some("u"),
        "update h.big set v = case when id < 1300 then v * 1000 else v end",
    )
    .await;
    // Fields 1 and 3 of each image: the id, and v before and after.
    assert_eq!(
        count(
            &client,
            "select count(*) from audit_log.staging
             where op = 'U'
               and split_part(substr(old_row, 2), ',', 1) = split_part(substr(new_row, 2), ',', 1)
               and split_part(substr(old_row, 2), ',', 3)::int * 1000
                   = split_part(substr(new_row, 2), ',', 3)::int",
        )
        .await,
        1299
    );
    assert_eq!(staged(&client).await, 1299);
}

/// Staging has no CHECK on its operation code (a CHECK is prepared afresh for each capture
/// statement): a code no capture function writes, which only a hand-edited row can have, is set
/// aside with its reason and the rest of the batch goes through.
#[tokio::test]
async fn a_staged_change_with_an_unknown_operation_is_set_aside() {
    let (reason, _) = drain_with_first_change_edited("op = 'X'").await;
    assert_eq!(reason, "unknown operation code 'X'");
}

/// A host trigger's change whose only primary changed ignored columns (and so made no event)
/// has nothing to point at: it is its actor's, not a linked change pointing at no event.
#[tokio::test]
async fn a_change_whose_primary_made_no_event_is_its_actors() {
    let (_db, mut client, config) = installed_host().await;
    client
        .batch_execute(
            "insert into app.time_entry (id, workspace_id, user_id, task_id, start_at) values (40, 1, 1, 1, now());
             create function app.touch_task() returns trigger language plpgsql as $$
             begin update app.task set name = name || '!' where id = new.task_id; return null; end $$;
             create trigger touch_task after update on app.time_entry for each row execute function app.touch_task();",
        )
        .await
        .unwrap();
    act(
        &mut client,
        Some("1"),
        "update app.time_entry set updated_at = now() + interval '1 minute' where id = 40",
    )
    .await;
    drain(&mut client, &config).await;
    let rows = report(&client, "1").await;
    let task = rows
        .iter()
        .find(|r| r.get::<_, String>("action_code") == "task.updated")
        .expect("task updated");
    assert_eq!(task.get::<_, String>("author"), "Ann Admin");
    assert!(task.get::<_, Option<i64>>("caused_by").is_none());
    // Made its actor's, it keeps the row it changed.
    assert!(task
        .get::<_, Option<serde_json::Value>>("row_data")
        .is_some());
    assert_eq!(
        count(
            &client,
            "select count(*) from audit_log.events where linked"
        )
        .await,
        0
    );
}

//! Roles below the owner cannot forge, erase or silence the log. Each test connects as the role
//! that tries the attack (the application's role, a reporting role with exactly the README's
//! grants, the daemon role) and checks what the log holds afterwards.

use crate::support::*;

/// The README's grants for a reporting role, read from the README itself, so that the test
/// checks what a reader is told to run.
fn readme_reporting_grants(role: &str) -> String {
    let readme = include_str!("../../README.md");
    let after = readme
        .split_once("report`, `clockwatch export`, `events_between`) with only:")
        .expect("README names the reporting grants")
        .1;
    let block = after
        .split_once("```sql\n")
        .unwrap()
        .1
        .split_once("```")
        .unwrap()
        .0;
    block.replace(" to reports;", &format!(" to {role};"))
}

/// A login role with exactly the README's reporting grants.
pub async fn reporting_role(db: &TestDb, admin: &tokio_postgres::Client) -> String {
    let role = unique_role("reports");
    admin
        .batch_execute(&format!(
            "create role {role} login; {}",
            readme_reporting_grants(&role)
        ))
        .await
        .unwrap();
    db.url_as(&role)
}

/// A login role that owns the host's tables, as an application's migration role does.
async fn owning_app_role(db: &TestDb, admin: &tokio_postgres::Client) -> (String, String) {
    let role = unique_role("app_owner");
    admin
        .batch_execute(&format!(
            "create role {role} login;
             grant usage, create on schema app to {role};
             alter table app.app_user owner to {role};"
        ))
        .await
        .unwrap();
    (role.clone(), db.url_as(&role))
}

/// `verify` exits 1 saying `verify_says`, and `status` exits 2 naming pruning inside the
/// retention period.
fn verify_and_status_name(db: &TestDb, verify_says: &str) {
    let verify = cli(&db.url, &["verify", "--workspace", "1"]);
    let out = String::from_utf8_lossy(&verify.stdout).to_string()
        + &String::from_utf8_lossy(&verify.stderr);
    assert_eq!(verify.status.code(), Some(1), "{out}");
    assert!(out.contains(verify_says), "{out}");
    let status = cli(&db.url, &["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert_eq!(status.status.code(), Some(2), "{text}");
    assert!(text.contains("younger than the retention"), "{text}");
}

fn sqlstate(err: &tokio_postgres::Error) -> Option<&str> {
    err.code().map(|c| c.code())
}

#[tokio::test]
async fn a_reporting_role_cannot_attach_capture_to_a_table_of_its_own_to_forge_events() {
    let (db, admin, _config) = installed_host().await;
    let reports = connect(&reporting_role(&db, &admin).await).await;
    reports
        .batch_execute(
            "create temp table te (id bigint, workspace_id bigint, user_id bigint,
                                   description text, start_at timestamptz)",
        )
        .await
        .unwrap();
    let capture: String = admin
        .query_one(
            "select 'audit_log.' || function || '()' from audit_log.captured_table
             where relid = 'app.time_entry'::regclass",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    for function in [capture.as_str(), "audit_log.count_linked()"] {
        let err = reports
            .batch_execute(&format!(
                "create trigger forge after insert on te referencing new table as clockwatch_new
                 for each statement execute function {function}"
            ))
            .await
            .expect_err(function);
        assert_eq!(sqlstate(&err), Some("42501"), "{function}: {err:?}");
    }
    // Whatever the role does next, nothing reaches staging.
    reports
        .batch_execute(
            "begin; select set_config('clockwatch.actor', '1', true);
             insert into te values (55, 1, 1, 'FORGED', now()); commit;",
        )
        .await
        .unwrap();
    assert_eq!(staged(&admin).await, 0);
}

/// Every function in Clockwatch's schema, with who besides its owner may execute it. SECURITY
/// DEFINER functions run as the owner, so each is executable by exactly the roles that need it.
#[tokio::test]
async fn every_function_is_executable_by_exactly_the_roles_that_need_it() {
    let db = TestDb::with_host().await;
    let mut admin = db.client().await;
    let mut config = example_config();
    let (daemon, _) = with_daemon_role(&db, &mut admin, &mut config).await;
    let rows = admin
        .query(
            "select case when p.proname ~ '^capture_[0-9]+$' then 'capture_<table>'
                        else p.proname::text end as name,
                    p.prosecdef,
                    coalesce(string_agg(case when a.grantee = 0 then 'PUBLIC'
                                             else pg_get_userbyid(a.grantee)::text end, ','
                                        order by a.grantee), '')
             from pg_proc p
             left join lateral aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                    on a.privilege_type = 'EXECUTE' and a.grantee <> p.proowner
             where p.pronamespace = 'audit_log'::regnamespace
             group by p.oid, p.proname, p.prosecdef
             order by name",
            &[],
        )
        .await
        .unwrap();
    let actual: Vec<(String, bool, String)> = rows
        .iter()
        .map(|r| {
            let grantees: String = r.get(2);
            (r.get(0), r.get(1), grantees.replace(&daemon, "daemon"))
        })
        .collect();
    // (function, SECURITY DEFINER, who may execute it besides the owner)
    let expected: &[(&str, bool, &str)] = &[
        ("action_codes", false, "PUBLIC"),
        ("actor_sql", false, "PUBLIC"),
        ("append_events", true, "daemon"),
        ("attach", false, "PUBLIC"),
        ("attach_link", false, "PUBLIC"),
        ("attached_tables", false, "PUBLIC"),
        ("author_ids", false, "PUBLIC"),
        ("before_prune", true, ""),
        // One capture function per audited table (the example config audits seven).
        ("capture_<table>", true, ""),
        ("capture_<table>", true, ""),
        ("capture_<table>", true, ""),
        ("capture_<table>", true, ""),
        ("capture_<table>", true, ""),
        ("capture_<table>", true, ""),
        ("capture_<table>", true, ""),
        ("capture_sql", false, "PUBLIC"),
        ("chain_heads", true, "daemon"),
        ("check_categories", false, "PUBLIC"),
        ("claim_alone", true, "daemon"),
        ("claim_rest_alone", true, "daemon"),
        ("claim_rest_together", true, "daemon"),
        ("claim_together", true, "daemon"),
        ("compile", false, "PUBLIC"),
        ("compile_categories", false, "PUBLIC"),
        ("copy_shapes", true, "daemon"),
        ("count_linked", true, ""),
        ("create_triggers", false, "PUBLIC"),
        ("detach", false, "PUBLIC"),
        ("disable", false, "PUBLIC"),
        ("enable", false, "PUBLIC"),
        ("ensure_partition", true, "daemon"),
        ("ensure_partitions_ahead", true, "daemon"),
        ("event_content", false, "PUBLIC"),
        ("event_partitions", false, "PUBLIC,daemon"),
        ("events_between", false, "PUBLIC"),
        ("field_json", false, "PUBLIC"),
        ("filter_current", false, "PUBLIC"),
        ("grant_daemon", false, "PUBLIC"),
        ("host_code_free", false, "PUBLIC"),
        // Reads the [workspaces] table with the caller's rights (the reporting role's).
        ("host_workspace", false, "PUBLIC"),
        ("image_columns", false, "PUBLIC"),
        ("joined_actor", false, "PUBLIC"),
        ("json_field", false, "PUBLIC"),
        ("link_sql", false, "PUBLIC"),
        ("linked_count", true, ""),
        ("linked_rows", false, "PUBLIC"),
        ("linked_setting", false, "PUBLIC"),
        ("lookup_table", false, "daemon"),
        ("maintain", true, "daemon"),
        ("pinned_sql", false, "PUBLIC"),
        ("printing_setting", false, "PUBLIC"),
        ("printing_settings", false, "PUBLIC"),
        ("prune", true, "daemon"),
        ("record_shape", false, "PUBLIC"),
        // Reads what the report views show (a workspace's name), for reports in a log database.
        ("remembered_workspace", true, "PUBLIC"),
        ("report_bound", false, "PUBLIC"),
        ("report_timezone", false, "PUBLIC"),
        ("row_json", false, "PUBLIC"),
        ("row_sql", false, "PUBLIC"),
        ("seen_sql", false, "PUBLIC"),
        ("session_code_free", false, "PUBLIC"),
        ("set_aside_first", true, "daemon"),
        ("shape_is_current", false, "PUBLIC"),
        ("shape_signature", false, "PUBLIC"),
        ("stamp_known_name", false, "PUBLIC"),
        ("take_dead_letters", true, "daemon"),
        ("take_linked", false, "PUBLIC"),
        ("tally_events", false, "PUBLIC"),
        ("workspace_test", false, "PUBLIC"),
    ];
    let expected: Vec<(String, bool, String)> = expected
        .iter()
        .map(|(f, d, g)| (f.to_string(), *d, g.to_string()))
        .collect();
    assert_eq!(actual, expected);
}

#[tokio::test]
async fn the_daemon_role_cannot_prune_events_inside_the_retention_period() {
    let db = TestDb::with_host().await;
    let mut admin = db.client().await;
    let mut config = example_config();
    let (_, daemon_url) = with_daemon_role(&db, &mut admin, &mut config).await;
    enable_all(&admin, &config, "1").await;
    act(
        &mut admin,
        Some("1"),
        "insert into app.tag (workspace_id, name) values (1, 'kept')",
    )
    .await;
    drain(&mut admin, &config).await;

    let as_daemon = connect(&daemon_url).await;
    for attack in [
        "select * from audit_log.prune(now() + interval '100 years')",
        "select audit_log.maintain(now() + interval '100 years')",
    ] {
        as_daemon.batch_execute(attack).await.unwrap();
    }
    let err = as_daemon
        .batch_execute("select audit_log.ensure_partitions_ahead(now(), 100000)")
        .await
        .expect_err("a flood of partitions");
    assert_eq!(sqlstate(&err), Some("22023"), "{err:?}");
    assert_eq!(
        count(&admin, "select count(*) from audit_log.events").await,
        1
    );
    let verify = cli(&db.url, &["verify", "--workspace", "1"]);
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    // The daemon keeps writing: the current month's partition is still there.
    act(
        &mut admin,
        Some("1"),
        "insert into app.tag (workspace_id, name) values (1, 'after')",
    )
    .await;
    drain(&mut admin, &config).await;
    assert_eq!(
        count(&admin, "select count(*) from audit_log.events").await,
        2
    );
}

/// Removing events younger than the retention, even the whole log and by the owner's own
/// pruning machinery, is named by `verify` (exit 1) and `status` (exit 2).
#[tokio::test]
async fn erasing_the_log_inside_the_retention_period_is_detected() {
    let (db, mut admin, config) = installed_host().await;
    act(
        &mut admin,
        Some("1"),
        "insert into app.tag (workspace_id, name) values (1, 'erased')",
    )
    .await;
    drain(&mut admin, &config).await;
    // What the unbounded prune did: anchor the chain at its newest event, then drop the month.
    let partition: String = admin
        .query_one(
            "select partition_name from audit_log.event_partitions() where starts <= now() and ends > now()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    admin
        .batch_execute(&format!(
            "select audit_log.before_prune('{partition}', now() + interval '100 years');
             delete from audit_log.events;"
        ))
        .await
        .unwrap();
    verify_and_status_name(&db, "inside the retention period");
}

/// Run the daemon (as `daemon_role`) while Bob adds a tag, whose author it names from the
/// authors table, until the event is written; then how many rows the table owner's spy
/// (`app.seen`) recorded as the daemon.
async fn spied_on_the_daemon(
    admin: &mut tokio_postgres::Client,
    config: &clockwatch::Config,
    daemon_url: &str,
    daemon_role: &str,
) -> i64 {
    let mut daemon = start_daemon(config, daemon_url);
    daemon.ready().await;
    act(
        admin,
        Some("2"),
        "insert into app.tag (workspace_id, name) values (1, 'named by Bob')",
    )
    .await;
    eventually(
        "the change is recorded",
        std::time::Duration::from_secs(20),
        || async { count(admin, "select count(*) from audit_log.events").await == 1 },
    )
    .await;
    daemon.stop().await;
    count(
        admin,
        &format!("select count(*) from app.seen where by_role = '{daemon_role}'"),
    )
    .await
}

/// A row-level-security policy on a host table the daemon reads for names cannot run the
/// application's code with the daemon's rights.
#[tokio::test]
async fn a_policy_on_a_host_table_does_not_run_as_the_daemon() {
    let db = TestDb::with_host().await;
    let mut admin = db.client().await;
    let mut config = example_config();
    let (daemon_role, daemon_url) = with_daemon_role(&db, &mut admin, &mut config).await;
    enable_all(&admin, &config, "1").await;
    let (_, app_url) = owning_app_role(&db, &admin).await;
    let app = connect(&app_url).await;
    app.batch_execute(
        "create table app.seen (by_role text);
         grant insert on app.seen to public;
         create function app.spy() returns boolean language plpgsql as $$
         begin
             insert into app.seen values (current_user);
             return true;
         end $$;
         alter table app.app_user enable row level security;
         create policy spy on app.app_user using (app.spy());",
    )
    .await
    .unwrap();

    let spied = spied_on_the_daemon(&mut admin, &config, &daemon_url, &daemon_role).await;
    assert_eq!(spied, 0, "the policy's function ran as the daemon");
    // The lookup under the policy fails instead; the author shows as the id, marked as one.
    let author: String = admin
        .query_one("select author from audit_log.report", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(author, "#2");
}

#[tokio::test]
async fn a_view_put_in_place_of_a_looked_up_table_never_runs_as_the_daemon() {
    let db = TestDb::with_host().await;
    let mut admin = db.client().await;
    let mut config = example_config();
    let (daemon_role, daemon_url) = with_daemon_role(&db, &mut admin, &mut config).await;
    enable_all(&admin, &config, "1").await;
    let (_, owner_url) = owning_app_role(&db, &admin).await;
    let owner = connect(&owner_url).await;

    let mut daemon = start_daemon(&config, &daemon_url);
    daemon.ready().await;
    act(
        &mut admin,
        Some("2"),
        "insert into app.tag (workspace_id, name) values (1, 'before')",
    )
    .await;
    eventually(
        "the first change is recorded",
        std::time::Duration::from_secs(20),
        || async { count(&admin, "select count(*) from audit_log.events").await == 1 },
    )
    .await;

    // The authors table swapped, under the daemon's prepared lookup, for a view whose function
    // would run as whoever reads it: it deletes what waits in staging, where the daemon may.
    owner
        .batch_execute(&format!(
            "create table app.seen (by_role text);
             grant insert on app.seen to public;
             create function app.spy() returns boolean language plpgsql as $$
             begin
                 insert into app.seen values (current_user);
                 delete from audit_log.staging;
                 return true;
             end $$;
             grant execute on function app.spy() to public;
             alter table app.app_user rename to app_user_kept;
             create view app.app_user as select * from app.app_user_kept where app.spy();
             grant select on app.app_user to {daemon_role};"
        ))
        .await
        .unwrap();
    act(
        &mut admin,
        Some("2"),
        "insert into app.tag (workspace_id, name) values (1, 'after')",
    )
    .await;
    eventually(
        "the second change is recorded",
        std::time::Duration::from_secs(20),
        || async { count(&admin, "select count(*) from audit_log.events").await == 2 },
    )
    .await;
    daemon.stop().await;
    assert_eq!(
        count(&admin, "select count(*) from app.seen").await,
        0,
        "the view's function ran"
    );
    // The name the log already knew is kept.
    let authors: Vec<String> = column(
        &admin,
        "select author from audit_log.report order by event_id",
    )
    .await;
    assert_eq!(authors, ["Bob Builder", "Bob Builder"]);

    // `status` names the view, install refuses it.
    let out = cli(&db.url, &["status"]);
    assert_eq!(out.status.code(), Some(2));
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("authors: table app.app_user is a view, not a table"),
        "{text}"
    );
    let err = clockwatch::install::install(&mut admin, &config)
        .await
        .expect_err("install over a view")
        .to_string();
    assert!(err.contains("is a view, not a table"), "{err}");
}

/// As the daemon role: append one event to workspace 1's chain, correctly chained from its head,
/// `age` before now, into a partition created for it.
async fn append_backdated(
    daemon: &mut tokio_postgres::Client,
    age: &str,
) -> Result<(), tokio_postgres::Error> {
    let tx = daemon.transaction().await?;
    tx.batch_execute(&format!(
        "select audit_log.ensure_partition(now() - interval '{age}');
         with h as (select * from audit_log.chain_heads(array['1'])),
         e as (select h.seq, h.hash,
                      jsonb_populate_record(null::audit_log.events, jsonb_build_object(
                          'event_id', 900000, 'occurred_at', now() - interval '{age}',
                          'workspace_id', '1', 'category', 'tags', 'action_code', 'tag.deleted',
                          'action', 'Deleted tag', 'author', 'System', 'target_id', '7',
                          'linked', false, 'txid', 1, 'source', 'app.tag', 'details', '{{}}',
                          'chain_seq', h.seq + 1, 'prev_hash', h.hash)) as ev
               from h)
         select audit_log.append_events(
             array[(ev).event_id], array[(ev).occurred_at], array['1'], array['tags'],
             array['tag.deleted'], array['Deleted tag'], array[null]::text[], array[null]::text[],
             array['System'], array['7'], array[null]::text[], array[null]::bigint[], array[false],
             array[1]::bigint[], array['app.tag'], array[null]::json[], array[null]::json[],
             array[null]::text[], array[null]::bigint[], array['{{}}']::json[], array[seq + 1],
             array[hash],
             array[sha256(hash || sha256(convert_to(audit_log.event_content(ev), 'UTF8')))])
         from e;"
    ))
    .await?;
    tx.commit().await
}

#[tokio::test]
async fn a_backdated_event_cannot_move_the_chain_anchor_past_the_real_events() {
    let db = TestDb::with_host().await;
    let mut admin = db.client().await;
    let mut config = example_config();
    let (_, daemon_url) = with_daemon_role(&db, &mut admin, &mut config).await;
    enable_all(&admin, &config, "1").await;
    act(
        &mut admin,
        Some("1"),
        "insert into app.tag (workspace_id, name) values (1, 'real')",
    )
    .await;
    drain(&mut admin, &config).await;
    let mut daemon = connect(&daemon_url).await;

    // Older than the retention: refused.
    let err = append_backdated(&mut daemon, "400 days").await.unwrap_err();
    let message = err
        .as_db_error()
        .map(|e| e.message().to_string())
        .unwrap_or_default();
    assert!(message.contains("older than the retention"), "{err:?}");

    // Just inside it, accepted (a long transaction's events come late); when it expires (the
    // owner shortening the retention stands in for the months going by) prune anchors the
    // chain at it, past the real event written before it.
    append_backdated(&mut daemon, "364 days").await.unwrap();
    admin
        .batch_execute("update audit_log.settings set retention = '300 days'")
        .await
        .unwrap();
    daemon
        .batch_execute("select * from audit_log.prune()")
        .await
        .unwrap();
    assert_eq!(
        count(
            &admin,
            "select seq from audit_log.chain_anchor where workspace_id = '1'"
        )
        .await,
        2
    );
    verify_and_status_name(&db, "a backdated event");
}

#[tokio::test]
async fn the_daemon_role_cannot_fill_the_catalog_with_partitions() {
    let db = TestDb::with_host().await;
    let mut admin = db.client().await;
    let mut config = example_config();
    let (_, daemon_url) = with_daemon_role(&db, &mut admin, &mut config).await;
    let daemon = connect(&daemon_url).await;
    let before = count(&admin, "select count(*) from audit_log.event_partitions()").await;
    for at in [
        "now() - interval '20 years'",
        "now() + interval '20 years'",
        "'infinity'::timestamptz",
    ] {
        let err = daemon
            .batch_execute(&format!("select audit_log.ensure_partition({at})"))
            .await
            .expect_err(at);
        assert_eq!(err.code().map(|c| c.code()), Some("22023"), "{at}: {err:?}");
    }
    // What it needs stays open to it: this month, the next, the retention's first.
    daemon
        .batch_execute(
            "select audit_log.ensure_partition(now() + interval '1 month');
             select audit_log.ensure_partition(now() - interval '365 days');",
        )
        .await
        .unwrap();
    assert!(count(&admin, "select count(*) from audit_log.event_partitions()").await <= before + 2);
}

#[tokio::test]
async fn a_host_workspace_named_star_stays_in_its_own_report() {
    let (db, mut admin, config) = audited_tables(
        "create schema st;
         create table st.tag (id bigint primary key, ws text not null, name text not null);",
        r#"
[[source]]
category = "tags"
table = "st.tag"
workspace_column = "ws"
name_column = "name"
"#,
        "*",
    )
    .await;
    // The application's role writes a row whose workspace is the text '*'.
    let mut app = dml_role(&db, &admin, "st").await;
    act(
        &mut app,
        Some("1"),
        "insert into st.tag values (1, '*', 'star row'), (2, 'a', 'a row')",
    )
    .await;
    act(&mut admin, Some("1"), "truncate st.tag").await;
    drain(&mut admin, &config).await;
    let report = |ws: &'static str| {
        let admin = &admin;
        async move {
            column::<String>(
                admin,
                &format!(
                    "select action || ' ' || coalesce(target, '') from audit_log.events_between('{ws}', now() - interval '1 day', now() + interval '1 day')
                     order by event_id"
                ),
            )
            .await
        }
    };
    assert_eq!(
        report("a").await,
        ["Created tag a row", "Removed all tags st.tag"]
    );
    assert_eq!(report("b").await, ["Removed all tags st.tag"]);
    assert_eq!(
        report("*").await,
        ["Created tag star row", "Removed all tags st.tag"]
    );
}

/// A temp table of the application's session whose trigger edits the time entry each inserted
/// row names: the application's role may create temp tables, with triggers of its own.
async fn relay(app: &tokio_postgres::Client) {
    app.batch_execute(
        "create temp table relay (id bigint);
         create function pg_temp.relay() returns trigger language plpgsql as $$
         begin
             update app.time_entry set description = 'edited through a relay' where id = new.id;
             return null;
         end $$;
         create trigger relay after insert on relay for each row execute function pg_temp.relay();",
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_trigger_on_the_applications_own_table_does_not_pass_its_change_off_as_linked() {
    let (db, mut admin, config) = installed_host().await;
    let mut app = app_role(&db, &admin).await;
    relay(&app).await;
    act(
        &mut app,
        Some("2"),
        "insert into app.time_entry (id, workspace_id, user_id, description, start_at)
             values (500, 1, 2, 'mine', '2026-11-02 09:00Z')",
    )
    .await;
    act(&mut app, Some("2"), "insert into relay values (500)").await;
    drain(&mut admin, &config).await;
    let rows: Vec<(String, bool, Option<i64>)> = admin
        .query(
            "select author, linked, caused_by from audit_log.events where target_id = '500' order by event_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        rows,
        [
            ("Bob Builder".to_string(), false, None),
            ("Bob Builder".to_string(), false, None)
        ]
    );
}

/// The same relay inside one statement that also changes an audited row (a CTE): a change a
/// captured change caused is in the same statement, and still the relay's write is its own.
#[tokio::test]
async fn a_relay_in_the_same_statement_as_a_real_change_is_still_the_sessions_own() {
    let (db, mut admin, config) = installed_host().await;
    let mut app = app_role(&db, &admin).await;
    relay(&app).await;
    act(
        &mut app,
        Some("2"),
        "insert into app.time_entry (id, workspace_id, user_id, description, start_at)
             values (500, 1, 2, 'mine', '2026-11-02 09:00Z'), (501, 1, 2, 'other', '2026-11-02 10:00Z')",
    )
    .await;
    act(
        &mut app,
        Some("2"),
        "with real as (update app.time_entry set approved = true where id = 501 returning id)
         insert into relay select 500 from real",
    )
    .await;
    drain(&mut admin, &config).await;
    let rows: Vec<(String, String, bool)> = admin
        .query(
            "select target_id, author, linked from audit_log.events where action = 'Updated time entry' order by target_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        rows,
        [
            ("500".to_string(), "Bob Builder".to_string(), false),
            ("501".to_string(), "Bob Builder".to_string(), false)
        ]
    );
}

/// Code of the session's own run by PostgreSQL's own foreign-key triggers: a rule that rewrites
/// the action of a foreign key between two temp tables, or a temp table's CHECK calling a
/// function in pg_temp. The change it makes is counted below the session's statement like a
/// real action's, and is still the session's own; so is one whose only primary changed an
/// ignored column (no event to point at).
#[tokio::test]
async fn code_a_session_hides_in_its_temp_tables_foreign_keys_is_still_its_own() {
    let (db, mut admin, config) = installed_host().await;
    let setup = app_role(&db, &admin).await;
    setup
        .batch_execute(
            "insert into app.time_entry (id, workspace_id, user_id, description, start_at)
                 values (600, 1, 2, 'a', '2026-11-02 09:00Z'), (601, 1, 2, 'b', '2026-11-02 10:00Z');",
        )
        .await
        .unwrap();
    let attacks = [
        // A rule on the child of a temp foreign key: the cascade's DELETE runs it.
        "create temp table tp (id int primary key);
         create temp table tc (id int, pid int references tp on delete cascade);
         create rule r as on delete to tc do also
             update app.time_entry set hourly_rate = 999 where id = 600;",
        // A CHECK calling a pg_temp function: the SET NULL action's UPDATE runs it.
        "create function pg_temp.f(x int) returns boolean language plpgsql as $$
         begin
             if x is null then update app.time_entry set approved = true where id = 601; end if;
             return true;
         end $$;
         create temp table tp (id int primary key);
         create temp table tc (id int, pid int references tp on delete set null check (pg_temp.f(pid)));",
    ];
    for ddl in attacks {
        let mut app = app_role(&db, &admin).await;
        app.batch_execute(ddl).await.unwrap();
        app.batch_execute("insert into tp values (1); insert into tc values (1, 1);")
            .await
            .unwrap();
        // The primary: an own change in the same statement, to an ignored column only.
        act(
            &mut app,
            Some("2"),
            "with own as (update app.time_entry set updated_at = now() where id in (600, 601) returning 1)
             delete from tp where id = 1",
        )
        .await;
    }
    drain(&mut admin, &config).await;
    let rows: Vec<(String, String, bool, Option<i64>)> = admin
        .query(
            "select target_id, author, linked, caused_by from audit_log.events
             where action = 'Updated time entry' order by target_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        rows,
        [
            ("600".to_string(), "Bob Builder".to_string(), false, None),
            ("601".to_string(), "Bob Builder".to_string(), false, None)
        ]
    );
}

#[tokio::test]
async fn an_excluded_column_renamed_stays_excluded_and_status_says_so() {
    let (db, mut admin, config) = installed_host().await;
    let role = unique_role("membership_owner");
    admin
        .batch_execute(&format!(
            "create role {role} login;
             grant usage on schema app to {role};
             alter table app.membership owner to {role};"
        ))
        .await
        .unwrap();
    let mut owner = connect(&db.url_as(&role)).await;
    owner
        .batch_execute("alter table app.membership rename column pin_hash to pin")
        .await
        .unwrap();
    act(
        &mut owner,
        Some("1"),
        "update app.membership set pin = 'SECRET-PIN-4711', name = 'Bob B.' where id = 2",
    )
    .await;
    drain(&mut admin, &config).await;
    assert_eq!(
        count(
            &admin,
            "select count(*) from audit_log.events where target_id = '2' and category = 'users'"
        )
        .await,
        1,
        "the change is logged"
    );
    assert_eq!(
        count(
            &admin,
            "select count(*) from audit_log.events
             where concat(row_image, previous_value::text, new_value::text, details::text) like '%SECRET-PIN%'"
        )
        .await,
        0,
        "the renamed PIN reached the log"
    );
    let status = cli(&db.url, &["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert_eq!(status.status.code(), Some(2), "{text}");
    assert!(
        text.contains("exclude_columns: column \"pin_hash\" not found in app.membership (renamed? it is still excluded"),
        "{text}"
    );
}

#[tokio::test]
async fn writes_straight_to_a_partition_are_captured_and_a_new_partition_is_reported() {
    const CONFIG: &str = r#"
[[source]]
category = "tags"
table = "pt.tag"
workspace_column = "ws"
name_column = "name"
"#;
    let (db, mut admin, config) = audited_tables(
        "create schema pt;
         create table pt.tag (id bigint not null, ws text not null, name text) partition by list (ws);
         create table pt.tag_a partition of pt.tag for values in ('a');
         create table pt.tag_rest partition of pt.tag default partition by hash (id);
         create table pt.tag_rest_0 partition of pt.tag_rest for values with (modulus 2, remainder 0);
         create table pt.tag_rest_1 partition of pt.tag_rest for values with (modulus 2, remainder 1);",
        CONFIG,
        "*",
    )
    .await;
    let role = unique_role("pt_app");
    admin
        .batch_execute(&format!(
            "create role {role} login; grant usage on schema pt to {role};
             grant select, insert, update, delete on all tables in schema pt to {role};"
        ))
        .await
        .unwrap();
    let mut app = connect(&db.url_as(&role)).await;
    act(
        &mut app,
        Some("1"),
        "insert into pt.tag values (1, 'a', 'through the parent')",
    )
    .await;
    act(
        &mut app,
        Some("1"),
        "insert into pt.tag_a values (2, 'a', 'straight to a partition')",
    )
    .await;
    act(
        &mut app,
        Some("1"),
        "insert into pt.tag_rest_1 values (3, 'b', 'straight to a sub-partition')",
    )
    .await;
    act(
        &mut app,
        Some("1"),
        "update pt.tag_a set name = 'renamed in place' where id = 2",
    )
    .await;
    act(
        &mut app,
        Some("1"),
        "delete from pt.tag_rest_1 where id = 3",
    )
    .await;
    drain(&mut admin, &config).await;
    let events: Vec<String> = column(
        &admin,
        "select action || ': ' || coalesce(target, '') from audit_log.events order by event_id",
    )
    .await;
    assert_eq!(
        events,
        [
            "Created tag: through the parent",
            "Created tag: straight to a partition",
            "Created tag: straight to a sub-partition",
            "Updated tag: renamed in place",
            "Deleted tag: straight to a sub-partition"
        ]
    );

    // A partition created after install is named by status until install attaches to it.
    admin
        .batch_execute("create table pt.tag_c partition of pt.tag for values in ('c')")
        .await
        .unwrap();
    let (_dir, path) = config_file(CONFIG);
    let status = cli_at(&db.url, &path, &["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert_eq!(status.status.code(), Some(2), "{text}");
    assert!(
        text.contains("partition pt.tag_c of pt.tag has no capture triggers"),
        "{text}"
    );
    cli_with(&db.url, &path, &["install"]);
    act(
        &mut admin,
        Some("1"),
        "insert into pt.tag_c values (4, 'c', 'in the new partition')",
    )
    .await;
    drain(&mut admin, &config).await;
    assert_eq!(
        count(
            &admin,
            "select count(*) from audit_log.events where target_id = '4'"
        )
        .await,
        1
    );
}

/// Any login role can take any advisory lock; none can hold the daemon's partitions or pruning
/// with one.
#[tokio::test]
async fn no_role_below_the_owner_can_hold_the_daemons_maintenance() {
    let db = TestDb::with_host().await;
    let mut admin = db.client().await;
    let mut config = example_config();
    let (_, daemon_url) = with_daemon_role(&db, &mut admin, &mut config).await;
    let reports = connect(&reporting_role(&db, &admin).await).await;
    reports
        .batch_execute(
            "select pg_advisory_lock(hashtext('clockwatch partition audit_log'));
             select pg_advisory_lock(hashtext('clockwatch prune audit_log'));",
        )
        .await
        .unwrap();
    let err = reports
        .batch_execute("select from audit_log.job_lock for update")
        .await
        .expect_err("the job locks are the owner's");
    assert_eq!(sqlstate(&err), Some("42501"), "{err:?}");
    let daemon = connect(&daemon_url).await;
    let done = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        daemon
            .batch_execute(
                "select audit_log.ensure_partition(now() + interval '3 months');
                 select audit_log.maintain(now());",
            )
            .await
    })
    .await;
    assert!(matches!(done, Ok(Ok(()))), "{done:?}");
    assert_eq!(
        count(
            &admin,
            "select count(*) from audit_log.maintenance where job = 'prune'"
        )
        .await,
        1,
        "maintain pruned"
    );
}

/// A role that creates Clockwatch's schema before install, or may create objects in it, could put
/// its own functions ahead of pg_catalog's on every Clockwatch function's search_path: install
/// refuses such a schema.
#[tokio::test]
async fn install_refuses_a_schema_another_role_owns_or_may_create_in() {
    let db = TestDb::with_host().await;
    let mut admin = db.client().await;
    let config = example_config();
    let role = unique_role("squatter");
    admin
        .batch_execute(&format!(
            "create role {role} login;
             grant create on database {} to {role};",
            db.url.rsplit('/').next().unwrap()
        ))
        .await
        .unwrap();
    let squatter = connect(&db.url_as(&role)).await;
    squatter
        .batch_execute("create schema audit_log")
        .await
        .unwrap();
    let err = clockwatch::install::install(&mut admin, &config)
        .await
        .expect_err("a schema another role owns")
        .to_string();
    assert!(
        err.contains(&format!(
            "schema \"audit_log\" exists and belongs to {role}"
        )),
        "{err}"
    );
    squatter
        .batch_execute("drop schema audit_log")
        .await
        .unwrap();
    admin
        .batch_execute(&format!(
            "create schema audit_log; grant create on schema audit_log to {role};"
        ))
        .await
        .unwrap();
    let err = clockwatch::install::install(&mut admin, &config)
        .await
        .expect_err("a schema another role may create in")
        .to_string();
    assert!(
        err.contains(&format!("{role} may create objects in it")),
        "{err}"
    );
    admin
        .batch_execute(&format!("revoke create on schema audit_log from {role}"))
        .await
        .unwrap();
    install(&mut admin, &config).await;
}

/// PostgreSQL evaluates an IMMUTABLE function in a partial index's predicate when it plans a
/// query of the table: a table owner's index must not run its code as the daemon when the daemon
/// looks names up there.
#[tokio::test]
async fn an_index_predicate_of_the_table_owners_never_runs_as_the_daemon() {
    let db = TestDb::with_host().await;
    let mut admin = db.client().await;
    let mut config = example_config();
    let (daemon_role, daemon_url) = with_daemon_role(&db, &mut admin, &mut config).await;
    enable_all(&admin, &config, "1").await;
    let (_, owner_url) = owning_app_role(&db, &admin).await;
    let owner = connect(&owner_url).await;
    let mut daemon = start_daemon(&config, &daemon_url);
    daemon.ready().await;
    owner
        .batch_execute(
            "create table app.seen (by_role text);
             grant insert on app.seen to public;
             create function app.spy() returns boolean language plpgsql as $$
             begin
                 insert into app.seen values (current_user);
                 begin
                     delete from audit_log.staging;
                 exception when insufficient_privilege then null;
                 end;
                 return true;
             end $$;
             grant execute on function app.spy() to public;
             create function app.pred() returns boolean language plpgsql immutable as $$
             begin return app.spy(); end $$;
             grant execute on function app.pred() to public;
             create index app_user_spy on app.app_user (id) where app.pred();",
        )
        .await
        .unwrap();
    act(
        &mut admin,
        Some("2"),
        "insert into app.tag (workspace_id, name) values (1, 'after the index')",
    )
    .await;
    act(
        &mut admin,
        Some("1"),
        "insert into app.tag (workspace_id, name) values (1, 'and another')",
    )
    .await;
    eventually(
        "both changes are recorded",
        std::time::Duration::from_secs(20),
        || async { count(&admin, "select count(*) from audit_log.events").await == 2 },
    )
    .await;
    daemon.stop().await;
    assert_eq!(
        count(
            &admin,
            &format!("select count(*) from app.seen where by_role = '{daemon_role}'")
        )
        .await,
        0,
        "the index's function ran as the daemon"
    );
}

#[tokio::test]
async fn infinite_times_nan_and_invalid_looking_text_do_not_break_reports_or_exports() {
    let (db, mut admin, config) = installed_host().await;
    let mut app = app_role(&db, &admin).await;
    act(
        &mut app,
        Some("1"),
        "insert into app.time_entry (workspace_id, user_id, description, start_at, end_at)
         values (1, 1, 'forever', 'infinity', '-infinity'),
                (1, 1, 'long ago', '4713-01-01 00:00:00+00 BC', '294276-12-31 00:00:00+00'),
                (1, 1, 'rates', now(), now());
         insert into app.time_entry (workspace_id, user_id, description, start_at, cost_rate,
                                     tag_ids, type)
         values (1, 1, 'not a number', now(), 'NaN', '{9223372036854775807}', E'caf\\u00e9 \\x01 \\\\x00')",
    )
    .await;
    act(
        &mut app,
        Some("1"),
        "update app.time_entry set hourly_rate = 9999999999.99 where description = 'rates'",
    )
    .await;
    drain(&mut admin, &config).await;
    assert_eq!(
        count(
            &admin,
            "select count(duration) + count(*) from audit_log.report"
        )
        .await,
        7,
        "five events, the two of the finite 'rates' entry with a duration"
    );
    for args in [
        &["report", "--workspace", "1", "--details"][..],
        &["export", "--workspace", "1"][..],
        &["export", "--workspace", "1", "--format", "jsonl"][..],
    ] {
        let out = cli(&db.url, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("forever"));
    }
}

#[tokio::test]
async fn a_session_that_calls_itself_the_daemon_does_not_count_as_one() {
    let (db, admin, _config) = installed_host().await;
    let role = unique_role("app");
    admin
        .batch_execute(&format!("create role {role} login"))
        .await
        .unwrap();
    let pretender = connect(&format!(
        "{}?application_name=clockwatch%20daemon",
        db.url_as(&role)
    ))
    .await;
    pretender.batch_execute("select 1").await.unwrap();
    let status = cli(&db.url, &["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert_eq!(status.status.code(), Some(2), "{text}");
    assert!(text.contains("no daemon is connected"), "{text}");
}

#[tokio::test]
async fn the_readme_reporting_grants_are_enough_for_report_and_export() {
    let (db, mut admin, config) = installed_host().await;
    act(
        &mut admin,
        Some("1"),
        "insert into app.tag (workspace_id, name) values (1, 'reported')",
    )
    .await;
    drain(&mut admin, &config).await;
    let url = reporting_role(&db, &admin).await;
    for args in [
        &["report", "--workspace", "1"][..],
        &["export", "--workspace", "1"][..],
    ] {
        let out = cli(&url, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("reported"));
    }
}

#[tokio::test]
async fn host_values_reach_the_terminal_and_spreadsheets_as_text() {
    let (db, mut admin, config) = installed_host().await;
    let mut app = app_role(&db, &admin).await;
    act(
        &mut app,
        Some("1"),
        "insert into app.tag (workspace_id, name) values
             (1, E'\\x1b]0;pwned\\x07\\x1b[2Jfake\\nline'),
             (1, '=HYPERLINK(\"http://evil\",\"x\")'),
             (1, '@SUM(A1)'), (1, '-2+3'), (1, E'\\tTab')",
    )
    .await;
    drain(&mut admin, &config).await;
    let out = cli(&db.url, &["report", "--workspace", "1", "--details"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "{text:?}"
    );
    assert!(text.contains("\\u{1b}]0;pwned"), "{text}");
    assert!(!text.contains("\nline"), "a value cannot start a line");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.csv");
    let out = cli(
        &db.url,
        &[
            "export",
            "--workspace",
            "1",
            "--excel",
            "-o",
            path.to_str().unwrap(),
        ],
    );
    assert!(out.status.success());
    let bytes = std::fs::read(&path).unwrap();
    let mut reader = csv::Reader::from_reader(&bytes[3..]);
    let mut targets: Vec<String> = reader
        .records()
        .map(|r| r.unwrap()[reader_target_column()].to_string())
        .collect();
    targets.sort();
    for cell in &targets {
        assert!(
            !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
            "{cell:?} reads as a formula"
        );
    }
    assert!(targets.contains(&"'=HYPERLINK(\"http://evil\",\"x\")".to_string()));
    assert!(targets.contains(&"'-2+3".to_string()));
}

/// The CSV column that holds the target's name.
fn reader_target_column() -> usize {
    clockwatch::export::csv_header("UTC")
        .iter()
        .position(|h| *h == "Target")
        .expect("a Target column")
}

/// Moving a record out of an audited workspace leaves its trace in that workspace: the move is
/// logged there, though what happens to the record afterwards, elsewhere, is not.
#[tokio::test]
async fn a_record_moved_out_of_an_audited_workspace_is_logged_in_it() {
    let (db, mut client, config) = installed_host().await;
    let mut app = app_role(&db, &client).await;
    for statement in [
        "insert into app.tag (id, workspace_id, name) values (70, 1, 'travelling')",
        "update app.tag set workspace_id = 2 where id = 70",
        "update app.tag set name = 'edited elsewhere' where id = 70",
        "update app.tag set workspace_id = 1 where id = 70",
    ] {
        act(&mut app, Some("2"), statement).await;
    }
    drain(&mut client, &config).await;
    let moves: Vec<(String, serde_json::Value)> = client
        .query(
            "select workspace_id, new_value from audit_log.report
             where target_id = '70' and action_code = 'tag.updated' order by event_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        moves,
        [
            ("1".to_string(), serde_json::json!({"workspace_id": 2})),
            // The edit made elsewhere is not an event, but the row it left comes back with it.
            ("1".to_string(), serde_json::json!({"workspace_id": 1})),
        ]
    );
    assert_eq!(
        count(
            &client,
            "select count(*) from audit_log.report where target_id = '70' and row_data ->> 'name' = 'edited elsewhere'"
        )
        .await,
        1
    );
}

/// With a source's filter, a row is logged in an audited workspace only as that workspace saw
/// it: a row that met the filter only while in a workspace not audited leaves nothing in the
/// audited one it moved from or to, whether its statement changed one row or several; a row
/// that met it there is logged as created, deleted or moved, as without a filter.
#[tokio::test]
async fn a_filtered_row_is_logged_only_where_an_audited_workspace_saw_it() {
    let db = TestDb::with_host().await;
    let mut client = db.client().await;
    let text = include_str!("../../config/clockwatch.toml").replace(
        "table = \"app.client\"\n",
        "table = \"app.client\"\nfilter = \"not archived\"\n",
    );
    let config = clockwatch::Config::from_toml(&text).unwrap();
    install(&mut client, &config).await;
    enable_all(&client, &config, "1").await;
    let mut app = app_role(&db, &client).await;
    for statement in [
        // Archived (outside the filter) in workspace 1, then live in workspace 2 (not audited).
        "insert into app.client (id, workspace_id, name, archived) values (80, 1, 'archived here', true)",
        "update app.client set workspace_id = 2, archived = false where id = 80",
        // Live in workspace 2, then archived in workspace 1.
        "insert into app.client (id, workspace_id, name) values (81, 2, 'live elsewhere')",
        "update app.client set workspace_id = 1, archived = true where id = 81",
        // The same two at once, in one statement of two rows.
        "insert into app.client (id, workspace_id, name, archived) values (82, 1, 'archived too', true), (83, 2, 'live too', false)",
        "update app.client set workspace_id = 3 - workspace_id, archived = not archived where id in (82, 83)",
        // Live in workspace 1: created, moved out (a trace), and archived on its way back.
        "insert into app.client (id, workspace_id, name) values (84, 1, 'seen')",
        "update app.client set workspace_id = 2 where id = 84",
        "update app.client set workspace_id = 1, archived = true where id = 84",
        // Live in workspace 1, then archived there: deleted.
        "insert into app.client (id, workspace_id, name) values (85, 1, 'shelved')",
        "update app.client set archived = true where id = 85",
    ] {
        act(&mut app, Some("2"), statement).await;
    }
    drain(&mut client, &config).await;
    let logged: Vec<(String, String, String)> = client
        .query(
            "select target_id, action_code, workspace_id from audit_log.report
             where category = 'clients' order by event_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let event = |id: &str, action: &str| (id.to_string(), action.to_string(), "1".to_string());
    assert_eq!(
        logged,
        [
            event("84", "client.created"),
            event("84", "client.updated"),
            event("85", "client.created"),
            event("85", "client.deleted"),
        ]
    );
}

/// A linked-row count that a session's own trigger read while one statement ran, replayed on a
/// later statement of the same DO block once the trigger and its tables are dropped, is not
/// believed: the session has had code of its own, and its change stays its actor's, whether it
/// set the key to another project or to null as the action would have. (The count's digest is
/// valid for the statement's time, which the DO block's statements share.)
#[tokio::test]
async fn a_linked_row_count_read_by_a_sessions_trigger_and_replayed_is_not_believed() {
    let (db, mut client, config) = installed_host().await;
    let oid: u32 = client
        .query_one("select 'app.time_entry'::regclass::oid", &[])
        .await
        .unwrap()
        .get(0);
    act(
        &mut client,
        Some("1"),
        "insert into app.project (id, workspace_id, name) values (40, 1, 'Doomed'), (41, 1, 'Kept'), (42, 1, 'Doomed too');
         insert into app.time_entry (id, workspace_id, user_id, project_id, start_at)
         values (300, 1, 1, 40, now()), (301, 1, 1, 40, now()), (302, 1, 1, 41, now()),
                (310, 1, 1, 42, now()), (311, 1, 1, 42, now())",
    )
    .await;
    let mut app = app_role(&db, &client).await;
    for (project, replayed) in [
        (
            40,
            "update app.time_entry set project_id = 41 where id = 300",
        ),
        (
            42,
            "update app.time_entry set project_id = null where id = 310",
        ),
    ] {
        let attack = format!(
            r#"select set_config('clockwatch.actor', '2', true);
            create temp table src (x int);
            create temp table sink (id bigint);
            create function pg_temp.peek() returns trigger language plpgsql as $$ begin
                if current_setting('clockwatch.linked_{oid}_u', true) like '%/%' then
                    perform set_config('x.saved', current_setting('clockwatch.linked_{oid}_u', true), true);
                end if;
                return null;
            end $$;
            create function pg_temp.gen() returns trigger language plpgsql as $$ begin
                with u as (update app.time_entry set description = description where id = 302 returning id)
                insert into sink select id from u;
                return null;
            end $$;
            create trigger peek after insert on sink for each row execute function pg_temp.peek();
            create trigger gen after insert on src for each row execute function pg_temp.gen();
            do $$ begin
                insert into src values (1);
                drop table src; drop table sink; drop function pg_temp.peek(); drop function pg_temp.gen();
                perform set_config('clockwatch.linked_{oid}_u', current_setting('x.saved'), true);
                with d as (delete from app.project where id = {project} returning id)
                {replayed} and (select count(*) from d) > 0;
            end $$;"#
        );
        let tx = app.transaction().await.unwrap();
        tx.batch_execute(&attack).await.unwrap();
        tx.commit().await.unwrap();
    }
    drain(&mut client, &config).await;
    let own: Vec<(String, Option<String>, bool)> = client
        .query(
            "select target_id, author_id, linked from audit_log.events
             where target_id in ('300', '310') and action_code = 'time_entry.updated' order by event_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let by_bob = |id: &str| (id.to_string(), Some("2".to_string()), false);
    assert_eq!(own, [by_bob("300"), by_bob("310")]);
}

/// The names a report gives the ids in an event's changes are kept in the event (its details,
/// which the chain covers): the daemon may add names to `known_name`, in a transaction opened
/// before the event was written or after, but never change how an event in the log reads, nor
/// change or remove a name there.
#[tokio::test]
async fn the_daemon_role_cannot_change_how_an_event_in_the_log_reads() {
    let db = TestDb::with_host().await;
    let mut admin = db.client().await;
    let mut config = example_config();
    let (_, daemon_url) = with_daemon_role(&db, &mut admin, &mut config).await;
    enable_all(&admin, &config, "1").await;
    // A name added in a transaction that stays open while the event is written.
    let mut daemon = connect(&daemon_url).await;
    let pending = daemon.transaction().await.unwrap();
    pending
        .batch_execute(
            "insert into audit_log.known_name (category, id, name, seen_at)
             values ('projects', '1', 'Forged', '2000-01-01')",
        )
        .await
        .unwrap();
    act(
        &mut admin,
        Some("1"),
        "insert into app.time_entry (id, workspace_id, user_id, start_at) values (700, 1, 1, now());
         update app.time_entry set project_id = 1 where id = 700;",
    )
    .await;
    drain(&mut admin, &config).await;
    let history = || {
        let out = cli(&db.url, &["report", "--workspace", "1", "--target", "700"]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert!(
        history().contains("project_id: (empty) -> Apollo"),
        "{}",
        history()
    );
    pending.commit().await.unwrap();
    // Stamped with the time it was written, whatever it said.
    assert_eq!(
        count(
            &admin,
            "select count(*) from audit_log.known_name where name = 'Forged' and seen_at > now() - interval '1 hour'"
        )
        .await,
        1
    );
    let text = history();
    assert!(text.contains("project_id: (empty) -> Apollo"), "{text}");
    assert!(!text.contains("Forged"), "{text}");
    for sql in [
        "update audit_log.known_name set name = 'Forged' where category = 'projects'",
        "delete from audit_log.known_name",
        "truncate audit_log.known_name",
    ] {
        let err = daemon.batch_execute(sql).await.expect_err(sql);
        assert_eq!(sqlstate(&err), Some("42501"), "{sql}: {err:?}");
    }
}

/// An inheritance child is audited as a partition is; one created after install, and a rule
/// that sends the table's writes elsewhere, are named by `status`.
#[tokio::test]
async fn inheritance_children_are_captured_and_a_rule_that_diverts_writes_is_reported() {
    const CONFIG: &str = r#"
[[source]]
category = "tags"
table = "ih.tag"
workspace_column = "ws"
name_column = "name"
"#;
    let (db, mut admin, config) = audited_tables(
        "create schema ih;
         create table ih.tag (id bigint not null, ws text not null, name text);
         create table ih.tag_old () inherits (ih.tag);",
        CONFIG,
        "*",
    )
    .await;
    let owner = unique_role("ih_owner");
    admin
        .batch_execute(&format!(
            "create role {owner} login; grant usage, create on schema ih to {owner};
             alter table ih.tag owner to {owner}; alter table ih.tag_old owner to {owner};"
        ))
        .await
        .unwrap();
    act(
        &mut admin,
        Some("1"),
        "insert into ih.tag_old values (1, 'a', 'straight to the child')",
    )
    .await;
    drain(&mut admin, &config).await;
    assert_eq!(
        column::<String>(&admin, "select coalesce(target, '') from audit_log.events").await,
        ["straight to the child"]
    );
    let (_dir, path) = config_file(CONFIG);
    let status = cli_at(&db.url, &path, &["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        !text.contains("ih.tag_old") && !text.contains("rule"),
        "{text}"
    );

    // The table's owner adds a child and a rule sending inserts to it.
    let table_owner = connect(&db.url_as(&owner)).await;
    table_owner
        .batch_execute(
            "create table ih.tag_new () inherits (ih.tag);
             create rule divert as on insert to ih.tag do instead insert into ih.tag_new select new.*;",
        )
        .await
        .unwrap();
    let status = cli_at(&db.url, &path, &["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert_eq!(status.status.code(), Some(2), "{text}");
    assert!(
        text.contains("inheritance child ih.tag_new of ih.tag has no capture triggers"),
        "{text}"
    );
    assert!(
        text.contains("rule divert on ih.tag rewrites its writes (INSERT)"),
        "{text}"
    );
    // Once install attaches to the child, what the rule diverts there is captured.
    cli_with(&db.url, &path, &["install"]);
    act(
        &mut admin,
        Some("1"),
        "insert into ih.tag values (2, 'a', 'diverted')",
    )
    .await;
    drain(&mut admin, &config).await;
    assert_eq!(
        column::<String>(
            &admin,
            "select coalesce(target, '') from audit_log.events order by event_id"
        )
        .await,
        ["straight to the child", "diverted"]
    );
}

/// `constraint_exclusion = on`, which a database's owner can make every session's default, has
/// the planner evaluate a table's own CHECK constraints: an IMMUTABLE function of the table
/// owner's in one must still never run as the daemon when it reads names there.
#[tokio::test]
async fn a_check_constraint_under_constraint_exclusion_never_runs_as_the_daemon() {
    let db = TestDb::with_host().await;
    let mut admin = db.client().await;
    let mut config = example_config();
    let (daemon_role, daemon_url) = with_daemon_role(&db, &mut admin, &mut config).await;
    enable_all(&admin, &config, "1").await;
    let (owner_role, owner_url) = owning_app_role(&db, &admin).await;
    let database: String = admin
        .query_one("select current_database()", &[])
        .await
        .unwrap()
        .get(0);
    admin
        .batch_execute(&format!("alter database {database} owner to {owner_role}"))
        .await
        .unwrap();
    let owner = connect(&owner_url).await;
    owner
        .batch_execute(&format!(
            "create table app.seen (by_role text);
             grant insert on app.seen to public;
             create function app.spy() returns integer language plpgsql as $$
             begin insert into app.seen values (current_user); return 1; end $$;
             grant execute on function app.spy() to public;
             create function app.one(x integer) returns integer language plpgsql immutable as $$
             begin return app.spy(); end $$;
             grant execute on function app.one(integer) to public;
             alter table app.app_user add constraint harmless check (app.one(1) > 0);
             alter database {database} set constraint_exclusion = on;"
        ))
        .await
        .unwrap();
    let spied = spied_on_the_daemon(&mut admin, &config, &daemon_url, &daemon_role).await;
    assert_eq!(spied, 0, "the CHECK's function ran as the daemon");
    assert_eq!(
        column::<String>(&admin, "select author from audit_log.events").await,
        ["Bob Builder"]
    );
}

/// An actor id that reads like someone's name (any application can set one) adds its own
/// events to a filter by that name, and never hides that person's.
#[tokio::test]
async fn an_actor_id_that_reads_like_a_name_never_hides_that_persons_events() {
    let (db, mut admin, config) = installed_host().await;
    enable_all(&admin, &config, "2").await;
    let mut app = app_role(&db, &admin).await;
    act(
        &mut app,
        Some("2"),
        "insert into app.tag (workspace_id, name) values (1, 'by Bob')",
    )
    .await;
    act(
        &mut app,
        Some("Bob Builder"),
        "insert into app.tag (workspace_id, name) values (2, 'by an id like a name')",
    )
    .await;
    drain(&mut admin, &config).await;
    let out = cli(
        &db.url,
        &["report", "--workspace", "1", "--author", "Bob Builder"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(text.contains("by Bob"), "{text}");
}

/// After a column change, the first host transaction to write records the table's new shape;
/// another writer must not wait for that transaction to end (no unique index to wait on).
#[tokio::test]
async fn a_new_shape_recorded_by_an_open_transaction_holds_no_other_writer() {
    let (db, admin, _config) = installed_host().await;
    admin
        .batch_execute("alter table app.tag add column color text")
        .await
        .unwrap();
    let mut first = app_role(&db, &admin).await;
    let open = first.transaction().await.unwrap();
    open.batch_execute("insert into app.tag (workspace_id, name) values (1, 'first')")
        .await
        .unwrap();
    let second = app_role(&db, &admin).await;
    // Without a wait the insert returns at once; a wait on the open transaction would end in
    // the lock timeout's error.
    second
        .batch_execute(
            "set lock_timeout = '5s';
             insert into app.tag (workspace_id, name) values (1, 'second');",
        )
        .await
        .expect("the second writer waited on the first's new shape");
    open.commit().await.unwrap();
    assert_eq!(staged(&admin).await, 2);
}

/// Every statement of one multi-statement query shares its time: a foreign-key action's change
/// whose cause was not logged (a project of a workspace nobody audits) is not linked to another
/// statement's logged change of that query. Its cause must be a change the key acts on.
#[tokio::test]
async fn an_actions_change_is_linked_only_to_a_change_that_can_have_caused_it() {
    let (db, mut admin, config) = installed_host().await;
    let mut app = app_role(&db, &admin).await;
    // An entry of workspace 1 on project 2, of workspace 2, which is not audited.
    act(
        &mut app,
        Some("1"),
        "insert into app.time_entry (id, workspace_id, user_id, project_id, start_at)
         values (800, 1, 1, 2, '2026-11-02 09:00Z')",
    )
    .await;
    act(
        &mut app,
        Some("1"),
        "update app.client set name = 'Globex renamed' where id = 1; delete from app.project where id = 2;",
    )
    .await;
    drain(&mut admin, &config).await;
    let rows: Vec<(String, String, bool, Option<i64>)> = admin
        .query(
            "select action, author, linked, caused_by from audit_log.events order by event_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let ann = |action: &str| (action.to_string(), "Ann Admin".to_string(), false, None);
    assert_eq!(
        rows,
        [
            ann("Created time entry"),
            ann("Updated client"),
            ann("Updated time entry")
        ]
    );
}

/// The daemon claims staged changes through functions and holds only SELECT on staging: it can
/// take no lock there that an audited host write would wait on.
#[tokio::test]
async fn the_daemon_role_cannot_stall_audited_writes_by_locking_staging() {
    let db = TestDb::with_host().await;
    let mut admin = db.client().await;
    let mut config = example_config();
    let (_, daemon_url) = with_daemon_role(&db, &mut admin, &mut config).await;
    enable_all(&admin, &config, "1").await;
    let mut daemon = connect(&daemon_url).await;
    for mode in [
        "access exclusive",
        "exclusive",
        "share row exclusive",
        "share",
        "row exclusive",
    ] {
        let tx = daemon.transaction().await.unwrap();
        let err = tx
            .batch_execute(&format!("lock table audit_log.staging in {mode} mode"))
            .await
            .expect_err(mode);
        assert_eq!(sqlstate(&err), Some("42501"), "{mode}: {err:?}");
    }
    for sql in [
        "delete from audit_log.staging",
        "update audit_log.staging set actor = '1'",
        "truncate audit_log.staging",
    ] {
        let err = daemon.batch_execute(sql).await.expect_err(sql);
        assert_eq!(sqlstate(&err), Some("42501"), "{sql}: {err:?}");
    }
    // What it may hold, ACCESS SHARE, keeps no host write waiting.
    let tx = daemon.transaction().await.unwrap();
    tx.batch_execute("lock table audit_log.staging in access share mode")
        .await
        .unwrap();
    let app = app_role(&db, &admin).await;
    app.batch_execute(
        "set lock_timeout = '5s';
         select set_config('clockwatch.actor', '1', false);
         insert into app.tag (workspace_id, name) values (1, 'while the daemon reads');",
    )
    .await
    .expect("the host write waited on the daemon's lock");
    tx.commit().await.unwrap();
    drain(&mut admin, &config).await;
    assert_eq!(
        count(&admin, "select count(*) from audit_log.events").await,
        1
    );
}

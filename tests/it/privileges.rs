//! Least privilege: the host application's own role, with no grant on Clockwatch's schema, keeps
//! writing (and being audited) but cannot touch the log or staging, nor switch capture off.

use crate::support::*;

/// Each statement is refused with insufficient_privilege (42501).
async fn assert_denied(client: &tokio_postgres::Client, statements: &[&str]) {
    for sql in statements {
        let err = client.batch_execute(sql).await.expect_err(sql);
        assert_eq!(
            err.code().map(|c| c.code()),
            Some("42501"),
            "{sql}: expected insufficient_privilege, got {err:?}"
        );
    }
}

#[tokio::test]
async fn the_application_role_is_audited_but_cannot_touch_the_log() {
    let (db, mut admin, config) = installed_host().await;
    let mut app = app_role(&db, &admin).await;
    act(&mut app, Some("2"), "insert into app.time_entry (id, workspace_id, user_id, description, start_at) values (90, 1, 2, 'as the app', now())").await;
    act(
        &mut app,
        Some("2"),
        "update app.time_entry set description = 'edited' where id = 90",
    )
    .await;
    drain(&mut admin, &config).await;
    let rows = report(&admin, "1").await;
    assert_eq!(
        actions(&rows),
        [
            ("time_entry.created".to_string(), "Bob Builder".to_string()),
            ("time_entry.updated".to_string(), "Bob Builder".to_string()),
        ]
    );

    assert_denied(
        &app,
        &[
            "insert into audit_log.staging (op, txid, stmt_at, depth, workspace_id, shape) values ('D', 1, now(), 1, '1', 1)", // forge a staged change
            "update audit_log.events set author = 'Nobody'", // edit an event
            "delete from audit_log.events", // delete events
            "truncate audit_log.events", // truncate events
            "select * from audit_log.events", // read the log directly
            "select audit_log.disable('1')", // turn auditing off
            "set session_replication_role = replica", // switch triggers off for the session
            "select audit_log.detach('app.time_entry')", // detach the triggers
        ],
    )
    .await;
    assert_eq!(
        count(&admin, "select count(*) from audit_log.events").await,
        2
    );
    assert_eq!(
        count(&admin, "select count(*) from audit_log.staging").await,
        0
    );
}

#[tokio::test]
async fn disabled_capture_triggers_are_reported_by_status() {
    let (db, admin, _config) = installed_host().await;
    // A table owner can disable a trigger on its own table; Clockwatch cannot prevent that,
    // so it says so.
    admin
        .batch_execute("alter table app.expense disable trigger clockwatch_audit_log_insert")
        .await
        .unwrap();
    let out = cli(&db.url, &["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text.contains(
            "PROBLEM: source app.expense (expenses): capture triggers missing or disabled on app.expense"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn a_reporting_role_reads_the_views_and_nothing_else() {
    let (db, mut admin, config) = installed_host().await;
    act(
        &mut admin,
        Some("1"),
        "insert into app.tag (workspace_id, name) values (1, 'seen')",
    )
    .await;
    drain(&mut admin, &config).await;
    // The README's grants.
    let reports = connect(&crate::escalation::reporting_role(&db, &admin).await).await;
    assert_eq!(
        count(&reports, "select count(*) from audit_log.report").await,
        1
    );
    assert_eq!(
        count(&reports, "select count(*) from audit_log.events_between('1', now() - interval '1 day', now() + interval '1 hour', null, array['Created tag'])").await,
        1
    );
    assert_denied(
        &reports,
        &[
            "delete from audit_log.events",
            "update audit_log.events set author = 'x'",
            "select * from audit_log.staging",
        ],
    )
    .await;
}

#[tokio::test]
async fn a_session_cannot_pass_its_change_off_as_a_linked_system_change() {
    let (db, mut admin, config) = installed_host().await;
    let mut app = app_role(&db, &admin).await;
    let oid: u32 = admin
        .query_one("select 'app.time_entry'::regclass::oid", &[])
        .await
        .unwrap()
        .get(0);
    act(
        &mut app,
        Some("2"),
        "insert into app.time_entry (id, workspace_id, user_id, start_at) values (91, 1, 2, now())",
    )
    .await;
    act(
        &mut app,
        Some("2"),
        &format!(
            "select set_config('clockwatch.linked_{oid}_u', '1/{}', true);
             update app.time_entry set approved = true where id = 91
                 and set_config('clockwatch.linked_{oid}_u', '1', true) is not null;",
            "0".repeat(32)
        ),
    )
    .await;
    drain(&mut admin, &config).await;
    let rows = report(&admin, "1").await;
    assert_eq!(
        actions(&rows),
        [
            ("time_entry.created".to_string(), "Bob Builder".to_string()),
            ("time_entry.updated".to_string(), "Bob Builder".to_string()),
        ],
        "the forged counts are ignored, before the statement and during it: the change stays Bob's"
    );
    assert!(rows[1].get::<_, Option<i64>>("caused_by").is_none());
}

#[tokio::test]
async fn injection_strings_in_every_filter_are_only_data() {
    let (db, mut admin, config) = installed_host().await;
    act(
        &mut admin,
        Some("1"),
        "insert into app.tag (workspace_id, name) values (1, 'x')",
    )
    .await;
    drain(&mut admin, &config).await;
    let hostile = [
        "1' or '1'='1",
        "1; drop table audit_log.events; --",
        "'); delete from audit_log.events; --",
        "\" or \"\"=\"",
        "$1",
    ];
    for value in hostile {
        for flag in [
            "--workspace",
            "--author",
            "--action",
            "--category",
            "--target",
            "--from",
        ] {
            let mut args = vec!["report"];
            if flag != "--workspace" {
                args.extend(["--workspace", "1"]);
            }
            args.extend([flag, value]);
            let out = cli(&db.url, &args);
            let stdout = String::from_utf8_lossy(&out.stdout);
            // Either refused as an unknown value, or a report with no match: never the event.
            assert!(
                !stdout.contains("Created tag"),
                "{flag} {value:?} matched: {stdout}"
            );
        }
    }
    assert_eq!(
        count(&admin, "select count(*) from audit_log.events").await,
        1,
        "the log is intact"
    );
}

#[tokio::test]
async fn hostile_identifiers_in_the_config_are_quoted_everywhere() {
    let db = TestDb::new().await;
    let mut client = db.client().await;
    // A host whose schema, table and column names are made of quotes, semicolons and spaces.
    client
        .batch_execute(
            r#"create schema "we'ird; s";
               create table "we'ird; s"."ta""ble; drop table x" (
                   "i""d" bigint primary key,
                   "work space" int not null,
                   "na'me; --" text,
                   "se""cret" text
               );"#,
        )
        .await
        .unwrap();
    let config = clockwatch::Config::from_toml(
        r#"
        schema = "aud'it \"log"
        [[source]]
        category = "tags"
        table = "we'ird; s.ta\"ble; drop table x"
        id_column = "i\"d"
        workspace_column = "work space"
        name_column = "na'me; --"
        exclude_columns = ["se\"cret"]
        "#,
    )
    .unwrap();
    install(&mut client, &config).await;
    clockwatch::workspace::set_enabled(&client, &config.schema, "1", None, true)
        .await
        .unwrap();
    act(
        &mut client,
        Some("u"),
        r#"insert into "we'ird; s"."ta""ble; drop table x" values (1, 1, 'named', 'hunter2')"#,
    )
    .await;
    let (staged, columns): (String, Vec<String>) = client
        .query_one(
            r#"select s.new_row, h.columns from "aud'it ""log".staging s
               join "aud'it ""log".shape h on h.id = s.shape"#,
            &[],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert!(
        !staged.contains("hunter2"),
        "excluded before staging: {staged}"
    );
    assert_eq!(columns, ["i\"d", "work space", "na'me; --"]);
    client
        .batch_execute(r#"set search_path = "aud'it ""log", pg_catalog"#)
        .await
        .unwrap();
    let report = clockwatch::drain::Drainer::new(config.clone())
        .drain_all(&mut client)
        .await
        .unwrap();
    assert_eq!(report.events, 1);
    let (target, target_id): (String, String) = {
        let r = client
            .query_one("select target, target_id from report", &[])
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!((target.as_str(), target_id.as_str()), ("named", "1"));
    let leaked = count(
        &client,
        r#"select count(*) from events where row_image like '%hunter2%'"#,
    )
    .await;
    assert_eq!(leaked, 0, "an excluded column never reaches events");
}

#[tokio::test]
async fn the_daemon_runs_as_a_role_that_cannot_rewrite_the_log() {
    let (db, mut admin, mut config) = installed_host().await;
    let (_, url) = with_daemon_role(&db, &mut admin, &mut config).await;

    let mut daemon = start_daemon(&config, &url);
    daemon.ready().await;
    act(
        &mut admin,
        Some("2"),
        "insert into app.tag (workspace_id, name) values (1, 'by the daemon role')",
    )
    .await;
    eventually(
        "the daemon role records the change",
        std::time::Duration::from_secs(20),
        || async {
            count(
                &admin,
                "select count(*) from audit_log.events where author = 'Bob Builder'",
            )
            .await
                == 1
        },
    )
    .await;
    assert!(
        !daemon.task.is_finished(),
        "maintenance and draining need nothing more"
    );
    daemon.stop().await;

    let as_daemon = connect(&url).await;
    assert_denied(
        &as_daemon,
        &[
            "update audit_log.events set author = 'x'",
            "delete from audit_log.events",
            "truncate audit_log.events",
            "update audit_log.settings set retention = '1 day'",
            "drop schema audit_log cascade",
            "update audit_log.chain_head set seq = 0",
        ],
    )
    .await;
    // Through the functions it appends with, it cannot start workspace 1's chain over either.
    let mut as_daemon = as_daemon;
    let tx = as_daemon.transaction().await.unwrap();
    let err = tx
        .batch_execute(
            "select audit_log.append_events(
                 array[999]::bigint[], array[now()], array['1'], array['tags'], array['tag.deleted'],
                 array['Deleted tag'], array[null]::text[], array[null]::text[], array['System'],
                 array['7'], array['t'], array[null]::bigint[], array[false], array[1]::bigint[],
                 array['app.tag'], array[null]::json[], array[null]::json[], array[null]::text[],
                 array[null]::bigint[], array['{}']::json[], array[1]::bigint[], array['\\x'::bytea],
                 array['\\x00'::bytea])
             from audit_log.chain_heads(array['1']) h",
        )
        .await
        .unwrap_err();
    assert!(
        err.as_db_error().is_some_and(|e| e
            .message()
            .contains("chain heads are not where the batch was chained from")),
        "{err}"
    );
    tx.rollback().await.unwrap();
    assert_eq!(
        count(
            &admin,
            "select seq from audit_log.chain_head where workspace_id = '1'"
        )
        .await,
        1
    );
}

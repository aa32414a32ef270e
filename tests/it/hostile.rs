//! Bad and hostile data: huge values, every column type, awkward text, huge transactions,
//! TRUNCATE. Every committed change becomes exactly one faithful event.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn a_one_megabyte_description_and_awkward_text_arrive_intact() {
    let (db, mut client, config) = installed_host().await;
    let awkward = "O'Brien \"quoted\", back\\slash\nnew line\ttab 🎉 ünïcödé;--";
    client
        .execute(
            "insert into app.tag (id, workspace_id, name) values (70, 1, $1)",
            &[&awkward],
        )
        .await
        .unwrap();
    act(
        &mut client,
        Some("1"),
        "insert into app.time_entry (id, workspace_id, user_id, description, start_at)
         values (70, 1, 1, repeat('abcdefghij', 100000), now())",
    )
    .await;
    drain(&mut client, &config).await;
    let target: String = client
        .query_one(
            "select target from audit_log.report where target_id = '70' and category = 'tags'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(target, awkward);
    let length: i32 = client
        .query_one(
            "select length(description) from audit_log.report where category = 'time_entries'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(length, 1_000_000);

    // The CSV export round-trips the awkward text through a CSV reader.
    let out = cli(
        &db.url,
        &["export", "--workspace", "1", "--category", "tags"],
    );
    assert!(out.status.success());
    let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
    let targets: Vec<String> = reader
        .records()
        .map(|r| r.unwrap()[8].to_string())
        .collect();
    assert_eq!(targets, [awkward]);
}

#[tokio::test]
async fn every_column_type_is_captured_faithfully() {
    let (_db, mut client, config) = audited_tables(
        "create schema h;
         create type h.mood as enum ('ok', 'meh');
         create domain h.money as numeric(12, 2);
         create table h.thing (
             id uuid primary key, ws int not null, name text,
             amount numeric(30, 10), ratio float8, big bigint, small smallint, flag boolean,
             tags text[], matrix int[][], doc jsonb, raw json, blob bytea,
             at_tz timestamptz, at_local timestamp, day date, clock time, span interval,
             feeling h.mood, spot point, addr inet,
             t timestamptz, d text, e text[], price h.money, odd int[], moods h.mood[],
             stamps timestamptz[], bc timestamp, nan numeric, zone timetz, accent json,
             short varchar(3), inf float8, never date
         );",
        "[[source]]\ncategory = 'tags'\ntable = 'h.thing'\nworkspace_column = 'ws'\nname_column = 'name'\n",
        "7",
    )
    .await;
    act(
        &mut client,
        Some("u"),
        "insert into h.thing values
           ('6f1c3a2e-0000-4000-8000-000000000001', 7, 'full',
            12345678901234567890.0123456789, 0.1, 9223372036854775807, -32768, true,
            '{a,\"b c\",NULL}', '{{1,2},{3,4}}', '{\"k\": [1, {\"n\": null}]}', '{\"raw\": true}', '\\x00ff',
            '2026-11-02 09:00:00+01', '2026-11-02 09:00:00', '2026-11-02', '23:59:59', '1 day 02:00',
            'meh', '(1,2)', '10.0.0.1',
            '2026-11-26 10:00:00.5+01', 'a \"q\" \\ b, (c)', array['x,y', null, 'z \"w\"', ''],
            12.50, '[0:1]={7,8}', '{ok,meh}', array['2026-01-01 00:00+05:30'::timestamptz, null],
            '0044-03-15 10:00:00 BC', 'NaN', '10:00:00+05:30', '{\"a\": \"\\u00e9\"}', ' ,\"',
            '-Infinity', 'infinity');
         insert into h.thing (id, ws) values ('6f1c3a2e-0000-4000-8000-000000000002', 7);",
    )
    .await;
    act(
        &mut client,
        Some("u"),
        "update h.thing set spot = '(3,4)', raw = '{\"raw\": false}'",
    )
    .await;
    let drained = drain(&mut client, &config).await;
    assert_eq!((drained.events, drained.dead_lettered), (4, 0));

    let row: serde_json::Value = client
        .query_one("select row_data from audit_log.report where target = 'full' and action_code = 'tag.created'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        row["amount"].to_string(),
        "12345678901234567890.0123456789",
        "numeric keeps every digit"
    );
    assert_eq!(row["big"], json!(9223372036854775807i64));
    assert_eq!(row["tags"], json!(["a", "b c", null]));
    assert_eq!(row["matrix"], json!([[1, 2], [3, 4]]));
    assert_eq!(row["doc"], json!({"k": [1, {"n": null}]}));
    assert_eq!(row["blob"], json!("\\x00ff"));
    assert_eq!(row["at_tz"], json!("2026-11-02T08:00:00+00:00"));
    assert_eq!(row["at_local"], json!("2026-11-02T09:00:00"));
    assert_eq!(row["feeling"], json!("meh"));
    let empty: serde_json::Value = client
        .query_one("select row_data from audit_log.report where target_id like '%2' and action_code = 'tag.created'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(empty["amount"], json!(null), "nulls everywhere are fine");
    // Types without an equality operator (point, json) still compare for the no-op check.
    let updates = count(
        &client,
        "select count(*) from audit_log.report where action_code = 'tag.updated'",
    )
    .await;
    assert_eq!(updates, 2);
    // The whole row each event keeps reads back as to_jsonb reads the row itself (columns named
    // t and d included: capture once took a column named t for the row, and failed the write).
    let differing = count(
        &client,
        "select count(*) from h.thing x
         full join (select * from audit_log.report where action_code = 'tag.updated') r
           on r.target_id = x.id::text
         where r.row_data is distinct from to_jsonb(x.*)",
    )
    .await;
    assert_eq!(differing, 0);
}

#[tokio::test]
async fn a_transaction_touching_100000_rows_is_recorded_in_full() {
    let (_db, mut client, config) = installed_host().await;
    client
        .batch_execute(
            "insert into app.time_entry (workspace_id, user_id, description, start_at)
             select 1, 1, 'bulk ' || g, now() from generate_series(1, 100000) g",
        )
        .await
        .unwrap();
    // 100,000 creations (no actor: System), then one statement updating all of them.
    act(
        &mut client,
        Some("1"),
        "update app.time_entry set approved = true where description like 'bulk %'",
    )
    .await;
    let drained = drain(&mut client, &config).await;
    assert_eq!(drained.events, 200_000);
    assert_eq!(
        count(&client, "select count(*) from audit_log.events where action_code = 'time_entry.updated' and author = 'Ann Admin'").await,
        100_000
    );
    assert_eq!(count(&client, "select count(distinct target_id) from audit_log.events where action_code = 'time_entry.updated'").await, 100_000);
}

#[tokio::test]
async fn truncate_is_one_event_for_every_workspace_not_silence() {
    let (db, mut client, config) = installed_host().await;
    client
        .batch_execute("select audit_log.enable('2', array['tags'])")
        .await
        .unwrap();
    act(&mut client, Some("1"), "truncate app.tag").await;
    // Disabled category: no event.
    client
        .batch_execute("select audit_log.disable('1', array['tasks'])")
        .await
        .unwrap();
    act(&mut client, Some("1"), "truncate app.task cascade").await;
    drain(&mut client, &config).await;
    let rows = client
        .query("select workspace_id, action, author, target from audit_log.events where action_code like '%.truncated'", &[])
        .await
        .unwrap();
    let got: Vec<(String, String, String, Option<String>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let event = |action: &str, table: &str| {
        (
            "*".to_string(),
            action.to_string(),
            "Ann Admin".to_string(),
            Some(table.to_string()),
        )
    };
    // Tasks are not audited any more, but the cascade also emptied the time entries, which are.
    assert_eq!(
        got,
        [
            event("Removed all tags", "app.tag"),
            event("Removed all time entries", "app.time_entry")
        ]
    );
    // Every workspace's report shows it.
    for workspace in ["1", "2"] {
        let out = cli(
            &db.url,
            &[
                "report",
                "--workspace",
                workspace,
                "--action",
                "Removed all tags",
            ],
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Ann Admin  Removed all tags"),
            "{out:?}"
        );
        // And so does the SQL entry point.
        let truncations = count(
            &client,
            &format!(
                "select count(*) from audit_log.events_between('{workspace}',
                     now() - interval '1 day', now() + interval '1 minute')
                 where action_code like '%.truncated'"
            ),
        )
        .await;
        assert_eq!(truncations, 2, "workspace {workspace}");
    }
}

/// Every setting that changes how a value prints, set by the host's session to its oddest:
/// capture records the same values as under the defaults.
#[tokio::test]
async fn session_settings_never_change_what_capture_records() {
    let (db, admin, config) = audited_tables(
        "create schema st;
         create table st.rate (id bigint primary key, ws text not null, hours float8, share float4,
                               span interval, blob bytea, at timestamptz, cost money);",
        r#"
[[source]]
category = "projects"
table = "st.rate"
workspace_column = "ws"
"#,
        "w",
    )
    .await;
    let mut app = dml_role(&db, &admin, "st").await;
    app.batch_execute(
        "set extra_float_digits = -15; set intervalstyle = sql_standard; set bytea_output = escape;
         set timezone = 'Asia/Kathmandu'; set datestyle = 'sql, dmy'; set lc_monetary = 'C.UTF-8';",
    )
    .await
    .unwrap();
    act(
        &mut app,
        Some("1"),
        "insert into st.rate values (1, 'w', 123.456, 0.1, '1 day 02:03:04', '\\x00ff',
                                     '2026-11-02 09:00:00+00', 12.5)",
    )
    .await;
    // Alike in 1 significant digit: a session printing floats with -15 extra digits sees no change.
    act(
        &mut app,
        Some("1"),
        "update st.rate set hours = 149 where id = 1",
    )
    .await;
    act(
        &mut app,
        Some("1"),
        "update st.rate set hours = 150 where id = 1",
    )
    .await;
    // Capture pins them while it prints, and gives the session its own back.
    let settings: Vec<String> = app
        .query(
            "select current_setting(s) from unnest(array['extra_float_digits', 'IntervalStyle',
                 'bytea_output', 'TimeZone', 'DateStyle', 'lc_monetary']) s",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        settings,
        [
            "-15",
            "sql_standard",
            "escape",
            "Asia/Kathmandu",
            "SQL, DMY",
            "C.UTF-8"
        ]
    );
    // And a transaction's own, for its statements after the change.
    let within: String = app
        .transaction()
        .await
        .map(|tx| async move {
            tx.batch_execute(
                "set local timezone = 'Pacific/Chatham';
                 insert into st.rate (id, ws) values (2, 'w');",
            )
            .await
            .unwrap();
            let zone = tx
                .query_one("select current_setting('TimeZone')", &[])
                .await
                .unwrap()
                .get(0);
            tx.rollback().await.unwrap();
            zone
        })
        .unwrap()
        .await;
    assert_eq!(within, "Pacific/Chatham");
    let mut admin = admin;
    drain(&mut admin, &config).await;
    let rows: Vec<(Option<serde_json::Value>, Option<serde_json::Value>)> = admin
        .query(
            "select previous_value::jsonb, new_value::jsonb from audit_log.events order by event_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(
        rows[1],
        (Some(json!({"hours": 123.456})), Some(json!({"hours": 149})))
    );
    assert_eq!(
        rows[2],
        (Some(json!({"hours": 149})), Some(json!({"hours": 150})))
    );
    let image: String = admin
        .query_one(
            "select row_image from audit_log.events order by event_id limit 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        image,
        r#"(1,w,123.456,0.1,"1 day 02:03:04","\\x00ff","2026-11-02 09:00:00+00",$12.50)"#
    );
}

/// A value nested deeper than any JSON parser's recursion limit (an array 200 deep in a jsonb
/// column): reports, exports, the JSON lines and `verify` read it as the text it is.
#[tokio::test]
async fn a_deeply_nested_value_never_breaks_a_report() {
    let (db, mut admin, config) = audited_tables(
        "create schema st;
         create table st.doc (id bigint primary key, ws text not null, body jsonb);",
        r#"
[[source]]
category = "projects"
table = "st.doc"
workspace_column = "ws"
"#,
        "w",
    )
    .await;
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let mut app = dml_role(&db, &admin, "st").await;
    act(
        &mut app,
        Some("1"),
        &format!("insert into st.doc values (1, 'w', '{deep}')"),
    )
    .await;
    act(
        &mut app,
        Some("1"),
        &format!("update st.doc set body = '[{deep}]' where id = 1"),
    )
    .await;
    drain(&mut admin, &config).await;
    assert_eq!(
        count(&admin, "select count(*) from audit_log.events").await,
        2
    );
    let (_dir, path) = config_file(
        r#"
[[source]]
category = "projects"
table = "st.doc"
workspace_column = "ws"
"#,
    );
    let (from, to) = event_days(&admin, "UTC").await;
    for args in [
        &["report", "--details"][..],
        &["export"][..],
        &["export", "--format", "jsonl"][..],
    ] {
        let all = [
            args,
            &["--workspace", "w", "--from", &from, "--to", &to][..],
        ]
        .concat();
        let out = cli_at(&db.url, &path, &all);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{all:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains(&"[".repeat(150)), "{all:?}: {text}");
    }
}

/// An actor id of 10 kB (no application's id is that long) is logged, cut short and marked so,
/// and never costs a neighbouring change in its batch its author's name.
#[tokio::test]
async fn an_overlong_actor_affects_only_its_own_change() {
    let (db, mut client, config) = installed_host().await;
    let mut app = app_role(&db, &client).await;
    let long = "9".repeat(10_000);
    act(
        &mut app,
        Some(&long),
        "insert into app.tag (id, workspace_id, name) values (80, 1, 'by a long id')",
    )
    .await;
    act(
        &mut app,
        Some("1"),
        "insert into app.tag (id, workspace_id, name) values (81, 1, 'by Ann')",
    )
    .await;
    drain(&mut client, &config).await;
    let rows: Vec<(String, String, String)> = client
        .query(
            "select target_id, author, coalesce(author_id, '') from audit_log.events order by event_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[1], ("81".into(), "Ann Admin".into(), "1".into()));
    let (_, author, author_id) = &rows[0];
    assert_eq!(author_id, &format!("{}…", "9".repeat(64)));
    assert_eq!(author, &format!("#{author_id}"));
    assert_eq!(
        count(&client, "select count(*) from audit_log.dead_letter").await,
        0
    );
}

/// A host session holding the authors table (an ALTER TABLE waiting on a long query, a VACUUM
/// FULL) does not stall the log: the batch takes the names the log remembers, or ids.
#[tokio::test]
async fn a_locked_authors_table_does_not_stall_draining() {
    let (db, mut client, config) = installed_host().await;
    act(
        &mut client,
        Some("2"),
        "insert into app.tag (id, workspace_id, name) values (90, 1, 'while locked')",
    )
    .await;
    // The authors table's owner (a migration role) holds it.
    let owner = unique_role("users_owner");
    client
        .batch_execute(&format!(
            "create role {owner} login; grant usage on schema app to {owner};
             alter table app.app_user owner to {owner};"
        ))
        .await
        .unwrap();
    let mut holder = connect(&db.url_as(&owner)).await;
    let lock = holder.transaction().await.unwrap();
    lock.batch_execute("lock table app.app_user in access exclusive mode")
        .await
        .unwrap();
    let drained = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        drain(&mut client, &config),
    )
    .await;
    lock.rollback().await.unwrap();
    assert!(drained.is_ok(), "draining waited on the host's lock");
    let author: String = client
        .query_one(
            "select author from audit_log.events where target_id = '90'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(author, "#2");
}

/// A name the details of many events refer to is carried by each of them cut at 1,000
/// characters: a project named with megabytes costs a batch of its time entries no more than
/// that each (the daemon's memory stays bounded), and the project's own event keeps it whole.
#[tokio::test]
async fn a_huge_name_referred_to_by_many_changes_is_cut_in_their_details() {
    let (_db, mut client, config) = installed_host().await;
    act(
        &mut client,
        Some("1"),
        "update app.project set name = repeat('M', 2000000) where id = (select min(id) from app.project where workspace_id = 1);
         insert into app.time_entry (workspace_id, user_id, description, start_at, project_id)
         select 1, 1, 'entry ' || g, now(), (select min(id) from app.project where workspace_id = 1)
         from generate_series(1, 50) g",
    )
    .await;
    drain(&mut client, &config).await;
    let projects: Vec<String> = column(
        &client,
        "select distinct project from audit_log.report where category = 'time_entries'",
    )
    .await;
    assert_eq!(projects, [format!("{}…", "M".repeat(999))]);
    let whole = count(
        &client,
        "select max(length(target))::bigint from audit_log.report where category = 'projects'",
    )
    .await;
    assert_eq!(whole, 2_000_000);
}

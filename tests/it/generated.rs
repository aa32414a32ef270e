//! Code that writes code: every body Clockwatch generates (a table's capture function, a link
//! table's, the slow path that builds the statements again after a column change, the workspace
//! list compiled into them) stays the code Clockwatch wrote, whatever column names and workspace
//! ids the roles below the owner give it. Each payload below calls a probe that records
//! `current_user`; none may ever run, and the host's writes must keep being captured.

use crate::support::*;

const SCHEMA: &str = r#"
create schema hx;
create table hx.entry (id bigint primary key, ws text not null, note text, pin text);
create table hx.entry_tag (
    entry_id bigint not null references hx.entry on delete cascade,
    tag_id   bigint not null,
    primary key (entry_id, tag_id)
);
-- The probe: whoever runs it leaves their name.
create table hx.probe_log (who text not null);
grant insert, select on hx.probe_log to public;
create function hx.probe() returns text language sql
as $$ insert into hx.probe_log values (current_user) returning 'probed' $$;
grant execute on function hx.probe() to public;
"#;

const CONFIG: &str = r#"
[[source]]
category = "time_entries"
table = "hx.entry"
workspace_column = "ws"
exclude_columns = ["pin"]
[source.fields]
description = "note"
tags = "hx.entry_tag.tag_id"
"#;

/// Names that end a dollar quote or a literal, or run SQL where one is spliced; the last is 63
/// bytes, the longest name PostgreSQL keeps.
fn hostile_names() -> Vec<String> {
    let mut names: Vec<String> = [
        "$capture$",
        "$function$",
        "$slow$",
        "$body$",
        "$$",
        "x$capture$;select hx.probe();$capture$",
        "x$body$;select hx.probe();$body$",
        "x$$;select hx.probe();$$",
        "'; select hx.probe(); --",
        "\"; select hx.probe(); --",
        "a;b",
        "t",
    ]
    .map(String::from)
    .to_vec();
    names.push(format!("{}$capture$", "a".repeat(54)));
    assert!(names.iter().all(|n| n.len() <= 63));
    names
}

/// Who ran the probe, if anyone did.
async fn probed(client: &tokio_postgres::Client) -> Vec<String> {
    column(client, "select who from hx.probe_log").await
}

/// A login role that owns the host's tables (a migration role), as the attacker.
async fn table_owner(db: &TestDb, admin: &tokio_postgres::Client) -> tokio_postgres::Client {
    let role = unique_role("hx_owner");
    admin
        .batch_execute(&format!(
            "create role {role} login;
             grant usage, create on schema hx to {role};
             alter table hx.entry owner to {role};
             alter table hx.entry_tag owner to {role};"
        ))
        .await
        .unwrap();
    connect(&db.url_as(&role)).await
}

/// One statement of each kind on the entry and its tags, as `actor`.
async fn write_entry(client: &mut tokio_postgres::Client, id: i64, ws: &str) {
    let tx = client.transaction().await.unwrap();
    tx.execute("select set_config('clockwatch.actor', '7', true)", &[])
        .await
        .unwrap();
    tx.execute(
        "insert into hx.entry (id, ws, note, pin) values ($1, $2, 'new', '1234')",
        &[&id, &ws],
    )
    .await
    .unwrap();
    tx.execute("update hx.entry set note = 'changed' where id = $1", &[&id])
        .await
        .unwrap();
    tx.execute(
        "insert into hx.entry_tag (entry_id, tag_id) values ($1, 5)",
        &[&id],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn hostile_column_names_never_end_a_generated_body() {
    let (db, mut admin, config) = audited_tables(SCHEMA, CONFIG, "w1").await;
    let owner = table_owner(&db, &admin).await;
    for name in hostile_names() {
        for table in ["hx.entry", "hx.entry_tag"] {
            owner
                .batch_execute(&format!(
                    "alter table {table} add column {} text default 'v'",
                    clockwatch::config::quote_ident(&name)
                ))
                .await
                .unwrap_or_else(|e| panic!("add column {name:?} to {table}: {e}"));
        }
    }
    // The slow path builds the statements for the new columns at the next write.
    let mut owner = owner;
    write_entry(&mut owner, 1, "w1").await;
    assert_eq!(staged(&admin).await, 3, "the slow path captured each write");

    // `status` asks for an install after a column change; the install compiles the names in.
    install(&mut admin, &config).await;
    write_entry(&mut owner, 2, "w1").await;
    owner
        .batch_execute(r#"update hx.entry set "$capture$" = 'w', "x$body$;select hx.probe();$body$" = 'z' where id = 2"#)
        .await
        .unwrap();
    assert_eq!(staged(&admin).await, 7);
    assert_eq!(probed(&admin).await, Vec::<String>::new());

    drain(&mut admin, &config).await;
    let fields: Vec<String> = column(
        &admin,
        "select distinct c.field from audit_log.report_changes c
         join audit_log.events e using (event_id)
         where e.target_id = '2' and c.field like '%$%' order by 1",
    )
    .await;
    assert_eq!(
        fields,
        ["$capture$", "x$body$;select hx.probe();$body$"],
        "each hostile column is a field of its own"
    );
    assert_eq!(
        count(&admin, "select count(*) from audit_log.dead_letter").await,
        0
    );
    assert_eq!(probed(&admin).await, Vec::<String>::new());
}

#[tokio::test]
async fn hostile_workspace_ids_are_data_in_the_capture_function_never_code() {
    let (db, mut admin, config) = audited_tables(SCHEMA, CONFIG, "w1").await;
    let (_dir, path) = config_file(CONFIG);
    let mut ids = hostile_names();
    ids.push("w'1".into());
    ids.push("w\\1".into());
    ids.push("{\"w\",1}".into());
    for (i, id) in ids.iter().enumerate() {
        if i % 2 == 0 {
            admin
                .execute("select audit_log.enable($1)", &[id])
                .await
                .unwrap_or_else(|e| panic!("enable {id:?}: {e}"));
        } else {
            cli_with(&db.url, &path, &["enable", "--workspace", id]);
        }
    }
    assert_eq!(probed(&admin).await, Vec::<String>::new());
    // Each of them is audited, and a workspace that was not enabled is not.
    let mut app = db.client().await;
    for (n, id) in ids.iter().enumerate() {
        write_entry(&mut app, 100 + n as i64, id).await;
    }
    write_entry(&mut app, 99, "w'").await;
    drain(&mut admin, &config).await;
    let audited: Vec<String> = column(
        &admin,
        "select distinct workspace_id collate \"C\" from audit_log.events order by 1",
    )
    .await;
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(audited, expected);
    assert_eq!(probed(&admin).await, Vec::<String>::new());

    // No limit is no defence: an id longer than any workspace id is refused, by SQL and the CLI.
    let long = "w".repeat(10_000);
    let err = admin
        .execute("select audit_log.enable($1)", &[&long])
        .await
        .expect_err("a 10 kB workspace id");
    let message = err.as_db_error().map(|e| e.message()).unwrap_or_default();
    assert!(message.contains("at most 200"), "{err:?}");
    let out = cli_at(&db.url, &path, &["enable", "--workspace", &long]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("at most 200"), "{err}");
}

/// A link table's capture reads the host's tables as the owner. An index whose predicate calls
/// the table owner's IMMUTABLE function would run it when the statement is planned: the capture
/// then reads nothing, the host's write goes through, and the reason is kept in dead_letter.
#[tokio::test]
async fn an_index_predicate_on_a_link_table_never_runs_as_the_owner() {
    let (db, mut admin, config) = audited_tables(SCHEMA, CONFIG, "w1").await;
    let owner = table_owner(&db, &admin).await;
    owner
        .batch_execute(
            "create function hx.pred() returns boolean language plpgsql immutable as $$
             begin perform hx.probe(); return true; end $$;
             grant execute on function hx.pred() to public;
             create index entry_tag_probe on hx.entry_tag (entry_id) where hx.pred();",
        )
        .await
        .unwrap();
    let role = unique_role("hx_app");
    admin
        .batch_execute(&format!(
            "create role {role} login; grant usage on schema hx to {role};
             grant select, insert, update, delete on hx.entry, hx.entry_tag to {role};"
        ))
        .await
        .unwrap();
    let mut app = connect(&db.url_as(&role)).await;
    write_entry(&mut app, 1, "w1").await;
    // The host's own insert ran it as the application's role; Clockwatch, as the owner, never.
    let owner_name: String = admin
        .query_one("select current_user::text", &[])
        .await
        .unwrap()
        .get(0);
    let who = probed(&admin).await;
    assert!(who.contains(&role), "{who:?}");
    assert!(!who.contains(&owner_name), "ran as the owner: {who:?}");
    drain(&mut admin, &config).await;
    let reason: String = admin
        .query_one("select reason from audit_log.dead_letter", &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        reason
            .contains("tags not captured: entry_tag or hx.entry has an index, constraint, policy"),
        "{reason}"
    );
}

//! The "done" check: a host schema unlike the fixture, mapped only through a config file,
//! driven through the binary (install, enable, run) for a scripted day.

use std::process::Command;
use std::time::Duration;

use crate::support::*;

const ADA: &str = "00000000-0000-0000-0000-0000000000a1";
const GRACE: &str = "00000000-0000-0000-0000-0000000000b2";

#[tokio::test]
async fn a_foreign_schema_mapped_by_config_yields_the_right_report() {
    let db = TestDb::new().await;
    let mut client = db.client().await;
    client
        .batch_execute(include_str!("../fixtures/foreign.sql"))
        .await
        .unwrap();
    let (_dir, config) = config_file(include_str!("../fixtures/foreign.toml"));
    let run = |args: &[&str]| {
        cli_with(&db.url, &config, args);
    };
    run(&["install"]);
    run(&["enable", "--workspace", "acme"]);
    let mut daemon = daemon_process(&db.url, &config);

    // A day at acme (audited) and at globex (not enabled).
    let job = "10000000-0000-0000-0000-000000000001";
    let customer = "20000000-0000-0000-0000-000000000001";
    let label = "30000000-0000-0000-0000-000000000001";
    let entry = "40000000-0000-0000-0000-000000000001";
    let seat = "50000000-0000-0000-0000-000000000001";
    act(
        &mut client,
        Some(ADA),
        &format!("insert into tt.customers values ('{customer}', 'acme', 'Wayne Corp')"),
    )
    .await;
    act(
        &mut client,
        Some(ADA),
        &format!("insert into tt.jobs values ('{job}', 'acme', 'Batmobile', '{customer}', 3)"),
    )
    .await;
    act(
        &mut client,
        Some(ADA),
        &format!("insert into tt.labels values ('{label}', 'acme', 'R&D')"),
    )
    .await;
    act(
        &mut client,
        Some(ADA),
        &format!(
            "insert into tt.seats values ('{seat}', 'acme', '{GRACE}', 'grace', 'regular', null)"
        ),
    )
    .await;
    act(
        &mut client,
        Some(GRACE),
        &format!("insert into tt.worklog (id, account, person, notes, job, started, stopped, rate, labels, via)
                  values ('{entry}', 'acme', '{GRACE}', 'Engine', '{job}', '2026-11-02 08:00', '2026-11-02 09:15', 80, '{{{label}}}', 1)"),
    )
    .await;
    act(
        &mut client,
        Some(GRACE),
        &format!("update tt.seats set seen = now() where id = '{seat}'"),
    )
    .await;
    act(
        &mut client,
        Some(GRACE),
        &format!(
            "update tt.worklog set notes = 'Engine tuning', touched = now() where id = '{entry}'"
        ),
    )
    .await;
    act(
        &mut client,
        Some(GRACE),
        &format!(
            "update tt.worklog set touched = now() + interval '1 minute' where id = '{entry}'"
        ),
    )
    .await;
    act(
        &mut client,
        Some(ADA),
        &format!("update tt.seats set level = 'admin' where id = '{seat}'"),
    )
    .await;
    act(
        &mut client,
        Some(ADA),
        &format!("update tt.worklog set archived_on = current_date where id = '{entry}'"),
    )
    .await;
    act(
        &mut client,
        Some(ADA),
        &format!("update tt.worklog set archived_on = null where id = '{entry}'"),
    )
    .await;
    act(
        &mut client,
        Some(ADA),
        &format!("delete from tt.jobs where id = '{job}'"),
    )
    .await;
    act(&mut client, Some(ADA), "insert into tt.labels values ('30000000-0000-0000-0000-000000000002', 'globex', 'ignored')").await;

    eventually(
        "the day is in the report",
        Duration::from_secs(30),
        || async { count(&client, "select count(*) from audit_log.report").await >= 12 },
    )
    .await;
    let rows = client
        .query("select * from audit_log.report order by event_id", &[])
        .await
        .unwrap();
    let got: Vec<(String, String, Option<String>)> = rows
        .iter()
        .map(|r| (r.get("action"), r.get("author"), r.get("target")))
        .collect();
    let s =
        |a: &str, b: &str, c: Option<&str>| (a.to_string(), b.to_string(), c.map(str::to_string));
    assert_eq!(
        got,
        [
            s("Created client", "Ada Lovelace", Some("Wayne Corp")),
            s("Created project", "Ada Lovelace", Some("Batmobile")),
            s("Created tag", "Ada Lovelace", Some("R&D")),
            s("Added user", "Ada Lovelace", Some("grace")),
            s("Created time entry", "Grace Hopper", Some("Engine")),
            s("Logged in", "Grace Hopper", Some("grace")),
            s("Updated time entry", "Grace Hopper", Some("Engine tuning")),
            s("Role changed", "Ada Lovelace", Some("grace")),
            s("Deleted time entry", "Ada Lovelace", Some("Engine tuning")),
            s("Restored time entry", "Ada Lovelace", Some("Engine tuning")),
            s("Deleted project", "Ada Lovelace", Some("Batmobile")),
            s("Updated time entry", "System", Some("Engine tuning")),
        ]
    );
    let created = &rows[4];
    let text = |name: &str| created.get::<_, Option<String>>(name);
    assert_eq!(text("workspace_id").as_deref(), Some("acme"));
    assert_eq!(text("origin").as_deref(), Some("Timer"));
    assert_eq!(text("user").as_deref(), Some("Grace Hopper"));
    assert_eq!(text("project").as_deref(), Some("Batmobile"));
    assert_eq!(text("client").as_deref(), Some("Wayne Corp"));
    assert_eq!(text("tags").as_deref(), Some("R&D"));
    // 08:00 UTC (timestamp without time zone, taken as UTC) is 09:00 in Paris in November.
    assert_eq!(text("start_time").as_deref(), Some("09:00:00"));
    assert_eq!(text("duration").as_deref(), Some("01:15:00"));
    assert_eq!(
        rows[1].get::<_, Option<String>>("origin").as_deref(),
        Some("QuickBooks")
    );
    assert_eq!(
        rows[11].get::<_, Option<i64>>("caused_by"),
        Some(rows[10].get::<_, i64>("event_id"))
    );

    // SIGTERM: the daemon finishes and exits 0.
    let pid = daemon.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = daemon.wait().unwrap();
    assert!(status.success(), "daemon exit status {status:?}");
}

//! `[workspaces]`: reports, exports and the page name their workspace from the host's table of
//! workspaces, read safely and never failing a report; and a workspace the log knows nothing of
//! is refused by every reporting command and by the page.

use std::process::Output;

use crate::support::*;

/// The example host's table of workspaces (seeded with 1 'Acme Inc' and 2 'Other Ltd').
const WORKSPACES: &str =
    "\n[workspaces]\ntable = \"app.workspace\"\nid_column = \"id\"\nname_column = \"name\"\n";

/// The example config with `[workspaces]` pointing at app.workspace.
fn config_text() -> String {
    format!(
        "{}{WORKSPACES}",
        include_str!("../../config/clockwatch.toml")
    )
}

/// The example host installed with `[workspaces]`, workspaces 1 and 2 audited, and a time entry
/// of workspace 1 created then renamed (an event with changes), drained.
async fn named_host() -> (TestDb, tokio_postgres::Client, clockwatch::Config) {
    let db = TestDb::with_host().await;
    let mut admin = db.client().await;
    let config = clockwatch::Config::from_toml(&config_text()).unwrap();
    install(&mut admin, &config).await;
    enable_all(&admin, &config, "1").await;
    enable_all(&admin, &config, "2").await;
    act(
        &mut admin,
        Some("1"),
        "insert into app.time_entry (id, workspace_id, user_id, description, start_at)
             values (900, 1, 1, 'Planning', '2026-11-24 09:00Z')",
    )
    .await;
    act(
        &mut admin,
        Some("1"),
        "update app.time_entry set description = 'Planning, done' where id = 900",
    )
    .await;
    drain(&mut admin, &config).await;
    (db, admin, config)
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Exit non-zero with one line on stderr naming `expected`, and no panic.
fn refused(out: &Output, expected: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected a refusal, got success");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(expected), "expected {expected:?} in {err:?}");
    assert!(!err.contains("panicked"), "{err}");
}

/// The role a URL logs in as.
fn role_of(url: &str) -> String {
    let after = url.split_once("://").unwrap().1;
    after.split_once('@').unwrap().0.to_string()
}

#[tokio::test]
async fn the_report_export_and_page_name_the_workspace_from_its_table() {
    let (db, admin, _config) = named_host().await;
    let (dir, config_path) = config_file(&config_text());
    let (from, to) = event_days(&admin, "UTC").await;
    let range = ["--from", from.as_str(), "--to", to.as_str()];

    // The reporting role with the README's grants, and SELECT on the table as the README says.
    let reporting = crate::escalation::reporting_role(&db, &admin).await;
    let role = role_of(&reporting);
    admin
        .batch_execute(&format!(
            "grant usage on schema app to {role}; grant select on app.workspace to {role};"
        ))
        .await
        .unwrap();
    let report = stdout(&cli_at(
        &reporting,
        &config_path,
        &[&["report", "--workspace", "1"][..], &range].concat(),
    ));
    assert!(report.starts_with("Workspace 1 (Acme Inc)\n"), "{report}");
    assert!(report.contains("Planning, done"), "{report}");
    let details = stdout(&cli_at(
        &reporting,
        &config_path,
        &[&["report", "--workspace", "2", "--details"][..], &range].concat(),
    ));
    assert_eq!(details, "Workspace 2 (Other Ltd)\nno events match\n");

    // An export to a file says whose events it wrote; the file itself holds ids, as always.
    let file = dir.path().join("audit.csv");
    let out = cli_at(
        &reporting,
        &config_path,
        &[
            &["export", "--workspace", "1", "-o", file.to_str().unwrap()][..],
            &range,
        ]
        .concat(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "wrote 2 events of workspace 1 (Acme Inc) to {}\n",
            file.display()
        )
    );

    // The page, its API and its CSV, served as the README's reporting role (with the table's
    // grant, given here to every role of this test's database).
    admin
        .batch_execute(
            "grant usage on schema app to public; grant select on app.workspace to public;",
        )
        .await
        .unwrap();
    let served = crate::serve::serve_with(db, admin, WORKSPACES).await;
    let link = served.link("1", "15m");
    let query = link.split_once('?').unwrap().1;
    let filters = format!("&from={from}&to={to}");
    let response = reqwest::get(format!("{}{link}{filters}", served.base))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let page = response.text().await.unwrap();
    // The heading names the workspace, its id beside the name, each isolated for any direction.
    assert!(
        page.contains("<bdi class=\"workspace\">Acme Inc</bdi> <span class=\"workspace-id\">(<bdi>#1</bdi>)</span>"),
        "{page}"
    );
    assert!(
        page.contains("<title>Audit log · Acme Inc</title>"),
        "{page}"
    );

    let api: serde_json::Value =
        reqwest::get(format!("{}/api/events?{query}{filters}", served.base))
            .await
            .unwrap()
            .text()
            .await
            .map(|t| serde_json::from_str(&t).unwrap())
            .unwrap();
    assert_eq!(api["workspace_name"], "Acme Inc", "{api}");

    let csv = reqwest::get(format!("{}/audit.csv?{query}{filters}", served.base))
        .await
        .unwrap();
    assert_eq!(csv.status().as_u16(), 200);
    let disposition = csv.headers()["content-disposition"].to_str().unwrap();
    assert_eq!(
        disposition,
        format!("attachment; filename=\"audit-log-1-Acme_Inc-{from}-{to}.csv\"")
    );
}

#[tokio::test]
async fn a_table_that_cannot_be_read_leaves_the_id_and_never_fails_the_report() {
    let (db, admin, _config) = named_host().await;
    let (_dir, config_path) = config_file(&config_text());
    let (from, to) = event_days(&admin, "UTC").await;
    let report_args = ["report", "--workspace", "1", "--from", &from, "--to", &to];

    // The README's reporting grants alone: no SELECT on app.workspace.
    let reporting = crate::escalation::reporting_role(&db, &admin).await;
    let report = stdout(&cli_at(&reporting, &config_path, &report_args));
    assert!(report.starts_with("Workspace 1\n"), "{report}");
    assert!(report.contains("Planning, done"), "{report}");

    // The name column renamed: status names it, the report shows the id.
    admin
        .batch_execute("alter table app.workspace rename column name to title")
        .await
        .unwrap();
    let report = stdout(&cli_at(&db.url, &config_path, &report_args));
    assert!(report.starts_with("Workspace 1\n"), "{report}");
    let status = cli_at(&db.url, &config_path, &["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert_eq!(status.status.code(), Some(2), "{text}");
    assert!(
        text.contains("workspaces: name_column \"name\" not found in app.workspace: reports show workspace ids instead of names"),
        "{text}"
    );

    // A view put in the table's place is never read, not even by the owner's report.
    admin
        .batch_execute(
            "alter table app.workspace rename to workspace_table;
             create view app.workspace as select id, 'Read from a view'::text as name from app.workspace_table;",
        )
        .await
        .unwrap();
    let report = stdout(&cli_at(&db.url, &config_path, &report_args));
    assert!(report.starts_with("Workspace 1\n"), "{report}");
    assert!(!report.contains("Read from a view"), "{report}");
    let status = cli_at(&db.url, &config_path, &["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("workspaces: table app.workspace is a view, not a table"),
        "{text}"
    );
    // ...and install refuses it, naming it.
    let install = cli_at(&db.url, &config_path, &["install"]);
    refused(
        &install,
        "workspaces: table app.workspace is a view, not a table",
    );
}

#[tokio::test]
async fn install_checks_the_table_and_columns_of_workspaces() {
    let db = TestDb::with_host().await;
    for (section, expected) in [
        (
            "[workspaces]\ntable = \"app.company\"\nname_column = \"name\"\n",
            "workspaces: table app.company not found",
        ),
        (
            "[workspaces]\ntable = \"app.workspace\"\nname_column = [\"display_name\", \"name\"]\n",
            "workspaces: name_column \"display_name\" not found in app.workspace",
        ),
        (
            "[workspaces]\ntable = \"app.workspace\"\nid_column = \"code\"\nname_column = \"name\"\n",
            "workspaces: id_column \"code\" not found in app.workspace",
        ),
    ] {
        let (_dir, path) = config_file(&format!(
            "{}\n{section}",
            include_str!("../../config/clockwatch.toml")
        ));
        refused(&cli_at(&db.url, &path, &["install"]), expected);
    }
    // Nothing was installed by the refusals.
    let client = db.client().await;
    assert_eq!(
        count(
            &client,
            "select count(*) from pg_namespace where nspname = 'audit_log'"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn an_unknown_workspace_is_refused_by_every_command_and_the_page() {
    let (db, admin, _config) = named_host().await;
    let (_dir, config_path) = config_file(&config_text());
    // Workspace 4 is the host's, but has no events and was never enabled.
    admin
        .batch_execute("insert into app.workspace (id, name) values (4, 'Later Co')")
        .await
        .unwrap();
    refused(
        &cli_at(&db.url, &config_path, &["verify", "--workspace", "4"]),
        "unknown workspace \"4\": it has no events and the audit log was never enabled for it",
    );
    let never =
        "unknown workspace \"3\": it has no events and the audit log was never enabled for it";
    for args in [
        &["verify", "--workspace", "3"][..],
        &["export", "--workspace", "3"],
        &["report", "--workspace", "3"],
    ] {
        refused(&cli_at(&db.url, &config_path, args), never);
    }

    // With every workspace audited ('*'), an id is a workspace when the host's table has it...
    clockwatch::workspace::set_enabled(&admin, "audit_log", "*", None, true)
        .await
        .unwrap();
    let verify = stdout(&cli_at(
        &db.url,
        &config_path,
        &["verify", "--workspace", "4"],
    ));
    assert_eq!(verify, "workspace 4: 0 events verified, chain intact\n");
    let report = stdout(&cli_at(
        &db.url,
        &config_path,
        &["report", "--workspace", "4"],
    ));
    assert_eq!(report, "Workspace 4 (Later Co)\nno events match\n");
    // ...and one it has no row for, with no events either, is refused.
    let no_row =
        "unknown workspace \"3\": it has no events and app.workspace has no row with id = '3'";
    for args in [
        &["verify", "--workspace", "3"][..],
        &["export", "--workspace", "3"],
        &["report", "--workspace", "3"],
    ] {
        refused(&cli_at(&db.url, &config_path, args), no_row);
    }
    // An id that is no number names no row of the bigint column, rather than failing.
    refused(
        &cli_at(&db.url, &config_path, &["verify", "--workspace", "acme"]),
        "unknown workspace \"acme\": it has no events and app.workspace has no row",
    );

    // The page, its API and its CSV answer 400 with the same line.
    admin
        .batch_execute(
            "grant usage on schema app to public; grant select on app.workspace to public;",
        )
        .await
        .unwrap();
    let served = crate::serve::serve_with(db, admin, WORKSPACES).await;
    let link = served.link("3", "15m");
    let query = link.split_once('?').unwrap().1;
    let page = reqwest::get(format!("{}{link}", served.base))
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 400);
    let page = page.text().await.unwrap();
    // The page says it in its own words, not the command line's.
    assert!(
        page.contains("This workspace has no audit log yet."),
        "{page}"
    );
    assert!(
        page.contains("<bdi class=\"workspace\">Workspace 3</bdi>"),
        "{page}"
    );

    let api = reqwest::get(format!("{}/api/events?{query}", served.base))
        .await
        .unwrap();
    assert_eq!(api.status().as_u16(), 400);
    let body: serde_json::Value = serde_json::from_str(&api.text().await.unwrap()).unwrap();
    assert_eq!(body["error"], no_row, "{body}");

    let csv = reqwest::get(format!("{}/audit.csv?{query}", served.base))
        .await
        .unwrap();
    // Export answers as the page does: the page, with the reason.
    assert_eq!(csv.status().as_u16(), 400);
    assert!(csv
        .text()
        .await
        .unwrap()
        .contains("This workspace has no audit log yet."));
}

#[tokio::test]
async fn report_changes_shows_each_change_at_its_local_time() {
    let (_db, admin, _config) = named_host().await;
    // The zone reports use, as the CLI sets it for a report's transaction.
    admin
        .batch_execute("set clockwatch.timezone = 'Asia/Kolkata'")
        .await
        .unwrap();
    let row = admin
        .query_one(
            "select c.local_time, to_char(c.occurred_at at time zone 'Asia/Kolkata', 'YYYY-MM-DD HH24:MI:SS'),
                    c.field, c.previous_value, c.new_value
             from audit_log.report_changes c
             where c.workspace_id = '1' and c.field = 'description'",
            &[],
        )
        .await
        .unwrap();
    let (local, expected): (String, String) = (row.get(0), row.get(1));
    assert_eq!(local, expected);
    assert_eq!(
        (row.get::<_, String>(3), row.get::<_, String>(4)),
        ("Planning".to_string(), "Planning, done".to_string())
    );
    // The same text as the report view's local_time for the same event.
    let same: bool = admin
        .query_one(
            "select bool_and(c.local_time = r.local_time)
             from audit_log.report_changes c join audit_log.report r using (event_id)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(same);
}

//! Reports and exports: filters, the 30-day rule, golden CSV, JSON Lines, streaming to a closed pipe.

use std::io::Read;
use std::process::{Command, Output, Stdio};

use crate::support::*;

/// The quickstart's scripted day, drained, with event times pinned to 2026-11-24 08:00 UTC plus
/// one minute per event, so outputs are the same on every run. Events are numbered in the order
/// they were drained, except that the events of one multi-row statement are numbered by target:
/// PostgreSQL does not promise the order in which one statement updates its rows (it differs
/// between major versions), and neither does Clockwatch.
async fn scripted_day() -> (TestDb, tokio_postgres::Client) {
    let (db, mut client, config) = installed_host().await;
    client
        .batch_execute(include_str!("../fixtures/day.sql"))
        .await
        .unwrap();
    drain(&mut client, &config).await;
    client
        .batch_execute(
            "select audit_log.ensure_partition('2026-11-24');
             update audit_log.events e set occurred_at = timestamptz '2026-11-24 08:00Z' + p.n * interval '1 minute'
             from (select event_id, row_number() over (order by statement, target_id::bigint) as n
                   from (select event_id, target_id,
                                min(event_id) over (partition by txid, source, action_code, caused_by) as statement
                         from audit_log.events) s) p
             where p.event_id = e.event_id;",
        )
        .await
        .unwrap();
    (db, client)
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn refused(out: &Output, expected: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected a refusal, got success");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains(expected), "expected {expected:?} in {err:?}");
}

const DAY: [&str; 4] = ["--from", "2026-11-24", "--to", "2026-11-24"];

#[tokio::test]
async fn the_export_of_a_scripted_day_matches_the_golden_csv_byte_for_byte() {
    let (db, _client) = scripted_day().await;
    let csv = ok(&cli(
        &db.url,
        &[&["export", "--workspace", "1"][..], &DAY].concat(),
    ));
    let golden_path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/golden/day.csv");
    if std::env::var_os("CLOCKWATCH_BLESS").is_some() {
        std::fs::write(golden_path, &csv).unwrap();
    }
    let golden =
        std::fs::read_to_string(golden_path).expect("golden file (CLOCKWATCH_BLESS=1 writes it)");
    assert_eq!(csv, golden);

    // --excel: the same bytes behind a UTF-8 byte order mark.
    let excel = cli(
        &db.url,
        &[&["export", "--workspace", "1", "--excel"][..], &DAY].concat(),
    );
    assert!(excel.status.success());
    assert_eq!(&excel.stdout[..3], b"\xEF\xBB\xBF");
    assert_eq!(&excel.stdout[3..], golden.as_bytes());
}

#[tokio::test]
async fn filters_by_author_action_category_and_target() {
    let (db, _client) = scripted_day().await;
    let lines =
        |out: &Output| -> Vec<String> { ok(out).lines().skip(1).map(str::to_string).collect() };

    // System only: the relinked entry and the three nightly approvals.
    let system = lines(&cli(
        &db.url,
        &[
            &["report", "--workspace", "1", "--author", "system"][..],
            &DAY,
        ]
        .concat(),
    ));
    assert_eq!(system.len(), 4, "{system:#?}");
    assert!(
        system.iter().all(|l| l.contains("  System  ")),
        "{system:#?}"
    );

    // An action by label (any case) or by code gives the same rows.
    let by_label = ok(&cli(
        &db.url,
        &[
            &["report", "--workspace", "1", "--action", "deleted PROJECT"][..],
            &DAY,
        ]
        .concat(),
    ));
    let by_code = ok(&cli(
        &db.url,
        &[
            &["report", "--workspace", "1", "--action", "project.deleted"][..],
            &DAY,
        ]
        .concat(),
    ));
    assert_eq!(by_label, by_code);
    assert_eq!(by_label.lines().count(), 2);
    assert!(
        by_label.contains("Ann Admin  Deleted project  Hermes (#200)"),
        "{by_label}"
    );

    // Authors by id or by name; categories.
    let bob = lines(&cli(
        &db.url,
        &[
            &[
                "report",
                "--workspace",
                "1",
                "--author",
                "Bob Builder",
                "--category",
                "time_entries",
            ][..],
            &DAY,
        ]
        .concat(),
    ));
    let bob_by_id = lines(&cli(
        &db.url,
        &[
            &[
                "report",
                "--workspace",
                "1",
                "--author",
                "2",
                "--category",
                "time_entries",
            ][..],
            &DAY,
        ]
        .concat(),
    ));
    assert_eq!(bob, bob_by_id);
    assert_eq!(bob.len(), 5, "{bob:#?}");

    // One record's history, oldest first, linked changes included.
    let history = lines(&cli(
        &db.url,
        &[
            "report",
            "--workspace",
            "1",
            "--target",
            "202",
            "--category",
            "time_entries",
        ],
    ));
    let actions: Vec<&str> = history
        .iter()
        .map(|l| {
            if l.contains("Created") {
                "created"
            } else {
                "updated"
            }
        })
        .collect();
    assert_eq!(actions, ["created", "updated", "updated"]);
    // A mapped id reads as its name, as the detail does.
    assert!(
        history[1].contains("System") && history[1].contains("project_id: Hermes -> (empty)"),
        "{history:#?}"
    );

    // --details shows every detail field.
    let details = ok(&cli(
        &db.url,
        &[
            "report",
            "--workspace",
            "1",
            "--target",
            "201",
            "--category",
            "time_entries",
            "--details",
        ],
    ));
    for expected in [
        "Kiosk: 1",
        "Origin: Kiosk",
        "Start time: 08:00:00",
        "Duration: 04:00:00",
        "User: Cleo Contractor",
    ] {
        assert!(details.contains(expected), "{expected} in {details}");
    }
}

#[tokio::test]
async fn bad_report_input_is_refused_in_one_line() {
    let (db, _client) = scripted_day().await;
    let report = |extra: &[&str]| {
        cli(
            &db.url,
            &[&["report", "--workspace", "1"][..], extra].concat(),
        )
    };
    refused(&report(&["--from", "2026-10-01", "--to", "2026-11-24"]), "the range covers 55 days, more than the 30 one report may cover (max_report_days): split it");
    refused(
        &report(&["--from", "2026-11-24", "--to", "2026-11-01"]),
        "--from 2026-11-24 is not before --to 2026-11-01: swap them",
    );
    refused(
        &report(&["--from", "24/11/2026"]),
        "--from: \"24/11/2026\" is not a date or time",
    );
    refused(
        &report(&["--author", "nobody-at-all"]),
        "unknown author \"nobody-at-all\"",
    );
    refused(
        &report(&["--action", "Exploded project"]),
        "unknown action \"Exploded project\" (expected one of: client.created (Created client)",
    );
    refused(
        &report(&["--category", "invoices"]),
        "unknown category \"invoices\"",
    );
    refused(
        &cli(&db.url, &["report", "--workspace", "42"]),
        "unknown workspace \"42\"",
    );
    // An export may cover more than 30 days.
    let wide = cli(
        &db.url,
        &[
            "export",
            "--workspace",
            "1",
            "--from",
            "2026-10-01",
            "--to",
            "2026-11-30",
        ],
    );
    assert_eq!(ok(&wide).lines().count(), 1 + 18);
}

#[tokio::test]
async fn json_lines_parse_back_to_the_events() {
    let (db, client) = scripted_day().await;
    let out = ok(&cli(
        &db.url,
        &[
            &["export", "--workspace", "1", "--format", "jsonl"][..],
            &DAY,
        ]
        .concat(),
    ));
    let records: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        records.len() as i64,
        count(&client, "select count(*) from audit_log.events").await
    );
    let role = records
        .iter()
        .find(|r| r["action_code"] == "user.role_changed")
        .unwrap();
    assert_eq!(role["author"], "Ann Admin");
    assert_eq!(
        role["previous_value"],
        serde_json::json!({"role": "member"})
    );
    assert_eq!(role["new_value"], serde_json::json!({"role": "manager"}));
    let relinked = records.iter().find(|r| !r["caused_by"].is_null()).unwrap();
    assert_eq!(relinked["author"], "System");
    assert_eq!(relinked["author_id"], serde_json::Value::Null);
}

#[tokio::test]
async fn an_export_into_a_closed_pipe_ends_quietly() {
    let (db, mut client, config) = installed_host().await;
    act(
        &mut client,
        Some("1"),
        "insert into app.time_entry (workspace_id, user_id, description, start_at)
         select 1, 1, repeat('x', 200) || g, now() from generate_series(1, 20000) g",
    )
    .await;
    drain(&mut client, &config).await;
    let mut child = Command::new(binary())
        .arg("--config")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/clockwatch.toml"
        ))
        .args(["export", "--workspace", "1"])
        .env("CLOCKWATCH_DATABASE_URL", &db.url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read the header and a little more, then hang up, as `| head` does.
    let mut stdout = child.stdout.take().unwrap();
    let mut start = [0u8; 4096];
    stdout.read_exact(&mut start).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "status {:?}", out.status);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[tokio::test]
async fn the_sql_function_applies_the_same_rules() {
    let (_db, client) = scripted_day().await;
    let rows = client
        .query(
            "select action, author from audit_log.events_between('1', '2026-11-24', '2026-11-25',
                                                                  array['system'], array['Updated time entry'])",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 4);
    let first_page = client
        .query("select event_id from audit_log.events_between('1', '2026-11-24', '2026-11-25', p_limit => 5)", &[])
        .await
        .unwrap();
    let ids: Vec<i64> = first_page.iter().map(|r| r.get(0)).collect();
    let newest: Vec<i64> = column(
        &client,
        "select event_id from audit_log.events where workspace_id = '1'
         order by occurred_at desc, event_id desc limit 5",
    )
    .await;
    assert_eq!(ids.len(), 5);
    assert_eq!(ids, newest, "newest first");
    let err = client
        .query(
            "select * from audit_log.events_between('1', '2026-10-01', '2026-11-25')",
            &[],
        )
        .await
        .unwrap_err();
    let message = err.as_db_error().unwrap().message().to_string();
    assert_eq!(
        message,
        "the range covers 56 days; a report covers at most 30 days: split it"
    );
    let err = client
        .query("select * from audit_log.events_between('1', '2026-11-24', '2026-11-25', null, array['nope'])", &[])
        .await
        .unwrap_err();
    assert!(err
        .as_db_error()
        .unwrap()
        .message()
        .starts_with("unknown action \"nope\""));
}

#[tokio::test]
async fn the_plain_report_shows_where_a_creation_came_from() {
    let (db, _client) = scripted_day().await;
    let out = ok(&cli(
        &db.url,
        &[&["report", "--workspace", "1"][..], &DAY].concat(),
    ));
    let timer = out
        .lines()
        .find(|l| l.contains("Kick-off meeting") && l.contains("Created"))
        .unwrap_or_else(|| panic!("no creation of the kick-off entry in:\n{out}"));
    assert!(timer.contains("Created time entry (Timer)"), "{timer}");
    assert!(out.contains("Created time entry (Import)"), "{out}");
    // Only creations say it: an update's origin stays in the details.
    assert!(!out.contains("Updated time entry ("), "{out}");
}

/// Details documents an export formats itself (src/detail.rs) and the report view formats in SQL:
/// escapes, numbers and objects, times across a change of summer time, over a day and
/// backwards, offsets, infinity, far years, a time finer than PostgreSQL keeps, and tag lists
/// with nulls and empties.
const DETAILS: [&str; 13] = [
    r#"{"user": "Ann \"A\" \\ back", "description": "line\nbreak\ttab é ☃", "project": "P, with comma"}"#,
    r#"{"billable": true, "approved": false, "billable_rate": 12.50, "cost_rate": 1e3, "invoiced": null,
        "kiosk": {"b": [1, 2], "a": "x"}, "type": ["t"], "client": ""}"#,
    r#"{"start": "2026-03-29T00:30:00Z", "end": "2026-03-30T02:15:30.9Z", "tags": ["a, b", null, "c"]}"#,
    r#"{"start": "2026-11-01T05:30:00Z", "end": "2026-11-01T07:00:00.000001Z", "tags": ["urgent"]}"#,
    r#"{"start": "2026-01-01T10:30:00Z", "end": "2026-01-01T09:00:00.5Z", "tags": []}"#,
    r#"{"start": "infinity", "end": "-infinity", "tags": [null]}"#,
    r#"{"start": "2026-01-01T09:00:00+05:30", "end": "2026-01-05T09:00:00-08:00", "tags": [""]}"#,
    r#"{"start": "1971-01-01T00:00:00Z", "end": "9999-12-31T12:00:00Z"}"#,
    r#"{"start": "2026-06-01T09:00:00Z", "end": "2026-06-01T09:00:00Z", "user": 42, "tags": [1, true, "x"]}"#,
    r#"{"start": "2026-06-01T09:00:00.123456Z"}"#,
    r#"{"start": "2026-06-01T09:00:00.0000004Z", "end": "2026-06-01T09:00:01Z"}"#,
    r#"{"other": "ignored"}"#,
    "{}",
];

#[tokio::test]
async fn an_export_formats_each_detail_as_the_report_view_does() {
    let (db, mut client, _config) = installed_host().await;
    client
        .batch_execute("select audit_log.ensure_partition(now())")
        .await
        .unwrap();
    for (i, details) in DETAILS.iter().enumerate() {
        let id = i as i64 + 1;
        client
            .execute(
                "insert into audit_log.events (event_id, occurred_at, workspace_id, category,
                                               action_code, action, author, txid, source, details)
                 values ($1, now() - make_interval(secs => $1::bigint), '1', 'time_entries',
                         'time_entry.updated', 'Updated time entry', 'System', 1, 'app.time_entry',
                         $2::text::jsonb)",
                &[&id, details],
            )
            .await
            .unwrap();
    }
    let fields: Vec<&str> = clockwatch::report::DETAIL_FIELDS
        .iter()
        .map(|(field, _)| *field)
        .collect();
    let select = format!(
        "select event_id, {} from audit_log.report where workspace_id = '1' order by event_id",
        fields
            .iter()
            .map(|f| format!("\"{f}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for zone in ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"] {
        let tx = client.transaction().await.unwrap();
        tx.execute(
            "select set_config('clockwatch.timezone', $1, true)",
            &[&zone],
        )
        .await
        .unwrap();
        let view: Vec<(i64, Vec<Option<String>>)> = tx
            .query(&select, &[])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), (1..=fields.len()).map(|i| r.get(i)).collect()))
            .collect();
        tx.commit().await.unwrap();
        let out = ok(&cli(
            &db.url,
            &[
                "export",
                "--workspace",
                "1",
                "--timezone",
                zone,
                "--format",
                "jsonl",
            ],
        ));
        let mut exported: Vec<(i64, Vec<Option<String>>)> = out
            .lines()
            .map(|line| {
                let record: serde_json::Value = serde_json::from_str(line).unwrap();
                let detail = |f: &&str| record[*f].as_str().map(str::to_string);
                (
                    record["event_id"].as_i64().unwrap(),
                    fields.iter().map(detail).collect(),
                )
            })
            .collect();
        exported.sort();
        assert_eq!(exported.len(), DETAILS.len());
        for ((id, by_view), (_, by_export)) in view.iter().zip(&exported) {
            assert_eq!(
                by_export,
                by_view,
                "{zone}, details {}",
                DETAILS[*id as usize - 1]
            );
        }
    }
    // The view's own reading of the awkward ones (in the installed zone, UTC), so that agreeing
    // is not agreeing on nothing.
    let utc: Vec<Option<String>> = column(
        &client,
        "select concat_ws(' | ', start_time, end_time, duration, tags)
         from audit_log.report where event_id in (3, 5, 6, 7) order by event_id",
    )
    .await;
    assert_eq!(
        utc,
        [
            Some("00:30:00 | 02:15:30 | 25:45:30 | a, b, c".to_string()),
            Some("10:30:00 | 09:00:00 | -01:29:59".to_string()),
            Some("".to_string()),
            Some("03:30:00 | 17:00:00 | 109:30:00 | ".to_string()),
        ]
    );
}

//! The binary: exit codes and one-line errors.

use std::process::{Command, Output};

use crate::support::*;

fn clockwatch(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(binary());
    cmd.args(args)
        .env_remove("DATABASE_URL")
        .env_remove("CLOCKWATCH_DATABASE_URL")
        .env_remove("CLOCKWATCH_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run clockwatch")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Exactly one line on stderr, starting with "error: ", and a non-zero exit.
fn assert_one_line_error(out: &Output, expected: &str) {
    assert!(
        !out.status.success(),
        "expected failure, got {:?}",
        out.status
    );
    let err = stderr(out);
    assert_eq!(err.lines().count(), 1, "one line expected: {err:?}");
    assert!(
        err.starts_with("error: ") && err.contains(expected),
        "expected {expected:?} in {err:?}"
    );
}

#[tokio::test]
async fn install_enable_status_through_the_binary() {
    let db = TestDb::with_host().await;
    let (_dir, config) = config_file(include_str!("../../config/clockwatch.toml"));
    let config = config.to_str().unwrap();
    let env = [("CLOCKWATCH_DATABASE_URL", db.url.as_str())];

    let out = clockwatch(&["--config", config, "install"], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    let applied = clockwatch::migrate::MIGRATIONS.len();
    assert!(
        stdout(&out).contains(&format!(
            "installed in schema audit_log: {applied} migration(s) applied, triggers on 7 table(s)"
        )),
        "{}",
        stdout(&out)
    );

    let out = clockwatch(
        &[
            "--config",
            config,
            "enable",
            "--workspace",
            "1",
            "--categories",
            "time_entries,projects",
        ],
        &env,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "workspace 1: auditing projects, time_entries\n"
    );

    let out = clockwatch(
        &[
            "--config",
            config,
            "disable",
            "--workspace",
            "1",
            "--categories",
            "projects",
        ],
        &env,
    );
    assert_eq!(stdout(&out), "workspace 1: auditing time_entries\n");

    let out = clockwatch(
        &[
            "--config",
            config,
            "enable",
            "--workspace",
            "1",
            "--categories",
            "invoices",
        ],
        &env,
    );
    assert_one_line_error(
        &out,
        "unknown category \"invoices\" (expected one of: time_entries, projects",
    );

    let client = db.client().await;
    client
        .batch_execute(
            "insert into app.time_entry (workspace_id, user_id, start_at) values (1, 1, now())",
        )
        .await
        .unwrap();
    let out = clockwatch(&["--config", config, "status", "--json"], &env);
    // No daemon runs: the status says so and exits 2, as a monitoring check should.
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["staged"], 1);
    assert_eq!(
        status["problems"][0],
        "no daemon is connected: start `clockwatch run`"
    );
    assert_eq!(
        status["partitions"].as_array().unwrap().len(),
        3,
        "this month and two ahead"
    );
    assert_eq!(status["workspaces"][0]["workspace_id"], "1");
    assert_eq!(
        status["workspaces"][0]["categories"],
        serde_json::json!(["time_entries"])
    );

    let out = clockwatch(&["--config", config, "status"], &env);
    assert!(
        stdout(&out).contains("0 daemon(s) connected, 1 change(s) staged"),
        "{}",
        stdout(&out)
    );

    let out = clockwatch(&["--config", config, "uninstall", "--purge"], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "removed triggers from 7 table(s)\ndropped schema audit_log\n"
    );
}

#[tokio::test]
async fn bad_config_and_missing_database_are_one_line_errors() {
    let (_dir, good) = config_file(include_str!("../../config/clockwatch.toml"));
    let good = good.to_str().unwrap();

    let out = clockwatch(&["--config", "/nonexistent/clockwatch.toml", "status"], &[]);
    assert_one_line_error(&out, "config: /nonexistent/clockwatch.toml: file not found");

    let (_d1, typo) = config_file("schema = 'audit_log'\nbatch_size = 10\n");
    let out = clockwatch(&["--config", typo.to_str().unwrap(), "status"], &[]);
    assert_one_line_error(&out, "batch_size");

    let (_d3, syntax) = config_file("schema = \n");
    let out = clockwatch(&["--config", syntax.to_str().unwrap(), "status"], &[]);
    assert_one_line_error(
        &out,
        "TOML parse error at line 1, column 10: invalid string",
    );

    let (_d2, bad_category) =
        config_file("[[source]]\ncategory = 'invoices'\ntable = 'a.b'\nworkspace_column = 'w'\n");
    let out = clockwatch(
        &["--config", bad_category.to_str().unwrap(), "install"],
        &[],
    );
    assert_one_line_error(
        &out,
        "unknown category \"invoices\" (expected one of: time_entries,",
    );

    let out = clockwatch(&["--config", good, "status"], &[]);
    assert_one_line_error(&out, "no database configured: pass --database-url, or set CLOCKWATCH_DATABASE_URL or DATABASE_URL");

    // Nothing listens on port 1.
    let out = clockwatch(
        &[
            "--config",
            good,
            "--database-url",
            "postgres://nobody@127.0.0.1:1/none",
            "status",
        ],
        &[],
    );
    assert_one_line_error(&out, "cannot connect to the database");

    let out = clockwatch(
        &[
            "--config",
            good,
            "--database-url",
            "postgres://[bad",
            "status",
        ],
        &[],
    );
    assert_one_line_error(&out, "database url");

    let db = TestDb::new().await;
    let out = clockwatch(
        &["--config", good, "--database-url", &db.url, "status"],
        &[],
    );
    assert_one_line_error(
        &out,
        "clockwatch is not installed in schema \"audit_log\": run `clockwatch install` first",
    );
    let out = clockwatch(
        &["--config", good, "--database-url", &db.url, "install"],
        &[],
    );
    assert_one_line_error(
        &out,
        "source app.time_entry (time_entries): table: app.time_entry not found",
    );
}

#[test]
fn demo_runs_end_to_end_on_its_own_server() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("demo.csv");
    let out = Command::new(binary())
        .args(["demo", "--output"])
        .arg(&csv)
        .env_remove("DATABASE_URL")
        .env_remove("CLOCKWATCH_DATABASE_URL")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(text.contains("started a throwaway PostgreSQL"), "{text}");
    assert!(
        text.lines().any(|l| l.contains("Ann Admin")
            && l.contains("Deleted project")
            && l.contains("Hermes (#200)")),
        "{text}"
    );
    assert!(text.contains("Created time entry (Kiosk)"), "{text}");
    assert!(text.contains("Caused by event: 14"), "{text}");
    assert!(
        text.contains("stopped the throwaway PostgreSQL and removed its files"),
        "{text}"
    );
    let exported = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(exported.lines().count(), 1 + 18, "{exported}");
    assert!(exported.starts_with("Time (UTC),Workspace,Author"));
    let cluster_dir = text
        .lines()
        .find_map(|l| {
            l.split_once(" in ")
                .filter(|_| l.contains("throwaway PostgreSQL on port"))
        })
        .map(|(_, dir)| std::path::PathBuf::from(dir.trim()))
        .expect("the demo names its cluster directory");
    assert!(
        !cluster_dir.exists(),
        "the demo removes {}",
        cluster_dir.display()
    );
}

#[test]
fn the_systemd_unit_verifies_cleanly() {
    // systemd-analyze comes with the systemd package, which scripts/deps installs when missing.
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("clockwatch.service");
    let text = include_str!("../../systemd/clockwatch.service")
        .replace("/usr/local/bin/clockwatch", binary());
    std::fs::write(&unit, text).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("systemd-analyze (Debian: apt-get install -y systemd; scripts/deps installs it)");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "", "systemd-analyze has remarks");
}

/// What Clockwatch writes to disk is its owner's alone, and a secret anyone may rewrite is refused.
#[tokio::test]
async fn an_export_file_is_private_and_a_world_writable_link_secret_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let (db, mut client, config) = installed_host().await;
    act(
        &mut client,
        Some("1"),
        "insert into app.tag (workspace_id, name) values (1, 'exported')",
    )
    .await;
    drain(&mut client, &config).await;
    let (from, to) = event_days(&client, "UTC").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.csv");
    let out = cli(
        &db.url,
        &[
            "export",
            "--workspace",
            "1",
            "--from",
            &from,
            "--to",
            &to,
            "-o",
            file.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(std::fs::read_to_string(&file).unwrap().contains("exported"));

    let secret = dir.path().join("secret");
    std::fs::write(&secret, "0123456789abcdef0123456789abcdef").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (_cfg_dir, cfg) = config_file(&format!(
        "{}\n[serve]\nsecret_file = {:?}\n",
        include_str!("../../config/clockwatch.toml"),
        secret.to_str().unwrap()
    ));
    let out = std::process::Command::new(binary())
        .args([
            "--config",
            cfg.to_str().unwrap(),
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("CLOCKWATCH_DATABASE_URL", &db.url)
        .env_remove("CLOCKWATCH_LINK_SECRET")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("is writable by every user: chmod 600 it"),
        "{err}"
    );
}

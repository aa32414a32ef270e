//! The audit log in a database of its own (`log_database_url`): the host keeps capture and
//! staging, the log database the events, and each change crosses exactly once.

use std::time::Duration;

use clockwatch::drain::Drainer;
use tokio_postgres::Client;

use crate::support::*;

/// The example config with its log in the database at `log_url`, and a table of workspaces.
pub fn split_config_text(log_url: &str) -> String {
    format!(
        "log_database_url = '{log_url}'\n{}\n[workspaces]\ntable = 'app.workspace'\nname_column = 'name'\n",
        include_str!("../../config/clockwatch.toml")
    )
}

/// A host database with the example schema and a log database beside it on the same server,
/// Clockwatch installed in both (the log's first, as `install` does) and workspace 1 audited.
pub async fn installed_split() -> (TestDb, TestDb, Client, Client, clockwatch::Config) {
    let host = TestDb::with_host().await;
    let log = TestDb::new().await;
    let config = clockwatch::Config::from_toml(&split_config_text(&log.url)).unwrap();
    let mut log_client = log.client().await;
    clockwatch::install::install_log(&mut log_client, &config)
        .await
        .expect("install the log database");
    let mut client = host.client().await;
    install(&mut client, &config).await;
    enable_all(&client, &config, "1").await;
    (host, log, client, log_client, config)
}

/// Drain the host's staging into the log database, as the daemon does.
async fn drain_split(client: &mut Client, log_url: &str, config: &clockwatch::Config) {
    let set = format!("set search_path = {}, pg_catalog", config.schema);
    client.batch_execute(&set).await.unwrap();
    let log = connect(log_url).await;
    log.batch_execute(&set).await.unwrap();
    let mut drainer = Drainer::new(config.clone());
    drainer.set_log(log);
    drainer.drain_all(client).await.expect("drain");
    client.batch_execute("reset search_path").await.unwrap();
}

#[tokio::test]
async fn the_log_database_holds_the_events_and_reports_read_it_there() {
    let host = TestDb::with_host().await;
    let log = TestDb::new().await;
    let (_dir, path) = config_file(&split_config_text(&log.url));
    let out = cli_at(&host.url, &path, &["install"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.starts_with("log database: installed"), "{printed}");
    cli_with(&host.url, &path, &["enable", "--workspace", "1"]);
    let mut client = host.client().await;
    act(
        &mut client,
        Some("2"),
        "insert into app.tag (workspace_id, name) values (1, 'over there');
         update app.project set name = 'Apollo II' where id = 1",
    )
    .await;
    let log_client = log.client().await;
    let mut daemon = daemon_process(&host.url, &path);
    // Logged, and then taken out of staging: the host commits after the log.
    eventually(
        "the changes reach the log and leave staging",
        Duration::from_secs(30),
        || async {
            count(&log_client, "select count(*) from audit_log.events").await == 2
                && staged(&client).await == 0
        },
    )
    .await;
    kill_hard(&mut daemon);
    for (side, table) in [(&client, "events"), (&log_client, "staging")] {
        let sql = format!("select (to_regclass('audit_log.{table}') is null)::int::bigint");
        assert_eq!(
            count(side, &sql).await,
            1,
            "each side holds only its part: {table}"
        );
    }
    // The row images read as JSON in the log, by the shapes copied there.
    let tag: String = log_client
        .query_one(
            "select row_data ->> 'name' from audit_log.report where action_code = 'tag.created'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tag, "over there");

    let report = cli_with(&host.url, &path, &["report", "--workspace", "1"]);
    assert!(
        report.starts_with("Workspace 1 (Acme Inc)\n"),
        "the workspace named from what the daemon remembered: {report}"
    );
    assert!(
        report.contains("Created tag") && report.contains("Apollo II"),
        "{report}"
    );
    let verified = cli_with(&host.url, &path, &["verify", "--workspace", "1"]);
    assert!(
        verified.contains("2 events verified, chain intact"),
        "{verified}"
    );
    let csv = cli_with(
        &host.url,
        &path,
        &["export", "--workspace", "1", "--format", "csv"],
    );
    assert!(csv.contains("over there"), "{csv}");
    let status = cli_at(&host.url, &path, &["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.starts_with("log: in a database of its own"), "{text}");
    assert!(text.contains("events: 2 in the last hour"), "{text}");

    let out = cli_at(&host.url, &path, &["uninstall", "--purge"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        count(
            &log_client,
            "select count(*) from pg_namespace where nspname = 'audit_log'"
        )
        .await,
        0,
        "a purge drops the log database's schema too"
    );
}

/// The host's commit of a batch lost after the log's landed: the batch is staged again, and
/// drained again, and the log still holds each change once.
#[tokio::test]
async fn a_batch_staged_again_after_the_log_took_it_is_not_logged_twice() {
    let (host, log, mut client, log_client, config) = installed_split().await;
    act(
        &mut client,
        Some("2"),
        "insert into app.tag (workspace_id, name) values (1, 'once'), (1, 'only once');
         update app.project set name = 'Apollo II' where id = 1",
    )
    .await;
    client
        .batch_execute("create table public.kept as select * from audit_log.staging")
        .await
        .unwrap();
    drain_split(&mut client, &log.url, &config).await;
    assert_eq!(
        count(&log_client, "select count(*) from audit_log.events").await,
        3
    );
    client
        .batch_execute(
            "insert into audit_log.staging overriding system value select * from public.kept",
        )
        .await
        .unwrap();
    act(
        &mut client,
        Some("2"),
        "insert into app.tag (workspace_id, name) values (1, 'after')",
    )
    .await;
    drain_split(&mut client, &log.url, &config).await;
    assert_eq!(staged(&client).await, 0);
    assert_eq!(
        count(&log_client, "select count(*) from audit_log.events").await,
        4,
        "the three changes once each, and the one after"
    );
    assert_eq!(
        count(
            &log_client,
            "select count(*) from audit_log.events where chain_seq is null"
        )
        .await,
        0
    );
    let (_dir, path) = config_file(&split_config_text(&log.url));
    let verified = cli_with(&host.url, &path, &["verify", "--workspace", "1"]);
    assert!(
        verified.contains("4 events verified, chain intact"),
        "{verified}"
    );
}

/// A change too large to log, set aside by the host's claim, ends in the log's dead_letter.
#[tokio::test]
async fn a_change_set_aside_on_the_host_reaches_the_log_dead_letter() {
    let (_host, log, mut client, log_client, mut config) = installed_split().await;
    config.daemon.max_change_bytes = 1000;
    act(
        &mut client,
        Some("2"),
        "insert into app.tag (workspace_id, name) values (1, repeat('x', 5000)), (1, 'small')",
    )
    .await;
    drain_split(&mut client, &log.url, &config).await;
    assert_eq!(
        count(&log_client, "select count(*) from audit_log.dead_letter").await,
        1
    );
    assert_eq!(
        count(&client, "select count(*) from audit_log.dead_letter").await,
        0,
        "moved, not copied"
    );
    assert_eq!(
        count(&log_client, "select count(*) from audit_log.events").await,
        1
    );
}

/// Two hosts drain into one log database, each under its own source id: the same workspace id
/// (1) in both, the same record ids, kept apart in reports, `verify`, the page and its links.
#[tokio::test]
async fn two_hosts_share_one_log_database_with_their_workspaces_kept_apart() {
    let log = TestDb::new().await;
    let log_client = log.client().await;
    let mut hosts = Vec::new();
    for (source, workspace, tag) in [
        ("tenant_a", "Acme Inc", "aardvark"),
        ("tenant_b", "Beta GmbH", "bumblebee"),
    ] {
        let host = TestDb::with_host().await;
        let (dir, path) = config_file(&format!(
            "source_id = '{source}'\n{}",
            split_config_text(&log.url)
        ));
        cli_with(&host.url, &path, &["install"]);
        cli_with(&host.url, &path, &["enable", "--workspace", "1"]);
        let mut client = host.client().await;
        client
            .batch_execute(&format!(
                "update app.workspace set name = '{workspace}' where id = 1"
            ))
            .await
            .unwrap();
        act(
            &mut client,
            Some("2"),
            &format!("insert into app.tag (id, workspace_id, name) values (500, 1, '{tag}')"),
        )
        .await;
        let mut daemon = daemon_process(&host.url, &path);
        let events = format!("select count(*) from audit_log_{source}.events");
        eventually(
            "the change reaches the log",
            Duration::from_secs(30),
            || async { count(&log_client, &events).await == 1 },
        )
        .await;
        kill_hard(&mut daemon);
        hosts.push((host, dir, path));
    }
    let (a, _, path_a) = &hosts[0];
    let (b, _, path_b) = &hosts[1];
    let report_a = cli_with(&a.url, path_a, &["report", "--workspace", "1"]);
    assert!(
        report_a.starts_with("Workspace 1 (Acme Inc)\n"),
        "{report_a}"
    );
    assert!(
        report_a.contains("aardvark") && !report_a.contains("bumblebee"),
        "{report_a}"
    );
    // One config reads the other host's log with --source-id.
    let report_b = cli_with(
        &a.url,
        path_a,
        &["report", "--workspace", "1", "--source-id", "tenant_b"],
    );
    assert!(
        report_b.starts_with("Workspace 1 (Beta GmbH)\n"),
        "{report_b}"
    );
    assert!(
        report_b.contains("bumblebee") && !report_b.contains("aardvark"),
        "{report_b}"
    );
    for (url, path) in [(&a.url, path_a), (&b.url, path_b)] {
        let verified = cli_with(url, path, &["verify", "--workspace", "1"]);
        assert!(
            verified.contains("1 events verified, chain intact"),
            "{verified}"
        );
    }

    // The page of each source shows its own workspace 1, and a link minted for one opens only
    // its own page.
    let mut pages = Vec::new();
    for (url, path) in [(&a.url, path_a), (&b.url, path_b)] {
        let port = crate::serve::free_port();
        let server = std::process::Command::new(binary())
            .arg("--config")
            .arg(path)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("CLOCKWATCH_DATABASE_URL", url)
            .env("CLOCKWATCH_LINK_SECRET", crate::serve::SECRET)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let link = std::process::Command::new(binary())
            .arg("--config")
            .arg(path)
            .args(["link", "--workspace", "1", "--viewer", "ann", "--ttl", "1h"])
            .env("CLOCKWATCH_LINK_SECRET", crate::serve::SECRET)
            .output()
            .unwrap();
        let link = String::from_utf8(link.stdout).unwrap();
        let query = link[link.find("/audit?").expect("a link")..]
            .trim()
            .to_string();
        pages.push((server, format!("http://127.0.0.1:{port}"), query));
    }
    // A link minted as the README shows, for each source's page.
    let mut minted = Vec::new();
    for ((_, base, _), source) in pages.iter().zip(["tenant_a", "tenant_b"]) {
        let python = format!(
            "{}\nprint(audit_link({base:?}, {:?}, '1', 'ann', source={source:?}))",
            crate::serve::readme_block("python"),
            crate::serve::SECRET
        );
        let out = std::process::Command::new("python3")
            .args(["-c", &python])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        minted.push(String::from_utf8(out.stdout).unwrap().trim().to_string());
    }
    let get = |url: String| async move {
        let response = reqwest::get(&url).await.ok()?;
        Some((response.status().as_u16(), response.text().await.ok()?))
    };
    for (i, (own, other)) in [("aardvark", "bumblebee"), ("bumblebee", "aardvark")]
        .iter()
        .enumerate()
    {
        let (_, base, query) = &pages[i];
        let health = format!("{base}/healthz");
        eventually("the page answers", Duration::from_secs(20), || {
            let health = health.clone();
            async move { get(health).await.is_some_and(|(status, _)| status == 200) }
        })
        .await;
        for url in [format!("{base}{query}"), minted[i].clone()] {
            let (status, page) = get(url).await.unwrap();
            assert_eq!(status, 200, "{page}");
            assert!(page.contains(own) && !page.contains(other), "{page}");
        }
        let (_, _, foreign) = &pages[1 - i];
        let (status, _) = get(format!("{base}{foreign}")).await.unwrap();
        assert_eq!(status, 401, "the other source's link is refused");
    }
    for (mut server, _, _) in pages {
        kill_hard(&mut server);
    }
}

/// Nothing ties a staged change to the host it came from but the host itself: the host's schema
/// records its source at install, and neither the daemon nor a command works across sources, nor
/// reads a host's unused tables as its log.
#[tokio::test]
async fn a_command_for_another_source_or_the_wrong_side_is_refused_in_one_line() {
    let (host, log, mut client, log_client, config) = installed_split().await;
    let text = format!("source_id = 'tenant_a'\n{}", split_config_text(&log.url));
    let (_dir, path) = config_file(&text);
    // Installed for no source: now the config names one.
    let out = cli_at(&host.url, &path, &["install"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "was installed for no source_id, and this config is for source_id \"tenant_a\""
        ),
        "{stderr}"
    );
    // A second host, tenant_a, beside the first in the same log database.
    let other = TestDb::with_host().await;
    cli_with(&other.url, &path, &["install"]);
    cli_with(&other.url, &path, &["enable", "--workspace", "1"]);
    act(
        &mut client,
        Some("2"),
        "insert into app.tag (workspace_id, name) values (1, 'the first host')",
    )
    .await;
    // The daemon for tenant_a pointed at the first host (installed for no source) stops at once.
    let (_plain_dir, plain) = config_file(&split_config_text(&log.url));
    for args in [
        &["run", "--source-id", "tenant_a"][..],
        &["status", "--source-id", "tenant_a"][..],
        &["uninstall", "--purge", "--source-id", "tenant_a"][..],
    ] {
        let out = cli_at(&host.url, &plain, args);
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("no source_id"), "{args:?}: {stderr}");
        let errors = stderr.lines().filter(|l| l.starts_with("error: "));
        assert_eq!(errors.count(), 1, "one line says what is wrong: {stderr}");
    }
    assert_eq!(
        staged(&client).await,
        1,
        "nothing drained into tenant_a's log"
    );
    assert_eq!(
        count(
            &log_client,
            "select count(*) from audit_log_tenant_a.events"
        )
        .await,
        0
    );
    // A report read on the host, whose log is elsewhere, is refused rather than empty.
    let out = cli(&host.url, &["report", "--workspace", "1"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("keeps capture only"), "{stderr}");
    // A daemon pointed at the log database as if it were the application's stops at once.
    let out = cli(&log.url, &["run"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("this is a log database"), "{stderr}");
    drop(config);
}

/// A batch refused by the log database after its shapes were copied in the same transaction:
/// the shapes are copied again with the batch that takes their events, so no event in the log
/// names a shape the log does not hold; the change refused lands in the log's dead_letter.
#[tokio::test]
async fn a_batch_the_log_refuses_leaves_no_event_without_its_shape() {
    let (_host, log, mut client, log_client, config) = installed_split().await;
    client
        .batch_execute("alter table app.client add column meta json")
        .await
        .unwrap();
    act(
        &mut client,
        Some("2"),
        r#"update app.client set meta = '{"a": 1}', name = 'Globex 3' where id = 1;
           update app.client set meta = '{"a": "\u0000"}' where id = 1"#,
    )
    .await;
    drain_split(&mut client, &log.url, &config).await;
    assert_eq!(staged(&client).await, 0);
    assert_eq!(
        count(
            &log_client,
            "select count(*) from audit_log.events e
             where e.row_shape is not null
               and not exists (select from audit_log.shape s where s.id = e.row_shape)"
        )
        .await,
        0,
        "every event's shape is in the log"
    );
    assert_eq!(
        count(
            &log_client,
            "select count(*) from audit_log.report where action_code = 'client.updated' and row_data ->> 'name' = 'Globex 3'"
        )
        .await,
        1
    );
    assert_eq!(
        count(&log_client, "select count(*) from audit_log.dead_letter").await,
        1,
        "the change the log refused, in the log's dead_letter"
    );
    assert_eq!(
        count(&client, "select count(*) from audit_log.dead_letter").await,
        0
    );
}

/// The functions that move dead letters and shapes between the two databases work only where
/// they belong: the daemon role cannot empty the dead letters an admin reads, nor plant shape
/// ids ahead of capture's on the host.
#[tokio::test]
async fn the_daemon_role_cannot_empty_dead_letters_or_plant_shapes() {
    let db = TestDb::with_host().await;
    let mut admin = db.client().await;
    let mut config = example_config();
    let (_, url) = with_daemon_role(&db, &mut admin, &mut config).await;
    let daemon = connect(&url).await;
    for sql in [
        "select * from audit_log.take_dead_letters(10)",
        r#"select audit_log.copy_shapes('[{"id": 1000, "source": "x", "category": "tags", "columns": [], "types": [], "excluded": [], "signature": "x"}]')"#,
    ] {
        let e = daemon.query(sql, &[]).await.expect_err(sql);
        assert_eq!(
            e.code(),
            Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
            "{sql}: {e}"
        );
    }
}

/// One daemon role per host: granted on two hosts' logs, either host's daemon could write the
/// other's.
#[tokio::test]
async fn a_daemon_role_drains_the_log_of_one_host_only() {
    let log = TestDb::new().await;
    let admin = log.client().await;
    let role = unique_role("daemon");
    admin
        .batch_execute(&format!("create role {role} login"))
        .await
        .unwrap();
    let mut client = log.client().await;
    for (source, allowed) in [("tenant_a", true), ("tenant_b", false)] {
        let mut config = clockwatch::Config::from_toml(&split_config_text(&log.url)).unwrap();
        config.daemon_role = Some(role.clone());
        config.source_id = Some(source.to_string());
        let installed = clockwatch::install::install_log(&mut client, &config.in_log()).await;
        match installed {
            Ok(_) => assert!(allowed, "{source}"),
            Err(e) => {
                assert!(!allowed, "{source}: {e}");
                assert!(e.to_string().contains("already drains"), "{e}");
            }
        }
    }
}

/// A log database's owner who is no superuser installs it with a daemon role, though it may not
/// look into pg_toast or other sessions' temporary schemas.
#[tokio::test]
async fn the_log_database_owner_installs_it_with_a_daemon_role() {
    let log = TestDb::new().await;
    let admin = log.client().await;
    let (owner, daemon) = (unique_role("log_owner"), unique_role("daemon"));
    admin
        .batch_execute(&format!(
            "create role {owner} login; create role {daemon} login;
             do $$ begin execute format('alter database %I owner to {owner}', current_database()); end $$;
             create temp table another_sessions_temp (x int)"
        ))
        .await
        .unwrap();
    let mut config = clockwatch::Config::from_toml(&split_config_text(&log.url)).unwrap();
    config.daemon_role = Some(daemon);
    let mut as_owner = connect(&log.url_as(&owner)).await;
    clockwatch::install::install_log(&mut as_owner, &config.in_log())
        .await
        .expect("the owner installs the log database");
}

/// The daemon role drains with its own grants on each side: on the host what claiming needs, in
/// the log what appending needs, and no more (it cannot read the host's staging into the log any
/// other way, nor write events directly).
#[tokio::test]
async fn the_daemon_role_drains_across_the_two_databases_with_its_own_grants() {
    let host = TestDb::with_host().await;
    let log = TestDb::new().await;
    let role = daemon_login(&host.client().await).await;
    let text = format!("daemon_role = '{role}'\n{}", split_config_text(&log.url));
    let (_dir, path) = config_file(&text);
    cli_with(&host.url, &path, &["install"]);
    cli_with(&host.url, &path, &["enable", "--workspace", "1"]);
    let mut client = host.client().await;
    act(
        &mut client,
        Some("2"),
        "insert into app.tag (workspace_id, name) values (1, 'as the daemon role')",
    )
    .await;
    let mut daemon = std::process::Command::new(binary())
        .arg("--config")
        .arg(&path)
        .arg("run")
        .env("CLOCKWATCH_DATABASE_URL", host.url_as(&role))
        .env("CLOCKWATCH_LOG_DATABASE_URL", log.url_as(&role))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let log_client = log.client().await;
    // Logged, and then taken out of staging: the host commits after the log.
    eventually(
        "the change reaches the log and leaves staging",
        Duration::from_secs(30),
        || async {
            count(&log_client, "select count(*) from audit_log.events").await == 1
                && staged(&client).await == 0
        },
    )
    .await;
    kill_hard(&mut daemon);
    // In the log, the daemon role appends through the chain's functions only.
    let as_daemon = connect(&log.url_as(&role)).await;
    let e = as_daemon
        .execute("delete from audit_log.events", &[])
        .await
        .expect_err("the daemon role cannot delete events");
    assert_eq!(
        e.code(),
        Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE)
    );
}

/// A host whose log was kept beside capture, installed again with `log_database_url`: its
/// history moves to the log database, where reports, `verify` and each workspace's chain go on
/// from it; a move interrupted after the log's commit adds nothing twice when run again, and no
/// move starts while a daemon could still drain behind it.
#[tokio::test]
async fn installing_with_a_log_database_moves_the_log_kept_beside_capture() {
    let host = TestDb::with_host().await;
    let log = TestDb::new().await;
    let apart_text = split_config_text(&log.url);
    let beside_text = apart_text.split_once('\n').unwrap().1;
    let (_beside_dir, beside) = config_file(beside_text);
    let (_apart_dir, apart) = config_file(&apart_text);
    let installed = cli_at(&host.url, &beside, &["install"]);
    assert!(installed.status.success());
    cli_with(&host.url, &beside, &["enable", "--workspace", "1"]);
    let mut client = host.client().await;
    act(
        &mut client,
        Some("2"),
        "insert into app.tag (workspace_id, name) values (1, 'before the move');
         update app.project set name = 'Apollo II' where id = 1",
    )
    .await;
    drain(
        &mut client,
        &clockwatch::Config::from_toml(beside_text).unwrap(),
    )
    .await;
    let events = "select count(*) from audit_log.events";
    assert_eq!(count(&client, events).await, 2);
    let prune =
        "insert into audit_log.prune_log (cutoff, partition_name, action, events, pruned_by)
                 values (now(), 'events_2000_01', 'dropped', 0, current_user)";
    client.batch_execute(prune).await.unwrap();

    // A daemon still connected to the host would drain behind the move.
    let daemon = connect(&format!(
        "{}?application_name=clockwatch%20daemon",
        host.url
    ))
    .await;
    let refused = cli_at(&host.url, &apart, &["install"]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains(
            "a Clockwatch daemon is connected to this database (its session: server process "
        ) && said.contains("stop the daemon before moving the log"),
        "{said}"
    );
    // Refused before the log database was touched: no empty log there for reports to read.
    let log_client = log.client().await;
    assert_eq!(
        count(
            &log_client,
            "select count(*) from pg_namespace where nspname = 'audit_log'"
        )
        .await,
        0
    );
    drop(daemon);
    eventually(
        "the daemon's session is gone",
        Duration::from_secs(10),
        || async {
            count(
            &client,
            "select count(*) from pg_stat_activity where application_name = 'clockwatch daemon'",
        )
        .await
            == 0
        },
    )
    .await;

    // Moved, and then the host's transaction lost: the log holds the rows, the host still too.
    let config = clockwatch::Config::from_toml(&apart_text).unwrap();
    let mut log_client = log_client;
    clockwatch::install::install_log(&mut log_client, &config.in_log())
        .await
        .unwrap();
    {
        let tx = client.transaction().await.unwrap();
        let moved = clockwatch::move_log::move_log(&tx, &mut log_client, &config)
            .await
            .unwrap();
        assert_eq!((moved.events, moved.workspaces), (2, 1));
        tx.rollback().await.unwrap();
    }
    assert_eq!(count(&client, events).await, 2);
    // The host's log goes on meanwhile: its chain's head moves past the copy the log holds.
    act(
        &mut client,
        Some("2"),
        "insert into app.tag (workspace_id, name) values (1, 'between the moves')",
    )
    .await;
    drain(
        &mut client,
        &clockwatch::Config::from_toml(beside_text).unwrap(),
    )
    .await;

    // A log whose chain is further along than the host's is another log: not overwritten.
    let bump = "update audit_log.chain_head set seq = seq + 100";
    log_client.batch_execute(bump).await.unwrap();
    let other = cli_at(&host.url, &apart, &["install"]);
    assert!(!other.status.success());
    let said = String::from_utf8_lossy(&other.stderr);
    assert!(
        said.contains(
            "workspace 1: the log database's chain is at position 102, past the host's 3"
        ),
        "{said}"
    );
    let unbump = "update audit_log.chain_head set seq = seq - 100";
    log_client.batch_execute(unbump).await.unwrap();

    let out = cli_at(&host.url, &apart, &["install"]);
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        printed.contains(
            "moved the log kept beside capture to the log database: 3 event(s) of 1 workspace(s)"
        ),
        "{printed}"
    );
    assert_eq!(count(&client, events).await, 0, "moved, not copied");
    assert_eq!(count(&log_client, events).await, 3, "none twice");
    // The log's own prunes are numbered after the moved one.
    log_client.batch_execute(prune).await.unwrap();
    assert_eq!(
        count(&log_client, "select count(*) from audit_log.prune_log").await,
        2
    );

    // The chain goes on in the log from where the host's ended.
    act(
        &mut client,
        Some("2"),
        "insert into app.tag (workspace_id, name) values (1, 'after the move')",
    )
    .await;
    drain_split(&mut client, &log.url, &config).await;
    let verified = cli_with(&host.url, &apart, &["verify", "--workspace", "1"]);
    assert!(
        verified.contains("4 events verified, chain intact"),
        "{verified}"
    );
    let report = cli_with(&host.url, &apart, &["report", "--workspace", "1"]);
    assert!(
        report.contains("before the move") && report.contains("after the move"),
        "{report}"
    );
    // Installed again, nothing is left to move.
    let again = cli_at(&host.url, &apart, &["install"]);
    assert!(again.status.success());
    assert!(!String::from_utf8_lossy(&again.stdout).contains("moved"));
    assert_eq!(count(&log_client, events).await, 4);
    // Installed again with the config from before the move, it is refused: the host would
    // start a second log beside the moved one.
    let back = cli_at(&host.url, &beside, &["install"]);
    assert!(!back.status.success());
    assert_eq!(
        String::from_utf8_lossy(&back.stderr).trim_end(),
        "error: config: schema \"audit_log\" keeps capture only, its audit log is in a database of its own: set log_database_url (or CLOCKWATCH_LOG_DATABASE_URL) to the log database"
    );

    // An event a daemon of the old config wrote on the host behind the move is not silent.
    let status =
        String::from_utf8_lossy(&cli_at(&host.url, &apart, &["status"]).stdout).to_string();
    assert!(!status.contains("event(s) are in the host's"), "{status}");
    client
        .batch_execute(
            "insert into audit_log.events (event_id, occurred_at, workspace_id, category, action_code,
                                           action, author, txid, source)
             values (999999, now(), '1', 'tags', 'tag.created', 'Created tag', 'System', 1, 'app.tag')",
        )
        .await
        .unwrap();
    let status =
        String::from_utf8_lossy(&cli_at(&host.url, &apart, &["status"]).stdout).to_string();
    assert!(
        status.contains(
            "PROBLEM: 1 event(s) are in the host's audit_log.events, not in the log database"
        ),
        "{status}"
    );
    // A source_id added afterwards is named as the likely cause, not a missing install.
    let out = cli_at(
        &host.url,
        &apart,
        &["report", "--workspace", "1", "--source-id", "acme"],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        "error: config: the log database has no Clockwatch schema \"audit_log_acme\" for this source_id, but has audit_log: check source_id (or --source-id), or run `clockwatch install` to start this source's log"
    );
}

/// An error met on the log database says so: the host's server, roles and grants may be fine.
#[tokio::test]
async fn an_error_on_the_log_database_names_it() {
    let host = TestDb::with_host().await;
    let log = TestDb::new().await;
    let (_dir, path) = config_file(&split_config_text(&log.url_as("no_such_role_here")));
    let out = cli_at(&host.url, &path, &["install"]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(
        said.starts_with(
            "error: log database (log_database_url): cannot connect to the database: "
        ) && said.contains("no_such_role_here"),
        "{said}"
    );
    let out = cli_at(&host.url, &path, &["report", "--workspace", "1"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.starts_with("error: log database (log_database_url): cannot connect"),
        "{said}"
    );
}

/// With the log database out of reach, `status` still shows the host's side, and says the log's
/// figures are unknown rather than zero.
#[tokio::test]
async fn status_with_the_log_database_down_shows_the_host_and_no_false_zeros() {
    let (host, _log, _client, _log_client, _config) = installed_split().await;
    let (_dir, path) = config_file(&split_config_text(
        "postgres://postgres@127.0.0.1:1/nowhere",
    ));
    let out = cli_at(&host.url, &path, &["status"]);
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(
            "events, partitions and prunes: unknown (the log database cannot be reached)"
        ) && said.contains("PROBLEM: the log database (log_database_url) cannot be reached")
            && !said.contains("events: 0"),
        "{said}"
    );
    let json = cli_at(&host.url, &path, &["status", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["log_reachable"], false);
}

//! install / uninstall: idempotent, all or nothing, refusing configs that name what is not there.

use clockwatch::migrate::Part;

use crate::support::*;

const TRIGGERS: &str = "select count(*) from pg_trigger where tgname like 'clockwatch_audit_log_%'";

#[tokio::test]
async fn install_is_idempotent_and_records_migrations() {
    let db = TestDb::with_host().await;
    let mut client = db.client().await;
    let config = example_config();
    let first = clockwatch::install::install(&mut client, &config)
        .await
        .unwrap();
    assert_eq!(
        first.migrations_applied,
        clockwatch::migrate::MIGRATIONS.len()
    );
    assert_eq!(first.attached.len(), 7);
    let second = clockwatch::install::install(&mut client, &config)
        .await
        .unwrap();
    assert_eq!(second.migrations_applied, 0);
    assert_eq!(
        count(
            &client,
            "select count(*) from audit_log.migrations where checksum ~ '^[0-9a-f]{64}$'"
        )
        .await,
        clockwatch::migrate::MIGRATIONS.len() as i64
    );
    // Five triggers per table (the linked rows' count + insert/update/delete/truncate), not
    // doubled by a second install.
    assert_eq!(count(&client, TRIGGERS).await, 7 * 5);
}

#[tokio::test]
async fn a_changed_migration_is_refused() {
    let db = TestDb::with_host().await;
    let mut client = db.client().await;
    let config = example_config();
    install(&mut client, &config).await;
    client
        .batch_execute("update audit_log.migrations set checksum = 'x' where version = 1")
        .await
        .unwrap();
    let err = clockwatch::install::install(&mut client, &config)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("migration 1 (baseline) was applied with a different checksum"),
        "{err}"
    );
}

#[tokio::test]
async fn a_config_naming_a_missing_table_or_column_installs_nothing() {
    let db = TestDb::with_host().await;
    let mut client = db.client().await;
    let base = include_str!("../../config/clockwatch.toml");
    let cases = [
        (base.replace("soft_delete_column = \"deleted_at\"    #", "soft_delete_column = \"removed_at\" #"),
         "source app.time_entry (time_entries): soft_delete_column: column \"removed_at\" not found in app.time_entry"),
        (base.replace("table = \"app.tag\"", "table = \"app.tags\""), "source app.tags (tags): table: app.tags not found"),
        (base.replace("tags = \"tag_ids\"", "tags = \"tag_list\""),
         "source app.time_entry (time_entries): fields.tags: column \"tag_list\" not found in app.time_entry"),
        (base.replace("name_column = \"name\"\n# Users who", "name_column = \"full_name\"\n# Users who"),
         "authors: name_column \"full_name\" not found in app.app_user"),
        (base.replace("timezone = \"UTC\"", "timezone = \"Mars/Olympus\""), "timezone: \"Mars/Olympus\""),
        (base.replace("soft_delete_column = \"deleted_at\"    #", "soft_delete_column = \"description\" #"),
         "source app.time_entry (time_entries): soft_delete_column: \"description\" is of type text: expected a boolean"),
        (base.replace("soft_delete_column = \"deleted_at\"    #", "soft_delete_inverted = true\nsoft_delete_column = \"deleted_at\" #"),
         "soft_delete_column: \"deleted_at\" is of type timestamptz: soft_delete_inverted applies to a boolean column only"),
    ];
    for (text, expected) in cases {
        assert_ne!(text, base, "the case must change the config: {expected}");
        let config = clockwatch::Config::from_toml(&text).unwrap();
        let err = clockwatch::install::install(&mut client, &config)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "expected {expected:?} in {err:?}");
        assert_eq!(
            count(
                &client,
                "select count(*) from pg_namespace where nspname = 'audit_log'"
            )
            .await,
            0
        );
        assert_eq!(count(&client, TRIGGERS).await, 0);
    }
}

#[tokio::test]
async fn uninstall_removes_triggers_and_purge_drops_the_schema() {
    let (_db, mut client, config) = installed_host().await;
    act(
        &mut client,
        Some("1"),
        "insert into app.tag (workspace_id, name) values (1, 'kept')",
    )
    .await;
    let removed = clockwatch::install::uninstall(&mut client, "audit_log", false)
        .await
        .unwrap();
    assert_eq!(removed.len(), 7);
    assert_eq!(count(&client, TRIGGERS).await, 0);
    // What status (and the daemon's hourly look) says: capture is off, in one line rather than
    // one per table blaming each.
    let problems = clockwatch::install::health_problems(&client, &config)
        .await
        .unwrap();
    assert_eq!(
        problems,
        ["capture is off: no audited table has Clockwatch's triggers (`clockwatch uninstall` removes them; the log is kept): changes are not captured; run `clockwatch install` to capture again"]
    );
    // Host writes go on untouched, and nothing more is staged.
    act(
        &mut client,
        Some("1"),
        "insert into app.tag (workspace_id, name) values (1, 'not captured')",
    )
    .await;
    assert_eq!(staged(&client).await, 1);
    drain(&mut client, &config).await;
    assert_eq!(
        report(&client, "1").await.len(),
        1,
        "uninstall keeps the log"
    );

    clockwatch::install::uninstall(&mut client, "audit_log", true)
        .await
        .unwrap();
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
async fn reinstall_with_fewer_sources_detaches_the_rest() {
    let (_db, mut client, config) = installed_host().await;
    let mut fewer = config.clone();
    fewer
        .sources
        .retain(|s| s.category == clockwatch::config::Category::TimeEntries);
    let report = clockwatch::install::install(&mut client, &fewer)
        .await
        .unwrap();
    assert_eq!(report.detached.len(), 6);
    assert_eq!(count(&client, TRIGGERS).await, 5);
}

#[tokio::test]
async fn a_custom_schema_name_is_used_throughout() {
    let db = TestDb::with_host().await;
    let mut client = db.client().await;
    let text = include_str!("../../config/clockwatch.toml")
        .replace("schema = \"audit_log\"", "schema = \"Audit Trail\"");
    let config = clockwatch::Config::from_toml(&text).unwrap();
    install(&mut client, &config).await;
    enable_all(&client, &config, "1").await;
    act(
        &mut client,
        Some("1"),
        "insert into app.tag (workspace_id, name) values (1, 'x')",
    )
    .await;
    client
        .batch_execute("set search_path = \"Audit Trail\", pg_catalog")
        .await
        .unwrap();
    let report = clockwatch::drain::Drainer::new(config.clone())
        .drain_all(&mut client)
        .await
        .unwrap();
    assert_eq!(report.events, 1);
    assert_eq!(
        count(
            &client,
            "select count(*) from \"Audit Trail\".report where action_code = 'tag.created'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &client,
            "select count(*) from pg_namespace where nspname = 'audit_log'"
        )
        .await,
        0
    );
}

/// Each side's part of the baseline installs on its own: a host whose log is apart holds no log
/// tables, and a log database no capture tables.
#[tokio::test]
async fn each_side_holds_its_own_part_of_the_schema_and_no_more() {
    for (parts, has, lacks) in [
        (&[Part::Common, Part::Capture][..], "staging", "events"),
        (&[Part::Common, Part::Log][..], "events", "staging"),
    ] {
        let db = TestDb::new().await;
        let mut client = db.client().await;
        let tx = client.transaction().await.unwrap();
        clockwatch::migrate::migrate(&tx, "audit_log", parts)
            .await
            .unwrap_or_else(|e| panic!("{parts:?}: {e}"));
        tx.commit().await.unwrap();
        let exists = |table: &str| {
            format!("select (to_regclass('audit_log.{table}') is not null)::int::bigint")
        };
        assert_eq!(count(&client, &exists(has)).await, 1, "{parts:?}");
        assert_eq!(count(&client, &exists(lacks)).await, 0, "{parts:?}");
    }
}

/// The baseline installs into a database that holds nothing else, defines each function once,
/// and a second install leaves every function and trigger exactly as it was.
#[tokio::test]
async fn the_baseline_installs_into_an_empty_database_and_a_second_install_changes_nothing() {
    let db = TestDb::new().await;
    let mut client = db.client().await;
    let tx = client.transaction().await.unwrap();
    let applied =
        clockwatch::migrate::migrate(&tx, "audit_log", &[Part::Common, Part::Capture, Part::Log])
            .await
            .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(applied, clockwatch::migrate::MIGRATIONS.len());

    let overloaded = client
        .query(
            "select proname::text from pg_proc where pronamespace = 'audit_log'::regnamespace
             group by proname having count(*) > 1",
            &[],
        )
        .await
        .unwrap();
    assert!(
        overloaded.is_empty(),
        "defined more than once: {overloaded:?}"
    );

    // Every function's definition and settings, and every trigger, as the catalog holds them.
    let snapshot = "select string_agg(md5(p.proname || p.prosrc || coalesce(p.proconfig::text, '')
                                          || p.prosecdef), ',' order by p.proname)
                        || '|' || (select string_agg(tgname || tgfoid::regproc::text, ',' order by tgname)
                                   from pg_trigger where not tgisinternal)
                    from pg_proc p where p.pronamespace = 'audit_log'::regnamespace";
    let before: String = client.query_one(snapshot, &[]).await.unwrap().get(0);
    let tx = client.transaction().await.unwrap();
    assert_eq!(
        clockwatch::migrate::migrate(&tx, "audit_log", &[Part::Common, Part::Capture, Part::Log])
            .await
            .unwrap(),
        0
    );
    tx.commit().await.unwrap();
    let after: String = client.query_one(snapshot, &[]).await.unwrap().get(0);
    assert_eq!(before, after);
}

#[tokio::test]
async fn a_boolean_soft_delete_flag_deletes_and_restores() {
    let db = TestDb::with_host().await;
    let mut client = db.client().await;
    // `approved` stands in for a host's `visible` flag: false once deleted.
    let text = include_str!("../../config/clockwatch.toml").replace(
        "soft_delete_column = \"deleted_at\"    #",
        "soft_delete_inverted = true\nsoft_delete_column = \"approved\" #",
    );
    let config = clockwatch::Config::from_toml(&text).unwrap();
    install(&mut client, &config).await;
    enable_all(&client, &config, "1").await;
    act(
        &mut client,
        Some("1"),
        "insert into app.time_entry (id, workspace_id, user_id, start_at, approved) values (70, 1, 1, now(), true);
         update app.time_entry set approved = false where id = 70;
         update app.time_entry set approved = true where id = 70;",
    )
    .await;
    drain(&mut client, &config).await;
    let actions: Vec<String> = column(
        &client,
        "select action_code from audit_log.events where target_id = '70' order by event_id",
    )
    .await;
    assert_eq!(
        actions,
        [
            "time_entry.created",
            "time_entry.deleted",
            "time_entry.restored"
        ]
    );
}

/// The install lock is an advisory lock, which any role may take: install gives up on a session
/// that holds it and never lets go, naming that session, rather than wait forever.
#[tokio::test]
async fn install_names_a_session_that_holds_its_lock_instead_of_waiting_forever() {
    let db = TestDb::with_host().await;
    let admin = db.client().await;
    let role = unique_role("holder");
    create_app_login(&admin, &role).await;
    let holder = connect(&db.url_as(&role)).await;
    holder
        .batch_execute("set application_name = 'lock holder'; select pg_advisory_lock(790724, hashtext('audit_log'))")
        .await
        .unwrap();
    let out = cli(&db.url, &["install"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "(role {role}, application lock holder) has held Clockwatch's install lock"
        )),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert_eq!(count(&admin, TRIGGERS).await, 0);
    holder
        .batch_execute("select pg_advisory_unlock_all()")
        .await
        .unwrap();
    let out = cli(&db.url, &["install"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

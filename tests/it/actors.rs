//! Who acts, from what the application's stack already sets: PostgREST's and Supabase's
//! `request.jwt.claims` (JSON, the user in `sub`), PostGraphile's `jwt.claims.<claim>`, Hasura's
//! `hasura.user` (JSON), an ORM's `write_uid`-style column, and ids that mean System.

use crate::support::*;

/// The example config, reading the actor from four settings, the time entries' `user_id` when
/// none names one, and user 3 as System.
fn config() -> clockwatch::Config {
    clockwatch::Config::from_toml(&config_text()).unwrap()
}

fn config_text() -> String {
    let text = include_str!("../../config/clockwatch.toml");
    format!(
        "actor_settings = [\"clockwatch.actor\", {{ setting = \"request.jwt.claims\", key = \"sub\" }}, \
         \"jwt.claims.user_id\", {{ setting = \"hasura.user\", key = \"x-hasura-user-id\" }}]\n\
         system_actors = [\"3\"]\n{}",
        text.replacen(
            "table = \"app.time_entry\"\n",
            "table = \"app.time_entry\"\nactor_column = \"user_id\"\n",
            1
        )
    )
}

/// The authors table's `db_role` column, added, with user 1 (Ann) mapped to a new role: the role.
async fn ann_with_a_role_of_her_own(client: &tokio_postgres::Client) -> String {
    let ann = unique_role("ann");
    client
        .batch_execute(&format!(
            "alter table app.app_user add column db_role text;
             update app.app_user set db_role = '{ann}' where id = 1;"
        ))
        .await
        .unwrap();
    ann
}

/// A config text with `[authors] db_role_column = "db_role"`.
fn with_role_column(text: &str) -> String {
    text.replacen(
        "[authors]\n",
        "[authors]\ndb_role_column = \"db_role\"\n",
        1,
    )
}

#[tokio::test]
async fn the_actor_comes_from_the_first_setting_or_column_that_names_one() {
    let db = TestDb::with_host().await;
    let mut client = db.client().await;
    let config = config();
    install(&mut client, &config).await;
    enable_all(&client, &config, "1").await;
    let app = app_role(&db, &client).await;
    // Each as its stack sets it: transaction-local settings.
    for (settings, name) in [
        ("select set_config('request.jwt.claims', '{\"sub\": \"2\", \"role\": \"web\"}', true)", "jwt"),
        ("select set_config('jwt.claims.user_id', '1', true)", "graphile"),
        ("select set_config('hasura.user', '{\"x-hasura-user-id\": \"2\"}', true)", "hasura"),
        // clockwatch.actor first, whatever else is set.
        ("select set_config('clockwatch.actor', '1', true), set_config('request.jwt.claims', '{\"sub\": \"2\"}', true)", "both"),
        // A claim that is no JSON names nobody, and the write goes through.
        ("select set_config('request.jwt.claims', 'not json {', true)", "broken"),
        // System's own id.
        ("select set_config('clockwatch.actor', '3', true)", "system"),
    ] {
        app.batch_execute(&format!(
            "begin; {settings}; insert into app.tag (workspace_id, name) values (1, '{name}'); commit;"
        ))
        .await
        .unwrap();
    }
    // No setting: the entry's own user_id authors its creation and update, not its deletion.
    app.batch_execute(
        "insert into app.time_entry (id, workspace_id, user_id, start_at) values (900, 1, 2, now());
         update app.time_entry set description = 'by its user' where id = 900;
         delete from app.time_entry where id = 900;",
    )
    .await
    .unwrap();
    drain(&mut client, &config).await;
    let rows: Vec<(String, String, Option<String>)> = client
        .query(
            "select coalesce(target, ''), author, actor_source from audit_log.report order by event_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let row = |target: &str, author: &str, from: Option<&str>| {
        (
            target.to_string(),
            author.to_string(),
            from.map(str::to_string),
        )
    };
    assert_eq!(
        rows,
        [
            row("jwt", "Bob Builder", Some("request.jwt.claims.sub")),
            row("graphile", "Ann Admin", Some("jwt.claims.user_id")),
            row(
                "hasura",
                "Bob Builder",
                Some("hasura.user.x-hasura-user-id")
            ),
            row("both", "Ann Admin", Some("clockwatch.actor")),
            row("broken", "System", None),
            // System asserted: where it came from is kept.
            row("system", "System", Some("clockwatch.actor")),
            row("", "Bob Builder", Some("column")),
            row("by its user", "Bob Builder", Some("column")),
            row("by its user", "System", None),
        ]
    );
}

/// `--details` and the page say where an author came from.
#[tokio::test]
async fn details_say_where_the_author_came_from() {
    let db = TestDb::with_host().await;
    let mut client = db.client().await;
    let config = config();
    install(&mut client, &config).await;
    enable_all(&client, &config, "1").await;
    client
        .batch_execute(
            "begin; select set_config('request.jwt.claims', '{\"sub\": \"2\"}', true);
             insert into app.tag (workspace_id, name) values (1, 'from a token'); commit;",
        )
        .await
        .unwrap();
    drain(&mut client, &config).await;
    let (from, to) = event_days(&client, "UTC").await;
    let out = cli(
        &db.url,
        &[
            "report",
            "--workspace",
            "1",
            "--from",
            &from,
            "--to",
            &to,
            "--details",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        text.contains("Author from: request.jwt.claims.sub"),
        "{text}"
    );
}

/// Applications that log each user in as a database role of their own (`[authors]
/// db_role_column`): a session is the user whose row holds its login role when no setting and no
/// `actor_column` names one; a role that is no user's is System.
#[tokio::test]
async fn a_session_logged_in_as_a_users_own_role_is_that_user() {
    let db = TestDb::with_host().await;
    let mut client = db.client().await;
    let (ann, nobody) = (
        ann_with_a_role_of_her_own(&client).await,
        unique_role("shared"),
    );
    let config = clockwatch::Config::from_toml(&with_role_column(&config_text())).unwrap();
    install(&mut client, &config).await;
    enable_all(&client, &config, "1").await;
    for role in [&ann, &nobody] {
        create_app_login(&client, role).await;
    }
    let as_ann = connect(&db.url_as(&ann)).await;
    as_ann
        .batch_execute(
            "insert into app.tag (workspace_id, name) values (1, 'by her role');
             begin; select set_config('clockwatch.actor', '2', true);
             insert into app.tag (workspace_id, name) values (1, 'her role, his setting'); commit;
             insert into app.time_entry (id, workspace_id, user_id, start_at) values (901, 1, 2, now());
             delete from app.time_entry where id = 901;",
        )
        .await
        .unwrap();
    connect(&db.url_as(&nobody))
        .await
        .batch_execute("insert into app.tag (workspace_id, name) values (1, 'shared login');")
        .await
        .unwrap();
    drain(&mut client, &config).await;
    let rows: Vec<(String, String, String, Option<String>)> = client
        .query(
            "select action, coalesce(target, ''), author, actor_source from audit_log.report
             order by event_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let row = |action: &str, target: &str, author: &str, from: Option<&str>| {
        let text = |s: &str| s.to_string();
        (text(action), text(target), text(author), from.map(text))
    };
    assert_eq!(
        rows,
        [
            row("Created tag", "by her role", "Ann Admin", Some("role")),
            row(
                "Created tag",
                "her role, his setting",
                "Bob Builder",
                Some("clockwatch.actor")
            ),
            // The entry's own user_id comes before the session's role; its deletion is the role's.
            row("Created time entry", "", "Bob Builder", Some("column")),
            row("Deleted time entry", "", "Ann Admin", Some("role")),
            row("Created tag", "shared login", "System", None),
        ]
    );
}

/// A JSON claim is read once per text a session sets: the same claims again (every request of
/// one token) name the same user, other claims their own, and broken ones nobody, in any order.
#[tokio::test]
async fn a_sessions_claims_name_whom_they_say_each_time() {
    let db = TestDb::with_host().await;
    let mut client = db.client().await;
    let config = config();
    install(&mut client, &config).await;
    enable_all(&client, &config, "1").await;
    let app = app_role(&db, &client).await;
    let bob = r#"{"sub": "2", "role": "web"}"#;
    let ann = r#"{"sub": "1", "role": "web"}"#;
    for (n, claims) in [bob, bob, ann, "{not json", ann, r#"{"role": "web"}"#, bob]
        .iter()
        .enumerate()
    {
        app.batch_execute(&format!(
            "begin; select set_config('request.jwt.claims', '{claims}', true);
             insert into app.tag (workspace_id, name) values (1, 'tag {n}'); commit;"
        ))
        .await
        .unwrap();
    }
    drain(&mut client, &config).await;
    let authors: Vec<String> = column(
        &client,
        "select author from audit_log.report order by event_id",
    )
    .await;
    assert_eq!(
        authors,
        [
            "Bob Builder",
            "Bob Builder",
            "Ann Admin",
            "System",
            "Ann Admin",
            "System",
            "Bob Builder"
        ]
    );
}

/// The part of a token an end user fills (Supabase's `user_metadata`) never hides who they are:
/// however deep it nests, and however long, the claim the stack signed names them; capture
/// stages a long claim only as far as the log needs, and an origin cut like an actor.
#[tokio::test]
async fn an_end_users_own_claims_never_hide_who_they_are() {
    let db = TestDb::with_host().await;
    let mut client = db.client().await;
    let config = config();
    install(&mut client, &config).await;
    enable_all(&client, &config, "1").await;
    let app = app_role(&db, &client).await;
    let deep = format!(
        r#"{{"sub": "2", "user_metadata": {{"x": {}1{}}}}}"#,
        "[".repeat(300),
        "]".repeat(300)
    );
    let long = format!(
        r#"{{"sub": "1", "user_metadata": {{"bio": "{}"}}}}"#,
        "x".repeat(1_000_000)
    );
    // The key after the first 8,192 characters: not read, and the next source decides.
    let late = format!(
        r#"{{"user_metadata": {{"bio": "{}"}}, "sub": "1"}}"#,
        "x".repeat(10_000)
    );
    for (n, claims) in [deep, long, late].iter().enumerate() {
        app.execute(
            "select set_config('request.jwt.claims', $1, false), set_config('clockwatch.origin', $2, false)",
            &[claims, &"o".repeat(100_000)],
        )
        .await
        .unwrap();
        app.execute(
            "insert into app.tag (workspace_id, name) values (1, $1)",
            &[&format!("tag {n}")],
        )
        .await
        .unwrap();
    }
    let widest = count(
        &client,
        "select max(length(actor) + length(origin))::bigint from audit_log.staging",
    )
    .await;
    assert!(
        widest < 9_000,
        "staged actor and origin: {widest} characters"
    );
    drain(&mut client, &config).await;
    let rows = client
        .query(
            "select author, length(origin) from audit_log.report order by event_id",
            &[],
        )
        .await
        .unwrap();
    let seen: Vec<(String, i32)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        seen,
        [
            ("Bob Builder".to_string(), 65),
            ("Ann Admin".to_string(), 65),
            ("System".to_string(), 65)
        ]
    );
}

/// An author named by `actor_column` alone is shown by name, like any other author, whatever
/// the column (here one no detail field reads).
#[tokio::test]
async fn an_author_from_the_column_is_shown_by_name() {
    let db = TestDb::with_host().await;
    let mut client = db.client().await;
    client
        .batch_execute("alter table app.tag add column written_by bigint")
        .await
        .unwrap();
    let text = config_text().replacen(
        "table = \"app.tag\"\n",
        "table = \"app.tag\"\nactor_column = \"written_by\"\n",
        1,
    );
    let config = clockwatch::Config::from_toml(&text).unwrap();
    install(&mut client, &config).await;
    enable_all(&client, &config, "1").await;
    let app = app_role(&db, &client).await;
    app.batch_execute(
        "insert into app.tag (workspace_id, name, written_by) values (1, 'column', 2);
         update app.tag set name = 'column, renamed', written_by = 1 where name = 'column';",
    )
    .await
    .unwrap();
    drain(&mut client, &config).await;
    let authors: Vec<String> = column(
        &client,
        "select author || ' / ' || actor_source from audit_log.report order by event_id",
    )
    .await;
    assert_eq!(authors, ["Bob Builder / column", "Ann Admin / column"]);
}

/// Where every user logs in as a role of their own, `actor_settings = []` names the role alone:
/// a user who sets a setting naming someone else is still logged as themself.
#[tokio::test]
async fn with_no_settings_a_users_own_role_cannot_name_someone_else() {
    let db = TestDb::with_host().await;
    let mut client = db.client().await;
    let ann = ann_with_a_role_of_her_own(&client).await;
    create_app_login(&client, &ann).await;
    let text = config_text();
    let (first, rest) = text.split_once('\n').unwrap();
    assert!(first.starts_with("actor_settings = "));
    let text = with_role_column(&format!("actor_settings = []\n{rest}"));
    let config = clockwatch::Config::from_toml(&text).unwrap();
    install(&mut client, &config).await;
    enable_all(&client, &config, "1").await;
    connect(&db.url_as(&ann))
        .await
        .batch_execute(
            "begin;
             select set_config('clockwatch.actor', '2', true),
                    set_config('request.jwt.claims', '{\"sub\": \"2\"}', true);
             insert into app.tag (workspace_id, name) values (1, 'Ann, as Bob'); commit;",
        )
        .await
        .unwrap();
    drain(&mut client, &config).await;
    let authors: Vec<String> = column(
        &client,
        "select author || ' / ' || actor_source from audit_log.report order by event_id",
    )
    .await;
    assert_eq!(authors, ["Ann Admin / role"]);
    // With neither a setting, nor a role column, nor an actor column, nobody could be named.
    let none = text
        .replacen("db_role_column = \"db_role\"\n", "", 1)
        .replace("actor_column = \"user_id\"\n", "");
    let err = clockwatch::Config::from_toml(&none)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("actor_settings: name at least one setting"),
        "{err}"
    );
}

/// A login role is never taken for System, nor for a user, on a doubt: while the host holds the
/// authors table, or when two of its rows hold the role, the role's name stays the author
/// (source `role`), and the drain goes on. (Waits on lock_timeout, which libfaketime keeps from
/// firing: scripts/test-anywhere leaves it out.)
#[tokio::test]
async fn a_role_whose_user_is_in_doubt_stays_the_role_never_system() {
    let db = TestDb::with_host().await;
    let mut client = db.client().await;
    let ann = ann_with_a_role_of_her_own(&client).await;
    create_app_login(&client, &ann).await;
    let config = clockwatch::Config::from_toml(&with_role_column(&config_text())).unwrap();
    install(&mut client, &config).await;
    enable_all(&client, &config, "1").await;
    connect(&db.url_as(&ann))
        .await
        .batch_execute("insert into app.tag (workspace_id, name) values (1, 'by her role')")
        .await
        .unwrap();
    let host = db.client().await;
    host.batch_execute("begin; lock table app.app_user in access exclusive mode")
        .await
        .unwrap();
    drain(&mut client, &config).await;
    host.batch_execute("rollback").await.unwrap();
    // Two users' rows hold her role (a mistake of the host's): neither is guessed.
    client
        .batch_execute(&format!(
            "update app.app_user set db_role = '{ann}' where id = 2"
        ))
        .await
        .unwrap();
    connect(&db.url_as(&ann))
        .await
        .batch_execute("insert into app.tag (workspace_id, name) values (1, 'held twice')")
        .await
        .unwrap();
    drain(&mut client, &config).await;
    let authors: Vec<String> = column(
        &client,
        "select author || ' / ' || actor_source from audit_log.report order by event_id",
    )
    .await;
    let kept = format!("#{ann} / role");
    assert_eq!(authors, [kept.clone(), kept]);
}

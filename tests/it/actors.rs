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
            row("system", "System", None),
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
    let (ann, nobody) = (unique_role("ann"), unique_role("shared"));
    client
        .batch_execute(&format!(
            "alter table app.app_user add column db_role text;
             update app.app_user set db_role = '{ann}' where id = 1;"
        ))
        .await
        .unwrap();
    let text = config_text().replacen(
        "[authors]\n",
        "[authors]\ndb_role_column = \"db_role\"\n",
        1,
    );
    let config = clockwatch::Config::from_toml(&text).unwrap();
    install(&mut client, &config).await;
    enable_all(&client, &config, "1").await;
    for role in [&ann, &nobody] {
        client
            .batch_execute(&format!(
                "create role {role} login;
                 grant usage on schema app to {role};
                 grant select, insert, update, delete on all tables in schema app to {role};
                 grant usage on all sequences in schema app to {role};"
            ))
            .await
            .unwrap();
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

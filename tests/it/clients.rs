//! Real clients of the host database, each naming its user the way its stack does, against the
//! README's `actor_settings`: PostGraphile 4 serving the example schema, which sets a JWT's
//! claims as `jwt.claims.*`, and a Django site running the README's middleware behind PgBouncer
//! in transaction mode. What counts is what an admin reads: the report's author for each change.
//!
//! The clients come from their registries (npm, PyPI) at pinned versions through
//! scripts/clients, into the build's target folder, once; a test never skips for want of one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::serve::free_port;
use crate::support::*;

/// The "Saying who acts" section of the README.
fn readme_actors_section() -> &'static str {
    include_str!("../../README.md")
        .split_once("### Saying who acts")
        .expect("README.md has the section \"Saying who acts\"")
        .1
        .split_once("\n### ")
        .expect("a section after it")
        .0
}

/// The README's `actor_settings` (the four stacks of "Saying who acts") ahead of the example
/// config. Its `system_actors` is left out: it would make user 1 System.
fn readme_config() -> clockwatch::Config {
    let settings = readme_actors_section()
        .split_once("```toml\n")
        .and_then(|(_, block)| block.split_once("system_actors"))
        .expect("the section's config block starts with actor_settings, then system_actors")
        .0;
    assert!(settings.contains("\"jwt.claims.user_id\""), "{settings}");
    clockwatch::Config::from_toml(&format!(
        "{settings}\n{}",
        include_str!("../../config/clockwatch.toml")
    ))
    .expect("the README's actor_settings and the example config parse")
}

/// The README's Django middleware, word for word: the test runs the text a reader copies.
fn readme_django_middleware() -> &'static str {
    readme_actors_section()
        .split_once("```python\n")
        .and_then(|(_, block)| block.split_once("```"))
        .expect("the section has the Django middleware as a python block")
        .0
}

/// The folder `client` is installed in (scripts/clients), installing it first when missing. It
/// lies in the build's target folder, beside the binary under test, which every run of this
/// checkout shares (scripts/test-anywhere's copy builds there too), so only a first run reaches
/// the registry.
fn installed(client: &str) -> PathBuf {
    let target = Path::new(binary())
        .parent()
        .and_then(Path::parent)
        .expect("the binary lies in target/<profile>/");
    let dir = target.join("clients");
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/clients"))
        .arg(&dir)
        .arg(client)
        .output()
        .expect("run scripts/clients");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{}",
        said.lines().last().unwrap_or("scripts/clients failed")
    );
    dir.join(client)
}

/// A client's server, run as a child process with its output kept in a file, killed with the
/// test.
struct ChildServer {
    child: Child,
    output: tempfile::NamedTempFile,
}

impl ChildServer {
    fn start(mut command: Command) -> ChildServer {
        let output = tempfile::NamedTempFile::new().unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(output.reopen().unwrap())
            .stderr(output.reopen().unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("start {command:?}: {e}"));
        ChildServer { child, output }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(self.output.path()).unwrap_or_default()
    }

    /// Wait until `url` answers at all (a 404 will do): the server has done its setup and
    /// listens. Fails with the server's output when it exits first or is not up within a minute.
    async fn answering(&mut self, url: &str) {
        let started = Instant::now();
        while reqwest::get(url).await.is_err() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "the server exited ({status}) before answering:\n{}",
                    self.output()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the server did not answer {url} within a minute:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        kill_hard(&mut self.child);
    }
}

/// Base64url without padding, the encoding of a JSON Web Token's parts (RFC 7515).
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let bits = chunk
            .iter()
            .enumerate()
            .fold(0u32, |bits, (i, &b)| bits | u32::from(b) << (16 - 8 * i));
        // n bytes make n + 1 characters of 6 bits each.
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(bits >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// A JSON Web Token for `claims`, signed HS256 with `secret`, as a login service that shares its
/// secret with PostGraphile issues one.
fn hs256_token(secret: &str, claims: &Value) -> String {
    use hmac::Mac;
    let signed = format!(
        "{}.{}",
        base64url(br#"{"alg":"HS256","typ":"JWT"}"#),
        base64url(claims.to_string().as_bytes())
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(signed.as_bytes());
    format!("{signed}.{}", base64url(&mac.finalize().into_bytes()))
}

#[test]
fn token_parts_are_encoded_as_rfc_7515_shows() {
    // RFC 7515's own examples: its appendix A.1's header, and appendix C's five octets.
    let header = b"{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}";
    assert_eq!(
        base64url(header),
        "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
    );
    assert_eq!(base64url(&[3, 236, 255, 224, 193]), "A-z_4ME");
}

/// A GraphQL request to PostGraphile with a bearer token; its `data`, which must come without
/// errors.
async fn graphql(endpoint: &str, token: &str, query: &str, variables: Value) -> Value {
    let response = reqwest::Client::new()
        .post(endpoint)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(json!({ "query": query, "variables": variables }).to_string())
        .send()
        .await
        .expect("PostGraphile answers");
    let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert!(body.get("errors").is_none(), "{query}: {body}");
    body["data"].clone()
}

/// (action code, author id, author, actor source, description before, after) of each event on
/// one target, oldest first: what the report and its changes say of who did what.
async fn authored(client: &tokio_postgres::Client, target: &str) -> Vec<[Option<String>; 6]> {
    client
        .query(
            "select r.action_code, r.author_id, r.author, r.actor_source,
                    c.previous_value, c.new_value
             from audit_log.report r
             left join audit_log.report_changes c on c.event_id = r.event_id
                                                 and c.field = 'description'
             where r.target_id = $1
             order by r.event_id",
            &[&target],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| std::array::from_fn(|i| r.get(i)))
        .collect()
}

/// A row as `authored` gives it, from text with "" for null.
fn report_row(values: [&str; 6]) -> [Option<String>; 6] {
    values.map(|v| (!v.is_empty()).then(|| v.to_string()))
}

#[tokio::test]
async fn postgraphile_authors_each_change_by_its_tokens_user_id() {
    let postgraphile = installed("postgraphile").join("node_modules/.bin/postgraphile");
    let db = TestDb::with_host().await;
    let mut admin = db.client().await;
    let config = readme_config();
    install(&mut admin, &config).await;
    enable_all(&admin, &config, "1").await;
    // PostGraphile's own advice on roles: it logs in as an authenticator that can do nothing
    // itself and becomes, per request, the role a token names.
    let (authenticator, web) = (unique_role("authenticator"), unique_role("web"));
    admin
        .batch_execute(&format!(
            "create role {web} nologin;
             grant usage on schema app to {web};
             grant select, insert, update, delete on all tables in schema app to {web};
             grant usage on all sequences in schema app to {web};
             create role {authenticator} login noinherit;
             grant {web} to {authenticator};"
        ))
        .await
        .unwrap();
    let secret = "the secret PostGraphile shares with the login service";
    let port = free_port();
    let mut command = Command::new(&postgraphile);
    command
        .args([
            "--connection",
            &db.url_as(&authenticator),
            "--schema",
            "app",
        ])
        .args(["--jwt-secret", secret, "--disable-query-log"])
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        // One connection: every request's transaction runs in the same session, so a claim that
        // outlived its transaction would be there for the next request's.
        .args(["--max-pool-size", "1"])
        // From a folder of its own: the test's working directory may be any.
        .current_dir(postgraphile.parent().unwrap());
    let mut server = ChildServer::start(command);
    let endpoint = format!("http://127.0.0.1:{port}/graphql");
    server.answering(&endpoint).await;

    // Tokens as a login service issues them: PostGraphile's audience, the role to become, the
    // user, and an expiry an hour from the test's clock (which PostGraphile shares, even when
    // scripts/test-anywhere sets it a year ahead). A job's token names no user.
    let expires = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let token = |user: Option<u32>| {
        let mut claims = json!({ "aud": "postgraphile", "role": web, "exp": expires });
        if let Some(user) = user {
            claims["user_id"] = json!(user);
        } else {
            claims["job"] = json!("nightly archive");
        }
        hs256_token(secret, &claims)
    };
    let created = graphql(
        &endpoint,
        &token(Some(1)),
        "mutation($entry: TimeEntryInput!) {
           createTimeEntry(input: {timeEntry: $entry}) { timeEntry { id } }
         }",
        json!({ "entry": { "workspaceId": "1", "userId": "1", "description": "Drafted by Ann",
                           "startAt": "2026-11-24T09:00:00Z" } }),
    )
    .await;
    let id = created["createTimeEntry"]["timeEntry"]["id"]
        .as_str()
        .expect("the new entry's id")
        .to_string();
    let describe = "mutation($id: BigInt!, $description: String!) {
        updateTimeEntryById(input: {id: $id, timeEntryPatch: {description: $description}}) {
          timeEntry { description }
        }
      }";
    for (user, description) in [(Some(2), "Reviewed by Bob"), (None, "Archived by a job")] {
        graphql(
            &endpoint,
            &token(user),
            describe,
            json!({ "id": id, "description": description }),
        )
        .await;
    }

    drain(&mut admin, &config).await;
    assert_eq!(
        authored(&admin, &id).await,
        [
            report_row([
                "time_entry.created",
                "1",
                "Ann Admin",
                "jwt.claims.user_id",
                "",
                ""
            ]),
            report_row([
                "time_entry.updated",
                "2",
                "Bob Builder",
                "jwt.claims.user_id",
                "Drafted by Ann",
                "Reviewed by Bob"
            ]),
            // The job's request, on the session Bob's had just used: no one's.
            report_row([
                "time_entry.updated",
                "",
                "System",
                "",
                "Reviewed by Bob",
                "Archived by a job"
            ]),
        ]
    );
}

/// A POST to the Django site setting a time entry's description, as `user` (None: no one
/// signed in); the site's answer: the server session that ran it and the user it saw.
async fn edit(site: &str, user: Option<&str>, entry: u32, description: &str) -> (i64, Value) {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("description", description)
        .finish();
    let mut request = reqwest::Client::new()
        .post(format!("{site}/entries/{entry}/description"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(user) = user {
        request = request.header("x-user", user);
    }
    let response = request.send().await.expect("the Django site answers");
    let status = response.status();
    let said = response.text().await.unwrap();
    assert!(status.is_success(), "{description}: {status}\n{said}");
    let answer: Value = serde_json::from_str(&said).unwrap();
    (
        answer["backend"].as_i64().expect("a backend pid"),
        answer["user"].clone(),
    )
}

#[tokio::test]
async fn django_behind_pgbouncer_authors_each_users_requests_by_them_on_one_server_session() {
    let python = installed("django").join("bin/python");
    let db = TestDb::with_host().await;
    let mut admin = db.client().await;
    // The entries the users edit, there before Clockwatch is.
    admin
        .batch_execute(
            "insert into app.time_entry (id, workspace_id, user_id, description, start_at) values
                 (201, 1, 1, 'Ann''s entry', '2026-11-24 09:00Z'),
                 (202, 1, 2, 'Bob''s entry', '2026-11-24 10:00Z'),
                 (203, 1, 1, 'A form''s entry', '2026-11-24 11:00Z')",
        )
        .await
        .unwrap();
    let config = readme_config();
    install(&mut admin, &config).await;
    enable_all(&admin, &config, "1").await;
    // The application's role: DML on the host's tables; it finds Django's tables (in public,
    // made by the owner) and then the host's by its search_path, as an application's role is
    // usually set up, since PgBouncer passes no startup options on.
    let role = unique_role("django");
    admin
        .batch_execute(&format!(
            "create role {role} login;
             grant usage on schema app to {role};
             grant select, insert, update, delete on all tables in schema app to {role};
             alter role {role} set search_path = public, app;"
        ))
        .await
        .unwrap();
    let (host, port) = server_address();
    let bouncer = PgBouncer::start(&host, port, &[&role]);
    let dbname = db
        .url
        .parse::<tokio_postgres::Config>()
        .unwrap()
        .get_dbname()
        .unwrap()
        .to_string();

    let middleware = tempfile::tempdir().unwrap();
    std::fs::write(
        middleware.path().join("clockwatch_middleware.py"),
        readme_django_middleware(),
    )
    .unwrap();
    let site_port = free_port();
    let mut command = Command::new(&python);
    command
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/clients/django_site.py"
        ))
        .env("CLOCKWATCH_MIDDLEWARE_DIR", middleware.path())
        .env("CLOCKWATCH_DB_NAME", &dbname)
        .env("CLOCKWATCH_DB_HOST", &host)
        .env("CLOCKWATCH_DB_PORT", port.to_string())
        .env("CLOCKWATCH_POOLER_PORT", bouncer.port().to_string())
        .env("CLOCKWATCH_APP_ROLE", &role)
        .env("CLOCKWATCH_SITE_PORT", site_port.to_string())
        // No __pycache__ left in the repository or the temporary folder.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(middleware.path());
    let mut server = ChildServer::start(command);
    let site = format!("http://127.0.0.1:{site_port}");
    server.answering(&site).await;

    // Three rounds of Ann's and Bob's edits sent at once, so that their requests interleave in
    // the pooler, then one from a page no one signed in to, which names no one and must not be
    // taken for whoever the session served last. Each request is a thread of the site with a
    // database connection of its own; the one server session behind PgBouncer runs them all.
    let mut answers = Vec::new();
    for round in 1..=3 {
        let (anns, bobs) = (format!("Ann's edit {round}"), format!("Bob's edit {round}"));
        let (ann, bob) = tokio::join!(
            edit(&site, Some("ann"), 201, &anns),
            edit(&site, Some("bob"), 202, &bobs),
        );
        answers.push((ann, json!(1)));
        answers.push((bob, json!(2)));
        let public = edit(&site, None, 203, &format!("A public form's edit {round}")).await;
        answers.push((public, Value::Null));
    }
    for ((_, seen), user) in &answers {
        assert_eq!(seen, user, "the site saw the user who sent the request");
    }
    let sessions: BTreeSet<i64> = answers.iter().map(|((pid, _), _)| *pid).collect();
    assert_eq!(
        sessions.len(),
        1,
        "nine connections of Django's, one server session: {sessions:?}\n{}",
        bouncer.log()
    );

    drain(&mut admin, &config).await;
    let mut rows: Vec<[Option<String>; 4]> = admin
        .query(
            "select c.new_value, r.author_id, r.author, r.actor_source
             from audit_log.report_changes c
             join audit_log.report r on r.event_id = c.event_id
             where c.field = 'description'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| std::array::from_fn(|i| r.get(i)))
        .collect();
    // In the order of their descriptions: which of two requests sent at once ran first is the
    // pooler's choice.
    rows.sort();
    let row = |description: String, id: &str, author: &str, from: &str| {
        [
            Some(description),
            Some(id.into()),
            Some(author.into()),
            Some(from.into()),
        ]
    };
    let mut expected = Vec::new();
    for round in 1..=3 {
        expected.push([
            Some(format!("A public form's edit {round}")),
            None,
            Some("System".into()),
            None,
        ]);
    }
    for round in 1..=3 {
        expected.push(row(
            format!("Ann's edit {round}"),
            "1",
            "Ann Admin",
            "clockwatch.actor",
        ));
    }
    for round in 1..=3 {
        expected.push(row(
            format!("Bob's edit {round}"),
            "2",
            "Bob Builder",
            "clockwatch.actor",
        ));
    }
    assert_eq!(rows, expected);
}

#[test]
fn the_readmes_django_middleware_names_the_actor_for_the_transaction_only() {
    // Read at run time by the Django test; this says so early, without a registry, when the
    // block goes missing or loses what it is for.
    let middleware = readme_django_middleware();
    assert!(
        middleware.contains("class ClockwatchActorMiddleware"),
        "{middleware}"
    );
    assert!(
        middleware.contains("set_config('clockwatch.actor', %s, true)"),
        "transaction-local, as behind a pooler it must be: {middleware}"
    );
}

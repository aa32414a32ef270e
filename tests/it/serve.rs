//! `clockwatch serve`: the Audit Log page, its JSON API and CSV, over real HTTP, connected as
//! the README's reporting role, behind signed links.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::*;

/// A secret of the length the server asks for.
pub const SECRET: &str = "0123456789abcdef0123456789abcdef-test";

/// A description no page may run or let rearrange the page: markup, quotes, a right-to-left
/// override and a zero-width space.
pub const HOSTILE: &str =
    "<script>alert('x')</script> \"quoted\" & \u{202e}desrever\u{202c} zero\u{200b}width";

/// The example host with workspaces 1 and 2 audited, a scripted set of changes drained, and a
/// running `clockwatch serve` connected as the reporting role.
pub struct Served {
    pub db: TestDb,
    pub admin: tokio_postgres::Client,
    pub config_path: std::path::PathBuf,
    _dir: tempfile::TempDir,
    server: Child,
    /// Where the server's log goes.
    log: std::path::PathBuf,
    pub base: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        kill_hard(&mut self.server);
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn served() -> Served {
    let (db, mut admin, config) = installed_host().await;
    enable_all(&admin, &config, "2").await;
    // 60 entries in workspace 1 (more than a page), one of them hostile, a project deleted
    // (a linked change), and one entry in workspace 2 that no link to 1 may show.
    let mut sql = String::new();
    for i in 0..60 {
        sql.push_str(&format!(
            "insert into app.time_entry (workspace_id, user_id, description, start_at) values (1, 2, 'Entry {i}', '2026-11-24 09:00Z');"
        ));
    }
    act(&mut admin, Some("2"), &sql).await;
    act(
        &mut admin,
        Some("1"),
        &format!(
            "insert into app.time_entry (workspace_id, user_id, description, project_id, start_at)
                 values (1, 1, '{}', 1, '2026-11-24 10:00Z')",
            HOSTILE.replace('\'', "''")
        ),
    )
    .await;
    act(
        &mut admin,
        Some("1"),
        "delete from app.project where id = 1",
    )
    .await;
    act(
        &mut admin,
        Some("3"),
        "insert into app.time_entry (workspace_id, user_id, description, start_at) values (2, 3, 'Secret of workspace two', '2026-11-24 09:00Z')",
    )
    .await;
    drain(&mut admin, &config).await;
    serve_on(db, admin).await
}

/// Start `clockwatch serve` on the example config, connected as the README's reporting role.
pub async fn serve_on(db: TestDb, admin: tokio_postgres::Client) -> Served {
    serve_with(db, admin, "").await
}

/// Start `clockwatch serve` on the example config followed by `extra` (a `[serve]` table, say).
pub async fn serve_with(db: TestDb, admin: tokio_postgres::Client, extra: &str) -> Served {
    let reporting = crate::escalation::reporting_role(&db, &admin).await;
    let (dir, config_path) = config_file(&format!(
        "{}\n{extra}",
        include_str!("../../config/clockwatch.toml")
    ));
    let port = free_port();
    let log = dir.path().join("serve.log");
    let server = Command::new(binary())
        .args(["--config"])
        .arg(&config_path)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("CLOCKWATCH_DATABASE_URL", &reporting)
        .env("CLOCKWATCH_LINK_SECRET", SECRET)
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let health = format!("{base}/healthz");
    eventually("the server answers", Duration::from_secs(20), || {
        let health = health.clone();
        async move {
            reqwest::get(&health)
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await;
    Served {
        db,
        admin,
        config_path,
        _dir: dir,
        server,
        log,
        base,
    }
}

impl Served {
    /// `clockwatch link`'s output, the path and query only.
    pub fn link(&self, workspace: &str, ttl: &str) -> String {
        self.link_with(workspace, ttl, &[])
    }

    /// `clockwatch link` with more arguments (`--tz`, `--lang`): the path and query.
    pub fn link_with(&self, workspace: &str, ttl: &str, more: &[&str]) -> String {
        let out = Command::new(binary())
            .arg("--config")
            .arg(&self.config_path)
            .args([
                "link",
                "--workspace",
                workspace,
                "--viewer",
                "ann",
                "--ttl",
                ttl,
            ])
            .args(more)
            .env("CLOCKWATCH_LINK_SECRET", SECRET)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let at = url.find("/audit?").expect("a link to /audit");
        url[at..].to_string()
    }

    /// `clockwatch export --workspace 1` with these filters, as the schema's owner: its output.
    pub fn export(&self, filters: &[&str]) -> String {
        let args = [&["export", "--workspace", "1"][..], filters].concat();
        cli_with(&self.db.url, &self.config_path, &args)
    }

    async fn get(&self, path: &str) -> (u16, String, reqwest::header::HeaderMap) {
        self.get_as(path, None).await
    }

    /// GET `path` with the browser's `Accept-Language`, following no redirect.
    pub async fn get_as(
        &self,
        path: &str,
        language: Option<&str>,
    ) -> (u16, String, reqwest::header::HeaderMap) {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut request = client.get(format!("{}{path}", self.base));
        if let Some(language) = language {
            request = request.header("accept-language", language);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, response.text().await.unwrap(), headers)
    }
}

fn query_of(link: &str) -> &str {
    link.split_once('?').unwrap().1
}

/// The event ids a page shows, in its order.
pub fn page_ids(page: &str) -> Vec<i64> {
    page.split("<details id=\"e")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().parse().unwrap())
        .collect()
}

/// The first link of a page whose tag holds `marker`, as a path to get.
pub fn href(page: &str, marker: &str) -> Option<String> {
    page.split("<a href=\"").skip(1).find_map(|rest| {
        let (href, tail) = rest.split_once('"')?;
        let tag_end = tail.find('>')?;
        tail[..tag_end]
            .contains(marker)
            .then(|| href.replace("&#38;", "&"))
    })
}

/// Text as askama escapes it in HTML.
pub fn html_text(text: &str) -> String {
    text.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

#[tokio::test]
async fn only_a_valid_unexpired_link_opens_its_own_workspace() {
    let s = served().await;
    let link = s.link("1", "15m");
    let (status, page, headers) = s.get(&link).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Entry 59"), "{page}");
    assert!(!page.contains("Secret of workspace two"));
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(policy.starts_with("default-src 'none'"), "{policy}");
    assert_eq!(headers["referrer-policy"], "no-referrer");

    // Nothing, an altered workspace, viewer or signature, and an expired link: 401.
    let q = query_of(&link);
    let altered = [
        String::from("/audit"),
        format!("/audit?{}", q.replace("w=1", "w=2")),
        format!("/audit?{}", q.replace("v=ann", "v=bob")),
        format!("/audit?{}", q.replacen("s=", "s=00", 1)),
        format!("/api/events?{}", q.replace("w=1", "w=2")),
        format!("/audit.csv?{}", q.replace("w=1", "w=2")),
    ];
    for path in altered {
        let (status, body, _) = s.get(&path).await;
        assert_eq!(status, 401, "{path}: {body}");
        assert!(!body.contains("Secret of workspace two"));
    }
    let expired = s.link("1", "1s");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, body, _) = s.get(&expired).await;
    assert_eq!(status, 401);
    assert!(body.contains("expired"), "{body}");

    // A workspace parameter of its own changes nothing: the link names the workspace.
    let (_, page, _) = s.get(&format!("{link}&workspace=2&workspace_id=2")).await;
    assert!(!page.contains("Secret of workspace two"));
    // Workspace 2's own link does show it.
    let (_, page, _) = s.get(&s.link("2", "15m")).await;
    assert!(page.contains("Secret of workspace two"));

    // The secret never reaches the log, at debug level.
    let log = std::fs::read_to_string(&s.log).unwrap();
    assert!(!log.contains(SECRET), "{log}");
    assert!(log.contains("serving the audit log page"), "{log}");
}

#[tokio::test]
async fn filters_paging_and_the_range_limit_follow_the_report_rules() {
    let s = served().await;
    let link = s.link("1", "15m");
    let (from, to) = event_days(&s.admin, "UTC").await;
    let api = |extra: &str| format!("/api/events?{}{extra}", query_of(&link));
    let events = |body: &str| -> Vec<serde_json::Value> {
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        v["events"].as_array().unwrap().clone()
    };

    // Author (a name or an id, and System), action, category.
    let (_, body, _) = s.get(&api("&author=Ann%20Admin&limit=100")).await;
    let by_ann = events(&body);
    assert_eq!(by_ann.len(), 2, "{body}");
    assert!(by_ann.iter().all(|e| e["author"] == "Ann Admin"));
    let (_, body, _) = s.get(&api("&author=system&limit=100")).await;
    // The project's deletion relinked an entry and took its task: both System, both linked.
    let by_system = events(&body);
    assert_eq!(by_system.len(), 2, "{body}");
    assert!(by_system.iter().all(|e| e["caused_by"].is_i64()), "{body}");
    // Several authors in one field, as the page's form sends them, and so its CSV link.
    let (_, body, _) = s.get(&api("&author=Ann%20Admin,%20system&limit=100")).await;
    assert_eq!(
        events(&body).len(),
        by_ann.len() + by_system.len(),
        "{body}"
    );
    let (status, _, _) = s
        .get(&format!(
            "/audit.csv?{}&author=Ann%20Admin,%20system",
            query_of(&link)
        ))
        .await;
    assert_eq!(status, 200);
    // An action as the rows name it, with its origin, is that action from that origin; an
    // origin alone filters too.
    let (_, body, _) = s
        .get(&api("&action=Created%20time%20entry%20(Manual)&limit=100"))
        .await;
    let manual = events(&body);
    assert_eq!(manual.len(), 61, "{body}");
    assert!(manual
        .iter()
        .all(|e| e["origin"] == "Manual" && e["action_code"] == "time_entry.created"));
    // The manual entries, and the project (its row says it was made by hand) deleted.
    let (_, body, _) = s.get(&api("&origin=manual&limit=100")).await;
    assert_eq!(events(&body).len(), 62, "{body}");
    let (_, body, _) = s
        .get(&api("&action=Created%20time%20entry%20(Timer)&limit=100"))
        .await;
    assert!(events(&body).is_empty(), "{body}");
    let (_, body, _) = s.get(&api("&action=Deleted%20project")).await;
    assert_eq!(events(&body).len(), 1, "{body}");
    let (_, body, _) = s.get(&api("&category=projects&limit=100")).await;
    assert_eq!(events(&body).len(), 1, "{body}");
    // Dates: a day with no events, then the days the events were made on.
    let (_, body, _) = s.get(&api("&from=2026-01-01&to=2026-01-02")).await;
    assert_eq!(events(&body).len(), 0, "{body}");

    // Paging: every event of the workspace in two pages, newest first, each once.
    let (_, first, _) = s.get(&api(&format!("&from={from}&to={to}"))).await;
    let first_json: serde_json::Value = serde_json::from_str(&first).unwrap();
    let next = first_json["next"]
        .as_str()
        .expect("a next page")
        .to_string();
    let (_, second, _) = s
        .get(&api(&format!("&from={from}&to={to}&after={next}")))
        .await;
    let ids: Vec<i64> = events(&first)
        .iter()
        .chain(events(&second).iter())
        .map(|e| e["event_id"].as_i64().unwrap())
        .collect();
    let in_log: Vec<i64> = column(
        &s.admin,
        "select event_id from audit_log.events where workspace_id = '1'
         order by occurred_at desc, event_id desc",
    )
    .await;
    assert_eq!(events(&first).len(), 50);
    assert_eq!(ids, in_log);
    // The page pages the same way, and says where the reader is: "Events 1–50 of 62", an
    // Older link; then "Events 51–62 of 62" with Newer and First, Newer leading back.
    let total = in_log.len();
    let (_, page, _) = s.get(&link).await;
    assert_eq!(page_ids(&page), in_log[..50]);
    assert!(page.contains(&format!("Events 1–50 of {total}")), "{page}");
    assert!(
        href(&page, "rel=\"prev\"").is_none(),
        "no newer page on the first"
    );
    let older = href(&page, "rel=\"next\"").expect("an Older link");
    let (_, page, _) = s.get(&older).await;
    assert_eq!(page_ids(&page), in_log[50..]);
    assert!(
        page.contains(&format!("Events 51–{total} of {total}")),
        "{page}"
    );
    assert!(
        href(&page, "rel=\"next\"").is_none(),
        "no older page on the last"
    );
    let newer = href(&page, "rel=\"prev\"").expect("a Newer link");
    let first = page
        .split("<a href=\"")
        .find_map(|rest| {
            rest.split_once("\">First</a>")
                .map(|(h, _)| h.replace("&#38;", "&"))
        })
        .expect("a First link");
    for back in [newer, first] {
        let (_, page, _) = s.get(&back).await;
        assert_eq!(page_ids(&page), in_log[..50], "{back}");
        assert!(page.contains(&format!("Events 1–50 of {total}")));
    }

    // More than 30 days, or a range the wrong way round: refused on the page in its own words,
    // beside the To field (aria-invalid, aria-describedby), and so is the CSV of that range; the
    // API says it as `events_between` does.
    for (range, says) in [
        (
            "&from=2026-01-01&to=2026-11-26",
            "This range covers 330 days; a report covers at most 30. Choose a shorter range.",
        ),
        (
            "&from=2026-11-26&to=2026-11-20",
            "“To” is before “From”: choose a later day, or swap them.",
        ),
    ] {
        let (status, page, _) = s.get(&format!("{link}{range}")).await;
        assert_eq!(status, 400);
        assert!(page.contains(&html_text(says)), "{page}");
        assert!(
            page.contains("aria-describedby=\"to-error to-help\" aria-invalid=\"true\""),
            "{page}"
        );
        assert!(page.contains("<small id=\"to-error\""), "{page}");
        assert!(
            !page.contains("--from") && !page.contains("max_report_days"),
            "{page}"
        );
        let (status, csv, headers) = s
            .get(&format!("/audit.csv?{}{range}", query_of(&link)))
            .await;
        assert_eq!(status, 400);
        assert!(headers.get("content-disposition").is_none());
        assert!(csv.contains(&html_text(says)), "{csv}");
    }
    let (status, body, _) = s.get(&api("&from=2026-01-01&to=2026-11-26")).await;
    assert_eq!(status, 400, "{body}");
    // An author this workspace has never seen matches nothing, whether the log knows the name
    // from another workspace (Cleo, in workspace 2) or not at all: a link holder learns nothing
    // about the other workspaces' people.
    for author in ["Nobody%20Here", "Cleo%20Contractor", "3"] {
        let (status, body, _) = s.get(&api(&format!("&author={author}"))).await;
        assert_eq!(status, 200, "{author}: {body}");
        assert!(events(&body).is_empty(), "{author}: {body}");
        let (status, page, _) = s.get(&format!("{link}&author={author}")).await;
        assert_eq!(status, 200, "{author}");
        assert!(!page.contains("unknown author"), "{author}: {page}");
    }
    assert_eq!(
        count(
            &s.admin,
            "select count(*) from audit_log.known_name where name = 'Cleo Contractor'"
        )
        .await,
        1,
        "the log knows Cleo"
    );
}

#[tokio::test]
async fn the_csv_holds_the_exports_events_as_a_spreadsheet_reads_them() {
    let mut s = served().await;
    let link = s.link("1", "15m");
    // A value a spreadsheet would run as a formula, written by the application's role.
    let mut app = app_role(&s.db, &s.admin).await;
    act(
        &mut app,
        Some("2"),
        "insert into app.time_entry (workspace_id, user_id, description, start_at)
             values (1, 2, '=HYPERLINK(\"http://example.com/x\",\"open\")', '2026-11-24 11:00Z')",
    )
    .await;
    let config =
        clockwatch::Config::from_toml(&std::fs::read_to_string(&s.config_path).unwrap()).unwrap();
    drain(&mut s.admin, &config).await;
    let (from, to) = event_days(&s.admin, "UTC").await;
    let filters = format!("&from={from}&to={to}&category=time_entries&author=Bob%20Builder");
    let response = reqwest::get(format!("{}/audit.csv?{}{filters}", s.base, query_of(&link)))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment; filename=\"audit-log-1-"));
    let served_csv = response.bytes().await.unwrap();
    // The same events as `clockwatch export` writes for these filters, in the form a spreadsheet
    // reads: a byte order mark, CRLF, Yes/No, times in the page's zone as a spreadsheet reads
    // them, and a formula kept as the text it is.
    let out = s.export(&[
        "--excel",
        "--from",
        &from,
        "--to",
        &to,
        "--category",
        "time_entries",
        "--author",
        "Bob Builder",
    ]);
    assert_eq!(out.lines().count(), 62, "a header and Bob's 61 entries");
    let sheet = spreadsheet(&served_csv);
    let exported = spreadsheet(out.as_bytes());
    assert_eq!(sheet.len(), 62);
    assert_eq!(sheet[0][0], "Time (UTC)");
    assert_eq!(sheet[0][23], "Billable");
    assert_eq!(exported[0][23], "Billable");
    for (row, cli_row) in sheet.iter().zip(&exported).skip(1) {
        // The CLI's time, 2026-11-24T09:00:00.000000Z, reads as 2026-11-24 09:00:00.
        assert_eq!(row[0], cli_row[0][..19].replace('T', " "), "{row:?}");
        assert_eq!(row[1..23], cli_row[1..23], "{row:?}");
        assert_eq!(
            (cli_row[23].as_str(), cli_row[26].as_str()),
            ("true", "false")
        );
        assert_eq!(
            (row[23].as_str(), row[26].as_str()),
            ("Yes", "No"),
            "{row:?}"
        );
    }
    let formula = sheet
        .iter()
        .find(|row| row[2] == "Bob Builder" && row[8].contains("HYPERLINK"))
        .expect("the formula's row");
    assert!(formula[8].starts_with("'=HYPERLINK("), "{formula:?}");
    assert!(
        sheet.iter().flatten().all(|cell| !cell.starts_with('=')),
        "no cell a spreadsheet would run"
    );

    // The hostile description is shown as text: escaped markup, the characters kept.
    let (_, page, _) = s.get(&link).await;
    assert!(!page.contains("<script>alert"), "markup escaped");
    assert!(
        page.contains("&#60;script&#62;alert(&#39;x&#39;)&#60;/script&#62; &#34;quoted&#34; &#38;"),
        "{page}"
    );
    assert!(
        page.contains('\u{202e}') && page.contains('\u{200b}'),
        "characters kept as text"
    );
    assert!(!page.contains("<script"), "no script anywhere on the page");
}

/// A CSV as a spreadsheet opens it: a UTF-8 byte order mark first (else the file is refused
/// here), CRLF line ends, the cells of each line.
pub fn spreadsheet(bytes: &[u8]) -> Vec<Vec<String>> {
    let text = bytes
        .strip_prefix(b"\xEF\xBB\xBF")
        .expect("a UTF-8 byte order mark, which Excel reads the file as UTF-8 by");
    let text = std::str::from_utf8(text).unwrap();
    assert!(
        text.split_inclusive('\n')
            .all(|line| line.ends_with("\r\n")),
        "CRLF line ends"
    );
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

/// A fenced block of the README's page section, by its language.
pub fn readme_block(language: &str) -> String {
    let readme = include_str!("../../README.md");
    let section = readme
        .split_once("### The Audit Log page")
        .expect("README has the page's section")
        .1;
    section
        .split_once(&format!("```{language}\n"))
        .unwrap_or_else(|| panic!("a {language} block"))
        .1
        .split_once("```")
        .unwrap()
        .0
        .to_string()
}

#[tokio::test]
async fn links_minted_as_the_readme_shows_open_the_page() {
    let s = served().await;
    // Each example mints a plain link, then one with the viewer's zone and language.
    let python = format!(
        "{}\nprint(audit_link({:?}, {:?}, '1', 'ann'))\nprint(audit_link({:?}, {:?}, '1', 'ann', tz='Asia/Kolkata', lang='de'))",
        readme_block("python"),
        s.base,
        SECRET,
        s.base,
        SECRET
    );
    let javascript = format!(
        "{}\nconsole.log(auditLink({:?}, {:?}, '1', 'ann'));\nconsole.log(auditLink({:?}, {:?}, '1', 'ann', 900, 'Asia/Kolkata', 'de'));",
        readme_block("javascript"),
        s.base,
        SECRET,
        s.base,
        SECRET
    );
    for (program, flag, code) in [("python3", "-c", python), ("node", "-e", javascript)] {
        let out = Command::new(program).args([flag, &code]).output().unwrap();
        assert!(
            out.status.success(),
            "{program}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let printed = String::from_utf8(out.stdout).unwrap();
        let urls: Vec<&str> = printed.lines().collect();
        assert_eq!(urls.len(), 2, "{printed}");
        for (url, says) in urls.iter().zip(["Run report", "Zeiten in Asia/Kolkata"]) {
            let response = reqwest::get(*url).await.unwrap();
            assert_eq!(response.status().as_u16(), 200, "{program}: {url}");
            let page = response.text().await.unwrap();
            assert!(
                page.contains("Entry 59") && page.contains(says),
                "{program}: {url}"
            );
        }
    }
}

/// Downloads whose readers never read hold at most `serve.max_connections` connections, each
/// only until the slow-reader timeout; a request beyond them is turned away with 503 and
/// Retry-After rather than waiting or opening more.
#[tokio::test]
async fn link_holders_that_never_read_cannot_take_the_databases_connections() {
    let (db, mut admin, config) = installed_host().await;
    act(
        &mut admin,
        Some("1"),
        "insert into app.time_entry (workspace_id, user_id, description, start_at)
             values (1, 1, repeat('a long description ', 20), '2026-11-24 09:00Z')",
    )
    .await;
    drain(&mut admin, &config).await;
    // 40,000 copies of the event: a CSV of megabytes, far beyond what the sockets buffer.
    admin
        .batch_execute(
            "insert into audit_log.events
             select (jsonb_populate_record(e, jsonb_build_object('event_id', 1000 + g, 'chain_seq', null))).*
             from audit_log.events e, generate_series(1, 40000) g",
        )
        .await
        .unwrap();
    let s = serve_with(
        db,
        admin,
        "[serve]\nmax_connections = 2\nslow_reader_secs = 2\n",
    )
    .await;
    let link = s.link("1", "15m");
    let (from, to) = event_days(&s.admin, "UTC").await;
    let csv = format!(
        "{}/audit.csv?{}&from={from}&to={to}",
        s.base,
        query_of(&link)
    );
    let serving = "select count(*) from pg_stat_activity
                   where datname = current_database() and application_name like 'clockwatch serve%'";

    // Two downloads take both connections and stall: their readers read nothing.
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let response = reqwest::get(&csv).await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        stalled.push(response);
    }
    assert!(count(&s.admin, serving).await <= 2);
    // A third request waits briefly, then is turned away, with a time to come back.
    let (status, _, headers) = s.get(&link).await;
    assert_eq!(status, 503);
    assert_eq!(headers["retry-after"], "5");
    assert!(count(&s.admin, serving).await <= 2);

    // The slow-reader timeout ends the stalled downloads and frees their connections, with no
    // transaction left open.
    eventually(
        "the page answers again",
        Duration::from_secs(30),
        || async { s.get(&link).await.0 == 200 },
    )
    .await;
    eventually(
        "no transaction is left open",
        Duration::from_secs(30),
        || async {
            count(
                &s.admin,
                "select count(*) from pg_stat_activity
                 where datname = current_database() and application_name like 'clockwatch serve%'
                   and state like 'idle in transaction%'",
            )
            .await
                == 0
        },
    )
    .await;
    drop(stalled);
}

/// The page in an admin's terms: authors picked from everyone of the range (accents and case set
/// aside, part of a name enough), changes under the details' labels with a soft delete as a
/// word, a linked change with its cause and the cause with its effects, the viewer's language
/// and zone from the signed link, and an expired link sent back to the application.
#[tokio::test]
async fn the_page_speaks_to_an_admin_in_their_terms() {
    let (db, mut admin, config) = installed_host().await;
    admin
        .batch_execute("insert into app.app_user (id, name, email) values (4, 'Zoë Ødegaard', 'zoe@example.com')")
        .await
        .unwrap();
    act(&mut admin, Some("4"), "insert into app.time_entry (id, workspace_id, user_id, description, project_id, start_at, tag_ids) values (300, 1, 4, 'Zoë''s entry', 1, '2026-11-24 09:00Z', '{1}')").await;
    act(&mut admin, Some("4"), "update app.time_entry set description = 'Zoë''s entry, longer', project_id = null, start_at = '2026-11-24 08:30Z', tag_ids = '{}' where id = 300").await;
    act(&mut admin, Some("1"), "insert into app.time_entry (id, workspace_id, user_id, description, project_id, start_at) values (301, 1, 1, 'Ann''s entry', 1, '2026-11-24 10:00Z')").await;
    act(
        &mut admin,
        Some("1"),
        "update app.time_entry set deleted_at = '2026-11-24 11:00Z' where id = 301",
    )
    .await;
    act(
        &mut admin,
        Some("1"),
        "delete from app.project where id = 1",
    )
    .await;
    act(&mut admin, Some("3"), "insert into app.time_entry (workspace_id, user_id, description, start_at) values (2, 3, 'Cleo in two', '2026-11-24 09:00Z')").await;
    drain(&mut admin, &config).await;
    let s = serve_with(
        db,
        admin,
        "[serve]\nreturn_url = \"https://app.example.com/settings/audit\"\n",
    )
    .await;
    let link = s.link("1", "15m");
    let ids = |sql: &'static str| column::<i64>(&s.admin, sql);

    // The picker offers every author the log knows for the workspace, and System; nobody of
    // another workspace.
    let (_, page, _) = s.get(&link).await;
    let datalist = page
        .split_once("<datalist id=\"authors\">")
        .unwrap()
        .1
        .split_once("</datalist>")
        .unwrap()
        .0;
    assert_eq!(
        datalist,
        "<option value=\"Ann Admin\"><option value=\"System\"><option value=\"Zoë Ødegaard\">"
    );
    // Part of a name, in any case, without its accents.
    let zoe =
        ids("select event_id from audit_log.events where author_id = '4' order by event_id desc")
            .await;
    let (_, page, _) = s.get(&format!("{link}&author=zoe")).await;
    assert_eq!(page_ids(&page), zoe);
    assert!(page.contains("Showing changes by Zoë Ødegaard"), "{page}");
    let (_, page, _) = s.get(&format!("{link}&author=ann,%20ZOË")).await;
    let ann_and_zoe = ids("select event_id from audit_log.events where author_id in ('1', '4') and workspace_id = '1' order by occurred_at desc, event_id desc").await;
    assert_eq!(page_ids(&page), ann_and_zoe);
    // A name nobody of the workspace bears: said beside the field, in the page's words.
    let (status, page, _) = s.get(&format!("{link}&author=Cleo")).await;
    assert_eq!(status, 200);
    assert!(page_ids(&page).is_empty());
    assert!(
        page.contains(&html_text(
            "Nobody in this workspace matches “Cleo”: pick a name from the list."
        )),
        "{page}"
    );
    assert!(page.contains("aria-describedby=\"author-error author-help\" aria-invalid=\"true\""));

    // Changes under the details' labels, in their order; a soft delete as a word.
    let (_, page, _) = s.get(&link).await;
    let deleted = ids("select event_id from audit_log.events where action_code = 'time_entry.deleted' and target_id = '301'").await;
    let body = event_body(&page, deleted[0]);
    assert!(
        body.contains(
            "<th scope=\"row\">Status</th><td><bdi>Active</bdi></td><td><bdi>Deleted</bdi></td>"
        ),
        "{body}"
    );
    assert!(!body.contains("deleted_at"), "{body}");
    let updated = ids("select event_id from audit_log.events where action_code = 'time_entry.updated' and target_id = '300'").await;
    let body = event_body(&page, updated[0]);
    let labels: Vec<&str> = body
        .split("<th scope=\"row\">")
        .skip(1)
        .map(|rest| rest.split_once('<').unwrap().0)
        .collect();
    assert!(
        !labels.is_empty() && labels.iter().all(|l| !l.contains('_')),
        "{labels:?}"
    );
    let order: Vec<usize> = ["Description", "Project", "Start", "Tags"]
        .iter()
        .filter_map(|l| labels.iter().position(|x| x == l))
        .collect();
    assert!(
        order.len() == 4 && order.windows(2).all(|w| w[0] < w[1]),
        "{labels:?}"
    );
    // No project and no tags read (empty), as every empty value does.
    for field in ["Project", "Tags"] {
        let row = format!("<th scope=\"row\">{field}</th>");
        let cells = body
            .split_once(&row)
            .unwrap()
            .1
            .split_once("</tr>")
            .unwrap()
            .0;
        assert!(
            cells.ends_with("<td><bdi>(empty)</bdi></td>"),
            "{field}: {cells}"
        );
    }

    // A linked change: the badge, its cause in words inline, and the cause listing its effects.
    let cause =
        ids("select event_id from audit_log.events where action_code = 'project.deleted'").await[0];
    let effects = ids("select event_id from audit_log.events where caused_by is not null and workspace_id = '1' order by event_id").await;
    assert!(
        effects.len() >= 2,
        "the deletion relinked entries: {effects:?}"
    );
    let row = page
        .split_once(&format!("<details id=\"e{}\"", effects[0]))
        .unwrap()
        .1
        .split_once("</summary>")
        .unwrap()
        .0;
    assert!(row.contains("class=\"event linked\""), "{row}");
    assert!(row.contains("<span class=\"badge\">Linked</span>"), "{row}");
    assert!(
        row.contains("Deleted project Apollo, by Ann Admin"),
        "{row}"
    );
    let body = event_body(&page, cause);
    assert!(
        body.contains(&format!("Linked changes it caused ({})", effects.len())),
        "{body}"
    );
    for effect in &effects {
        assert!(body.contains(&format!("#e{effect}\"")), "{effect}: {body}");
    }
    // Following the cause: that event alone, saying so, with the way back to the report.
    let to_cause = event_body(&page, effects[0])
        .split("<p class=\"cause\">")
        .nth(1)
        .and_then(|rest| href(rest, ""))
        .expect("a link to the cause");
    let (_, single, _) = s.get(&to_cause).await;
    assert_eq!(page_ids(&single), [cause]);
    assert!(
        single.contains(&format!("Showing event {cause}")),
        "{single}"
    );
    let back = single
        .split_once("\">Back to report</a>")
        .and_then(|(before, _)| before.rsplit_once("<a href=\""))
        .map(|(_, h)| h.replace("&#38;", "&"))
        .expect("Back to report");
    let (_, report, _) = s.get(&back).await;
    assert_eq!(page_ids(&report), page_ids(&page));

    // The link's language and zone, signed; else the browser's language.
    let de = s.link_with("1", "15m", &["--lang", "de", "--tz", "Asia/Kolkata"]);
    let (_, page, _) = s.get_as(&de, Some("fr")).await;
    assert!(page.contains("<html lang=\"de\">"), "{page}");
    assert!(page.contains("Bericht erstellen") && page.contains("Zeiten in Asia/Kolkata"));
    let shown = column::<String>(
        &s.admin,
        "select to_char(occurred_at at time zone 'Asia/Kolkata', 'YYYY-MM-DD HH24:MI:SS')
         from audit_log.events where workspace_id = '1' order by occurred_at desc, event_id desc limit 1",
    )
    .await;
    assert!(
        page.contains(&format!("<span class=\"time\">{}</span>", shown[0])),
        "{page}"
    );
    // The CSV's header speaks the page's language, its times in the page's zone; the API too.
    let (status, csv, _) = s.get(&de.replacen("/audit?", "/audit.csv?", 1)).await;
    assert_eq!(status, 200);
    let header = csv
        .lines()
        .next()
        .unwrap()
        .trim_start_matches('\u{feff}')
        .to_string();
    assert!(
        header.starts_with("Zeit (Asia/Kolkata),Arbeitsbereich,Autor,Autor-ID,Aktion"),
        "{header}"
    );
    assert!(header.contains(",Abrechenbar,") && header.ends_with("Vorheriger Wert,Neuer Wert"));
    assert!(csv.contains(&shown[0]), "{csv}");
    let (_, api, _) = s.get(&de.replacen("/audit?", "/api/events?", 1)).await;
    let api: serde_json::Value = serde_json::from_str(&api).unwrap();
    assert_eq!(api["time_zone"], "Asia/Kolkata");
    let (_, page, _) = s.get_as(&link, Some("fr-CA,fr;q=0.9,en;q=0.5")).await;
    assert!(page.contains("<html lang=\"fr\">") && page.contains("Lancer le rapport"));
    // A zone or language the page does not know is refused when the link is minted.
    for (flag, value) in [("--tz", "Mars/Olympus"), ("--lang", "tlh")] {
        let out = Command::new(binary())
            .arg("--config")
            .arg(&s.config_path)
            .args(["link", "--workspace", "1", flag, value])
            .env("CLOCKWATCH_LINK_SECRET", SECRET)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert_eq!(said.trim().lines().count(), 1, "{said}");
        assert!(said.contains(flag) && said.contains(value), "{said}");
    }
    // Changing the signed language breaks the link.
    let (status, _, _) = s.get(&de.replace("lang=de", "lang=es")).await;
    assert_eq!(status, 401);
    // When the link ends, in the viewer's zone.
    let expires: i64 = query_of(&link)
        .split('&')
        .find_map(|p| p.strip_prefix("e="))
        .unwrap()
        .parse()
        .unwrap();
    let until = chrono::DateTime::from_timestamp(expires, 0).unwrap();
    let (_, page, _) = s.get(&link).await;
    assert!(
        page.contains(&format!("Link valid until {}", until.format("%H:%M")))
            || page.contains(&format!(
                "Link valid until {}",
                until.format("%Y-%m-%d %H:%M")
            )),
        "{page}"
    );

    // An expired link goes back to the application, from the page and from Export alike.
    let expired = s.link("1", "1s");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for path in [
        expired.clone(),
        expired.replacen("/audit?", "/audit.csv?", 1),
    ] {
        let (status, _, headers) = s.get(&path).await;
        assert_eq!(status, 303, "{path}");
        assert_eq!(
            headers["location"],
            "https://app.example.com/settings/audit"
        );
    }
}

/// The expanded part of one event on a page.
fn event_body(page: &str, id: i64) -> String {
    page.split_once(&format!("<details id=\"e{id}\""))
        .unwrap_or_else(|| panic!("event {id} on the page"))
        .1
        .split_once("</details>")
        .unwrap()
        .0
        .to_string()
}

/// A range of more events than a page counts: the count stops at 10,000 and says "more than",
/// and the pages go on.
#[tokio::test]
async fn a_range_of_many_events_is_counted_up_to_a_cap() {
    let (db, mut admin, config) = installed_host().await;
    act(
        &mut admin,
        Some("1"),
        "insert into app.time_entry (workspace_id, user_id, description, start_at)
             values (1, 1, 'Copied', '2026-11-24 09:00Z')",
    )
    .await;
    drain(&mut admin, &config).await;
    admin
        .batch_execute(
            "insert into audit_log.events
             select (jsonb_populate_record(e, jsonb_build_object('event_id', 1000 + g, 'chain_seq', null))).*
             from audit_log.events e, generate_series(1, 10050) g",
        )
        .await
        .unwrap();
    let s = serve_on(db, admin).await;
    let link = s.link("1", "15m");
    let (_, page, _) = s.get(&link).await;
    assert_eq!(page_ids(&page).len(), 50);
    assert!(page.contains("Events 1–50 of more than 10000"), "{page}");
    let older = href(&page, "rel=\"next\"").expect("an Older link");
    let (_, page, _) = s.get(&older).await;
    assert!(page.contains("Events 51–100 of more than 10000"), "{page}");
}

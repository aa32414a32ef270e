//! The Audit Log page in a real browser (headless Chromium, driven over WebDriver), as an admin
//! uses it on a day of a workspace's changes: pick an author from the list, page older and newer,
//! expand a linked change and follow it to its cause and back, download the CSV and read it as a
//! spreadsheet would, read the page on a phone and in German, and come back to an expired link.
//! axe-core (from npm, scripts/axe) checks every state for accessibility violations. Saves the
//! screenshots the README shows (target/screenshots/: copied to docs/).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use fantoccini::{Client as Browser, ClientBuilder, Locator};
use serde_json::json;

use crate::serve::{free_port, serve_with, spreadsheet, HOSTILE};
use crate::support::*;

/// chromedriver on a port of its own, stopped with the test.
struct Driver(std::process::Child, u16);

impl Drop for Driver {
    fn drop(&mut self) {
        kill_hard(&mut self.0);
    }
}

fn chromedriver() -> Driver {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver (scripts/deps installs chromium-driver)");
    Driver(child, port)
}

/// axe-core's script, installed by scripts/axe into the build's target folder (beside the
/// binary under test, so only a first run reaches the registry).
fn axe_script() -> String {
    let target = std::path::Path::new(binary())
        .parent()
        .and_then(std::path::Path::parent)
        .expect("the binary lies in target/<profile>/");
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/axe"))
        .arg(target.join("clients"))
        .output()
        .expect("run scripts/axe");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{}",
        said.lines().last().unwrap_or("scripts/axe failed")
    );
    let path = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    std::fs::read_to_string(path).unwrap()
}

/// Run axe-core on the page as it is now: no violation of any rule, or the test fails naming
/// each with the elements it found.
async fn accessible(c: &Browser, axe: &str, state: &str) {
    // WebDriver runs the script in the page, beside (not under) its Content-Security-Policy.
    c.execute(&format!("{axe}\n;return true;"), vec![])
        .await
        .unwrap();
    let found = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document).then(r => done(r.violations.map(v =>
                 v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(' | '))),
               e => done(['axe failed: ' + e]));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(found, json!([]), "axe-core on {state}");
}

/// The application a return_url leads back to: answers every request with a page titled
/// "Application".
fn application() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/settings/audit", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let body = "<!doctype html><title>Application</title><h1>Application</h1>";
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

async fn texts(c: &Browser, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for element in c.find_all(Locator::Css(css)).await.unwrap() {
        out.push(element.text().await.unwrap());
    }
    out
}

async fn click(c: &Browser, locator: Locator<'_>) {
    c.find(locator).await.unwrap().click().await.unwrap();
}

/// A browser session with these capabilities (chromedriver takes a moment to listen).
async fn session(url: &str, caps: &serde_json::Map<String, serde_json::Value>) -> Browser {
    let started = std::time::Instant::now();
    loop {
        match ClientBuilder::native()
            .capabilities(caps.clone())
            .connect(url)
            .await
        {
            Ok(c) => return c,
            Err(e) if started.elapsed() > Duration::from_secs(20) => {
                panic!("chromedriver does not answer: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Wait, up to 20 s, for the browser to show a page whose address holds `part`.
async fn reaches(c: &Browser, part: &str) {
    let started = std::time::Instant::now();
    loop {
        let now = c.current_url().await.unwrap();
        let ready = c
            .execute("return document.readyState", vec![])
            .await
            .unwrap();
        if now.as_str().contains(part) && ready == json!("complete") {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "at {now}, not at {part}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wait, up to 20 s, for the browser to show `url`.
async fn arrives(c: &Browser, url: &str) {
    let started = std::time::Instant::now();
    loop {
        let now = c.current_url().await.unwrap();
        if now.as_str() == url {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "at {now}, not {url}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Size the window so that the page itself (the viewport) is `width` x `height`, as on the
/// device it stands for: the window's frame takes the difference. A resize reaches the page a
/// moment later, so the viewport is read until it settles.
async fn viewport(c: &Browser, width: i64, height: i64) {
    let (mut outer_width, mut outer_height) = (width, height);
    let mut seen = json!(null);
    for _ in 0..50 {
        c.set_window_size(outer_width as u32, outer_height as u32)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        seen = c
            .execute("return [window.innerWidth, window.innerHeight]", vec![])
            .await
            .unwrap();
        let (inner_width, inner_height) = (seen[0].as_i64().unwrap(), seen[1].as_i64().unwrap());
        if (inner_width, inner_height) == (width, height) {
            return;
        }
        outer_width += width - inner_width;
        outer_height += height - inner_height;
    }
    panic!("the viewport stays {seen}, not {width}x{height}");
}

async fn screenshot(c: &Browser, name: &str) {
    std::fs::create_dir_all("target/screenshots").unwrap();
    std::fs::write(
        format!("target/screenshots/{name}"),
        c.screenshot().await.unwrap(),
    )
    .unwrap();
}

#[tokio::test]
async fn an_admin_picks_an_author_pages_follows_a_linked_change_and_downloads_the_csv() {
    let (db, mut admin, config) = installed_host().await;
    // A week's kind of authors: accents, right to left, a very long name; and 40 entries by one
    // of them, older than the scripted day, so the report has a second page.
    let long_name = format!(
        "Maximiliane {} von Habsburg-Lothringen",
        "Theodora ".repeat(5)
    );
    admin
        .batch_execute(&format!(
            "insert into app.app_user (id, name, email) values
                 (4, 'Zoë Ødegaard', 'zoe@example.com'),
                 (5, 'ليلى حداد', 'layla@example.com'),
                 (6, '{long_name}', 'max@example.com')"
        ))
        .await
        .unwrap();
    let mut entries = String::new();
    for i in 0..40 {
        entries.push_str(&format!(
            "insert into app.time_entry (workspace_id, user_id, description, start_at, billable)
                 values (1, 4, 'Zoë''s entry {i}', '2026-11-24 09:00Z', true);"
        ));
    }
    act(&mut admin, Some("4"), &entries).await;
    act(&mut admin, Some("5"), "insert into app.time_entry (workspace_id, user_id, description, start_at) values (1, 5, 'مراجعة الميزانية', '2026-11-24 10:00Z')").await;
    act(
        &mut admin,
        Some("6"),
        &format!(
            "insert into app.time_entry (workspace_id, user_id, description, start_at) values
                 (1, 6, '{}', '2026-11-24 11:00Z'),
                 (1, 6, '=HYPERLINK(\"http://example.com/x\",\"open\")', '2026-11-24 12:00Z'),
                 (1, 6, '{}', '2026-11-24 13:00Z')",
            HOSTILE.replace('\'', "''"),
            "A very long description of the work done. ".repeat(14)
        ),
    )
    .await;
    admin
        .batch_execute(include_str!("../fixtures/day.sql"))
        .await
        .unwrap();
    drain(&mut admin, &config).await;
    let (from, to) = event_days(&admin, "UTC").await;
    // The workspace's name from the host's table, which the reporting role may read.
    admin
        .batch_execute(
            "grant usage on schema app to public; grant select on app.workspace to public;",
        )
        .await
        .unwrap();
    let app = application();
    let served = serve_with(
        db,
        admin,
        &format!(
            "[serve]\nreturn_url = \"{app}\"\n\n[workspaces]\ntable = \"app.workspace\"\nname_column = \"name\"\n"
        ),
    )
    .await;
    let link = served.link("1", "15m");
    let total = count(
        &served.admin,
        "select count(*) from audit_log.events where workspace_id = '1'",
    )
    .await;
    assert!(total > 50, "two pages: {total}");
    let axe = axe_script();

    let driver = chromedriver();
    let downloads = tempfile::tempdir().unwrap();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1366,900",
                     "--lang=en-US", "--hide-scrollbars"],
            "prefs": {"download.default_directory": downloads.path(),
                      "download.prompt_for_download": false},
        }),
    );
    let url = format!("http://127.0.0.1:{}", driver.1);
    let c = session(&url, &caps).await;

    // The link opens the page, on a desktop's screen; the report runs on the scripted days,
    // chosen in the form.
    c.goto(&format!("{}{link}", served.base)).await.unwrap();
    viewport(&c, 1366, 900).await;
    accessible(&c, &axe, "the page as the link opens it").await;
    for (field, day) in [("from", &from), ("to", &to)] {
        let input = c.find(Locator::Id(field)).await.unwrap();
        c.execute(
            "arguments[0].value = arguments[1]",
            vec![serde_json::to_value(&input).unwrap(), json!(day)],
        )
        .await
        .unwrap();
    }
    // The author list holds everyone of the range, and System; picking Zoë by part of her name,
    // typed without its accent, reports her changes alone.
    let mut offered = Vec::new();
    for option in c.find_all(Locator::Css("#authors option")).await.unwrap() {
        offered.push(option.attr("value").await.unwrap().unwrap());
    }
    for name in [
        "Ann Admin",
        "Bob Builder",
        "Cleo Contractor",
        "System",
        "Zoë Ødegaard",
        "ليلى حداد",
        long_name.as_str(),
    ] {
        assert!(offered.iter().any(|o| o == name), "{name} in {offered:?}");
    }
    c.find(Locator::Id("author"))
        .await
        .unwrap()
        .send_keys("zoe")
        .await
        .unwrap();
    click(&c, Locator::Css("button[type=submit]")).await;
    reaches(&c, "author=zoe").await;
    let authors = texts(&c, "summary .author").await;
    assert_eq!(authors.len(), 40);
    assert!(authors.iter().all(|a| a == "Zoë Ødegaard"), "{authors:?}");
    assert!(c
        .source()
        .await
        .unwrap()
        .contains("Showing changes by Zoë Ødegaard"));
    accessible(&c, &axe, "an author picked").await;

    // A range longer than a report may cover and an author the workspace has not: each refusal
    // in the page's words, beside its field and tied to it.
    let too_early = (chrono::NaiveDate::parse_from_str(&to, "%Y-%m-%d").unwrap()
        - chrono::Duration::days(40))
    .to_string();
    for (query, field, error) in [
        (format!("from={too_early}&to={to}"), "to", "to-error"),
        (
            format!("from={from}&to={to}&author=Nobody%20Known"),
            "author",
            "author-error",
        ),
    ] {
        c.goto(&format!("{}{link}&{query}", served.base))
            .await
            .unwrap();
        let input = c.find(Locator::Id(field)).await.unwrap();
        assert_eq!(
            input.attr("aria-invalid").await.unwrap().as_deref(),
            Some("true"),
            "{field}"
        );
        let described = input.attr("aria-describedby").await.unwrap().unwrap();
        assert!(
            described.split(' ').any(|id| id == error),
            "{field}: {described}"
        );
        let text = c
            .find(Locator::Id(error))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!text.is_empty() && !text.contains("--"), "{field}: {text}");
        accessible(&c, &axe, &format!("{field} refused")).await;
    }

    // Everyone again: the first page says where it is, Older and back with Newer.
    c.goto(&format!("{}{link}&from={from}&to={to}", served.base))
        .await
        .unwrap();
    let count_text = texts(&c, ".orientation .count").await;
    assert_eq!(count_text, [format!("Events 1–50 of {total}")]);
    let first_page = texts(&c, "summary .time").await;
    click(&c, Locator::Css("a[rel=next]")).await;
    c.wait()
        .for_element(Locator::Css("a[rel=prev]"))
        .await
        .unwrap();
    assert_eq!(
        texts(&c, ".orientation .count").await,
        [format!("Events 51–{total} of {total}")]
    );
    accessible(&c, &axe, "the second page").await;
    click(&c, Locator::Css("a[rel=prev]")).await;
    c.wait()
        .for_element(Locator::Css("a[rel=next]"))
        .await
        .unwrap();
    assert_eq!(texts(&c, "summary .time").await, first_page);

    // The linked change: the project's deletion relinked Bob's entry. Its row carries a Linked
    // badge and its cause in words; expanded, the project before and after, by its label.
    let linked = c.find(Locator::Css("details.linked")).await.unwrap();
    let row = linked.find(Locator::Css("summary")).await.unwrap();
    let row_text = row.text().await.unwrap();
    assert!(row_text.contains("Linked"), "{row_text}");
    assert!(
        row_text.contains("Deleted project Hermes, by Ann Admin"),
        "{row_text}"
    );
    row.click().await.unwrap();
    let mut cells = Vec::new();
    for cell in linked
        .find_all(Locator::Css(
            "table.changes tbody td, table.changes tbody th",
        ))
        .await
        .unwrap()
    {
        cells.push(cell.text().await.unwrap());
    }
    assert_eq!(cells, ["Project", "Hermes", "(empty)"]);
    // The long name and the long description: two lines at most in the list, whole when open.
    let tallest = c
        .execute(
            "return Math.max(...[...document.querySelectorAll('summary .author, summary .target')]
                 .map(e => e.getBoundingClientRect().height / parseFloat(getComputedStyle(e).lineHeight)))",
            vec![],
        )
        .await
        .unwrap();
    assert!(tallest.as_f64().unwrap() <= 2.05, "{tallest}");
    accessible(&c, &axe, "a linked change expanded").await;
    assert_eq!(texts(&c, "h1 .workspace").await, ["Acme Inc"]);
    // The screenshot shows the page from its top: the heading, the filters, and the linked
    // change opened.
    c.execute("window.scrollTo(0, 0)", vec![]).await.unwrap();
    screenshot(&c, "audit-page.png").await;

    // Its cause, one click away: that event alone, open, listing the changes it caused, with the
    // way back to the report.
    click(&c, Locator::Css("details.linked .cause a")).await;
    reaches(&c, "&event=").await;
    let cause = c
        .wait()
        .for_element(Locator::Css("details.event[open]"))
        .await
        .unwrap();
    let cause_text = cause.text().await.unwrap();
    assert!(cause_text.contains("Deleted project"), "{cause_text}");
    assert!(
        cause_text.contains("Linked changes it caused (1)"),
        "{cause_text}"
    );
    let shown = texts(&c, ".orientation span").await;
    assert!(shown[0].starts_with("Showing event "), "{shown:?}");
    accessible(&c, &axe, "a cause and its linked changes").await;
    click(&c, Locator::LinkText("Back to report")).await;
    c.wait()
        .for_element(Locator::Css(".orientation .count"))
        .await
        .unwrap();
    assert_eq!(texts(&c, "summary .time").await, first_page);

    // No script ever ran or exists, and the hostile description is the text it is.
    let scripts = c
        .execute("return document.scripts.length", vec![])
        .await
        .unwrap();
    assert_eq!(scripts, json!(0));

    // Export as CSV: opened as Excel reads it, a byte order mark, Yes/No, the formula as text.
    click(&c, Locator::LinkText("Export as CSV")).await;
    // A download in progress is named *.crdownload; the .csv appears when it is complete.
    let started = std::time::Instant::now();
    let downloaded = loop {
        let found = std::fs::read_dir(downloads.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "csv"));
        match found {
            Some(path) => break path,
            None if started.elapsed() > Duration::from_secs(20) => {
                panic!("no CSV downloaded into {}", downloads.path().display())
            }
            None => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let sheet = spreadsheet(&std::fs::read(downloaded).unwrap());
    assert_eq!(sheet.len() as i64, total + 1);
    let billable = sheet[0].iter().position(|h| h == "Billable").unwrap();
    assert!(sheet.iter().any(|r| r[billable] == "Yes"));
    assert!(sheet
        .iter()
        .flatten()
        .all(|cell| cell != "true" && cell != "false"));
    assert!(sheet
        .iter()
        .flatten()
        .any(|cell| cell.starts_with("'=HYPERLINK(")));
    assert!(sheet.iter().flatten().all(|cell| !cell.starts_with('=')));

    // On a phone (a session of its own, emulating one 390 x 844): the first event on the first
    // screen.
    let mut phone_caps = caps.clone();
    phone_caps["goog:chromeOptions"]["mobileEmulation"] = json!({
        "deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 1, "mobile": true, "touch": true}
    });
    let phone = session(&url, &phone_caps).await;
    phone
        .goto(&format!("{}{link}&from={from}&to={to}", served.base))
        .await
        .unwrap();
    let top = phone
        .execute(
            "return [document.querySelector('details.event').getBoundingClientRect().bottom,
                     window.innerWidth, window.innerHeight]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        (&top[1], &top[2]),
        (&json!(390), &json!(844)),
        "the phone's screen"
    );
    let bottom = top[0].as_f64().unwrap();
    assert!(bottom <= 844.0, "the first event ends at {bottom} of 844");
    accessible(&phone, &axe, "the phone layout").await;
    screenshot(&phone, "audit-page-phone.png").await;
    phone.close().await.unwrap();

    // In German, from the link's signed language.
    viewport(&c, 1366, 900).await;
    let german = served.link_with("1", "15m", &["--lang", "de", "--tz", "Europe/Berlin"]);
    c.goto(&format!("{}{german}&from={from}&to={to}", served.base))
        .await
        .unwrap();
    let heading = c
        .find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(heading, "Bericht erstellen");
    assert_eq!(
        texts(&c, ".orientation .count").await,
        [format!("Ereignisse 1–50 von {total}")]
    );
    accessible(&c, &axe, "the German page").await;
    screenshot(&c, "audit-page-de.png").await;

    // A link that expires while open: Run report, and Export, lead back to the application.
    let short = served.link("1", "3s");
    let longer = served.link("1", "8s");
    for (link, control) in [
        (short, Locator::Css("button[type=submit]")),
        (longer, Locator::LinkText("Export as CSV")),
    ] {
        c.goto(&format!("{}{link}", served.base)).await.unwrap();
        let expires: i64 = link
            .split('&')
            .find_map(|p| p.strip_prefix("e="))
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            expires > chrono::Utc::now().timestamp(),
            "the page opened in time"
        );
        // Past the expiry, by the clock the server checks it with.
        while chrono::Utc::now().timestamp() <= expires {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        click(&c, control).await;
        arrives(&c, &app).await;
    }
    c.close().await.unwrap();
}

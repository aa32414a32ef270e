//! The Audit Log page in a real browser (headless Chromium, driven over WebDriver): open a
//! signed link, run the report on the scripted day, expand a linked change and follow it to its
//! cause, download the CSV, and see a hostile description as the text it is. Saves the
//! screenshot the README shows (target/screenshots/audit-page.png).

use std::process::{Command, Stdio};
use std::time::Duration;

use fantoccini::{ClientBuilder, Locator};
use serde_json::json;

use crate::serve::{free_port, serve_on, HOSTILE};
use crate::support::*;

/// chromedriver on a port of its own, stopped with the test.
struct Driver(std::process::Child, u16);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
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

#[tokio::test]
async fn an_admin_reads_the_day_expands_a_linked_change_and_downloads_the_csv() {
    let (db, mut admin, config) = installed_host().await;
    admin
        .batch_execute(include_str!("../fixtures/day.sql"))
        .await
        .unwrap();
    act(
        &mut admin,
        Some("1"),
        &format!(
            "insert into app.time_entry (workspace_id, user_id, description, start_at, end_at)
                 values (1, 1, '{}', '2026-11-24 14:00Z', '2026-11-24 15:00Z')",
            HOSTILE.replace('\'', "''")
        ),
    )
    .await;
    drain(&mut admin, &config).await;
    let (from, to) = event_days(&admin, "UTC").await;
    let served = serve_on(db, admin).await;
    let link = served.link("1", "15m");

    let driver = chromedriver();
    let downloads = tempfile::tempdir().unwrap();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000",
                     "--lang=en-US"],
            "prefs": {"download.default_directory": downloads.path(),
                      "download.prompt_for_download": false},
        }),
    );
    let url = format!("http://127.0.0.1:{}", driver.1);
    // chromedriver takes a moment to listen.
    let started = std::time::Instant::now();
    let c = loop {
        match ClientBuilder::native()
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(c) => break c,
            Err(e) if started.elapsed() > Duration::from_secs(20) => {
                panic!("chromedriver does not answer: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };

    // The link opens the page; the report runs on the scripted day, chosen in the form.
    c.goto(&format!("{}{link}", served.base)).await.unwrap();
    for (field, day) in [("from", &from), ("to", &to)] {
        let input = c.find(Locator::Id(field)).await.unwrap();
        c.execute(
            "arguments[0].value = arguments[1]",
            vec![serde_json::to_value(&input).unwrap(), json!(day)],
        )
        .await
        .unwrap();
    }
    c.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css("details.event"))
        .await
        .unwrap();
    let rows = c.find_all(Locator::Css("details.event")).await.unwrap();
    let in_log = count(
        &served.admin,
        "select count(*) from audit_log.events where workspace_id = '1'",
    )
    .await;
    assert_eq!(rows.len() as i64, in_log);

    // The linked change: the project's deletion relinked Bob's entry. Expanded, it says what
    // caused it and shows the project before and after.
    let linked = c.find(Locator::Css("details.linked")).await.unwrap();
    linked
        .find(Locator::Css("summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let text = linked.text().await.unwrap();
    assert!(text.contains("Linked change, made by System"), "{text}");
    let cells: Vec<String> = {
        let mut out = Vec::new();
        for cell in linked
            .find_all(Locator::Css(
                "table.changes tbody td, table.changes tbody th",
            ))
            .await
            .unwrap()
        {
            out.push(cell.text().await.unwrap());
        }
        out
    };
    assert_eq!(cells, ["project_id", "Hermes", "(empty)"]);
    std::fs::create_dir_all("target/screenshots").unwrap();
    std::fs::write(
        "target/screenshots/audit-page.png",
        c.screenshot().await.unwrap(),
    )
    .unwrap();
    // Its cause, one click away.
    linked
        .find(Locator::Css(".cause a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let cause = c
        .wait()
        .for_element(Locator::Css("details.event[open]"))
        .await
        .unwrap();
    assert!(cause.text().await.unwrap().contains("Deleted project"));

    // The hostile description is shown as the text it is; no script ever ran or exists.
    c.goto(&format!("{}{link}&from={from}&to={to}", served.base))
        .await
        .unwrap();
    let mut shown = Vec::new();
    for cell in c.find_all(Locator::Css("span.target")).await.unwrap() {
        shown.push(cell.text().await.unwrap());
    }
    assert!(
        shown
            .iter()
            .any(|t| t.starts_with(&HOSTILE.replace('\u{200b}', "")[..20])),
        "{shown:?}"
    );
    let scripts = c
        .execute("return document.scripts.length", vec![])
        .await
        .unwrap();
    assert_eq!(scripts, json!(0));

    // Export as CSV: the browser downloads what `clockwatch export --excel` writes for the filters.
    c.find(Locator::LinkText("Export as CSV"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
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
    let csv = std::fs::read(downloaded).unwrap();
    let out = served.export(&["--excel", "--from", &from, "--to", &to]);
    assert_eq!(csv, out.as_bytes());
    c.close().await.unwrap();
}

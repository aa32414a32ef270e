//! `clockwatch demo`: the whole pipeline in one command, on a throwaway database.
//!
//! With no database configured it starts its own PostgreSQL from the server binaries installed on
//! the machine (as the `postgres` user when run as root, since the server refuses root), creates
//! the example host schema, installs Clockwatch, runs the daemon in-process, plays a scripted
//! working day, prints the report, writes a CSV export, and removes everything it made.

use std::path::Path;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::cluster::Cluster;
use crate::config::{quote_ident, Config};
use crate::daemon::{Daemon, Lifecycle};
use crate::error::{DbContext, Error, Result};
use crate::report::FilterArgs;

// The example host application and its day: the same files the tests use.
const HOST_SQL: &str = include_str!("../tests/fixtures/host.sql");
const SEED_SQL: &str = include_str!("../tests/fixtures/seed.sql");
const DAY_SQL: &str = include_str!("../tests/fixtures/day.sql");
const EXAMPLE_CONFIG: &str = include_str!("../config/clockwatch.toml");

fn step(text: &str) {
    println!("==> {text}");
}

/// Run the demo. `server_url`: an existing server to use (a database is created on it and
/// dropped afterwards); None starts a throwaway one. The CSV export goes to `output`.
pub async fn demo(server_url: Option<String>, output: &Path) -> Result<()> {
    let cluster = match &server_url {
        Some(_) => None,
        None => {
            let cluster = Cluster::start(false)?;
            step(&format!(
                "started a throwaway PostgreSQL on port {} in {}",
                cluster.port(),
                cluster.dir().display()
            ));
            Some(cluster)
        }
    };
    let admin_url = match (&server_url, &cluster) {
        (Some(url), _) => url.clone(),
        (None, Some(c)) => c.url(),
        (None, None) => unreachable!("a cluster is started when no server is given"),
    };
    let database = format!("clockwatch_demo_{}", std::process::id());
    let admin = crate::db::connect_once(&admin_url, "demo").await?;
    admin
        .batch_execute(&format!("create database {}", quote_ident(&database)))
        .await
        .context("create the demo database")?;
    let url = with_database(&admin_url, &database);
    let result = run_day(&url, output).await;
    // Whatever happened, leave nothing behind (the throwaway cluster goes when dropped).
    let _ = admin
        .batch_execute(&format!(
            "drop database if exists {} with (force)",
            quote_ident(&database)
        ))
        .await;
    // Closed by us before the server goes, so its connection ends quietly rather than being
    // cut off by the shutdown, which logs a lost-connection warning. (The close is sent by the
    // connection's task, so this makes the quiet end very likely, not certain.)
    drop(admin);
    if let Some(cluster) = cluster {
        drop(cluster);
        step("stopped the throwaway PostgreSQL and removed its files");
    }
    result
}

async fn run_day(url: &str, output: &Path) -> Result<()> {
    let mut config = Config::from_toml(EXAMPLE_CONFIG)?;
    config.daemon.poll_interval_ms = 100;
    let mut client = crate::db::connect_once(url, "demo").await?;

    step("creating the example host application (workspaces, users, projects, time entries...)");
    client
        .batch_execute(HOST_SQL)
        .await
        .context("create the example schema")?;
    client
        .batch_execute(SEED_SQL)
        .await
        .context("seed the example schema")?;

    step("clockwatch install: schema audit_log, capture triggers on 7 host tables");
    crate::install::install(&mut client, &config).await?;
    step("clockwatch enable --workspace 1: every category");
    crate::workspace::set_enabled(&client, &config.schema, "1", None, true).await?;

    step("clockwatch run: starting the daemon");
    let (stop, shutdown) = watch::channel(false);
    let (tx, mut lifecycle) = mpsc::unbounded_channel();
    let daemon = tokio::spawn(
        Daemon::new(config.clone(), url, shutdown)?
            .with_lifecycle(tx)
            .run(),
    );
    while lifecycle
        .recv()
        .await
        .ok_or_else(|| Error::Input("the daemon stopped before it was ready".into()))?
        != Lifecycle::Ready
    {}

    step("playing a working day: timer and kiosk entries, edits, a delete and restore, a project deleted, a login, a role change, an expense");
    client
        .batch_execute(DAY_SQL)
        .await
        .context("play the day")?;
    wait_until_drained(&client).await?;
    let _ = stop.send(true);
    daemon
        .await
        .map_err(|e| Error::Input(format!("daemon task: {e}")))??;

    step("clockwatch report --workspace 1");
    client
        .batch_execute(&format!(
            "set search_path = {}, pg_catalog",
            quote_ident(&config.schema)
        ))
        .await
        .context("set search_path")?;
    let mut tx = client.transaction().await.context("begin")?;
    let args = FilterArgs {
        workspace: "1".into(),
        ..Default::default()
    };
    let filter = crate::report::build_filter(
        &mut tx,
        &config,
        &args,
        config.max_report_days,
        "max_report_days",
    )
    .await?;
    let rows = crate::report::fetch(&tx, &filter, 100).await?;
    let display = crate::report::Display::new(&config);
    print!("{}", crate::report::render(&rows, false, &display));
    let relinked = rows
        .iter()
        .filter(|r| r.caused_by.is_some())
        .cloned()
        .collect::<Vec<_>>();
    if !relinked.is_empty() {
        step("a linked change: the project deletion relinked this entry (author System, caused by the deletion)");
        print!("{}", crate::report::render(&relinked, true, &display));
    }

    let mut file = std::io::BufWriter::new(
        std::fs::File::create(output)
            .map_err(|e| Error::Output(format!("{}: {e}", output.display())))?,
    );
    let written =
        crate::export::export(&tx, &filter, crate::export::Format::Csv, false, &mut file).await?;
    tx.commit().await.context("commit")?;
    step(&format!(
        "clockwatch export: wrote {written} events to {}",
        output.display()
    ));
    Ok(())
}

/// Wait until the daemon has turned every staged change into an event.
async fn wait_until_drained(client: &tokio_postgres::Client) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let staged: i64 = client
            .query_one("select count(*) from audit_log.staging", &[])
            .await
            .context("watch staging")?
            .get(0);
        if staged == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::Input(format!(
                "{staged} changes still staged after 60 s: the daemon is not draining"
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The server URL with another database: the same form, with every other setting (TLS
/// included) kept. `database` is a name the demo made up, plain enough to need no quoting.
fn with_database(url: &str, database: &str) -> String {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"));
    let Some(rest) = rest else {
        // key=value: a later setting wins, in libpq as in tokio-postgres.
        return format!("{url} dbname={database}");
    };
    let scheme = &url[..url.len() - rest.len()];
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, format!("?{query}")),
        None => (rest, String::new()),
    };
    let authority = before_query
        .split_once('/')
        .map_or(before_query, |(a, _)| a);
    format!("{scheme}{authority}/{database}{query}")
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn another_database_keeps_every_other_setting() {
        assert_eq!(
            with_database(
                "postgres://u:p@h:5433/postgres?sslmode=verify-full&sslrootcert=/ca",
                "d"
            ),
            "postgres://u:p@h:5433/d?sslmode=verify-full&sslrootcert=/ca"
        );
        assert_eq!(with_database("postgresql://h", "d"), "postgresql://h/d");
        assert_eq!(
            with_database("host=h password='a b' sslmode=require", "d"),
            "host=h password='a b' sslmode=require dbname=d"
        );
    }
}

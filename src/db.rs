//! Connecting to PostgreSQL and classifying its errors.
//!
//! Errors are classified by SQLSTATE, never by message text: the daemon retries what may pass
//! (connection lost, server starting or shutting down) and stops on what will not (bad password,
//! missing database, Clockwatch not installed).

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, Client, GenericClient, Notification, Row, Statement};

use crate::error::{Error, Result};

/// Value of `application_name` for every Clockwatch connection; `status` looks for it.
pub const APPLICATION_NAME: &str = "clockwatch";

/// Statements prepared once per connection and reused. The daemon runs the same dozen queries
/// every few milliseconds while busy; sent as text, each one cost a round trip to prepare and a
/// parse and plan in the server, more than running it on a small batch. Statements outlive
/// transactions, including rolled-back ones, but not the connection: clear the cache when the
/// connection is replaced, or when a statement may have gone bad (a host table changed shape).
#[derive(Debug, Default)]
pub struct Prepared(HashMap<String, Statement>);

impl Prepared {
    /// Run `sql` on `client`, preparing it the first time.
    pub async fn query(
        &mut self,
        client: &impl GenericClient,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> std::result::Result<Vec<Row>, tokio_postgres::Error> {
        let statement = self.statement(client, sql).await?;
        client.query(&statement, params).await
    }

    /// Run `sql` on `client` for its row count, preparing it the first time.
    pub async fn execute(
        &mut self,
        client: &impl GenericClient,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> std::result::Result<u64, tokio_postgres::Error> {
        let statement = self.statement(client, sql).await?;
        client.execute(&statement, params).await
    }

    async fn statement(
        &mut self,
        client: &impl GenericClient,
        sql: &str,
    ) -> std::result::Result<Statement, tokio_postgres::Error> {
        if let Some(statement) = self.0.get(sql) {
            return Ok(statement.clone());
        }
        let statement = client.prepare(sql).await?;
        self.0.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }
}

/// Where the database URL comes from, in order: the flag, `CLOCKWATCH_DATABASE_URL`,
/// `DATABASE_URL`, then `database_url` in the config file.
pub fn resolve_url(flag: Option<&str>, config: Option<&str>) -> Result<String> {
    flag.map(str::to_string)
        .or_else(|| {
            std::env::var("CLOCKWATCH_DATABASE_URL")
                .ok()
                .filter(|s| !s.is_empty())
        })
        .or_else(|| std::env::var("DATABASE_URL").ok().filter(|s| !s.is_empty()))
        .or_else(|| config.map(str::to_string))
        .ok_or(Error::NoDatabase)
}

/// Where the audit log's own database is, when it has one, in order: the flag,
/// `CLOCKWATCH_LOG_DATABASE_URL`, then `log_database_url` in the config. None: the log lives in
/// the host database.
pub fn resolve_log_url(flag: Option<&str>, config: Option<&str>) -> Option<String> {
    flag.map(str::to_string)
        .or_else(|| {
            std::env::var("CLOCKWATCH_LOG_DATABASE_URL")
                .ok()
                .filter(|s| !s.is_empty())
        })
        .or_else(|| config.map(str::to_string))
        .filter(|s| !s.is_empty())
}

/// Where and how to connect: tokio-postgres' settings and the TLS that goes with them.
#[derive(Clone)]
pub struct Target {
    pub pg: tokio_postgres::Config,
    pub tls: crate::tls::Tls,
}

/// Parse a libpq-style URL or key=value string (TLS settings and libpq's environment variables
/// included, see [`crate::conninfo`]), and set what every Clockwatch connection needs.
pub fn parse_url(url: &str, role: &str) -> Result<Target> {
    let info = crate::conninfo::parse(url, &crate::conninfo::Defaults::from_process())?;
    let mut config: tokio_postgres::Config = info
        .rest
        .parse()
        .map_err(|e: tokio_postgres::Error| Error::DatabaseUrl(describe(&e)))?;
    let tls = crate::tls::Tls::new(info.tls)?;
    config.ssl_mode(tls.protocol_mode());
    if let Some(timeout) = info.tcp_user_timeout {
        config.tcp_user_timeout(timeout);
    }
    let given = |key: &str| info.keys.iter().any(|k| k == key);
    if config.get_application_name().is_none() {
        config.application_name(format!("{APPLICATION_NAME} {role}"));
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    // tokio-postgres' default keepalive idle time is 2 hours: a half-open connection would go
    // unnoticed that long. Unless the connection string says otherwise, these bound it to about
    // a minute (tcp_user_timeout, also read from the string, bounds unacknowledged writes).
    if !given("keepalives") {
        config.keepalives(true);
    }
    if !given("keepalives_idle") {
        config.keepalives_idle(Duration::from_secs(30));
    }
    if !given("keepalives_interval") {
        config.keepalives_interval(Duration::from_secs(10));
    }
    if !given("keepalives_retries") {
        config.keepalives_retries(3);
    }
    Ok(Target { pg: config, tls })
}

/// Connect, and drive the connection on a task that forwards notifications.
///
/// The returned receiver yields every NOTIFY the session receives, and ends when the connection
/// does: that is how the daemon learns its connection died even while it is idle.
pub async fn connect(target: &Target) -> Result<(Client, mpsc::UnboundedReceiver<Notification>)> {
    let (tls, refusal) = target.tls.connector();
    let (client, mut connection) =
        target
            .pg
            .connect(tls)
            .await
            .map_err(|e| match target.tls.explain(&e, &refusal) {
                Some(line) => Error::ConnectRefused(line),
                None => connect_error(&e),
            })?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        use futures_util::StreamExt;
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    // The daemon may have stopped listening; nothing to do then.
                    let _ = tx.send(n);
                }
                Ok(AsyncMessage::Notice(notice)) => {
                    tracing::debug!(message = notice.message(), "server notice");
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %describe(&e), "database connection lost");
                    break;
                }
            }
        }
    });
    Ok((client, rx))
}

/// Connect for a one-shot command (install, status...), where notifications do not matter.
pub async fn connect_once(url: &str, role: &str) -> Result<Client> {
    let target = parse_url(url, role)?;
    let (client, _notifications) = connect(&target).await?;
    Ok(client)
}

fn connect_error(e: &tokio_postgres::Error) -> Error {
    match e.code() {
        Some(code) if !is_transient(e) => {
            Error::ConnectRefused(format!("{} ({})", describe(e), code.code()))
        }
        _ => Error::Connect(describe(e)),
    }
}

/// One line for a database error: the server's message (and detail), or the I/O cause.
pub fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut text = db.message().to_string();
        if let Some(detail) = db.detail() {
            text.push_str(": ");
            text.push_str(detail);
        }
        return text;
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// Whether an error may go away by itself: connection-level failures and the server restarting,
/// as opposed to authentication, permission or schema errors that need a person.
pub fn is_transient(e: &tokio_postgres::Error) -> bool {
    let Some(code) = e.code() else {
        // No SQLSTATE: an I/O or protocol failure, i.e. the connection went away.
        return true;
    };
    let class = &code.code()[..2];
    // 08: connection exception; 57: operator intervention (admin shutdown, crash shutdown,
    // cannot connect now); 53: insufficient resources; 40: serialization failure/deadlock.
    matches!(class, "08" | "57" | "53" | "40")
        && *code != SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        && *code != SqlState::INVALID_PASSWORD
}

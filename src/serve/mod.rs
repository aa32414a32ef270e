//! `clockwatch serve`: the Audit Log page, its JSON API and its CSV export, read-only.
//!
//! What a workspace admin sees in Clockify's workspace settings, served beside the host
//! application: a date range, authors, actions and categories; Run report; a page of events,
//! newest first, each expanding to its details and its changes side by side; Export as CSV. It
//! reads through the same filters, query and export as `clockwatch report` and `clockwatch
//! export`, so the three always agree.
//!
//! Nobody reads a workspace's log without the host application's say-so: every request carries
//! a link the application signed ([`link`]), which names the one workspace it opens. The server
//! connects as the reporting role, in read-only transactions, and sends HTML that runs no
//! script at all, under a Content-Security-Policy that allows none.

pub mod lang;
pub mod link;
mod page;

use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::time::Duration;

use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};
use tokio_postgres::Client;

use crate::config::Config;
use crate::db::Target;
use crate::error::{Error, Result};
use crate::report::{FilterArgs, ReportRow};
use link::{Grant, Refusal, Secret, Viewing};

/// Events on one page of the report.
pub const PAGE_ROWS: i64 = 50;

/// What every request needs.
pub struct AppState {
    config: Config,
    target: Target,
    secret: Secret,
    /// Connections not in use. Opening one per request would cost more than the report page.
    idle: Mutex<Vec<Client>>,
    /// One permit per connection the server may hold (`serve.max_connections`).
    slots: Arc<Semaphore>,
    /// The Content-Security-Policy header, built once.
    policy: HeaderValue,
}

impl AppState {
    pub fn new(config: Config, target: Target, secret: Secret) -> Result<Arc<AppState>> {
        let ancestors = if config.serve.frame_ancestors.is_empty() {
            "'none'".to_string()
        } else {
            config.serve.frame_ancestors.join(" ")
        };
        // Run report on an expired link is answered with a redirect to the application
        // (`return_url`), which form-action governs too: its origin is allowed as well.
        let form_action = match config.serve.return_url.as_deref().and_then(origin) {
            Some(origin) => format!("'self' {origin}"),
            None => "'self'".to_string(),
        };
        let policy = format!(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action {form_action}; \
             base-uri 'none'; frame-ancestors {ancestors}"
        );
        let policy = HeaderValue::from_str(&policy)
            .map_err(|_| Error::Config("serve.frame_ancestors: not a header value".into()))?;
        let slots = Arc::new(Semaphore::new(config.serve.max_connections));
        Ok(Arc::new(AppState {
            config,
            target,
            secret,
            idle: Mutex::new(Vec::new()),
            slots,
            policy,
        }))
    }

    /// A connection, within `serve.max_connections`: an idle one still open, or a new one. When
    /// all are in use, a request waits briefly, then is turned away (503): the page must never
    /// take the connections the host application needs.
    async fn client(&self) -> Result<Lease> {
        let permit = tokio::time::timeout(SLOT_WAIT, self.slots.clone().acquire_owned())
            .await
            .ok()
            .and_then(|permit| permit.ok())
            .ok_or_else(|| {
                Error::Busy("The audit log is busy just now; try again in a moment.".into())
            })?;
        while let Some(client) = self.idle.lock().await.pop() {
            if !client.is_closed() {
                return Ok(Lease {
                    client,
                    _permit: permit,
                });
            }
        }
        let (client, _notifications) = crate::db::connect(&self.target).await?;
        Ok(Lease {
            client,
            _permit: permit,
        })
    }

    /// Hand a connection back for the next request.
    async fn release(&self, lease: Lease) {
        let mut idle = self.idle.lock().await;
        if idle.len() < self.config.serve.max_connections && !lease.client.is_closed() {
            idle.push(lease.client);
        }
    }

    /// How long any one response may take.
    fn response_deadline(&self) -> Duration {
        Duration::from_secs(self.config.serve.response_secs)
    }
}

/// The origin of an absolute http(s) address: `https://app.example.com` of
/// `https://app.example.com/settings/audit`.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    (!host.is_empty() && !host.contains(['\'', ';', ',', ' ']))
        .then(|| format!("{scheme}://{host}"))
}

/// How long a request waits for a connection before it is turned away.
const SLOT_WAIT: Duration = Duration::from_secs(2);

/// A connection and the permit it holds (given back when the lease is dropped).
struct Lease {
    client: Client,
    _permit: OwnedSemaphorePermit,
}

/// The routes. Every one but the stylesheet and the health check needs a signed link.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/audit", get(page::page))
        .route("/audit.csv", get(page::csv))
        .route("/api/events", get(page::api))
        .route("/audit.css", get(stylesheet))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state)
}

/// Serve until `shutdown` resolves.
pub async fn run(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| Error::Output(format!("the page's server stopped: {e}")))
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../../templates/audit.css"),
    )
        .into_response()
}

/// A request's query: the signed link's fields and the report's filters, as the page's form
/// and links send them (repeated keys for several authors, actions or categories).
#[derive(Debug, Default, Clone)]
struct Query {
    workspace: Option<String>,
    viewer: Option<String>,
    expires: Option<String>,
    signature: Option<String>,
    /// The viewer's time zone and language, signed with the link.
    tz: Option<String>,
    lang: Option<String>,
    from: Option<String>,
    to: Option<String>,
    authors: Vec<String>,
    actions: Vec<String>,
    categories: Vec<String>,
    origins: Vec<String>,
    /// Next page: past this row, `<microseconds since the epoch>.<event id>`.
    after: Option<String>,
    /// Previous page: the rows just before this one.
    before: Option<String>,
    event: Option<String>,
    /// The asked-for event's time, microseconds since the epoch: lets the primary key find it.
    at: Option<String>,
    limit: Option<String>,
}

impl Query {
    fn parse(raw: Option<&str>) -> Query {
        let mut q = Query::default();
        for (key, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            let value = value.trim().to_string();
            let one = |slot: &mut Option<String>| {
                if !value.is_empty() {
                    *slot = Some(value.clone());
                }
            };
            match key.as_ref() {
                "w" => one(&mut q.workspace),
                "v" => one(&mut q.viewer),
                "e" => one(&mut q.expires),
                "s" => one(&mut q.signature),
                "tz" => one(&mut q.tz),
                "lang" => one(&mut q.lang),
                "before" => one(&mut q.before),
                "at" => one(&mut q.at),
                "from" => one(&mut q.from),
                "to" => one(&mut q.to),
                "after" => one(&mut q.after),
                "event" => one(&mut q.event),
                "limit" => one(&mut q.limit),
                // The page's author field holds several, separated by commas ("Ann, 17, System");
                // its CSV link and the API carry them as typed.
                "author" => q.authors.extend(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|a| !a.is_empty())
                        .map(str::to_string),
                ),
                "action" if !value.is_empty() => q.actions.push(value),
                "category" if !value.is_empty() => q.categories.push(value),
                "origin" if !value.is_empty() => q.origins.push(value),
                _ => {}
            }
        }
        q
    }

    /// The link's grant, checked.
    fn grant(&self, secret: &Secret) -> std::result::Result<Grant, Refusal> {
        match (
            &self.workspace,
            &self.viewer,
            &self.expires,
            &self.signature,
        ) {
            (Some(w), Some(v), Some(e), Some(s)) => {
                let viewing = Viewing {
                    tz: self.tz.clone(),
                    lang: self.lang.clone(),
                };
                Grant::verify(secret, w, v, e, s, viewing)
            }
            (None, None, None, None) => Err(Refusal::Missing),
            _ => Err(Refusal::Invalid),
        }
    }

    /// The filters, for the granted workspace only (a workspace in the query is the link's).
    fn filter_args(&self, grant: &Grant, zone: Tz) -> FilterArgs {
        // The page opens on the last 7 days, today included, as Clockify's does.
        let today = Utc::now().with_timezone(&zone).date_naive();
        let week_ago = today - chrono::Duration::days(6);
        FilterArgs {
            workspace: grant.workspace.clone(),
            from: Some(self.from.clone().unwrap_or_else(|| week_ago.to_string())),
            to: Some(self.to.clone().unwrap_or_else(|| today.to_string())),
            authors: self.authors.clone(),
            actions: self.actions.clone(),
            categories: self.categories.clone(),
            origins: self.origins.clone(),
            target: None,
            timezone: Some(zone.name().to_string()),
        }
    }

    fn after(&self) -> std::result::Result<Option<(DateTime<Utc>, i64)>, String> {
        position("after", self.after.as_deref())
    }

    fn before(&self) -> std::result::Result<Option<(DateTime<Utc>, i64)>, String> {
        position("before", self.before.as_deref())
    }

    /// The asked-for event's time, when the link gives it.
    fn at(&self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_micros(self.at.as_deref()?.parse().ok()?)
    }

    fn event(&self) -> std::result::Result<Option<i64>, String> {
        self.event
            .as_deref()
            .map(|e| {
                e.parse()
                    .map_err(|_| format!("event: \"{e}\" is not an event id"))
            })
            .transpose()
    }
}

/// A page position, `<microseconds since the epoch>.<event id>`.
fn position(
    key: &str,
    text: Option<&str>,
) -> std::result::Result<Option<(DateTime<Utc>, i64)>, String> {
    let Some(text) = text else {
        return Ok(None);
    };
    let parsed = text.split_once('.').and_then(|(micros, id)| {
        let at = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
        Some((at, id.parse().ok()?))
    });
    parsed
        .map(Some)
        .ok_or_else(|| format!("{key}: \"{text}\" is not a page position"))
}

/// Where the next page starts: just past this row.
fn cursor(row: &ReportRow) -> String {
    format!("{}.{}", row.occurred_at.timestamp_micros(), row.event_id)
}

/// Headers every answer carries: the policy, no sniffing, no caching of a page that came from
/// a signed link, and no Referer that would hand the link on.
fn guarded(state: &AppState, mut response: Response) -> Response {
    let busy = response.status() == StatusCode::SERVICE_UNAVAILABLE;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, state.policy.clone());
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if busy {
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    response
}

/// A failure as the status it deserves: bad input 400, every connection in use 503, anything
/// else 500 (logged; the page says only that the log could not be read).
fn failure(e: &Error) -> (StatusCode, String) {
    match e {
        Error::Input(message) => (StatusCode::BAD_REQUEST, message.clone()),
        Error::Busy(message) => (StatusCode::SERVICE_UNAVAILABLE, message.clone()),
        other => {
            tracing::error!(error = %other, "request failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The audit log could not be read just now; try again in a moment.".into(),
            )
        }
    }
}

/// `clockwatch serve`'s entry: the state from the config, then serve on `listen` until
/// `shutdown` resolves.
pub async fn serve(
    config: Config,
    database_url: &str,
    listen: &str,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let secret =
        Secret::load(config.serve.secret_file.as_deref())?.for_source(config.source_id.clone());
    let target = crate::db::parse_url(database_url, "serve")?;
    // Check the database and the installation once, so a mistake stops here, not at the
    // first request.
    let (client, _notifications) = crate::db::connect(&target).await?;
    crate::install::require_installed(&client, &config.schema).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| Error::Input(format!("--listen {listen}: {e}")))?;
    drop(client);
    let state = AppState::new(config, target, secret)?;
    tracing::info!(listen, "serving the audit log page");
    run(listener, state, shutdown).await
}

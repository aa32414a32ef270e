//! The page, the JSON API and the CSV download: one signed link, one workspace, the report's
//! own filters and query.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use chrono_tz::Tz;
use serde_json::json;
use tokio_postgres::Client;

use super::link::{Grant, Refusal};
use super::{cursor, failure, guarded, AppState, Query, PAGE_ROWS};
use crate::error::{DbContext, Error, Result};
use crate::export::{self, Format, Pump};
use crate::report::{self, Display, Filter, ReportRow};

/// Widest one-line change summary in the table.
const SUMMARY_CHARS: usize = 120;

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    viewer: String,
    workspace: String,
    /// The workspace's name in the host's table (`[workspaces]`), when it can be read.
    workspace_name: Option<String>,
    zone: String,
    /// The link's fields, carried as hidden inputs by the form.
    grant: Vec<(&'static str, String)>,
    from: String,
    to: String,
    authors: String,
    actions: Vec<Choice>,
    categories: Vec<Choice>,
    /// Author names seen on this page, offered as the author field is typed.
    author_names: Vec<String>,
    error: Option<String>,
    events: Vec<EventView>,
    /// Links, with the link's fields and the filters (already a query string).
    csv_href: String,
    next_href: Option<String>,
    /// One event asked for (a linked change's cause).
    single: bool,
    max_days: i32,
}

#[derive(Template)]
#[template(path = "refused.html")]
struct RefusedPage {
    message: &'static str,
}

/// An option of a multiple choice.
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

/// One event as the page shows it.
struct EventView {
    id: i64,
    time: String,
    author: String,
    action: String,
    target: String,
    summary: String,
    linked: bool,
    caused_by: Option<i64>,
    caused_href: String,
    details: Vec<(&'static str, String)>,
    changes: Vec<(String, String, String)>,
}

/// GET /audit: the page.
pub async fn page(State(state): State<Arc<AppState>>, RawQuery(raw): RawQuery) -> Response {
    let query = Query::parse(raw.as_deref());
    let grant = match query.grant(&state.secret) {
        Ok(grant) => grant,
        Err(refusal) => return guarded(&state, refused(refusal)),
    };
    let result = match state.client().await {
        Ok(mut lease) => {
            let rendered = render(&state, &mut lease.client, &query, &grant);
            match tokio::time::timeout(state.response_deadline(), rendered).await {
                Ok(result) => {
                    state.release(lease).await;
                    result
                }
                // Dropped, not given back: the connection may be in the middle of a query.
                Err(_) => Err(Error::Output("the page took too long".into())),
            }
        }
        Err(e) => Err(e),
    };
    let response = match result {
        Ok((status, html)) => (status, Html(html)).into_response(),
        Err(e) => {
            let (status, message) = failure(&e);
            (status, message).into_response()
        }
    };
    guarded(&state, response)
}

/// GET /api/events: the same filters as the page, as JSON, `next` for the following page.
pub async fn api(State(state): State<Arc<AppState>>, RawQuery(raw): RawQuery) -> Response {
    let query = Query::parse(raw.as_deref());
    let grant = match query.grant(&state.secret) {
        Ok(grant) => grant,
        Err(refusal) => {
            let body = axum::Json(json!({"error": refusal.message()}));
            return guarded(&state, (StatusCode::UNAUTHORIZED, body).into_response());
        }
    };
    let result = match state.client().await {
        Ok(mut lease) => {
            let events = api_events(&state, &mut lease.client, &query, &grant);
            match tokio::time::timeout(state.response_deadline(), events).await {
                Ok(result) => {
                    state.release(lease).await;
                    result
                }
                Err(_) => Err(Error::Output("the events took too long".into())),
            }
        }
        Err(e) => Err(e),
    };
    let response = match result {
        Ok(body) => axum::Json(body).into_response(),
        Err(e) => {
            let (status, message) = failure(&e);
            (status, axum::Json(json!({"error": message}))).into_response()
        }
    };
    guarded(&state, response)
}

/// GET /audit.csv: what `clockwatch export --excel` writes for the same filters, streamed.
pub async fn csv(State(state): State<Arc<AppState>>, RawQuery(raw): RawQuery) -> Response {
    let query = Query::parse(raw.as_deref());
    let grant = match query.grant(&state.secret) {
        Ok(grant) => grant,
        Err(refusal) => return guarded(&state, refused(refusal)),
    };
    let (ready, started) = tokio::sync::oneshot::channel::<Result<String>>();
    let (bytes, body) = tokio::sync::mpsc::channel(4);
    // Set once the whole export is in the channel: the only clean end of the response.
    let complete = Arc::new(AtomicBool::new(false));
    let finished = complete.clone();
    let task_state = state.clone();
    tokio::spawn(async move {
        let state = task_state;
        let mut lease = match state.client().await {
            Ok(lease) => lease,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let mut ready = Some(ready);
        // The download holds a connection and a snapshot of the log: never longer than the
        // response deadline, and never while its reader takes nothing (Pump's slow-reader
        // timeout). Either way the transaction ends when the task does.
        let streamed = stream_csv(
            &state,
            &mut lease.client,
            &query,
            &grant,
            &mut ready,
            &bytes,
        );
        let result = tokio::time::timeout(state.response_deadline(), streamed)
            .await
            .unwrap_or_else(|_| Err(Error::Output("the download took too long".into())));
        // The connection goes back first: nothing below waits on the database.
        state.release(lease).await;
        match (result, ready.take()) {
            (Err(e), Some(ready)) => {
                let _ = ready.send(Err(e));
            }
            (Err(Error::BrokenPipe), None) => {}
            (Err(e), None) => {
                // Halfway through: the response ends in error (below, when the stream finds
                // no end mark), so no one takes a cut file for a whole one.
                tracing::warn!(error = %e, "download ended early");
                let _ = bytes.try_send(Err(std::io::Error::other(e.to_string())));
            }
            (Ok(()), _) => complete.store(true, Ordering::Release),
        }
    });
    let response = match started.await {
        Ok(Ok(filename)) => {
            // A stream that runs out without the end mark fails the response, whatever the
            // reason the export stopped (an error it could not send a full channel, say).
            let stream =
                futures_util::stream::unfold((body, finished), |(mut body, finished)| async move {
                    match body.recv().await {
                        Some(chunk) => Some((chunk, (body, finished))),
                        None if finished.load(Ordering::Acquire) => None,
                        None => {
                            finished.store(true, Ordering::Release);
                            let cut = std::io::Error::other("the download ended early");
                            Some((Err(cut), (body, finished)))
                        }
                    }
                });
            (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{filename}\""),
                    ),
                ],
                Body::from_stream(stream),
            )
                .into_response()
        }
        Ok(Err(e)) => failure(&e).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    guarded(&state, response)
}

async fn stream_csv(
    state: &AppState,
    client: &mut Client,
    query: &Query,
    grant: &Grant,
    ready: &mut Option<tokio::sync::oneshot::Sender<Result<String>>>,
    bytes: &tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>,
) -> Result<()> {
    let config = &state.config;
    let zone = zone(config);
    let mut tx = report::snapshot(client, &config.schema).await?;
    let args = query.filter_args(grant, zone);
    let filter = report::build_filter(
        &mut tx,
        config,
        &args,
        config.max_export_days,
        "max_export_days",
    )
    .await?;
    // Named after the workspace: its id, and its name when [workspaces] gives one.
    let name = crate::workspace::workspace_name(&tx, config, &grant.workspace).await?;
    let named = name
        .as_deref()
        .map(name_slug)
        .filter(|n| !n.is_empty())
        .map(|n| format!("-{n}"));
    let filename = format!(
        "audit-log-{}{}-{}-{}.csv",
        safe_name(&grant.workspace),
        named.unwrap_or_default(),
        args.from.as_deref().unwrap_or_default(),
        args.to.as_deref().unwrap_or_default()
    );
    if let Some(ready) = ready.take() {
        let _ = ready.send(Ok(filename));
    }
    let pump = Pump::new(
        bytes.clone(),
        Duration::from_secs(state.config.serve.slow_reader_secs),
    );
    let mut out = pump.writer();
    // A file downloaded from a page is opened in a spreadsheet: written as `export --excel`
    // writes it, with cells that would read as formulas (`=HYPERLINK(...)`) neutralised.
    export::export_pumped(&tx, &filter, Format::Csv, true, &mut out, Some(&pump)).await?;
    tx.commit().await.context("commit")?;
    Ok(())
}

fn refused(refusal: Refusal) -> Response {
    let page = RefusedPage {
        message: refusal.message(),
    };
    let html = page
        .render()
        .unwrap_or_else(|_| refusal.message().to_string());
    (StatusCode::UNAUTHORIZED, Html(html)).into_response()
}

fn zone(config: &crate::config::Config) -> Tz {
    config.timezone.parse().unwrap_or_default()
}

/// A workspace id fit for a file name.
fn safe_name(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect()
}

/// A workspace's name fit for a file name: ASCII letters, digits and `-`, each run of other
/// characters one `_`, none at either end ("Acme Inc." is `Acme_Inc`), at most 40 characters.
fn name_slug(text: &str) -> String {
    let mut slug = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '-' {
            slug.push(c);
        } else if !slug.ends_with('_') {
            slug.push('_');
        }
    }
    slug.trim_matches('_').chars().take(40).collect()
}

/// The filters as a query string (without the link's fields).
fn filter_query(args: &report::FilterArgs) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (key, value) in [("from", &args.from), ("to", &args.to)] {
        if let Some(v) = value {
            q.append_pair(key, v);
        }
    }
    for author in &args.authors {
        q.append_pair("author", author);
    }
    for action in &args.actions {
        q.append_pair("action", action);
    }
    for category in &args.categories {
        q.append_pair("category", category);
    }
    q.finish()
}

/// The filter for a request: the page's rules (at most `max_report_days`), its position, and
/// one event when asked for (a linked change's cause, whatever its date).
async fn request_filter(
    state: &AppState,
    tx: &mut tokio_postgres::Transaction<'_>,
    query: &Query,
    args: &report::FilterArgs,
) -> Result<Filter> {
    let config = &state.config;
    // Authors are resolved on their own: an author the log does not know matches nothing here
    // rather than being refused. The log's names span every workspace, and a page is one
    // workspace's: a refusal would tell a link holder which names exist in the others.
    let others = report::FilterArgs {
        authors: Vec::new(),
        ..args.clone()
    };
    let mut filter = report::build_filter(
        tx,
        config,
        &others,
        config.max_report_days,
        "max_report_days",
    )
    .await?;
    if !args.authors.is_empty() {
        let mut ids = Vec::new();
        for author in &args.authors {
            // A refusal is an error in the transaction: each author is asked in a savepoint.
            let one = tx.savepoint("author").await.context("savepoint")?;
            match report::author_ids(&one, std::slice::from_ref(author)).await {
                Ok(found) => {
                    ids.extend(found);
                    one.commit().await.context("release savepoint")?;
                }
                Err(Error::Input(_)) => one.rollback().await.context("roll back savepoint")?,
                Err(e) => return Err(e),
            }
        }
        filter.authors = Some(ids);
    }
    filter.after = query.after().map_err(Error::Input)?;
    filter.event = query.event().map_err(Error::Input)?;
    if filter.event.is_some() {
        (filter.from, filter.to) = (None, None);
    }
    Ok(filter)
}

async fn render(
    state: &AppState,
    client: &mut Client,
    query: &Query,
    grant: &Grant,
) -> Result<(StatusCode, String)> {
    let config = &state.config;
    let zone = zone(config);
    let args = query.filter_args(grant, zone);
    let mut tx = report::snapshot(client, &config.schema).await?;
    let link = grant.query();
    let filters = filter_query(&args);
    let (choices_actions, choices_categories) = choices(&tx, &args).await?;
    let workspace_name = crate::workspace::workspace_name(&tx, config, &grant.workspace).await?;
    let mut page = AuditPage {
        viewer: grant.viewer.clone(),
        workspace: grant.workspace.clone(),
        workspace_name,
        zone: config.timezone.clone(),
        grant: vec![
            ("w", grant.workspace.clone()),
            ("v", grant.viewer.clone()),
            ("e", grant.expires.to_string()),
            ("s", grant.signature.clone()),
        ],
        from: args.from.clone().unwrap_or_default(),
        to: args.to.clone().unwrap_or_default(),
        authors: args.authors.join(", "),
        actions: choices_actions,
        categories: choices_categories,
        author_names: Vec::new(),
        error: None,
        events: Vec::new(),
        csv_href: format!("/audit.csv?{link}&{filters}"),
        next_href: None,
        single: query.event.is_some(),
        max_days: config.max_report_days,
    };
    let filter = match request_filter(state, &mut tx, query, &args).await {
        Ok(filter) => filter,
        Err(Error::Input(message)) => {
            page.error = Some(message);
            let html = page.render().map_err(template_error)?;
            return Ok((StatusCode::BAD_REQUEST, html));
        }
        Err(e) => return Err(e),
    };
    let mut rows = report::fetch(&tx, &filter, PAGE_ROWS + 1).await?;
    let more = rows.len() as i64 > PAGE_ROWS;
    rows.truncate(PAGE_ROWS as usize);
    let display = Display::new(config);
    tx.commit().await.context("commit")?;
    if more {
        if let Some(last) = rows.last() {
            page.next_href = Some(format!("/audit?{link}&{filters}&after={}", cursor(last)));
        }
    }
    let mut names: Vec<String> = rows.iter().map(|r| r.author.clone()).collect();
    names.sort();
    names.dedup();
    page.author_names = names;
    page.events = rows
        .iter()
        .map(|r| event_view(r, &display, &link))
        .collect();
    let html = page.render().map_err(template_error)?;
    Ok((StatusCode::OK, html))
}

fn event_view(r: &ReportRow, display: &Display, link: &str) -> EventView {
    let changes = r.change_table(display);
    let summary = changes
        .iter()
        .map(|(field, before, after)| format!("{field}: {before} → {after}"))
        .collect::<Vec<_>>()
        .join("; ");
    EventView {
        id: r.event_id,
        time: r.local_time.clone(),
        author: r.author.clone(),
        action: r.action_with_origin(),
        target: r.target_label(),
        summary: report::shorten(&summary, SUMMARY_CHARS),
        linked: r.caused_by.is_some(),
        caused_by: r.caused_by,
        caused_href: r
            .caused_by
            .map(|c| format!("/audit?{link}&event={c}#e{c}"))
            .unwrap_or_default(),
        details: r.detail_table(display),
        changes,
    }
}

/// The action and category choices, with those asked for selected.
async fn choices(
    tx: &tokio_postgres::Transaction<'_>,
    args: &report::FilterArgs,
) -> Result<(Vec<Choice>, Vec<Choice>)> {
    let picked = |asked: &[String], value: &str, label: &str| {
        asked
            .iter()
            .any(|a| a.eq_ignore_ascii_case(value) || a.eq_ignore_ascii_case(label))
    };
    let actions = tx
        .query("select code, label from action order by label", &[])
        .await
        .context("read the actions")?
        .iter()
        .map(|r| {
            let (code, label): (String, String) = (r.get(0), r.get(1));
            Choice {
                selected: picked(&args.actions, &code, &label),
                value: code,
                label,
            }
        })
        .collect();
    let categories = crate::config::Category::ALL
        .iter()
        .map(|c| Choice {
            selected: picked(&args.categories, c.as_str(), c.as_str()),
            value: c.as_str().to_string(),
            label: c.as_str().replace('_', " "),
        })
        .collect();
    Ok((actions, categories))
}

async fn api_events(
    state: &AppState,
    client: &mut Client,
    query: &Query,
    grant: &Grant,
) -> Result<serde_json::Value> {
    let config = &state.config;
    let zone = zone(config);
    let limit = match &query.limit {
        None => PAGE_ROWS,
        Some(text) => match text.parse::<i64>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                return Err(Error::Input(format!(
                    "limit: \"{text}\" is not a number from 1 to 1000"
                )))
            }
        },
    };
    let mut tx = report::snapshot(client, &config.schema).await?;
    let args = query.filter_args(grant, zone);
    let filter = request_filter(state, &mut tx, query, &args).await?;
    let mut rows = report::fetch(&tx, &filter, limit + 1).await?;
    let workspace_name = crate::workspace::workspace_name(&tx, config, &grant.workspace).await?;
    tx.commit().await.context("commit")?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next = if more { rows.last().map(cursor) } else { None };
    Ok(json!({
        "workspace_id": grant.workspace,
        "workspace_name": workspace_name,
        "time_zone": config.timezone,
        "from": filter.from,
        "to": filter.to,
        "events": rows.iter().map(|r| export::json_record(r, zone)).collect::<Vec<_>>(),
        "next": next,
    }))
}

fn template_error(e: askama::Error) -> Error {
    Error::Output(format!("render the page: {e}"))
}

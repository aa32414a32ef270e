//! The page, the JSON API and the CSV download: one signed link, one workspace, the report's
//! own filters and query.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;
use chrono_tz::Tz;
use serde_json::json;
use tokio_postgres::Client;

use super::lang::Messages;
use super::link::{Grant, Refusal};
use super::{cursor, failure, guarded, AppState, Query, PAGE_ROWS};
use crate::error::{DbContext, Error, Result};
use crate::export::{self, Format, Pump};
use crate::report::{self, Display, FieldName, Filter, ReportRow, Words};

/// Widest one-line change summary in the table.
const SUMMARY_CHARS: usize = 120;

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    /// The page's language.
    t: &'static Messages,
    /// "Workspace 1" or the workspace's name, as the heading and title show it.
    workspace_label: String,
    /// The workspace's id, beside its name.
    workspace_id: Option<String>,
    /// The scope line: who views, in which zone, until when.
    viewing: String,
    times_in: String,
    valid_until: String,
    /// The link's fields, carried as hidden inputs by the form.
    grant: Vec<(&'static str, String)>,
    from: String,
    to: String,
    from_error: Option<String>,
    to_error: Option<String>,
    range_note: String,
    authors: String,
    author_error: Option<String>,
    /// Who the authors typed matched, when that is not plain from what was typed.
    author_note: Option<String>,
    /// Every author the log knows for the workspace, and System: the picker's list.
    author_names: Vec<String>,
    groups: Vec<Group>,
    actions_summary: String,
    action_error: Option<String>,
    origins: Vec<Choice>,
    /// A refusal that belongs to no one field.
    error: Option<String>,
    events: Vec<EventView>,
    /// "Events 51-100 of 261".
    orientation: Option<String>,
    /// Links, with the link's fields and the filters (already a query string).
    csv_href: String,
    first_href: Option<String>,
    newer_href: Option<String>,
    older_href: Option<String>,
    /// One event asked for (a linked change's cause): "Showing event N", and the way back.
    single: Option<(String, String)>,
}

#[derive(Template)]
#[template(path = "refused.html")]
struct RefusedPage {
    t: &'static Messages,
    message: String,
}

/// An option of a multiple choice.
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

/// A category and its actions, as the action picker groups them.
struct Group {
    category: Choice,
    actions: Vec<Choice>,
}

/// One event as the page shows it.
struct EventView {
    id: i64,
    time: String,
    author: String,
    action: String,
    target_name: Option<String>,
    target_id: Option<String>,
    summary: String,
    /// A linked change: its cause summarised, and the link to it.
    cause: Option<(String, String)>,
    details: Vec<(String, String)>,
    changes: Vec<(String, String, String)>,
    /// The linked changes it caused: (link, action, target).
    effects: Vec<(String, String, String)>,
    effects_heading: String,
}

/// GET /audit: the page.
pub async fn page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = Query::parse(raw.as_deref());
    let grant = match query.grant(&state.secret) {
        Ok(grant) => grant,
        Err(refusal) => {
            let t = messages(None, &query, &headers);
            return guarded(&state, refused(&state, refusal, t));
        }
    };
    let t = messages(Some(&grant), &query, &headers);
    guarded(&state, page_response(&state, &query, &grant, t).await)
}

/// The page for a checked link, or why it could not be read.
async fn page_response(
    state: &AppState,
    query: &Query,
    grant: &Grant,
    t: &'static Messages,
) -> Response {
    let result = match state.client().await {
        Ok(mut lease) => {
            let rendered = render(state, &mut lease.client, query, grant, t);
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
    match result {
        Ok((status, html)) => (status, Html(html)).into_response(),
        Err(e) => {
            let (status, message) = failure(&e);
            (status, message).into_response()
        }
    }
}

/// The language to answer in: the link's signed `lang`, else the browser's. Before a link is
/// checked (a refusal) its `lang` is only a hint, which is all a refusal's words need.
fn messages(grant: Option<&Grant>, query: &Query, headers: &HeaderMap) -> &'static Messages {
    let hint = match grant {
        Some(grant) => grant.viewing.lang.as_deref(),
        None => query.lang.as_deref(),
    };
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    Messages::choose(hint, accept)
}

/// The zone the page shows times in: the link's, when it names one chrono-tz and so
/// PostgreSQL know, else the config's.
fn page_zone(config: &crate::config::Config, grant: &Grant) -> Tz {
    grant
        .viewing
        .tz
        .as_deref()
        .and_then(|tz| tz.parse().ok())
        .unwrap_or_else(|| zone(config))
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

/// GET /audit.csv: the page's events as a spreadsheet reads them ([`export::Sheet`]), streamed.
/// Refused as the page is (more than `max_report_days`, a reversed range): the page then
/// answers, with the reason beside its field.
pub async fn csv(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = Query::parse(raw.as_deref());
    let grant = match query.grant(&state.secret) {
        Ok(grant) => grant,
        Err(refusal) => {
            let t = messages(None, &query, &headers);
            return guarded(&state, refused(&state, refusal, t));
        }
    };
    let t = messages(Some(&grant), &query, &headers);
    let zone = page_zone(&state.config, &grant);
    if range_errors(&query, zone, state.config.max_report_days, t).is_some() {
        return guarded(&state, page_response(&state, &query, &grant, t).await);
    }
    let (ready, started) = tokio::sync::oneshot::channel::<Result<String>>();
    let (bytes, body) = tokio::sync::mpsc::channel(4);
    // Set once the whole export is in the channel: the only clean end of the response.
    let complete = Arc::new(AtomicBool::new(false));
    let finished = complete.clone();
    let task_state = state.clone();
    let (task_query, task_grant) = (query.clone(), grant.clone());
    tokio::spawn(async move {
        let (query, grant) = (task_query, task_grant);
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
            t,
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
        // A filter the database refused (an unknown action): the page says which.
        Ok(Err(Error::Input(_))) => page_response(&state, &query, &grant, t).await,
        Ok(Err(e)) => failure(&e).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    guarded(&state, response)
}

#[allow(clippy::too_many_arguments)]
async fn stream_csv(
    state: &AppState,
    client: &mut Client,
    query: &Query,
    grant: &Grant,
    t: &'static Messages,
    ready: &mut Option<tokio::sync::oneshot::Sender<Result<String>>>,
    bytes: &tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>,
) -> Result<()> {
    let config = &state.config;
    let zone = page_zone(config, grant);
    let mut tx = report::snapshot(client, &config.schema).await?;
    let args = page_args(query, grant, zone);
    let (filter, _) = request_filter(state, &mut tx, query, &args, false, t).await?;
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
        safe_name(args.from.as_deref().unwrap_or_default()),
        safe_name(args.to.as_deref().unwrap_or_default())
    );
    if let Some(ready) = ready.take() {
        let _ = ready.send(Ok(filename));
    }
    let pump = Pump::new(
        bytes.clone(),
        Duration::from_secs(state.config.serve.slow_reader_secs),
    );
    let mut out = pump.writer();
    // A file downloaded from a page is opened in a spreadsheet: the Excel form (a byte order
    // mark, formula cells as text) with the page's words, zone and values.
    let sheet = export::Sheet {
        header: csv_header(t, zone.name()),
        words: words(t),
        display: Display::new(config),
        label: Box::new(move |name| field_label(t, name)),
    };
    export::export_pumped(
        &tx,
        &filter,
        Format::Csv,
        true,
        &mut out,
        Some(&pump),
        Some(&sheet),
    )
    .await?;
    tx.commit().await.context("commit")?;
    Ok(())
}

/// The CSV's header in the page's language, in [`export::csv_header`]'s order.
fn csv_header(t: &Messages, zone: &str) -> Vec<String> {
    let mut header = vec![t.fill("csv_time", &[("zone", zone)])];
    for key in [
        "csv_workspace",
        "csv_author",
        "csv_author_id",
        "csv_action",
        "csv_action_code",
        "csv_category",
        "csv_origin",
        "csv_target",
        "csv_target_id",
        "csv_caused_by",
    ] {
        header.push(t.get(key));
    }
    header.extend(
        report::DETAIL_FIELDS
            .iter()
            .map(|(field, _)| t.get(&format!("d_{field}"))),
    );
    header.push(t.get("previous_value"));
    header.push(t.get("new_value"));
    header
}

/// The words values are shown with, in the page's language.
fn words(t: &Messages) -> Words {
    Words {
        empty: t.get("empty"),
        yes: t.get("yes"),
        no: t.get("no"),
        active: t.get("active"),
        deleted: t.get("deleted"),
    }
}

/// A changed field's label in the page's language.
fn field_label(t: &Messages, name: &FieldName) -> String {
    match name {
        FieldName::Status => t.get("status"),
        FieldName::Detail(_) => name
            .detail()
            .map(|field| t.get(&format!("d_{field}")))
            .unwrap_or_default(),
        FieldName::Column(column) => FieldName::column_words(column),
    }
}

/// A refused link: 401 with the reason, or, for an expired one when `[serve] return_url` is
/// set, back to the application (which mints a new link), from the page and Export alike.
fn refused(state: &AppState, refusal: Refusal, t: &Messages) -> Response {
    if let (Refusal::Expired, Some(url)) = (refusal, &state.config.serve.return_url) {
        return (StatusCode::SEE_OTHER, [(header::LOCATION, url.clone())]).into_response();
    }
    let key = match refusal {
        Refusal::Missing => "refused_missing",
        Refusal::Invalid => "refused_invalid",
        Refusal::Expired => "refused_expired",
    };
    let page = RefusedPage {
        t: Messages::for_tag(t.code).unwrap_or_else(Messages::english),
        message: t.get(key),
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
    // The author field's text as typed, so the form shows it again.
    if !args.authors.is_empty() {
        q.append_pair("author", &args.authors.join(", "));
    }
    for action in &args.actions {
        q.append_pair("action", action);
    }
    for category in &args.categories {
        q.append_pair("category", category);
    }
    for origin in &args.origins {
        q.append_pair("origin", origin);
    }
    q.finish()
}

/// The filters of a page request: the query's, with an action named as the rows show it,
/// with its origin ("Created time entry (Timer)"), read as the action and that origin.
fn page_args(query: &Query, grant: &Grant, zone: Tz) -> report::FilterArgs {
    let mut args = query.filter_args(grant, zone);
    let mut actions = Vec::new();
    for action in &args.actions {
        match action.strip_suffix(')').and_then(|a| a.rsplit_once(" (")) {
            Some((label, origin)) if !origin.trim().is_empty() => {
                actions.push(label.trim().to_string());
                if !args.origins.iter().any(|o| o.eq_ignore_ascii_case(origin)) {
                    args.origins.push(origin.trim().to_string());
                }
            }
            _ => actions.push(action.clone()),
        }
    }
    actions.dedup();
    args.actions = actions;
    args
}

/// The range's own refusals, in the page's words and by field: a day that is not one, `to`
/// before `from`, more days than `max_report_days`. None when the range is fine (times with
/// offsets, which the API takes, are left to the database to read).
fn range_errors(
    query: &Query,
    zone: Tz,
    max_days: i32,
    t: &Messages,
) -> Option<(Option<String>, Option<String>)> {
    let day = |text: &Option<String>| -> std::result::Result<Option<chrono::NaiveDate>, ()> {
        match text.as_deref() {
            None => Ok(None),
            Some(text) => match chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
                Ok(day) => Ok(Some(day)),
                Err(_) if chrono::DateTime::parse_from_rfc3339(text).is_ok() => Ok(None),
                Err(_) => Err(()),
            },
        }
    };
    let today = Utc::now().with_timezone(&zone).date_naive();
    let (from, to) = (day(&query.from), day(&query.to));
    let bad_day = || Some(t.get("err_date"));
    let errors = match (from, to) {
        (Err(()), Err(())) => (bad_day(), bad_day()),
        (Err(()), _) => (bad_day(), None),
        (_, Err(())) => (None, bad_day()),
        (Ok(from), Ok(to)) => {
            let to = to.unwrap_or(today);
            let from = from.unwrap_or(to - chrono::Duration::days(6));
            let days = (to - from).num_days() + 1;
            if days < 1 {
                (None, Some(t.get("err_order")))
            } else if days > i64::from(max_days) {
                let (days, max) = (days.to_string(), max_days.to_string());
                let text = t.fill("err_too_long", &[("days", &days), ("max", &max)]);
                (None, Some(text))
            } else {
                return None;
            }
        }
    };
    Some(errors)
}

/// Accents and case set aside, as the author field matches names: "Zoe" finds "Zoë".
fn folded(text: &str) -> String {
    use unicode_normalization::char::is_combining_mark;
    use unicode_normalization::UnicodeNormalization;
    text.nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// What the page offers beside its filters: the workspace's authors, and what the author field
/// matched.
#[derive(Default)]
struct Picker {
    /// (id, name) of every author the log knows for the workspace; System as `system`.
    authors: Vec<(String, String)>,
    /// Names typed that matched no author of the workspace.
    unmatched: Vec<String>,
    /// Names of the authors a part of a name matched.
    matched: Vec<String>,
}

/// The filter for a request: the page's rules (at most `max_report_days`), its position, and
/// one event when asked for (a linked change's cause). With `picker` (the page), also the
/// workspace's authors.
async fn request_filter(
    state: &AppState,
    tx: &mut tokio_postgres::Transaction<'_>,
    query: &Query,
    args: &report::FilterArgs,
    picker: bool,
    t: &Messages,
) -> Result<(Filter, Picker)> {
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
    let mut found = Picker::default();
    if picker || !args.authors.is_empty() {
        let rows = tx
            .query(
                include_str!("../../sql/queries/page_authors.sql"),
                &[&filter.workspace],
            )
            .await
            .context("read the workspace's authors")?;
        for row in rows {
            let (id, name): (String, Option<String>) = (row.get(0), row.get(1));
            let name = match name {
                Some(name) => name,
                None => t.get("system"),
            };
            found.authors.push((id, name));
        }
        found.authors.sort_by_key(|(_, name)| folded(name));
    }
    if !args.authors.is_empty() {
        let mut ids = Vec::new();
        let system = folded(&t.get("system"));
        for author in &args.authors {
            let wanted = folded(author);
            if wanted == report::SYSTEM_AUTHOR || wanted == system {
                ids.push(report::SYSTEM_AUTHOR.to_string());
                continue;
            }
            let by_id: Vec<&(String, String)> = found
                .authors
                .iter()
                .filter(|(id, _)| id == author || Some(id.as_str()) == author.strip_prefix('#'))
                .collect();
            let by_name: Vec<&(String, String)> = if by_id.is_empty() {
                found
                    .authors
                    .iter()
                    .filter(|(_, name)| folded(name).contains(&wanted))
                    .collect()
            } else {
                by_id
            };
            if !by_name.is_empty() {
                for (id, name) in by_name {
                    ids.push(id.clone());
                    if !name.eq_ignore_ascii_case(author) {
                        found.matched.push(name.clone());
                    }
                }
                continue;
            }
            // Nobody of the workspace: an exact name or id the log knows still filters (and
            // matches none of this workspace's events), and anything else matches nothing.
            found.unmatched.push(author.clone());
            let one = tx.savepoint("author").await.context("savepoint")?;
            match report::author_ids(&one, std::slice::from_ref(author)).await {
                Ok(more) => {
                    ids.extend(more);
                    one.commit().await.context("release savepoint")?;
                }
                Err(Error::Input(_)) => one.rollback().await.context("roll back savepoint")?,
                Err(e) => return Err(e),
            }
        }
        ids.sort();
        ids.dedup();
        filter.authors = Some(ids);
    }
    filter.after = query.after().map_err(Error::Input)?;
    filter.before = query.before().map_err(Error::Input)?;
    filter.event = query.event().map_err(Error::Input)?;
    if filter.event.is_some() {
        // The event's time, when the link gives it, lets the primary key find it.
        (filter.from, filter.to) = match query.at() {
            Some(at) => (Some(at), Some(at + chrono::Duration::microseconds(1))),
            None => (None, None),
        };
    }
    Ok((filter, found))
}

/// The origins the log gives changes: those Clockwatch names itself, and every label the
/// config's sources map their origin columns to, in order.
fn origins(config: &crate::config::Config) -> Vec<String> {
    let mut all: Vec<String> = crate::normalize::KNOWN_ORIGINS
        .iter()
        .map(|(_, label)| label.to_string())
        .collect();
    for source in &config.sources {
        all.extend(source.origins.values().cloned());
    }
    all.sort_by_key(|o| o.to_lowercase());
    all.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    all
}

/// The most events a page counts: past it, "of more than 10000".
const COUNT_CAP: i64 = 10_000;

/// The events a filter matches, and how many of them come before `first` in the report's order,
/// each counted up to [`COUNT_CAP`] (a little past it when shared events add theirs).
async fn count(
    tx: &tokio_postgres::Transaction<'_>,
    filter: &Filter,
    first: Option<&ReportRow>,
) -> Result<(i64, i64)> {
    let row = tx
        .query_one(
            include_str!("../../sql/queries/page_count.sql"),
            &[
                &filter.workspace,
                &filter.from,
                &filter.to,
                &filter.authors,
                &filter.actions,
                &filter.categories,
                &filter.origins,
                &filter.event,
                &first.map(|r| r.occurred_at),
                &first.map(|r| r.event_id),
                &(COUNT_CAP + 1),
            ],
        )
        .await
        .context("count the report")?;
    Ok((row.get(0), row.get(1)))
}

/// One line about an event another links to: "Deleted project Ares, by Ann Admin".
struct Brief {
    id: i64,
    occurred_at: chrono::DateTime<Utc>,
    action: String,
    target: String,
    author: String,
    caused_by: Option<i64>,
}

impl Brief {
    fn from_row(row: &tokio_postgres::Row, with_author: bool, t: &Messages) -> Brief {
        let action: String = row.get("action");
        let origin: Option<String> = row.get("origin");
        let code: String = row.get("action_code");
        let target: Option<String> = row.get("target");
        let target_id: Option<String> = row.get("target_id");
        Brief {
            id: row.get("event_id"),
            occurred_at: row.get("occurred_at"),
            action: t.action(&code, &action, origin.as_deref()),
            // A cause reads as a sentence ("Deleted project Ares"): its name, or its id when
            // it has none.
            target: match (target, target_id, with_author) {
                (Some(name), Some(id), false) => format!("{name} (#{id})"),
                (Some(name), _, _) => name,
                (None, Some(id), _) => format!("#{id}"),
                (None, None, _) => String::new(),
            },
            author: if with_author {
                row.get("author")
            } else {
                String::new()
            },
            caused_by: if with_author {
                None
            } else {
                row.get("caused_by")
            },
        }
    }
}

#[allow(clippy::too_many_lines)]
async fn render(
    state: &AppState,
    client: &mut Client,
    query: &Query,
    grant: &Grant,
    t: &'static Messages,
) -> Result<(StatusCode, String)> {
    let config = &state.config;
    let zone = page_zone(config, grant);
    let args = page_args(query, grant, zone);
    let mut tx = report::snapshot(client, &config.schema).await?;
    let link = grant.query();
    let filters = filter_query(&args);
    let workspace_name = crate::workspace::workspace_name(&tx, config, &grant.workspace).await?;
    let expires = chrono::DateTime::from_timestamp(grant.expires, 0)
        .unwrap_or_default()
        .with_timezone(&zone);
    let today = Utc::now().with_timezone(&zone).date_naive();
    let until = if expires.date_naive() == today {
        expires.format("%H:%M").to_string()
    } else {
        expires.format("%Y-%m-%d %H:%M").to_string()
    };
    let days = config.max_report_days.to_string();
    let mut page = AuditPage {
        t,
        workspace_label: workspace_name
            .clone()
            .unwrap_or_else(|| t.fill("workspace_n", &[("id", &grant.workspace)])),
        workspace_id: workspace_name.as_ref().map(|_| grant.workspace.clone()),
        viewing: t.fill("viewing_as", &[("viewer", &grant.viewer)]),
        times_in: t.fill("times_in", &[("zone", zone.name())]),
        valid_until: t.fill("valid_until", &[("time", &until)]),
        grant: grant.fields(),
        from: args.from.clone().unwrap_or_default(),
        to: args.to.clone().unwrap_or_default(),
        from_error: None,
        to_error: None,
        range_note: t.fill("at_most_days", &[("days", &days)]),
        authors: args.authors.join(", "),
        author_error: None,
        author_note: None,
        author_names: Vec::new(),
        groups: Vec::new(),
        actions_summary: String::new(),
        action_error: None,
        origins: Vec::new(),
        error: None,
        events: Vec::new(),
        orientation: None,
        csv_href: format!("/audit.csv?{link}&{filters}"),
        first_href: None,
        newer_href: None,
        older_href: None,
        single: None,
    };
    choices(&tx, &args, t, &mut page).await?;
    if let Some((from_error, to_error)) = range_errors(query, zone, config.max_report_days, t) {
        (page.from_error, page.to_error) = (from_error, to_error);
        let html = page.render().map_err(template_error)?;
        return Ok((StatusCode::BAD_REQUEST, html));
    }
    let (filter, picker) = match request_filter(state, &mut tx, query, &args, true, t).await {
        Ok(found) => found,
        Err(Error::Input(message)) => {
            // What the database refused: an action or category it does not know, a page
            // position that is not one; each said beside its field where it has one.
            if message.starts_with("unknown action") {
                let asked = message.split('"').nth(1).unwrap_or_default();
                page.action_error = Some(t.fill("err_action", &[("action", asked)]));
            } else if message.starts_with("unknown workspace") {
                page.error = Some(t.get("err_workspace"));
            } else if message.starts_with("after:") || message.starts_with("before:") {
                page.error = Some(t.get("err_position"));
            } else {
                page.error = Some(message);
            }
            let html = page.render().map_err(template_error)?;
            return Ok((StatusCode::BAD_REQUEST, html));
        }
        Err(e) => return Err(e),
    };
    let mut names: Vec<String> = picker.authors.iter().map(|(_, n)| n.clone()).collect();
    if !picker
        .authors
        .iter()
        .any(|(id, _)| id == report::SYSTEM_AUTHOR)
    {
        names.insert(0, t.get("system"));
    }
    names.dedup();
    page.author_names = names;
    for origin in origins(config) {
        if !page
            .origins
            .iter()
            .any(|c| c.value.eq_ignore_ascii_case(&origin))
        {
            page.origins.push(Choice {
                value: origin.clone(),
                label: origin.clone(),
                selected: false,
            });
        }
    }
    for choice in &mut page.origins {
        choice.selected = args
            .origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(&choice.value));
    }
    if !picker.unmatched.is_empty() {
        let text = picker.unmatched.join(", ");
        page.author_error = Some(t.fill("err_author", &[("author", &text)]));
    } else if !picker.matched.is_empty() {
        let mut matched = picker.matched.clone();
        matched.sort();
        matched.dedup();
        page.author_note = Some(t.fill("authors_matched", &[("names", &matched.join(", "))]));
    }
    let rows = report::fetch(&tx, &filter, PAGE_ROWS).await?;
    let (total, newer) = count(&tx, &filter, rows.first()).await?;
    // The causes of the page's linked changes, and the linked changes its events caused.
    let linked: Vec<&ReportRow> = rows.iter().filter(|r| r.caused_by.is_some()).collect();
    let causes = tx
        .query(
            include_str!("../../sql/queries/page_causes.sql"),
            &[
                &filter.workspace,
                &linked.iter().map(|r| r.occurred_at).collect::<Vec<_>>(),
                &linked
                    .iter()
                    .filter_map(|r| r.caused_by)
                    .collect::<Vec<_>>(),
            ],
        )
        .await
        .context("read the linked changes' causes")?;
    let causes: Vec<Brief> = causes.iter().map(|r| Brief::from_row(r, true, t)).collect();
    let effects = tx
        .query(
            include_str!("../../sql/queries/page_effects.sql"),
            &[
                &filter.workspace,
                &rows.iter().map(|r| r.occurred_at).collect::<Vec<_>>(),
                &rows.iter().map(|r| r.event_id).collect::<Vec<_>>(),
            ],
        )
        .await
        .context("read the linked changes")?;
    let effects: Vec<Brief> = effects
        .iter()
        .map(|r| Brief::from_row(r, false, t))
        .collect();
    let display = Display::new(config);
    tx.commit().await.context("commit")?;

    let back = format!("/audit?{link}&{filters}");
    let event_href = |id: i64, at: chrono::DateTime<Utc>| {
        format!("{back}&event={id}&at={}#e{id}", at.timestamp_micros())
    };
    if let Some(id) = filter.event {
        page.single = Some((
            t.fill("showing_event", &[("id", &id.to_string())]),
            back.clone(),
        ));
    } else if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
        let (first_n, last_n) = (newer + 1, newer + rows.len() as i64);
        let numbers = [
            ("first", first_n.to_string()),
            ("last", last_n.to_string()),
            ("total", total.to_string()),
            ("cap", COUNT_CAP.to_string()),
        ];
        let numbers: Vec<(&str, &str)> = numbers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        // Counted in full, counted up to the cap, or a page past the cap.
        let key = if total <= COUNT_CAP {
            "events_range"
        } else if newer < COUNT_CAP {
            "events_range_many"
        } else {
            "events_past"
        };
        page.orientation = Some(t.fill(key, &numbers));
        if newer > 0 {
            page.first_href = Some(back.clone());
            page.newer_href = Some(format!("{back}&before={}", cursor(first)));
        }
        if last_n < total || (total > COUNT_CAP && rows.len() as i64 == PAGE_ROWS) {
            page.older_href = Some(format!("{back}&after={}", cursor(last)));
        }
    }
    let words = words(t);
    page.events = rows
        .iter()
        .map(|r| {
            let mut view = event_view(r, &display, t, &words);
            if let Some(cause) = r.caused_by {
                let href = causes.iter().find(|c| c.id == cause).map_or_else(
                    || format!("{back}&event={cause}#e{cause}"),
                    |c| event_href(c.id, c.occurred_at),
                );
                let text = match causes.iter().find(|c| c.id == cause) {
                    Some(c) => t.fill(
                        "cause_summary",
                        &[
                            ("action", &c.action),
                            ("target", &c.target),
                            ("author", &c.author),
                        ],
                    ),
                    None => t.fill("cause_event", &[("id", &cause.to_string())]),
                };
                view.cause = Some((href, text));
            }
            view.effects = effects
                .iter()
                .filter(|e| e.caused_by == Some(r.event_id))
                .map(|e| {
                    (
                        event_href(e.id, e.occurred_at),
                        e.action.clone(),
                        e.target.clone(),
                    )
                })
                .collect();
            view.effects_heading = t.fill(
                "linked_changes",
                &[("count", &view.effects.len().to_string())],
            );
            view
        })
        .collect();
    let html = page.render().map_err(template_error)?;
    Ok((StatusCode::OK, html))
}

fn event_view(r: &ReportRow, display: &Display, t: &Messages, words: &Words) -> EventView {
    let changes: Vec<(String, String, String)> = r
        .labelled_changes(display, words)
        .into_iter()
        .map(|(name, before, after)| (field_label(t, &name), before, after))
        .collect();
    let summary = changes
        .iter()
        .map(|(field, before, after)| format!("{field}: {before} → {after}"))
        .collect::<Vec<_>>()
        .join("; ");
    let mut details = vec![
        (t.get("col_author"), r.author.clone()),
        (t.get("col_target"), r.target_label()),
    ];
    for ((field, _), value) in report::DETAIL_FIELDS.iter().zip(&r.details) {
        if let Some(value) = value {
            let shown = match (*field, value.as_str()) {
                ("billable" | "approved" | "invoiced", "true") => words.yes.clone(),
                ("billable" | "approved" | "invoiced", "false") => words.no.clone(),
                _ => value.clone(),
            };
            details.push((t.get(&format!("d_{field}")), shown));
        }
    }
    if let Some(from) = &r.actor_source {
        details.push((t.get("author_from"), from.clone()));
    }
    EventView {
        id: r.event_id,
        time: r.local_time.clone(),
        author: if r.author_id.is_none() && r.author == "System" {
            t.get("system")
        } else {
            r.author.clone()
        },
        action: t.action(&r.action_code, &r.action, r.origin.as_deref()),
        target_name: r.target.clone(),
        target_id: r.target_id.clone(),
        summary: report::shorten(&summary, SUMMARY_CHARS),
        cause: None,
        details,
        changes,
        effects: Vec::new(),
        effects_heading: String::new(),
    }
}

/// The action picker (actions grouped by category, those asked for ticked) and the origins
/// asked for.
async fn choices(
    tx: &tokio_postgres::Transaction<'_>,
    args: &report::FilterArgs,
    t: &Messages,
    page: &mut AuditPage,
) -> Result<()> {
    let picked = |asked: &[String], value: &str, label: &str| {
        asked
            .iter()
            .any(|a| a.eq_ignore_ascii_case(value) || a.eq_ignore_ascii_case(label))
    };
    let actions = tx
        .query(
            "select code, label, category from action order by label",
            &[],
        )
        .await
        .context("read the actions")?;
    let mut ticked = 0;
    for category in crate::config::Category::ALL {
        let name = category.as_str();
        let selected = picked(&args.categories, name, name);
        ticked += usize::from(selected);
        let group_actions: Vec<Choice> = actions
            .iter()
            .filter(|r| r.get::<_, String>(2) == name)
            .map(|r| {
                let (code, label): (String, String) = (r.get(0), r.get(1));
                let selected = picked(&args.actions, &code, &label);
                ticked += usize::from(selected);
                Choice {
                    selected,
                    label: t.action(&code, &label, None),
                    value: code,
                }
            })
            .collect();
        page.groups.push(Group {
            category: Choice {
                value: name.to_string(),
                label: t.get(&format!("c_{name}")),
                selected,
            },
            actions: group_actions,
        });
    }
    page.actions_summary = if ticked == 0 {
        t.get("all_actions")
    } else {
        t.fill("n_selected", &[("count", &ticked.to_string())])
    };
    // Origins asked for stay offered even when the range has none of them.
    page.origins = args
        .origins
        .iter()
        .map(|o| Choice {
            value: o.clone(),
            label: o.clone(),
            selected: true,
        })
        .collect();
    Ok(())
}

async fn api_events(
    state: &AppState,
    client: &mut Client,
    query: &Query,
    grant: &Grant,
) -> Result<serde_json::Value> {
    let config = &state.config;
    let zone = page_zone(config, grant);
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
    let args = page_args(query, grant, zone);
    let (filter, _) =
        request_filter(state, &mut tx, query, &args, false, Messages::english()).await?;
    let mut rows = report::fetch(&tx, &filter, limit + 1).await?;
    let workspace_name = crate::workspace::workspace_name(&tx, config, &grant.workspace).await?;
    tx.commit().await.context("commit")?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next = if more { rows.last().map(cursor) } else { None };
    Ok(json!({
        "workspace_id": grant.workspace,
        "workspace_name": workspace_name,
        "time_zone": zone.name(),
        "from": filter.from,
        "to": filter.to,
        "events": rows.iter().map(|r| export::json_record(r, zone)).collect::<Vec<_>>(),
        "next": next,
    }))
}

fn template_error(e: askama::Error) -> Error {
    Error::Output(format!("render the page: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_without_their_accents_or_case() {
        assert!(folded("Zoë Ødegaard").contains(&folded("ZOE")));
        assert!(folded("José Núñez").contains(&folded("nunez")));
        assert_eq!(folded("Ann Admin"), "ann admin");
        // Letters that are not an accent on another stay themselves.
        assert!(!folded("Ødegaard").contains('o'));
    }

    #[test]
    fn an_action_named_with_its_origin_is_the_action_from_that_origin() {
        let grant = Grant {
            workspace: "1".into(),
            viewer: "ann".into(),
            expires: 0,
            signature: String::new(),
            viewing: Default::default(),
        };
        let query = Query::parse(Some(
            "action=Created%20time%20entry%20(Timer)&action=Deleted%20project&action=Odd%20()",
        ));
        let args = page_args(&query, &grant, chrono_tz::UTC);
        assert_eq!(
            args.actions,
            ["Created time entry", "Deleted project", "Odd ()"]
        );
        assert_eq!(args.origins, ["Timer"]);
    }
}

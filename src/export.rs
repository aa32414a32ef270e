//! `clockwatch export`: the report's rows as RFC 4180 CSV or JSON Lines, streamed.
//!
//! Rows come through a portal (a server-side cursor) a page at a time and are written as they
//! arrive, so memory stays flat however large the export; there is no row cap.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use chrono::SecondsFormat;
use chrono_tz::Tz;
use serde_json::{json, Map, Value};
use tokio_postgres::types::ToSql;
use tokio_postgres::Transaction;

use crate::error::{DbContext, Error, Result};
use crate::report::{Filter, ReportRow, DETAIL_FIELDS};

/// Rows fetched from the portal at a time.
const PAGE: i32 = 2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    JsonLines,
}

/// Byte order mark: lets Excel read the CSV as UTF-8 (accents and all).
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// CSV header, in column order: times are in `zone`, which the first column names.
pub fn csv_header(zone: &str) -> Vec<String> {
    let time = format!("Time ({zone})");
    let mut header = vec![
        time.as_str(),
        "Workspace",
        "Author",
        "Author ID",
        "Action",
        "Action code",
        "Category",
        "Origin",
        "Target",
        "Target ID",
        "Caused by",
    ];
    header.extend(DETAIL_FIELDS.iter().map(|(_, label)| *label));
    header.extend(["Previous value", "New value"]);
    header.into_iter().map(str::to_string).collect()
}

fn csv_record(r: &ReportRow, zone: Tz) -> Vec<String> {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let json = |v: &Option<Value>| v.as_ref().map(Value::to_string).unwrap_or_default();
    let mut record = vec![
        r.occurred_at
            .with_timezone(&zone)
            .to_rfc3339_opts(SecondsFormat::Micros, true),
        r.workspace_id.clone(),
        r.author.clone(),
        text(&r.author_id),
        r.action.clone(),
        r.action_code.clone(),
        r.category.clone(),
        text(&r.origin),
        text(&r.target),
        text(&r.target_id),
        r.caused_by.map(|c| c.to_string()).unwrap_or_default(),
    ];
    record.extend(r.details.iter().map(text));
    record.push(json(&r.previous_value));
    record.push(json(&r.new_value));
    record
}

pub fn json_record(r: &ReportRow, zone: Tz) -> Value {
    let mut details = Map::new();
    for ((key, _), value) in DETAIL_FIELDS.iter().zip(&r.details) {
        details.insert(
            key.to_string(),
            value.clone().map(Value::String).unwrap_or(Value::Null),
        );
    }
    let mut record = json!({
        "event_id": r.event_id,
        "occurred_at": r.occurred_at.with_timezone(&zone).to_rfc3339_opts(SecondsFormat::Micros, true),
        "time_zone": r.time_zone,
        "workspace_id": r.workspace_id,
        "author": r.author,
        "author_id": r.author_id,
        "action": r.action,
        "action_code": r.action_code,
        "category": r.category,
        "origin": r.origin,
        "target": r.target,
        "target_id": r.target_id,
        "caused_by": r.caused_by,
    });
    let object = record.as_object_mut().expect("built as an object");
    object.extend(details);
    object.insert(
        "previous_value".into(),
        r.previous_value.clone().unwrap_or(Value::Null),
    );
    object.insert(
        "new_value".into(),
        r.new_value.clone().unwrap_or(Value::Null),
    );
    record
}

/// Write every row matching `filter` to `out`. Returns the number of rows written.
pub async fn export<W: Write + ?Sized>(
    tx: &Transaction<'_>,
    filter: &Filter,
    format: Format,
    excel: bool,
    out: &mut W,
) -> Result<u64> {
    export_pumped(tx, filter, format, excel, out, None).await
}

/// An export's bytes handed on a page at a time, to a consumer that may be slower than the
/// database (an HTTP response): the export writes into a shared buffer, and after each page
/// waits until the consumer has room for it. A consumer gone stops the export.
#[derive(Clone)]
pub struct Pump {
    buffer: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    tx: tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>,
}

impl Pump {
    pub fn new(tx: tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>) -> Pump {
        Pump {
            buffer: Default::default(),
            tx,
        }
    }

    /// The writer an export writes into.
    pub fn writer(&self) -> PumpWriter {
        PumpWriter(self.buffer.clone())
    }

    async fn send(&self) -> Result<()> {
        let bytes = std::mem::take(&mut *self.buffer.lock().unwrap_or_else(|e| e.into_inner()));
        if bytes.is_empty() {
            return Ok(());
        }
        self.tx
            .send(Ok(bytes::Bytes::from(bytes)))
            .await
            .map_err(|_| Error::BrokenPipe)
    }
}

/// See [`Pump`].
pub struct PumpWriter(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for PumpWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// [`export`], handing each page to `pump` once written (the writer is then `pump.writer()`).
pub async fn export_pumped<W: Write + ?Sized>(
    tx: &Transaction<'_>,
    filter: &Filter,
    format: Format,
    excel: bool,
    out: &mut W,
    pump: Option<&Pump>,
) -> Result<u64> {
    let params = filter.params(None);
    let refs: Vec<&(dyn ToSql + Sync)> = params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let portal = tx
        .bind(&filter.sql(), &refs)
        .await
        .context("open the export cursor")?;
    let mut progress = Progress::new();
    // An export served over HTTP has no terminal to report to.
    progress.enabled &= pump.is_none();
    if excel {
        out.write_all(UTF8_BOM).map_err(write_error)?;
    }
    let mut sink = match format {
        Format::Csv => {
            let mut w = csv::WriterBuilder::new()
                .terminator(csv::Terminator::CRLF)
                .from_writer(out);
            w.write_record(csv_header(&filter.timezone))
                .map_err(csv_error)?;
            Sink::Csv(Box::new(w))
        }
        Format::JsonLines => Sink::Json(out),
    };
    let zone: Tz = filter.timezone.parse().unwrap_or_default();
    let mut written = 0u64;
    let mut rows = tx
        .query_portal(&portal, PAGE)
        .await
        .context("read the export cursor")?;
    loop {
        // Ask for the next page before writing this one, so the server formats rows while this
        // process writes them (one after the other, the export ran at the sum of both speeds).
        // `biased` polls the fetch first, which is what sends its request.
        let more = rows.len() == PAGE as usize;
        let (next, wrote) = tokio::join!(
            biased;
            async {
                if more {
                    Some(tx.query_portal(&portal, PAGE).await)
                } else {
                    None
                }
            },
            async { write_rows(&rows, &mut sink, excel, zone) }
        );
        wrote?;
        written += rows.len() as u64;
        progress.update(written);
        if let Some(pump) = pump {
            match &mut sink {
                Sink::Csv(w) => w.flush().map_err(write_error)?,
                Sink::Json(out) => out.flush().map_err(write_error)?,
            }
            pump.send().await?;
        }
        match next {
            Some(page) => rows = page.context("read the export cursor")?,
            None => break,
        }
    }
    match &mut sink {
        Sink::Csv(w) => w.flush().map_err(write_error)?,
        Sink::Json(out) => out.flush().map_err(write_error)?,
    }
    if let Some(pump) = pump {
        pump.send().await?;
    }
    progress.finish(written);
    Ok(written)
}

/// A cell a spreadsheet would read as a formula (`=HYPERLINK(...)`, `+1`, `@SUM`, a leading tab
/// or carriage return) gets a leading apostrophe, so it shows as the text it is (OWASP's advice
/// for CSV injection). Only with `--excel`: a plain CSV keeps every value exactly.
fn spreadsheet_safe(mut cell: String) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        cell.insert(0, '\'');
    }
    cell
}

fn write_rows<W: Write + ?Sized>(
    rows: &[tokio_postgres::Row],
    sink: &mut Sink<'_, W>,
    excel: bool,
    zone: Tz,
) -> Result<()> {
    for row in rows {
        let r = ReportRow::from_row(row);
        match sink {
            Sink::Csv(w) if excel => w
                .write_record(csv_record(&r, zone).into_iter().map(spreadsheet_safe))
                .map_err(csv_error)?,
            Sink::Csv(w) => w.write_record(csv_record(&r, zone)).map_err(csv_error)?,
            Sink::Json(out) => {
                serde_json::to_writer(&mut **out, &json_record(&r, zone))
                    .map_err(|e| write_error(e.into()))?;
                out.write_all(b"\n").map_err(write_error)?;
            }
        }
    }
    Ok(())
}

enum Sink<'a, W: Write + ?Sized> {
    Csv(Box<csv::Writer<&'a mut W>>),
    Json(&'a mut W),
}

fn csv_error(e: csv::Error) -> Error {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => write_error(io),
        other => Error::Input(format!("csv: {other:?}")),
    }
}

fn write_error(e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Error::BrokenPipe
    } else {
        Error::Output(e.to_string())
    }
}

/// Rows written and rate on stderr, when stderr is a terminal.
struct Progress {
    enabled: bool,
    started: Instant,
    last: Instant,
}

impl Progress {
    fn new() -> Progress {
        let now = Instant::now();
        Progress {
            enabled: std::io::stderr().is_terminal(),
            started: now,
            last: now,
        }
    }

    fn update(&mut self, rows: u64) {
        if self.enabled && self.last.elapsed() >= Duration::from_millis(250) {
            self.last = Instant::now();
            eprint!("\rexporting: {rows} rows, {:.0} rows/s", self.rate(rows));
        }
    }

    fn finish(&self, rows: u64) {
        if self.enabled {
            eprintln!(
                "\rexported {rows} rows in {:.1}s ({:.0} rows/s)",
                self.started.elapsed().as_secs_f64(),
                self.rate(rows)
            );
        }
    }

    fn rate(&self, rows: u64) -> f64 {
        rows as f64 / self.started.elapsed().as_secs_f64().max(0.001)
    }
}

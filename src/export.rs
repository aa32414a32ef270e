//! `clockwatch export`: the report's rows as RFC 4180 CSV or JSON Lines, streamed.
//!
//! Rows come through a portal (a server-side cursor) a page at a time and are written as they
//! arrive, so memory stays flat however large the export; there is no row cap. They come from
//! `report_events`, each event's details document as stored, and are formatted here as the
//! report view formats them ([`crate::detail`]): the database server only reads and sends.

use std::borrow::Cow;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Transaction};

use crate::detail;
use crate::error::{DbContext, Error, Result};
use crate::image::JsonText;
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

/// The page's CSV: what a spreadsheet user reads, in their language. Everything the Excel form
/// has (a byte order mark, CRLF, formula cells as text), and values as the page shows them:
/// times in the page's zone without an offset (`2026-11-24 09:00:00`, the zone in the header),
/// flags as Yes/No, the changes as `Field: value` pairs rather than JSON.
pub struct Sheet {
    /// The header, in [`csv_header`]'s order.
    pub header: Vec<String>,
    pub words: crate::report::Words,
    pub display: crate::report::Display,
    /// The changed fields' labels, by what they are.
    pub label: Box<dyn Fn(&crate::report::FieldName) -> String + Send + Sync>,
}

impl Sheet {
    /// One side of an event's changes: `Project: Hermes; Status: Deleted`.
    fn changes(&self, record: &Record, values: &Option<Cow<Value>>) -> Option<String> {
        let object = values.as_ref()?.as_object()?;
        let mut fields: Vec<(crate::report::FieldName, String)> = object
            .iter()
            .map(|(column, value)| {
                let names = record.names.as_ref().and_then(|n| n.get(column.as_str()));
                let shown = self.display.shown(
                    names,
                    record.source,
                    column,
                    record.time_zone,
                    Some(value),
                    &self.words,
                );
                (self.display.field_name(record.source, column), shown)
            })
            .collect();
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        Some(
            fields
                .iter()
                .map(|(name, shown)| format!("{}: {shown}", (self.label)(name)))
                .collect::<Vec<_>>()
                .join("; "),
        )
    }
}

/// One event as an export writes it, and as the JSON API serves it: from the report view's
/// row ([`Record::from_report`]), or from report_events' stored columns with the details
/// formatted in this process ([`Record::from_events_row`]).
pub struct Record<'a> {
    event_id: i64,
    occurred_at: DateTime<Utc>,
    /// The zone every time is shown in, and its name.
    zone: Tz,
    time_zone: &'a str,
    workspace_id: &'a str,
    author: &'a str,
    author_id: Option<&'a str>,
    action: &'a str,
    action_code: &'a str,
    category: &'a str,
    origin: Option<&'a str>,
    target: Option<&'a str>,
    target_id: Option<&'a str>,
    caused_by: Option<i64>,
    details: detail::Fields<'a>,
    previous_value: Option<Cow<'a, Value>>,
    new_value: Option<Cow<'a, Value>>,
    /// The source table, and the names its changes' ids bore: what the page's CSV shows the
    /// changes with.
    source: &'a str,
    names: Option<Value>,
}

impl<'a> Record<'a> {
    /// A report row, its times shown in `zone`.
    pub fn from_report(r: &'a ReportRow, zone: Tz) -> Record<'a> {
        Record {
            event_id: r.event_id,
            occurred_at: r.occurred_at,
            zone,
            time_zone: &r.time_zone,
            workspace_id: &r.workspace_id,
            author: &r.author,
            author_id: r.author_id.as_deref(),
            action: &r.action,
            action_code: &r.action_code,
            category: &r.category,
            origin: r.origin.as_deref(),
            target: r.target.as_deref(),
            target_id: r.target_id.as_deref(),
            caused_by: r.caused_by,
            details: std::array::from_fn(|i| r.details[i].as_deref().map(Cow::Borrowed)),
            previous_value: r.previous_value.as_ref().map(Cow::Borrowed),
            new_value: r.new_value.as_ref().map(Cow::Borrowed),
            source: &r.source,
            names: r.change_names.clone(),
        }
    }

    /// A row of [`Filter::export_sql`] (the columns of [`crate::report::EXPORT_COLUMNS`], read
    /// by position), its times shown in `zone`, named `time_zone`.
    fn from_events_row(row: &'a Row, zone: Tz, time_zone: &'a str, sheet: bool) -> Record<'a> {
        let details: Option<JsonText> = row.get(14);
        // Only the page's CSV shows ids by name: no other export parses the names.
        let names = details
            .as_ref()
            .filter(|_| sheet)
            .and_then(|d| serde_json::from_str::<Value>(d.0).ok())
            .and_then(|d| d.get("names").cloned());
        Record {
            event_id: row.get(0),
            workspace_id: row.get(1),
            occurred_at: row.get(2),
            zone,
            time_zone,
            author_id: row.get(3),
            author: row.get(4),
            action: row.get(5),
            action_code: row.get(6),
            category: row.get(7),
            origin: row.get(8),
            target_id: row.get(9),
            target: row.get(10),
            caused_by: row.get(11),
            previous_value: row
                .get::<_, Option<JsonText>>(12)
                .map(|t| Cow::Owned(crate::image::changed_values(t.0))),
            new_value: row
                .get::<_, Option<JsonText>>(13)
                .map(|t| Cow::Owned(crate::image::changed_values(t.0))),
            details: detail::fields(details.map_or("{}", |d| d.0), zone),
            source: row.get(15),
            names,
        }
    }

    fn time(&self) -> String {
        self.occurred_at
            .with_timezone(&self.zone)
            .to_rfc3339_opts(SecondsFormat::Micros, true)
    }

    /// One CSV line, in [`csv_header`]'s order.
    fn write_csv<W: Write>(
        &self,
        w: &mut csv::Writer<W>,
        excel: bool,
        sheet: Option<&Sheet>,
    ) -> csv::Result<()> {
        let time = match sheet {
            Some(_) => self
                .occurred_at
                .with_timezone(&self.zone)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string(),
            None => self.time(),
        };
        let caused_by = self.caused_by.map(|c| c.to_string());
        let json = |v: &Option<Cow<Value>>| match sheet {
            Some(sheet) => sheet.changes(self, v),
            None => v.as_ref().map(|v| v.to_string()),
        };
        let (previous, new) = (json(&self.previous_value), json(&self.new_value));
        // Flags read Yes/No in a sheet, as on the page.
        let flag = |i: usize| -> Option<Cow<str>> {
            let value = self.details[i].as_deref()?;
            Some(match (sheet, value) {
                (Some(s), "true") => Cow::Borrowed(s.words.yes.as_str()),
                (Some(s), "false") => Cow::Borrowed(s.words.no.as_str()),
                _ => Cow::Borrowed(value),
            })
        };
        let details: Vec<Option<Cow<str>>> = (0..self.details.len())
            .map(|i| match i {
                12 | 15 | 16 => flag(i),
                _ => self.details[i].as_deref().map(Cow::Borrowed),
            })
            .collect();
        let cells = [
            Some(time.as_str()),
            Some(self.workspace_id),
            Some(self.author),
            self.author_id,
            Some(self.action),
            Some(self.action_code),
            Some(self.category),
            self.origin,
            self.target,
            self.target_id,
            caused_by.as_deref(),
        ]
        .into_iter()
        .chain(details.iter().map(|d| d.as_deref()))
        .chain([previous.as_deref(), new.as_deref()]);
        for cell in cells.map(Option::unwrap_or_default) {
            if excel {
                w.write_field(spreadsheet_safe(cell).as_bytes())?;
            } else {
                w.write_field(cell)?;
            }
        }
        w.write_record(None::<&[u8]>)
    }
}

/// The JSON object: every key in byte order, as serde_json prints its own maps, so that an
/// export's line and the API's event read the same.
impl Serialize for Record<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        // The details by their place in DETAIL_FIELDS.
        let detail = |i: usize| self.details[i].as_deref();
        let mut m = s.serialize_map(Some(33))?;
        m.serialize_entry("action", self.action)?;
        m.serialize_entry("action_code", self.action_code)?;
        m.serialize_entry("approved", &detail(15))?;
        m.serialize_entry("author", self.author)?;
        m.serialize_entry("author_id", &self.author_id)?;
        m.serialize_entry("billable", &detail(12))?;
        m.serialize_entry("billable_rate", &detail(13))?;
        m.serialize_entry("category", self.category)?;
        m.serialize_entry("caused_by", &self.caused_by)?;
        m.serialize_entry("client", &detail(4))?;
        m.serialize_entry("cost_rate", &detail(14))?;
        m.serialize_entry("description", &detail(1))?;
        m.serialize_entry("duration", &detail(11))?;
        m.serialize_entry("end_date", &detail(9))?;
        m.serialize_entry("end_time", &detail(10))?;
        m.serialize_entry("event_id", &self.event_id)?;
        m.serialize_entry("invoiced", &detail(16))?;
        m.serialize_entry("kiosk", &detail(5))?;
        m.serialize_entry("new_value", &self.new_value)?;
        m.serialize_entry("occurred_at", &self.time())?;
        m.serialize_entry("origin", &self.origin)?;
        m.serialize_entry("previous_value", &self.previous_value)?;
        m.serialize_entry("project", &detail(2))?;
        m.serialize_entry("start_date", &detail(7))?;
        m.serialize_entry("start_time", &detail(8))?;
        m.serialize_entry("tags", &detail(17))?;
        m.serialize_entry("target", &self.target)?;
        m.serialize_entry("target_id", &self.target_id)?;
        m.serialize_entry("task", &detail(3))?;
        m.serialize_entry("time_zone", self.time_zone)?;
        m.serialize_entry("type", &detail(6))?;
        m.serialize_entry("user", &detail(0))?;
        m.serialize_entry("workspace_id", self.workspace_id)?;
        m.end()
    }
}

/// A report row as the JSON API serves it.
pub fn json_record(r: &ReportRow, zone: Tz) -> Value {
    // Cannot fail: every key is a string.
    serde_json::to_value(Record::from_report(r, zone)).unwrap_or_default()
}

/// Write every row matching `filter` to `out`. Returns the number of rows written.
pub async fn export<W: Write + ?Sized>(
    tx: &Transaction<'_>,
    filter: &Filter,
    format: Format,
    excel: bool,
    out: &mut W,
) -> Result<u64> {
    export_pumped(tx, filter, format, excel, out, None, None).await
}

/// An export's bytes handed on a page at a time, to a consumer that may be slower than the
/// database (an HTTP response): the export writes into a shared buffer, and after each page
/// waits until the consumer has room for it. A consumer gone stops the export.
#[derive(Clone)]
pub struct Pump {
    buffer: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    tx: tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>,
    /// How long a page may wait for the reader to take the last one: past it, the export ends
    /// (a reader that stopped reading must not hold the export's snapshot open).
    slow_reader: std::time::Duration,
}

impl Pump {
    pub fn new(
        tx: tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>,
        slow_reader: std::time::Duration,
    ) -> Pump {
        Pump {
            buffer: Default::default(),
            tx,
            slow_reader,
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
        match tokio::time::timeout(
            self.slow_reader,
            self.tx.send(Ok(bytes::Bytes::from(bytes))),
        )
        .await
        {
            Ok(sent) => sent.map_err(|_| Error::BrokenPipe),
            Err(_) => Err(Error::Output(format!(
                "the reader took nothing for {} s: download ended",
                self.slow_reader.as_secs()
            ))),
        }
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
    sheet: Option<&Sheet>,
) -> Result<u64> {
    let excel = excel || sheet.is_some();
    let params = filter.params(None);
    let refs: Vec<&(dyn ToSql + Sync)> = params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let portal = tx
        .bind(&filter.export_sql(), &refs)
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
            match sheet {
                Some(sheet) => w.write_record(&sheet.header),
                None => w.write_record(csv_header(&filter.timezone)),
            }
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
            async { write_rows(&rows, &mut sink, excel, zone, &filter.timezone, sheet) }
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
fn spreadsheet_safe(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

fn write_rows<W: Write + ?Sized>(
    rows: &[Row],
    sink: &mut Sink<'_, W>,
    excel: bool,
    zone: Tz,
    time_zone: &str,
    sheet: Option<&Sheet>,
) -> Result<()> {
    for row in rows {
        let record = Record::from_events_row(row, zone, time_zone, sheet.is_some());
        match sink {
            Sink::Csv(w) => record.write_csv(w, excel, sheet).map_err(csv_error)?,
            Sink::Json(out) => {
                serde_json::to_writer(&mut **out, &record).map_err(|e| write_error(e.into()))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_record_lists_its_keys_as_serde_json_orders_a_map() {
        let row = ReportRow {
            event_id: 7,
            workspace_id: "1".into(),
            occurred_at: "2026-11-24T08:00:00Z".parse().unwrap(),
            local_time: String::new(),
            time_zone: "Europe/Paris".into(),
            source: "app.time_entry".into(),
            author_id: Some("3".into()),
            author: "Ann".into(),
            action: "Updated time entry".into(),
            action_code: "time_entry.updated".into(),
            category: "time_entries".into(),
            origin: Some("Timer".into()),
            target_id: Some("9".into()),
            target: Some("Entry".into()),
            caused_by: Some(5),
            change_names: None,
            actor_source: None,
            previous_value: Some(serde_json::json!({"b": 1, "a": [1, 2]})),
            new_value: None,
            details: (0..18).map(|i| Some(format!("d{i}"))).collect(),
        };
        let line =
            serde_json::to_string(&Record::from_report(&row, chrono_tz::Europe::Paris)).unwrap();
        // A map parsed back prints its keys sorted: the same text if they were already.
        let reparsed: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(reparsed.to_string(), line);
        assert_eq!(reparsed.as_object().unwrap().len(), 33);
        assert_eq!(reparsed["occurred_at"], "2026-11-24T09:00:00.000000+01:00");
        for (i, (field, _)) in DETAIL_FIELDS.iter().enumerate() {
            assert_eq!(reparsed[*field], format!("d{i}"), "{field}");
        }
    }
}

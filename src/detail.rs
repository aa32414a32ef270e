//! An event's `details` document: Clockify's detail fields (user, project, start, tags...) as
//! the daemon writes them ([`Details`]), and as an export works them out from the stored
//! document (user, project, start date, duration...), as the report view does in SQL.
//!
//! An export reads each event's document whole and formats it here. The view's formatting was
//! most of what an export cost the database server (500,000 rows: 6.4-7.0 s of its time through
//! the report view, against 2.6-2.7 s for the stored columns, bench/README.md), and that server
//! is the host application's. Reports, the page and SQL users keep the view; a test
//! (`tests/it/report.rs`) holds both to the same output on awkward documents and time zones.
//!
//! The rules, the view's (`sql/baseline/05_reports.sql`):
//! - a field's text is a JSON string's text, or any other value's JSON text as `jsonb` prints it
//!   (which is what the raw document holds: it arrives as `jsonb` prints it);
//! - `start` and `end` are instants, shown in the report's zone as a date and a time; an infinite
//!   one shows nothing;
//! - the duration is whole hours, minutes and seconds between them, counted past a day and
//!   signed (`25:00:00`, `-01:30:00`), truncated toward zero;
//! - tags are the array's non-null elements joined with ", ", nothing when there are none.
//!
//! The view reads times with PostgreSQL's parser, which takes more spellings than RFC 3339; the
//! daemon writes only RFC 3339 in UTC (or `infinity`), so those are the ones read here. A time
//! outside years 1 to 9999 is shown by neither.

use std::borrow::Cow;

use chrono::{DateTime, Datelike, SubsecRound, Timelike, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::record::push_string;

/// A details document's keys, in the order `jsonb` prints an object's keys: shortest first,
/// then in byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    End,
    Tags,
    Task,
    Type,
    User,
    Kiosk,
    /// The names the ids in the event's changes bore when it was written: an object of
    /// `{column: {id: name}}`, kept as JSON.
    Names,
    Start,
    Client,
    Project,
    Approved,
    Billable,
    Duration,
    Invoiced,
    CostRate,
    Description,
    /// Where the author came from: the setting that named them, `column`, or `role`.
    ActorSource,
    BillableRate,
}

impl Key {
    const NAMES: [&'static str; 18] = [
        "end",
        "tags",
        "task",
        "type",
        "user",
        "kiosk",
        "names",
        "start",
        "client",
        "project",
        "approved",
        "billable",
        "duration",
        "invoiced",
        "cost_rate",
        "description",
        "actor_source",
        "billable_rate",
    ];
}

/// The details document the daemon writes for an event: each field a string, the tags a list of
/// strings. Its keys are fixed, so the fields are kept in an array by [`Key`] rather than in a
/// map: building a map of owned keys, printing it sorted and freeing it was a quarter of the
/// daemon's CPU in a drain (bench/README.md).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Details {
    text: [Option<String>; 18],
    tags: Option<Vec<String>>,
}

impl Details {
    /// Sets a string field; `None` leaves it out. (The tags are set with [`Details::set_tags`].)
    pub fn set(&mut self, key: Key, value: Option<String>) {
        debug_assert!(key != Key::Tags, "tags are a list");
        self.text[key as usize] = value;
    }

    /// Sets the names of the changes' ids: `object` is a JSON object's text as jsonb prints it
    /// (`chain::jsonb_text`), kept as it is.
    pub fn set_names(&mut self, object: String) {
        self.text[Key::Names as usize] = Some(object);
    }

    pub fn set_tags(&mut self, tags: Vec<String>) {
        self.tags = Some(tags);
    }

    pub fn get(&self, key: Key) -> Option<&str> {
        self.text[key as usize].as_deref()
    }

    pub fn tags(&self) -> Option<&[String]> {
        self.tags.as_deref()
    }

    /// The document as PostgreSQL prints it once stored as `jsonb`: keys in [`Key`] order, `", "`
    /// between items and `": "` after a key, strings escaped as `escape_json()` escapes them. The
    /// daemon stores and hashes this text (`details` is json, kept as written), and a reader
    /// that casts it to `jsonb` gets the same text back.
    pub fn jsonb_text(&self) -> String {
        let mut out = String::with_capacity(256);
        out.push('{');
        let mut first = true;
        for (i, name) in Key::NAMES.iter().enumerate() {
            let list = if i == Key::Tags as usize {
                self.tags.as_deref()
            } else {
                None
            };
            let text = self.text[i].as_deref();
            if list.is_none() && text.is_none() {
                continue;
            }
            if !first {
                out.push_str(", ");
            }
            first = false;
            push_string(&mut out, name);
            out.push_str(": ");
            match list {
                Some(items) => {
                    out.push('[');
                    for (n, item) in items.iter().enumerate() {
                        if n > 0 {
                            out.push_str(", ");
                        }
                        push_string(&mut out, item);
                    }
                    out.push(']');
                }
                None if i == Key::Names as usize => out.push_str(text.unwrap_or("{}")),
                None => push_string(&mut out, text.unwrap_or_default()),
            }
        }
        out.push('}');
        out
    }
}

/// The detail fields, in [`crate::report::DETAIL_FIELDS`] order.
pub type Fields<'a> = [Option<Cow<'a, str>>; 18];

/// The keys of a details document the fields come from; any other key is ignored.
#[derive(Deserialize, Default)]
struct Document<'a> {
    #[serde(borrow)]
    user: Option<&'a RawValue>,
    #[serde(borrow)]
    description: Option<&'a RawValue>,
    #[serde(borrow)]
    project: Option<&'a RawValue>,
    #[serde(borrow)]
    task: Option<&'a RawValue>,
    #[serde(borrow)]
    client: Option<&'a RawValue>,
    #[serde(borrow)]
    kiosk: Option<&'a RawValue>,
    #[serde(borrow, rename = "type")]
    kind: Option<&'a RawValue>,
    #[serde(borrow)]
    start: Option<&'a RawValue>,
    #[serde(borrow)]
    end: Option<&'a RawValue>,
    #[serde(borrow)]
    billable: Option<&'a RawValue>,
    #[serde(borrow)]
    billable_rate: Option<&'a RawValue>,
    #[serde(borrow)]
    cost_rate: Option<&'a RawValue>,
    #[serde(borrow)]
    approved: Option<&'a RawValue>,
    #[serde(borrow)]
    invoiced: Option<&'a RawValue>,
    #[serde(borrow)]
    duration: Option<&'a RawValue>,
    #[serde(borrow)]
    tags: Option<&'a RawValue>,
}

/// The detail fields of the document `details` (JSON text), times shown in `zone`. A document
/// that is not a JSON object has none.
pub fn fields<'a>(details: &'a str, zone: Tz) -> Fields<'a> {
    let doc: Document = serde_json::from_str(details).unwrap_or_default();
    // A date with no time (a timesheet's day) shows as its date.
    let day = |v: Option<&'a RawValue>| text(v).filter(|t| is_date(t));
    let start = doc.start.and_then(instant);
    let end = doc.end.and_then(instant);
    let local = |t: Option<DateTime<Utc>>| t.map(|t| t.with_timezone(&zone).naive_local());
    let (start_at, end_at) = (local(start), local(end));
    let date = |t: &chrono::NaiveDateTime| {
        Cow::Owned(format!("{:04}-{:02}-{:02}", t.year(), t.month(), t.day()))
    };
    let time = |t: &chrono::NaiveDateTime| {
        Cow::Owned(format!(
            "{:02}:{:02}:{:02}",
            t.hour(),
            t.minute(),
            t.second()
        ))
    };
    [
        text(doc.user),
        text(doc.description),
        text(doc.project),
        text(doc.task),
        text(doc.client),
        text(doc.kiosk),
        text(doc.kind),
        day(doc.start).or_else(|| start_at.as_ref().map(date)),
        start_at.as_ref().map(time),
        day(doc.end).or_else(|| end_at.as_ref().map(date)),
        end_at.as_ref().map(time),
        text(doc.duration).or_else(|| start.zip(end).map(|(s, e)| Cow::Owned(duration(s, e)))),
        text(doc.billable),
        text(doc.billable_rate),
        text(doc.cost_rate),
        text(doc.approved),
        text(doc.invoiced),
        doc.tags.and_then(tags),
    ]
}

/// A value as `->>` reads it: a string's text, anything else as its JSON text; null is none.
fn text(value: Option<&RawValue>) -> Option<Cow<'_, str>> {
    let raw = value?.get();
    if !raw.starts_with('"') {
        return (raw != "null").then_some(Cow::Borrowed(raw));
    }
    // Borrowed when the string has no escape to undo.
    match serde_json::from_str::<&str>(raw) {
        Ok(text) => Some(Cow::Borrowed(text)),
        Err(_) => serde_json::from_str::<String>(raw).ok().map(Cow::Owned),
    }
}

/// A finite instant in years 1 to 9999, to the microsecond as PostgreSQL keeps it; none for
/// `infinity`, `-infinity` or what is not RFC 3339.
fn instant(value: &RawValue) -> Option<DateTime<Utc>> {
    let text = text(Some(value))?;
    let t = DateTime::parse_from_rfc3339(&text)
        .ok()?
        .with_timezone(&Utc);
    (1..=9999).contains(&t.year()).then(|| t.round_subsecs(6))
}

/// `HH:MM:SS` from `start` to `end`, hours past a day counted on, a minus when `end` is earlier.
fn duration(start: DateTime<Utc>, end: DateTime<Utc>) -> String {
    // num_seconds() truncates toward zero, as the view's trunc() does.
    clock((end - start).num_seconds())
}

/// Seconds as `HH:MM:SS`, hours past a day counted on, a minus before a negative one.
pub fn clock(seconds: i64) -> String {
    let sign = if seconds < 0 { "-" } else { "" };
    let seconds = seconds.unsigned_abs();
    format!(
        "{sign}{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// Whether `text` is a date as PostgreSQL prints one in ISO style (`2026-11-24`).
pub fn is_date(text: &str) -> bool {
    text.len() == 10 && chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok()
}

/// Tag names joined with ", ": an array's elements as `text()` reads them, nulls left out; none
/// when no element is left or the value is no array.
fn tags(value: &RawValue) -> Option<Cow<'_, str>> {
    let items: Vec<&RawValue> = serde_json::from_str(value.get()).ok()?;
    let names: Vec<Cow<str>> = items.into_iter().filter_map(|v| text(Some(v))).collect();
    match names.len() {
        0 => None,
        1 => names.into_iter().next(),
        _ => Some(Cow::Owned(names.join(", "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_prints_as_jsonb_prints_it_and_reads_back_field_by_field() {
        let mut d = Details::default();
        assert_eq!(d.jsonb_text(), "{}");
        d.set(Key::User, Some("q\"\\\n\u{1}\u{8}\u{c}\u{1f}é".into()));
        d.set(Key::BillableRate, Some("12.50".into()));
        d.set(Key::Project, Some("P".into()));
        d.set(Key::End, Some(String::new()));
        d.set(Key::Approved, None);
        d.set_tags(vec!["a".into(), "b, c".into()]);
        assert_eq!(
            d.jsonb_text(),
            r#"{"end": "", "tags": ["a", "b, c"], "user": "q\"\\\n\u0001\b\f\u001fé", "project": "P", "billable_rate": "12.50"}"#
        );
        // Key order is jsonb's: shortest first, then in byte order.
        let mut names = Key::NAMES;
        names.sort_by(|a, b| crate::chain::jsonb_key_order(a, b));
        assert_eq!(names, Key::NAMES);
        assert_eq!(Key::NAMES[Key::CostRate as usize], "cost_rate");
        // What an export reads from it.
        let text = d.jsonb_text();
        let f = fields(&text, chrono_tz::UTC);
        assert_eq!(f[0].as_deref(), Some("q\"\\\n\u{1}\u{8}\u{c}\u{1f}é"));
        assert_eq!(f[2].as_deref(), Some("P"));
        assert_eq!(f[17].as_deref(), Some("a, b, c"));
    }

    #[test]
    fn no_tags_and_an_empty_tag_list_print_differently() {
        let mut d = Details::default();
        d.set_tags(Vec::new());
        assert_eq!(d.jsonb_text(), r#"{"tags": []}"#);
        assert_eq!(d.tags(), Some(&[][..]));
        assert_eq!(Details::default().tags(), None);
    }

    fn at(details: &str, zone: &str) -> Vec<Option<String>> {
        fields(details, zone.parse().unwrap())
            .into_iter()
            .map(|f| f.map(Cow::into_owned))
            .collect()
    }

    #[test]
    fn strings_are_unescaped_and_other_values_keep_their_json_text() {
        let f = at(
            r#"{"user": "Ann \"A\"", "billable": true, "cost_rate": 12.50, "kiosk": {"a": [1, 2]}, "task": null}"#,
            "UTC",
        );
        assert_eq!(f[0].as_deref(), Some("Ann \"A\""));
        assert_eq!(f[12].as_deref(), Some("true"));
        assert_eq!(f[14].as_deref(), Some("12.50"));
        assert_eq!(f[5].as_deref(), Some(r#"{"a": [1, 2]}"#));
        assert_eq!(f[3], None);
    }

    #[test]
    fn times_show_in_the_zone_and_durations_count_past_a_day() {
        let f = at(
            r#"{"start": "2026-03-29T00:30:00Z", "end": "2026-03-30T02:15:30.9Z"}"#,
            "Europe/Paris",
        );
        // Paris moved to summer time in between: +01:00 at the start, +02:00 at the end.
        assert_eq!(
            f[7..12].iter().map(|v| v.as_deref()).collect::<Vec<_>>(),
            [
                Some("2026-03-29"),
                Some("01:30:00"),
                Some("2026-03-30"),
                Some("04:15:30"),
                Some("25:45:30")
            ]
        );
        let backwards = at(
            r#"{"start": "2026-01-01T10:30:00Z", "end": "2026-01-01T09:00:00.5Z"}"#,
            "UTC",
        );
        assert_eq!(backwards[11].as_deref(), Some("-01:29:59"));
    }

    #[test]
    fn infinite_or_unreadable_times_show_nothing() {
        let f = at(
            r#"{"start": "infinity", "end": "2026-01-01T09:00:00Z"}"#,
            "UTC",
        );
        assert_eq!(
            (f[7].as_deref(), f[9].as_deref(), f[11].as_deref()),
            (None, Some("2026-01-01"), None)
        );
        assert!(at(r#"{"start": "yesterday"}"#, "UTC")[7].is_none());
    }

    #[test]
    fn tags_skip_nulls_and_none_left_is_no_tags() {
        assert_eq!(
            at(r#"{"tags": ["a, b", null, "c"]}"#, "UTC")[17].as_deref(),
            Some("a, b, c")
        );
        assert_eq!(at(r#"{"tags": [null]}"#, "UTC")[17], None);
        assert_eq!(at(r#"{"tags": []}"#, "UTC")[17], None);
        assert_eq!(at(r#"{"tags": [""]}"#, "UTC")[17].as_deref(), Some(""));
    }

    #[test]
    fn a_document_that_is_no_object_has_no_fields() {
        assert!(at("[1, 2]", "UTC").iter().all(Option::is_none));
    }
}

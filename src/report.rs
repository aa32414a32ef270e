//! `clockwatch report` and the filters it shares with `clockwatch export`.
//!
//! A filter is checked against the database before any event is read, so that a mistake (a
//! reversed range, an author nobody knows, an action that does not exist) is one clear refusal
//! instead of an empty report. Every value reaches the database as a bind parameter.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde_json::Value;
use tokio_postgres::{Row, Transaction};

use crate::config::{Category, Config, DurationUnit};
use crate::error::{DbContext, Error, Result};
use crate::image::JsonText;

const REPORT: &str = include_str!("../sql/queries/report.sql");

/// The report view's columns a report reads ([`ReportRow::from_row`]).
const REPORT_COLUMNS: &str = "r.event_id, r.workspace_id, r.occurred_at, r.local_time, \
     r.time_zone, r.source, r.author_id, r.author, r.action, r.action_code, r.category, r.origin, \
     r.target_id, r.target, r.caused_by, r.previous_value, r.new_value, r.\"user\", \
     r.description, r.project, r.task, r.client, r.kiosk, r.type, r.start_date, r.start_time, \
     r.end_date, r.end_time, r.duration, r.billable, r.billable_rate, r.cost_rate, r.approved, \
     r.invoiced, r.tags, r.change_names, r.actor_source";

/// The columns of report_events an export reads, in this order (src/export.rs formats the
/// details); the source last, which the query's filter reads (shared sources).
pub const EXPORT_COLUMNS: &str = "r.event_id, r.workspace_id, r.occurred_at, r.author_id, \
     r.author, r.action, r.action_code, r.category, r.origin, r.target_id, r.target, r.caused_by, \
     r.previous_value, r.new_value, r.details, r.source";

/// The token that selects changes made by System.
pub const SYSTEM_AUTHOR: &str = "system";

/// Filters as typed on the command line.
#[derive(Debug, Clone, Default)]
pub struct FilterArgs {
    pub workspace: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub authors: Vec<String>,
    pub actions: Vec<String>,
    pub categories: Vec<String>,
    /// Where changes came from (`Timer`, `Import`), as events name it; any when empty.
    pub origins: Vec<String>,
    pub target: Option<String>,
    /// The zone to show times in; the config's when None.
    pub timezone: Option<String>,
}

/// Filters checked and resolved: instants in UTC, action codes, author ids.
#[derive(Debug, Clone)]
pub struct Filter {
    pub workspace: String,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub authors: Option<Vec<String>>,
    pub actions: Option<Vec<String>>,
    pub categories: Option<Vec<String>>,
    /// Origins, lower case (compared case-insensitively).
    pub origins: Option<Vec<String>>,
    pub target: Option<String>,
    /// The time zone times are shown in (set for the transaction the filter was built in).
    pub timezone: String,
    /// Start past this row (occurred_at, event_id): the next page.
    pub after: Option<(DateTime<Utc>, i64)>,
    /// The rows just before this one in the report's order (the previous page), read the other
    /// way from it: [`fetch`] gives them back in the report's order.
    pub before: Option<(DateTime<Utc>, i64)>,
    /// Only this event.
    pub event: Option<i64>,
}

impl Filter {
    /// One record's history reads oldest first; a report newest first.
    pub fn oldest_first(&self) -> bool {
        self.target.is_some()
    }

    /// The report query, ordered for this filter.
    pub fn sql(&self) -> String {
        self.query("report", REPORT_COLUMNS)
    }

    /// The export query: the same events, their stored columns ([`EXPORT_COLUMNS`]).
    pub fn export_sql(&self) -> String {
        self.query("report_events", EXPORT_COLUMNS)
    }

    /// Whether the query walks the index backwards from the report's order (a previous page).
    fn reversed(&self) -> bool {
        self.before.is_some() && self.after.is_none()
    }

    fn query(&self, rows: &str, columns: &str) -> String {
        let (order, after) = if self.oldest_first() != self.reversed() {
            ("asc", ">")
        } else {
            ("desc", "<")
        };
        REPORT
            .replace("{order}", order)
            .replace("{after}", after)
            .replace("{rows}", rows)
            .replace("{columns}", columns)
    }

    /// Bind parameters for [`Filter::sql`], with the row limit (None: all rows).
    pub fn params(
        &self,
        limit: Option<i64>,
    ) -> [Box<dyn tokio_postgres::types::ToSql + Sync + Send>; 12] {
        let position = self.after.or(self.before);
        [
            Box::new(self.workspace.clone()),
            Box::new(self.from),
            Box::new(self.to),
            Box::new(self.authors.clone()),
            Box::new(self.actions.clone()),
            Box::new(self.categories.clone()),
            Box::new(self.target.clone()),
            Box::new(limit),
            Box::new(position.map(|(t, _)| t)),
            Box::new(position.map(|(_, id)| id)),
            Box::new(self.event),
            Box::new(self.origins.clone()),
        ]
    }
}

/// Open a read-only transaction with Clockwatch's schema first on the search_path: one
/// consistent snapshot for a whole report, export or page.
pub async fn snapshot<'c>(
    client: &'c mut tokio_postgres::Client,
    schema: &str,
) -> Result<tokio_postgres::Transaction<'c>> {
    crate::install::require_installed(&*client, schema).await?;
    let tx = client
        .build_transaction()
        .read_only(true)
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .start()
        .await
        .context("begin")?;
    crate::migrate::set_search_path(&tx, schema).await?;
    // The report query's estimated cost passes jit_above_cost on any sizeable log, and compiling
    // it takes seconds: a year's export of 100,000 events ran 2.1 s with JIT and 0.78 s without
    // (EXPLAIN ANALYZE, bench/README.md). Row-at-a-time formatting gains nothing from it.
    tx.batch_execute("set local jit = off")
        .await
        .context("set jit")?;
    Ok(tx)
}

/// A `--from`/`--to` value as an instant: a day in the report's time zone (the whole day: `--to`
/// is the end of it) or a time with its offset, read by the same SQL function as
/// `events_between` reads its range with (report_bound()).
async fn bound(
    tx: &Transaction<'_>,
    flag: &str,
    text: &str,
    zone: &str,
    end: bool,
) -> Result<DateTime<Utc>> {
    tx.query_one("select report_bound($1, $2, $3)", &[&text, &zone, &end])
        .await
        .map(|row| row.get(0))
        .map_err(|e| match e.as_db_error() {
            Some(db) if db.code().code() == "22023" => {
                Error::Input(format!("{flag}: {}", db.message()))
            }
            _ => Error::db("read the range", &e),
        })
}

/// Make `zone` the time zone the transaction's reports show times in (the report view reads
/// it), after checking PostgreSQL knows it.
async fn set_timezone(tx: &Transaction<'_>, zone: &str, key: &str) -> Result<()> {
    // Asking PostgreSQL to use the zone is the cheap check (pg_timezone_names reads every zone
    // file: 60 ms); chrono-tz must know it too, for times shown outside the database.
    let unknown = || {
        Error::Input(format!(
            "{key}: \"{zone}\" is not a time zone PostgreSQL knows (use an IANA name such as Europe/Berlin)"
        ))
    };
    if zone.parse::<Tz>().is_err() {
        return Err(unknown());
    }
    tx.execute("select now() at time zone $1", &[&zone])
        .await
        .map_err(|e| match e.code() {
            Some(c) if c.code() == "22023" => unknown(),
            _ => Error::db("check the time zone", &e),
        })?;
    tx.execute(
        "select set_config('clockwatch.timezone', $1, true)",
        &[&zone],
    )
    .await
    .context("set the time zone")?;
    Ok(())
}

/// Check the filters against the database and resolve them. `max_days` caps the range (a
/// report's or an export's), except for one record's history, which has no range by default.
pub async fn build_filter(
    tx: &mut Transaction<'_>,
    config: &Config,
    args: &FilterArgs,
    max_days: i32,
    limit_key: &str,
) -> Result<Filter> {
    let (zone, key) = match &args.timezone {
        Some(zone) => (zone.clone(), "--timezone"),
        None => (config.timezone.clone(), "timezone"),
    };
    set_timezone(tx, &zone, key).await?;
    let categories = if args.categories.is_empty() {
        None
    } else {
        Some(
            args.categories
                .iter()
                .map(|c| Category::parse(c).map(|c| c.as_str().to_string()))
                .collect::<Result<Vec<_>>>()?,
        )
    };
    // Days are whole days in the report's time zone: --to 2026-11-07 includes all of the 7th.
    let from = match &args.from {
        Some(t) => Some(bound(tx, "--from", t, &zone, false).await?),
        None => None,
    };
    let to = match &args.to {
        Some(t) => Some(bound(tx, "--to", t, &zone, true).await?),
        None => None,
    };
    let (from, to) = match (from, to, args.target.is_some()) {
        (None, None, true) => (None, None),
        (from, to, _) => {
            let to = to.unwrap_or_else(Utc::now);
            let from = from.unwrap_or(to - chrono::Duration::days(max_days.into()));
            (Some(from), Some(to))
        }
    };
    if let (Some(from), Some(to)) = (from, to) {
        if from >= to {
            let shown = |arg: &Option<String>, t| arg.clone().unwrap_or_else(|| rfc3339(t));
            return Err(Error::Input(format!(
                "--from {} is not before --to {}: swap them",
                shown(&args.from, from),
                shown(&args.to, to)
            )));
        }
        let days = (to - from).num_seconds() as f64 / 86_400.0;
        if days > f64::from(max_days) && args.target.is_none() {
            let split_to = from + chrono::Duration::days(max_days.into());
            return Err(Error::Input(format!(
                "the range covers {:.0} days, more than the {max_days} one report may cover ({limit_key}): \
                 split it, e.g. --from {} --to {}, then --from {} onwards",
                days.ceil(),
                rfc3339(from),
                rfc3339(split_to),
                rfc3339(split_to)
            )));
        }
    }

    known_workspace(tx, config, &args.workspace).await?;

    let authors = if args.authors.is_empty() {
        None
    } else {
        Some(author_ids(tx, &args.authors).await?)
    };
    let actions = if args.actions.is_empty() {
        None
    } else {
        let row = tx
            .query_one("select action_codes($1)", &[&args.actions])
            .await
            .map_err(|e| match e.as_db_error() {
                Some(db) if db.code().code() == "22023" => Error::Input(db.message().to_string()),
                _ => Error::db("check actions", &e),
            })?;
        row.get::<_, Option<Vec<String>>>(0)
    };
    let origins = (!args.origins.is_empty()).then(|| {
        args.origins
            .iter()
            .map(|o| o.trim().to_lowercase())
            .collect()
    });
    Ok(Filter {
        workspace: args.workspace.clone(),
        from,
        to,
        authors,
        actions,
        categories,
        origins,
        target: args.target.clone(),
        timezone: zone,
        after: None,
        before: None,
        event: None,
    })
}

/// Refuse a workspace the log knows nothing of: one with no events that was never enabled. With
/// every workspace enabled (`'*'`) any id may be a workspace yet to change anything, unless the
/// config's `[workspaces]` table lists the host's workspaces: an id it has no row for is refused
/// too (when the table can be read; when not, the id is taken on trust, as without one).
async fn known_workspace(tx: &Transaction<'_>, config: &Config, workspace: &str) -> Result<()> {
    let row = tx
        .query_one(
            "select exists (select 1 from workspace_category where workspace_id = $1)
                 or exists (select 1 from report where workspace_id = $1),
                    exists (select 1 from workspace_category where workspace_id = '*')",
            &[&workspace],
        )
        .await
        .context("look up the workspace")?;
    let (listed, every): (bool, bool) = (row.get(0), row.get(1));
    if listed {
        return Ok(());
    }
    if !every {
        return Err(Error::Input(format!(
            "unknown workspace \"{workspace}\": it has no events and the audit log was never enabled for it (see `clockwatch status`)"
        )));
    }
    let host = crate::workspace::host_workspace(tx, config, workspace).await?;
    match (host.and_then(|h| h.present), &config.workspaces) {
        (Some(false), Some(workspaces)) => Err(Error::Input(format!(
            "unknown workspace \"{workspace}\": it has no events and {} has no row with {} = '{workspace}'",
            workspaces.table, workspaces.id_column
        ))),
        _ => Ok(()),
    }
}

/// Author filters are user ids the log has recorded, names it knows, or `system`, as
/// `events_between` reads them (author_ids()). Anything else is refused rather than matching
/// nothing.
pub async fn author_ids(tx: &Transaction<'_>, wanted: &[String]) -> Result<Vec<String>> {
    tx.query_one("select author_ids($1)", &[&wanted])
        .await
        .map(|row| row.get(0))
        .map_err(|e| match e.as_db_error() {
            Some(db) if db.code().code() == "22023" => Error::Input(db.message().to_string()),
            _ => Error::db("look up the authors", &e),
        })
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// One report line, as read from the database.
#[derive(Debug, Clone)]
pub struct ReportRow {
    pub event_id: i64,
    pub workspace_id: String,
    pub occurred_at: DateTime<Utc>,
    /// occurred_at in the report's time zone, formatted.
    pub local_time: String,
    /// The report's time zone, which every time of the row is shown in.
    pub time_zone: String,
    /// The source table the event came from (as the config names it).
    pub source: String,
    pub author_id: Option<String>,
    pub author: String,
    pub action: String,
    pub action_code: String,
    pub category: String,
    pub origin: Option<String>,
    pub target_id: Option<String>,
    pub target: Option<String>,
    pub caused_by: Option<i64>,
    /// The names the ids in its changes bore when it was written: `{column: {id: name}}`.
    pub change_names: Option<Value>,
    /// Where its author came from: the setting (and key) that named them, or `column`.
    pub actor_source: Option<String>,
    pub previous_value: Option<Value>,
    pub new_value: Option<Value>,
    /// Clockify's detail fields, in [`DETAIL_FIELDS`] order.
    pub details: Vec<Option<String>>,
}

/// Detail columns of the report view, with their labels.
pub const DETAIL_FIELDS: [(&str, &str); 18] = [
    ("user", "User"),
    ("description", "Description"),
    ("project", "Project"),
    ("task", "Task"),
    ("client", "Client"),
    ("kiosk", "Kiosk"),
    ("type", "Type"),
    ("start_date", "Start date"),
    ("start_time", "Start time"),
    ("end_date", "End date"),
    ("end_time", "End time"),
    ("duration", "Duration"),
    ("billable", "Billable"),
    ("billable_rate", "Billable rate"),
    ("cost_rate", "Cost rate"),
    ("approved", "Approved"),
    ("invoiced", "Invoiced"),
    ("tags", "Tags"),
];

impl ReportRow {
    /// The action as Clockify shows it: a creation says where it came from, "Created time
    /// entry (Timer)".
    pub fn action_with_origin(&self) -> String {
        match &self.origin {
            Some(origin) if self.action_code.ends_with(".created") => {
                format!("{} ({origin})", self.action)
            }
            _ => self.action.clone(),
        }
    }

    pub fn from_row(row: &Row) -> ReportRow {
        let changed_values = |row: &Row, column: &str| {
            row.get::<_, Option<JsonText>>(column)
                .map(|text| crate::image::changed_values(text.0))
        };
        ReportRow {
            event_id: row.get("event_id"),
            workspace_id: row.get("workspace_id"),
            occurred_at: row.get("occurred_at"),
            local_time: row.get("local_time"),
            time_zone: row.get("time_zone"),
            source: row.get("source"),
            author_id: row.get("author_id"),
            author: row.get("author"),
            action: row.get("action"),
            action_code: row.get("action_code"),
            category: row.get("category"),
            origin: row.get("origin"),
            target_id: row.get("target_id"),
            target: row.get("target"),
            caused_by: row.get("caused_by"),
            change_names: row
                .get::<_, Option<JsonText>>("change_names")
                .and_then(|text| serde_json::from_str(text.0).ok()),
            actor_source: row.get("actor_source"),
            previous_value: changed_values(row, "previous_value"),
            new_value: changed_values(row, "new_value"),
            details: DETAIL_FIELDS
                .iter()
                .map(|(column, _)| row.get(*column))
                .collect(),
        }
    }

    /// The changed fields as `field: previous -> new`, in field order, each value shown as
    /// `display` says.
    pub fn changes(&self, display: &Display) -> Vec<String> {
        self.change_table(display)
            .into_iter()
            .map(|(field, before, after)| format!("{field}: {before} -> {after}"))
            .collect()
    }

    /// The changed fields side by side: (field, previous, new), in field order.
    pub fn change_table(&self, display: &Display) -> Vec<(String, String, String)> {
        let empty = serde_json::Map::new();
        let before = self
            .previous_value
            .as_ref()
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let after = self
            .new_value
            .as_ref()
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let fields: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
        fields
            .into_iter()
            .map(|f| {
                let names = self.change_names.as_ref().and_then(|n| n.get(f.as_str()));
                let show =
                    |v: Option<&Value>| display.value(names, &self.source, f, &self.time_zone, v);
                (f.clone(), show(before.get(f)), show(after.get(f)))
            })
            .collect()
    }

    /// The changed fields as the page shows them: each by what it is to a reader (the row's
    /// state, a detail field, a column), in the details' order, then other columns by name;
    /// values in `words`.
    pub fn labelled_changes(
        &self,
        display: &Display,
        words: &Words,
    ) -> Vec<(FieldName, String, String)> {
        let empty = serde_json::Map::new();
        let object = |v: &Option<Value>| v.as_ref().and_then(Value::as_object).cloned();
        let before = object(&self.previous_value).unwrap_or_else(|| empty.clone());
        let after = object(&self.new_value).unwrap_or(empty);
        let fields: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
        let mut rows: Vec<(FieldName, String, String)> = fields
            .into_iter()
            .map(|f| {
                let names = self.change_names.as_ref().and_then(|n| n.get(f.as_str()));
                let show = |v: Option<&Value>| {
                    display.shown(names, &self.source, f, &self.time_zone, v, words)
                };
                (
                    display.field_name(&self.source, f),
                    show(before.get(f)),
                    show(after.get(f)),
                )
            })
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows
    }

    /// The detail fields that have a value, labelled, as a reader sees them.
    pub fn detail_table(&self, display: &Display) -> Vec<(&'static str, String)> {
        DETAIL_FIELDS
            .iter()
            .zip(&self.details)
            .filter_map(|((field, label), value)| {
                value.as_ref().map(|v| (*label, display.detail(field, v)))
            })
            // So an admin can tell an author the application asserted from one inferred.
            .chain(self.actor_source.clone().map(|from| ("Author from", from)))
            .collect()
    }

    /// The target as a reader sees it: its name and id, `#id` alone, or the name alone.
    pub fn target_label(&self) -> String {
        match (&self.target, &self.target_id) {
            (Some(name), Some(id)) => format!("{name} (#{id})"),
            (None, Some(id)) => format!("#{id}"),
            (Some(name), None) => name.clone(),
            (None, None) => String::new(),
        }
    }
}

/// A changed field as a reader knows it: the row's deleted-or-not, one of Clockify's detail
/// fields (`project`, `start`, as [`Display::FIELD_ORDER`] names them), or a column no detail
/// maps.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum FieldName {
    Status,
    Detail(usize),
    Column(String),
}

impl FieldName {
    /// The detail field's name, for a [`FieldName::Detail`].
    pub fn detail(&self) -> Option<&'static str> {
        match self {
            FieldName::Detail(i) => Display::FIELD_ORDER.get(*i).copied(),
            _ => None,
        }
    }

    /// A column's name as words: `last_login_at` is "Last login at".
    pub fn column_words(column: &str) -> String {
        let spaced = column.replace('_', " ");
        let mut chars = spaced.trim().chars();
        match chars.next() {
            Some(first) => first.to_uppercase().chain(chars).collect(),
            None => column.to_string(),
        }
    }
}

/// The words values are shown with, in the reader's language.
#[derive(Debug, Clone)]
pub struct Words {
    pub empty: String,
    pub yes: String,
    pub no: String,
    pub active: String,
    pub deleted: String,
}

impl Default for Words {
    fn default() -> Words {
        Words {
            empty: "(empty)".into(),
            yes: "Yes".into(),
            no: "No".into(),
            active: "Active".into(),
            deleted: "Deleted".into(),
        }
    }
}

/// How changed values are shown to a reader: as their detail field is (a duration column as
/// `01:45:00`, a flag as Yes/No, a project, task, client, user or tag id by its name), every
/// time in the report's zone, a list joined. `previous_value` and `new_value` stay raw in SQL
/// and in exports.
#[derive(Debug, Clone, Default)]
pub struct Display {
    /// (source, column) -> how its values read.
    kinds: HashMap<(String, String), Kind>,
    /// The zone of the host's zone-less times.
    naive: Tz,
    /// (source, column) -> the detail field it feeds, by its place in [`Display::FIELD_ORDER`].
    fields: HashMap<(String, String), usize>,
    /// (source, column) -> the soft-delete column, and whether it is inverted (true = live).
    soft_delete: HashMap<(String, String), bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// A number counted in this unit, or an interval.
    Duration(DurationUnit),
    Flag,
    /// An id named in `known_name` under this category ('author' for users).
    Named(&'static str),
}

impl Display {
    /// Detail fields in the order a reader sees them, as the details list them (start and end
    /// each stand for their date and time).
    pub const FIELD_ORDER: [&'static str; 16] = [
        "user",
        "description",
        "project",
        "task",
        "client",
        "kiosk",
        "type",
        "start",
        "end",
        "duration",
        "billable",
        "billable_rate",
        "cost_rate",
        "approved",
        "invoiced",
        "tags",
    ];

    pub fn new(config: &Config) -> Display {
        let mut kinds = HashMap::new();
        let mut fields = HashMap::new();
        let mut soft_delete = HashMap::new();
        for source in &config.sources {
            if let Some(column) = &source.soft_delete_column {
                soft_delete.insert(
                    (source.table.clone(), column.clone()),
                    source.soft_delete_inverted,
                );
            }
            for (field, column) in source.fields.mapped() {
                if let Some(i) = Display::FIELD_ORDER.iter().position(|f| *f == field) {
                    fields.insert((source.table.clone(), column.to_string()), i);
                }
                let kind = match field {
                    "duration" => Kind::Duration(
                        source
                            .fields
                            .duration
                            .as_ref()
                            .map_or(DurationUnit::Seconds, |d| d.unit()),
                    ),
                    "billable" | "approved" | "invoiced" => Kind::Flag,
                    "project" => Kind::Named("projects"),
                    "task" => Kind::Named("tasks"),
                    "client" => Kind::Named("clients"),
                    "tags" => Kind::Named("tags"),
                    "user" => Kind::Named("author"),
                    _ => continue,
                };
                kinds.insert((source.table.clone(), column.to_string()), kind);
            }
        }
        Display {
            kinds,
            naive: config.naive_zone(),
            fields,
            soft_delete,
        }
    }

    /// What a changed column is to a reader.
    pub fn field_name(&self, source: &str, column: &str) -> FieldName {
        let key = (source.to_string(), column.to_string());
        if self.soft_delete.contains_key(&key) {
            FieldName::Status
        } else if let Some(i) = self.fields.get(&key) {
            FieldName::Detail(*i)
        } else {
            FieldName::Column(column.to_string())
        }
    }

    /// A soft-delete column's value as the row's state: deleted or active.
    fn status(&self, inverted: bool, value: Option<&Value>, words: &Words) -> String {
        let deleted = match value {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b != inverted,
            Some(Value::String(s)) if s == "true" || s == "false" => (s == "true") != inverted,
            // A time or date: set once deleted.
            Some(_) => true,
        };
        if deleted {
            &words.deleted
        } else {
            &words.active
        }
        .clone()
    }

    /// A changed value as the page shows it, in the reader's words.
    #[allow(clippy::too_many_arguments)]
    pub fn shown(
        &self,
        names: Option<&Value>,
        source: &str,
        column: &str,
        zone: &str,
        value: Option<&Value>,
        words: &Words,
    ) -> String {
        if let Some(inverted) = self
            .soft_delete
            .get(&(source.to_string(), column.to_string()))
        {
            return self.status(*inverted, value, words);
        }
        let text = self.value(names, source, column, zone, value);
        match value {
            None | Some(Value::Null) => words.empty.clone(),
            Some(Value::Bool(_)) if text == "Yes" => words.yes.clone(),
            Some(Value::Bool(_)) if text == "No" => words.no.clone(),
            _ if text.is_empty() => words.empty.clone(),
            _ => text,
        }
    }

    /// A detail as the terminal shows it: flags as Yes/No, as their changes are.
    fn detail(&self, field: &str, value: &str) -> String {
        match (field, value) {
            ("billable" | "approved" | "invoiced", "true") => "Yes".into(),
            ("billable" | "approved" | "invoiced", "false") => "No".into(),
            _ => value.to_string(),
        }
    }

    fn value(
        &self,
        names: Option<&Value>,
        source: &str,
        column: &str,
        zone: &str,
        value: Option<&Value>,
    ) -> String {
        let kind = self.kinds.get(&(source.to_string(), column.to_string()));
        let named = |_category: &str, v: &Value| {
            let id = scalar_text(v).unwrap_or_default();
            names
                .and_then(|n| n.get(&id))
                .and_then(Value::as_str)
                .map_or(id, str::to_string)
        };
        match (kind, value) {
            (_, None | Some(Value::Null)) => "(empty)".into(),
            (Some(Kind::Flag), Some(Value::Bool(b))) => if *b { "Yes" } else { "No" }.into(),
            (Some(Kind::Duration(unit)), Some(v @ (Value::Number(_) | Value::String(_)))) => {
                let text = match v {
                    Value::String(t) => t.clone(),
                    other => other.to_string(),
                };
                crate::normalize::seconds(&text, *unit).map_or(text, crate::detail::clock)
            }
            (Some(Kind::Named(category)), Some(Value::Array(items))) => items
                .iter()
                .map(|v| named(category, v))
                .collect::<Vec<_>>()
                .join(", "),
            (Some(Kind::Named(category)), Some(v)) => named(category, v),
            (_, Some(Value::String(text))) => {
                match (
                    crate::normalize::instant(text, self.naive),
                    zone.parse::<Tz>(),
                ) {
                    (Some(t), Ok(zone)) => t
                        .with_timezone(&zone)
                        .format("%Y-%m-%d %H:%M:%S")
                        .to_string(),
                    _ => text.clone(),
                }
            }
            (_, Some(Value::Array(items))) => items
                .iter()
                .map(|v| scalar_text(v).unwrap_or_default())
                .collect::<Vec<_>>()
                .join(", "),
            (_, Some(other)) => scalar_text(other).unwrap_or_default(),
        }
    }
}

/// Read one page of the report.
pub async fn fetch(tx: &Transaction<'_>, filter: &Filter, limit: i64) -> Result<Vec<ReportRow>> {
    let params = filter.params(Some(limit));
    let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
        .iter()
        .map(|p| p.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect();
    let rows = tx
        .query(&filter.sql(), &refs)
        .await
        .context("read the report")?;
    let mut rows: Vec<ReportRow> = rows.iter().map(ReportRow::from_row).collect();
    if filter.reversed() {
        rows.reverse();
    }
    Ok(rows)
}

/// The terminal table: one line per event, details below it when asked for.
pub fn render(rows: &[ReportRow], details: bool, display: &Display) -> String {
    const WIDEST_CHANGE: usize = 80;
    let zone = rows.first().map(|r| r.time_zone.as_str()).unwrap_or("UTC");
    let time = format!("TIME ({zone})");
    let header = [time.as_str(), "AUTHOR", "ACTION", "TARGET", "CHANGES"];
    let mut out = String::new();
    if !details {
        let lines: Vec<[String; 5]> = rows
            .iter()
            .map(|r| {
                let changes = r
                    .changes(display)
                    .into_iter()
                    .map(|c| shorten(&c, WIDEST_CHANGE))
                    .collect::<Vec<_>>()
                    .join("; ");
                [
                    r.local_time.clone(),
                    printable(&r.author),
                    printable(&r.action_with_origin()),
                    printable(&r.target_label()),
                    printable(&changes),
                ]
            })
            .collect();
        out.push_str(&crate::table::render(&header, &lines));
        return out;
    }
    out.push_str(&format!("Times in {zone}\n"));
    for r in rows {
        out.push_str(&format!(
            "{}  {}  {}  {}\n",
            r.local_time,
            printable(&r.author),
            printable(&r.action_with_origin()),
            printable(&r.target_label())
        ));
        let mut facts: Vec<(String, String)> = vec![("Event".into(), r.event_id.to_string())];
        if let Some(id) = &r.author_id {
            facts.push(("Author id".into(), id.clone()));
        }
        if let Some(origin) = &r.origin {
            facts.push(("Origin".into(), origin.clone()));
        }
        if let Some(cause) = r.caused_by {
            facts.push(("Caused by event".into(), cause.to_string()));
        }
        for (label, value) in r.detail_table(display) {
            facts.push((label.to_string(), value));
        }
        for change in r.changes(display) {
            facts.push(("Changed".into(), change));
        }
        for (label, value) in facts {
            out.push_str(&format!("    {label}: {}\n", printable(&value)));
        }
    }
    out
}

/// Host values reach the terminal only as visible text: a control character (an escape sequence
/// that would recolour, move the cursor or retitle the window, a newline that would forge a line
/// of the report) is shown escaped, as `\u{1b}`.
pub fn printable(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max - 1).collect();
    format!("{cut}…")
}

/// The text of a scalar JSON value as the host would print it; None for null.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

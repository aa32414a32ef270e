//! The configuration file: which host tables Clockwatch audits and how their columns map to
//! Clockify's report fields. The file is the only thing that ties Clockwatch to a host schema, so
//! it is read strictly (unknown keys are refused: a typo must not silently disable a mapping) and
//! checked twice: here for shape, and by `install` against the live catalog.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};

/// Where the config is looked for when `--config` is not given, in order.
pub const DEFAULT_PATHS: [&str; 2] = ["config/clockwatch.toml", "/etc/clockwatch/clockwatch.toml"];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Clockwatch's own schema.
    #[serde(default = "default_schema")]
    pub schema: String,
    /// A role to grant what the daemon needs (and nothing more) at install; the daemon then
    /// connects as it. Without it, run the daemon as the role that installs.
    #[serde(default)]
    pub daemon_role: Option<String>,
    /// Database to use when neither `--database-url` nor the environment names one.
    #[serde(default)]
    pub database_url: Option<String>,
    /// A database of its own for the audit log (events, chain, reports, retention), when neither
    /// `--log-database-url` nor `CLOCKWATCH_LOG_DATABASE_URL` names one. Unset: the log lives in
    /// the host database beside staging. Set, the host keeps capture and staging only, and the
    /// daemon moves each change from one to the other exactly once (src/drain.rs).
    #[serde(default)]
    pub log_database_url: Option<String>,
    /// This host's name in a log database that several hosts share (tenants, shards, regions):
    /// its log is kept there in a schema of its own, `<schema>_<source_id>`, so that the ids of
    /// one host's workspaces, records and staged changes never meet another's. Needs
    /// `log_database_url`. Overridden by `--source-id` or `CLOCKWATCH_SOURCE_ID`, for reports.
    #[serde(default)]
    pub source_id: Option<String>,
    /// Time zone of the detail dates and times in the report views (IANA name).
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Longest date range of one report (Clockify: 30 days).
    #[serde(default = "default_max_report_days")]
    pub max_report_days: i32,
    /// How long events are kept, as a PostgreSQL interval ("365 days", "18 months").
    #[serde(default = "default_retention")]
    pub retention: String,
    /// `status` reports the pipeline unhealthy when the oldest staged change is older than this.
    #[serde(default = "default_max_lag_secs")]
    pub max_lag_secs: u64,
    /// Longest date range of one export.
    #[serde(default = "default_max_export_days")]
    pub max_export_days: i32,
    /// The workspace of a single-workspace application: every source without a
    /// `workspace_column` belongs to it.
    #[serde(default)]
    pub workspace: Option<String>,
    /// The time zone the host's `timestamp without time zone` values are in (IANA name).
    #[serde(default = "default_timezone")]
    pub naive_timestamps: String,
    #[serde(default)]
    pub daemon: DaemonConfig,
    /// `clockwatch serve`: the Audit Log page.
    #[serde(default)]
    pub serve: ServeConfig,
    /// Where actor ids get their names; defaults to the users source.
    #[serde(default)]
    pub authors: Option<AuthorsConfig>,
    /// A table the application adds a row to each time a user logs in: each row is a "Logged
    /// in" event of that user. Audited as a source of its own (see `SourceConfig::login_user`).
    #[serde(default)]
    pub logins: Option<LoginsConfig>,
    /// The locale names kept as translations (jsonb: `{"en_US": "Website", "fr_BE": "Site"}`)
    /// read in, then `en_US`, then their first translation.
    #[serde(default)]
    pub name_locale: Option<String>,
    /// Where workspace ids get their names (reports, the page); ids alone when unset.
    #[serde(default)]
    pub workspaces: Option<WorkspacesConfig>,
    /// The session settings capture reads the actor from, in order, the first naming one
    /// winning: a setting's name, or `{ setting = "request.jwt.claims", key = "sub" }` for one
    /// holding JSON. Default: `["clockwatch.actor"]`.
    #[serde(default = "default_actor_settings")]
    pub actor_settings: Vec<ActorSetting>,
    /// Actor ids that mean System (an ORM's superuser that runs scheduled jobs).
    #[serde(default)]
    pub system_actors: Vec<String>,
    #[serde(default, rename = "source")]
    pub sources: Vec<SourceConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// Staged changes moved to events per transaction.
    #[serde(default = "default_batch_size")]
    pub batch_size: i64,
    /// How often the daemon looks at staging without being notified (notifications are lost
    /// while it is disconnected, and capture only notifies an idle daemon).
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// How often the daemon looks at staging while changes keep coming (writers then skip
    /// NOTIFY) at a light load. Each look costs a claim, an append and a commit however few
    /// changes it finds, so a longer interval gathers more changes per batch for less CPU, and
    /// each waits longer. Above 500 changes a second the daemon looks less often, in proportion
    /// to the rate, up to `busy_poll_max_ms` (src/daemon.rs, `busy_wait`).
    #[serde(default = "default_busy_poll_ms")]
    pub busy_poll_ms: u64,
    /// The longest the daemon waits between looks while changes keep coming, however busy the
    /// host: how late an event may land in the log under a heavy load. Unset: 100 ms, or
    /// busy_poll_ms if that is longer.
    #[serde(default)]
    pub busy_poll_max_ms: Option<u64>,
    /// Longest wait between reconnection attempts.
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
    /// A batch or query with no answer for this long means the connection is dead (a half-open
    /// TCP connection, a frozen server): the daemon drops it and reconnects.
    #[serde(default = "default_query_timeout_ms")]
    pub query_timeout_ms: u64,
    /// Connections that drain a backlog together. With two, one connection's batch is being
    /// normalised by the daemon while the other's is being written by PostgreSQL; an idle or
    /// lightly loaded daemon drains on its main connection alone.
    #[serde(default = "default_drain_connections")]
    pub drain_connections: u32,
    /// Image bytes one batch may claim (a batch takes at least one change, however large). Rows
    /// of ordinary size never reach it (1,000 time entries are about 300 KB); 1,000 rows of
    /// 600 KB would ask PostgreSQL for one statement of gigabytes, which it refuses. The daemon
    /// holds a batch of large values many times over while it normalises and sends it (the
    /// details repeat the description, and the statement is built in buffers that grow by
    /// doubling): draining 600 KB values peaked at 181-190 MB of RSS with 8 MiB batches and
    /// 132 MB with 4 MiB (bench/README.md).
    #[serde(default = "default_batch_bytes")]
    pub batch_bytes: i64,
    /// A single change whose images are larger than this is kept in `dead_letter`, whole,
    /// rather than written as an event (a jsonb value holds at most 256 MB).
    #[serde(default = "default_max_change_bytes")]
    pub max_change_bytes: i64,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            batch_size: default_batch_size(),
            poll_interval_ms: default_poll_interval_ms(),
            busy_poll_ms: default_busy_poll_ms(),
            busy_poll_max_ms: None,
            max_backoff_ms: default_max_backoff_ms(),
            query_timeout_ms: default_query_timeout_ms(),
            drain_connections: default_drain_connections(),
            batch_bytes: default_batch_bytes(),
            max_change_bytes: default_max_change_bytes(),
        }
    }
}

impl DaemonConfig {
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }
    pub fn busy_poll(&self) -> Duration {
        Duration::from_millis(self.busy_poll_ms)
    }
    pub fn busy_poll_max(&self) -> Duration {
        let max = self
            .busy_poll_max_ms
            .unwrap_or_else(|| default_busy_poll_max_ms().max(self.busy_poll_ms));
        Duration::from_millis(max)
    }
    pub fn max_backoff(&self) -> Duration {
        Duration::from_millis(self.max_backoff_ms)
    }
    pub fn query_timeout(&self) -> Duration {
        Duration::from_millis(self.query_timeout_ms)
    }
}

/// The Audit Log page (`clockwatch serve`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// Address and port to listen on (`--listen` overrides it).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The address the page is reached at from a browser, which signed links start with
    /// (`https://audit.example.com`); `http://<listen>` when unset.
    #[serde(default)]
    pub base_url: Option<String>,
    /// A file holding the link secret, when `CLOCKWATCH_LINK_SECRET` is not set.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// Origins that may show the page in a frame (the host application's), e.g.
    /// `["https://app.example.com"]`; none by default.
    #[serde(default)]
    pub frame_ancestors: Vec<String>,
    /// Database connections the page holds at most: a request beyond them waits up to 2 s, then
    /// is answered 503 with Retry-After, so link holders can never take the application's
    /// connections.
    #[serde(default = "default_serve_connections")]
    pub max_connections: usize,
    /// Longest a response may take, a CSV download included (it holds a connection and a
    /// snapshot of the log all that time).
    #[serde(default = "default_response_secs")]
    pub response_secs: u64,
    /// A CSV download whose reader takes no data for this long is ended, its connection freed.
    #[serde(default = "default_slow_reader_secs")]
    pub slow_reader_secs: u64,
    /// Where a viewer whose link has expired is sent (the application's page that mints a new
    /// one), from the page and from Export alike; without it they see why the link was refused.
    #[serde(default)]
    pub return_url: Option<String>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: default_listen(),
            base_url: None,
            secret_file: None,
            frame_ancestors: Vec::new(),
            max_connections: default_serve_connections(),
            response_secs: default_response_secs(),
            slow_reader_secs: default_slow_reader_secs(),
            return_url: None,
        }
    }
}

impl ServeConfig {
    /// Where links start.
    pub fn base_url(&self, listen: &str) -> String {
        self.base_url
            .clone()
            .unwrap_or_else(|| format!("http://{listen}"))
            .trim_end_matches('/')
            .to_string()
    }
}

/// A session setting capture reads the actor from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum ActorSetting {
    Plain(String),
    Json { setting: String, key: String },
}

impl ActorSetting {
    pub fn setting(&self) -> &str {
        match self {
            ActorSetting::Plain(s) | ActorSetting::Json { setting: s, .. } => s,
        }
    }

    /// As settings.actor_settings keeps it: `{"setting": ..., "key": ...}`.
    pub fn json(&self) -> serde_json::Value {
        match self {
            ActorSetting::Plain(s) => serde_json::json!({ "setting": s }),
            ActorSetting::Json { setting, key } => {
                serde_json::json!({ "setting": setting, "key": key })
            }
        }
    }
}

fn default_actor_settings() -> Vec<ActorSetting> {
    vec![ActorSetting::Plain("clockwatch.actor".into())]
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginsConfig {
    pub table: String,
    /// The column holding the id of the user who logged in (an author id).
    pub user_column: String,
    #[serde(default = "default_id_column")]
    pub id_column: String,
    /// The login's workspace; without one, a login shows in every workspace.
    #[serde(default)]
    pub workspace_column: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorsConfig {
    pub table: String,
    #[serde(default = "default_id_column")]
    pub id_column: String,
    pub name_column: NameColumns,
    /// For applications that log each user in as a database role of their own: the column
    /// holding that role's name. A session whose `session_user` is in it is that row's user
    /// when no actor setting and no `actor_column` names one.
    #[serde(default)]
    pub db_role_column: Option<String>,
}

/// The host's table of workspaces (`[workspaces]`): a report, an export and the page name the
/// workspace they show from it, read by the reporting role at report time (src/workspace.rs).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspacesConfig {
    /// `schema.table`; a bare name means `public.name`.
    pub table: String,
    /// The column holding the id events carry as their workspace (compared as text).
    #[serde(default = "default_id_column")]
    pub id_column: String,
    pub name_column: NameColumns,
}

impl WorkspacesConfig {
    pub fn table_name(&self) -> Result<TableName> {
        TableName::parse(&self.table).map_err(|e| Error::Config(format!("workspaces.table: {e}")))
    }
}

/// The column, or columns in order of preference, that name a record: `"full_name"` or
/// `["alias", "username"]` (the first that is neither null nor empty wins), or a column that
/// refers to the row of another table holding the name:
/// `{ column = "partner_id", table = "public.res_partner", name_column = "name" }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum NameColumns {
    One(String),
    Several(Vec<String>),
    Reference(NameReference),
}

/// A name kept in another table: `column` of this table holds the id (`id_column`, by default
/// `id`) of a row of `table`, whose `name_column` is the name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameReference {
    pub column: String,
    pub table: String,
    #[serde(default = "default_id_column")]
    pub id_column: String,
    pub name_column: String,
}

impl NameReference {
    /// What names looked up through this reference are kept under (see `normalize::NameRef`).
    pub fn key(&self) -> String {
        format!("{}.{}", self.table, self.name_column)
    }
}

impl NameColumns {
    /// The columns of the record's own table: its name columns, or the column referring to the
    /// row that holds the name.
    pub fn columns(&self) -> &[String] {
        match self {
            NameColumns::One(c) => std::slice::from_ref(c),
            NameColumns::Several(cs) => cs,
            NameColumns::Reference(r) => std::slice::from_ref(&r.column),
        }
    }

    pub fn reference(&self) -> Option<&NameReference> {
        match self {
            NameColumns::Reference(r) => Some(r),
            _ => None,
        }
    }
}

/// A detail field's column: `"user_id"`, or a reference to the row of another table that names
/// it (`{ column = "employee_id", table = "public.hr_employee", name_column = "name" }`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum FieldColumn {
    Column(String),
    Reference(NameReference),
}

impl FieldColumn {
    pub fn column(&self) -> &str {
        match self {
            FieldColumn::Column(c) => c,
            FieldColumn::Reference(r) => &r.column,
        }
    }

    pub fn reference(&self) -> Option<&NameReference> {
        match self {
            FieldColumn::Reference(r) => Some(r),
            FieldColumn::Column(_) => None,
        }
    }
}

/// The audited categories, as Clockify's Audit Log settings name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub enum Category {
    TimeEntries,
    Projects,
    Tasks,
    Clients,
    Tags,
    Expenses,
    Users,
}

impl Category {
    pub const ALL: [Category; 7] = [
        Category::TimeEntries,
        Category::Projects,
        Category::Tasks,
        Category::Clients,
        Category::Tags,
        Category::Expenses,
        Category::Users,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::TimeEntries => "time_entries",
            Category::Projects => "projects",
            Category::Tasks => "tasks",
            Category::Clients => "clients",
            Category::Tags => "tags",
            Category::Expenses => "expenses",
            Category::Users => "users",
        }
    }

    /// Singular form used in action codes (`time_entry.created`).
    pub fn entity(self) -> &'static str {
        match self {
            Category::TimeEntries => "time_entry",
            Category::Projects => "project",
            Category::Tasks => "task",
            Category::Clients => "client",
            Category::Tags => "tag",
            Category::Expenses => "expense",
            Category::Users => "user",
        }
    }

    pub fn parse(text: &str) -> Result<Category> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str() == text.trim())
            .ok_or_else(|| {
                Error::Input(format!(
                    "unknown category \"{text}\" (expected one of: {})",
                    Category::ALL.map(Category::as_str).join(", ")
                ))
            })
    }
}

impl TryFrom<String> for Category {
    type Error = String;
    fn try_from(text: String) -> std::result::Result<Category, String> {
        Category::parse(&text).map_err(|e| e.to_string())
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One audited host table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub category: Category,
    /// `schema.table`; a bare name means `public.name`.
    pub table: String,
    /// The column that identifies a row (the event's target id).
    #[serde(default = "default_id_column")]
    pub id_column: String,
    /// The column holding each row's workspace; none in a single-workspace application (the
    /// top-level `workspace` then says which).
    #[serde(default)]
    pub workspace_column: Option<String>,
    /// When no actor setting names one: an INSERT or UPDATE is authored by the new row's value
    /// of this column (an ORM's `write_uid`). A DELETE stays System: the column says who wrote
    /// the row last, not who deleted it.
    #[serde(default)]
    pub actor_column: Option<String>,
    /// The condition a row must meet to be audited (`project_id is not null`): columns and
    /// constants compared, IS [NOT] NULL, [NOT] IN, AND, OR, NOT (src/filter.rs). A row that
    /// leaves it in an update is logged as deleted, one that enters it as created.
    #[serde(default)]
    pub filter: Option<String>,
    /// Where a row whose workspace column is NULL belongs: "*" for every workspace (a record
    /// shared by all, as Odoo's customers with no company are), or one workspace's id. Without
    /// it such a change is set aside in dead_letter, with the reason.
    #[serde(default)]
    pub workspace_if_null: Option<String>,
    /// What the target is called in reports: a column, or a list of them in order of
    /// preference.
    #[serde(default)]
    pub name_column: Option<NameColumns>,
    /// A column that says the row is deleted without removing it: a time or date that is null
    /// while the row is live, or a boolean that is true once deleted (`is_deleted`).
    #[serde(default)]
    pub soft_delete_column: Option<String>,
    /// The boolean soft_delete_column is false once deleted (`visible`, `active`).
    #[serde(default)]
    pub soft_delete_inverted: bool,
    /// A column saying where the row came from; its values map to origins through `origins`.
    #[serde(default)]
    pub origin_column: Option<String>,
    #[serde(default)]
    pub origins: BTreeMap<String, String>,
    /// Users only: the column that changes when the user logs in.
    #[serde(default)]
    pub login_column: Option<String>,
    /// Users only: the column holding the user's role.
    #[serde(default)]
    pub role_column: Option<String>,
    /// Columns whose changes alone are not worth an event (e.g. `updated_at`).
    #[serde(default)]
    pub ignore_columns: Vec<String>,
    /// Columns never copied out of the host table at all (password hashes, PINs).
    #[serde(default)]
    pub exclude_columns: Vec<String>,
    #[serde(default)]
    pub fields: Fields,
    /// Set for the source `[logins]` makes: the column naming the user who logged in. Not read
    /// from a `[[source]]`.
    #[serde(skip)]
    pub login_user: Option<String>,
}

/// Report detail field -> host column. All optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fields {
    /// An author id (named as authors are), or a reference to the table that names the person.
    pub user: Option<FieldColumn>,
    pub description: Option<String>,
    pub project: Option<String>,
    pub task: Option<String>,
    pub client: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub billable: Option<String>,
    pub billable_rate: Option<String>,
    pub cost_rate: Option<String>,
    pub approved: Option<String>,
    pub invoiced: Option<String>,
    pub kiosk: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// A column of tag ids (an array), or a link table holding one row per tag of a record.
    pub tags: Option<TagsField>,
    /// A number (of seconds, or of `unit`) or an interval, shown as a duration: `"duration"` or
    /// `{ column = "unit_amount", unit = "hours" }`.
    pub duration: Option<DurationField>,
}

/// The column a duration is read from, and what its numbers count.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum DurationField {
    Column(String),
    Counted {
        column: String,
        #[serde(default)]
        unit: DurationUnit,
    },
}

/// What a number in a duration column counts (an interval column counts itself).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DurationUnit {
    #[default]
    Seconds,
    Minutes,
    Hours,
}

impl DurationField {
    pub fn column(&self) -> &str {
        match self {
            DurationField::Column(c) | DurationField::Counted { column: c, .. } => c,
        }
    }

    pub fn unit(&self) -> DurationUnit {
        match self {
            DurationField::Column(_) => DurationUnit::Seconds,
            DurationField::Counted { unit, .. } => *unit,
        }
    }

    /// Whether the unit was given (it applies to numbers only).
    pub fn has_unit(&self) -> bool {
        matches!(self, DurationField::Counted { .. })
    }
}

impl DurationUnit {
    pub fn seconds(self) -> f64 {
        match self {
            DurationUnit::Seconds => 1.0,
            DurationUnit::Minutes => 60.0,
            DurationUnit::Hours => 3600.0,
        }
    }
}

/// Where a record's tags are: an array column of the source table (`"tag_ids"`), or a link
/// table with one row per tag (`"timesheet_tags.tag_id"`, joined to the source through the
/// link table's foreign key; the long form names the column that points at the record, for a
/// link table without a foreign key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagsField {
    Column(String),
    Link(LinkTags),
}

/// A link table holding a record's tags.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkTags {
    /// `schema.table`; a bare name means `public.name`.
    pub table: String,
    /// The column holding the tag's id.
    pub column: String,
    /// The column holding the record's id; found from the foreign key when left out.
    #[serde(default)]
    pub parent_column: Option<String>,
}

impl<'de> Deserialize<'de> for TagsField {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(
            untagged,
            expecting = "a column of tag ids, \"link_table.tag_column\", or { table = \"...\", column = \"...\", parent_column = \"...\" }"
        )]
        enum Form {
            Short(String),
            Long(LinkTags),
        }
        match Form::deserialize(d)? {
            Form::Long(link) => Ok(TagsField::Link(link)),
            Form::Short(text) => match text.rsplit_once('.') {
                None => Ok(TagsField::Column(text)),
                Some((table, column)) if !table.is_empty() && !column.is_empty() => {
                    Ok(TagsField::Link(LinkTags {
                        table: table.to_string(),
                        column: column.to_string(),
                        parent_column: None,
                    }))
                }
                Some(_) => Err(serde::de::Error::custom(format!(
                    "\"{text}\" is neither a column nor \"link_table.tag_column\""
                ))),
            },
        }
    }
}

impl TagsField {
    /// The array column of the source table, when the tags are kept in one.
    pub fn column(&self) -> Option<&str> {
        match self {
            TagsField::Column(c) => Some(c),
            TagsField::Link(_) => None,
        }
    }

    pub fn link(&self) -> Option<&LinkTags> {
        match self {
            TagsField::Column(_) => None,
            TagsField::Link(l) => Some(l),
        }
    }
}

impl Fields {
    /// (detail field, host column) for every mapped field.
    pub fn mapped(&self) -> Vec<(&'static str, &str)> {
        let all = [
            ("description", &self.description),
            ("project", &self.project),
            ("task", &self.task),
            ("client", &self.client),
            ("start", &self.start),
            ("end", &self.end),
            ("billable", &self.billable),
            ("billable_rate", &self.billable_rate),
            ("cost_rate", &self.cost_rate),
            ("approved", &self.approved),
            ("invoiced", &self.invoiced),
            ("kiosk", &self.kiosk),
            ("type", &self.kind),
        ];
        let tags = self.tags.as_ref().and_then(TagsField::column);
        let duration = self.duration.as_ref().map(DurationField::column);
        let user = self.user.as_ref().map(FieldColumn::column);
        all.into_iter()
            .map(|(field, column)| (field, column.as_deref()))
            .chain([("user", user), ("tags", tags), ("duration", duration)])
            .filter_map(|(field, column)| column.map(|c| (field, c)))
            .collect()
    }
}

impl SourceConfig {
    /// How messages name this source: its table and category.
    pub fn label(&self) -> String {
        format!("source {} ({})", self.table, self.category)
    }

    /// The workspace every row of this source belongs to, when the table has no workspace
    /// column (a single-workspace application).
    pub fn fixed_workspace<'a>(&self, config: &'a Config) -> Option<&'a str> {
        match self.workspace_column {
            Some(_) => None,
            None => config.workspace.as_deref(),
        }
    }

    /// Every host column this source refers to, with the key that names it (for error messages).
    pub fn referenced_columns(&self) -> Vec<(String, &str)> {
        let mut columns: Vec<(String, &str)> = vec![("id_column".into(), &self.id_column)];
        columns.extend(
            self.name_column
                .iter()
                .flat_map(NameColumns::columns)
                .map(|c| ("name_column".to_string(), c.as_str())),
        );
        let optional = [
            ("workspace_column", &self.workspace_column),
            ("soft_delete_column", &self.soft_delete_column),
            ("origin_column", &self.origin_column),
            ("login_column", &self.login_column),
            ("actor_column", &self.actor_column),
            ("logins.user_column", &self.login_user),
            ("role_column", &self.role_column),
        ];
        columns.extend(
            optional
                .into_iter()
                .filter_map(|(k, c)| c.as_deref().map(|c| (k.to_string(), c))),
        );
        columns.extend(
            self.ignore_columns
                .iter()
                .map(|c| ("ignore_columns".to_string(), c.as_str())),
        );
        columns.extend(
            self.exclude_columns
                .iter()
                .map(|c| ("exclude_columns".to_string(), c.as_str())),
        );
        columns.extend(
            self.fields
                .mapped()
                .into_iter()
                .map(|(f, c)| (format!("fields.{f}"), c)),
        );
        columns
    }

    pub fn table_name(&self) -> Result<TableName> {
        TableName::parse(&self.table)
            .map_err(|e| Error::Config(format!("{}: table: {e}", self.label())))
    }

    /// The link table holding this source's tags, if `fields.tags` names one.
    pub fn link_tags(&self) -> Option<&LinkTags> {
        self.fields.tags.as_ref().and_then(TagsField::link)
    }

    /// The link table's name, checked.
    pub fn link_table(&self) -> Result<Option<TableName>> {
        self.link_tags()
            .map(|link| {
                TableName::parse(&link.table)
                    .map_err(|e| Error::Config(format!("{}: fields.tags: {e}", self.label())))
            })
            .transpose()
    }
}

/// A host table name, split so each part can be quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    pub schema: String,
    pub name: String,
}

impl TableName {
    pub fn parse(text: &str) -> std::result::Result<TableName, String> {
        let parts: Vec<&str> = text.split('.').collect();
        let (schema, name) = match parts.as_slice() {
            [name] => ("public", *name),
            [schema, name] => (*schema, *name),
            _ => {
                return Err(format!(
                    "\"{text}\" is not a table name (expected schema.table)"
                ))
            }
        };
        if schema.is_empty() || name.is_empty() {
            return Err(format!(
                "\"{text}\" is not a table name (expected schema.table)"
            ));
        }
        Ok(TableName {
            schema: schema.to_string(),
            name: name.to_string(),
        })
    }

    /// The name quoted for SQL text.
    pub fn quoted(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// Quote an identifier as PostgreSQL's `quote_ident` does when in doubt: always, doubling quotes.
pub fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

impl Config {
    /// Read the config from `path`, or from the first of [`DEFAULT_PATHS`] that exists.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let path = match path {
            Some(p) if !p.exists() => {
                return Err(Error::Config(format!("{}: file not found", p.display())));
            }
            Some(p) => p.to_path_buf(),
            None => DEFAULT_PATHS.iter().map(PathBuf::from).find(|p| p.exists()).ok_or_else(|| {
                Error::Config(format!(
                    "no config file found at {}: pass --config PATH (see config/clockwatch.toml for an example)",
                    DEFAULT_PATHS.join(" or ")
                ))
            })?,
        };
        let raw = config::Config::builder()
            .add_source(config::File::from(path.as_path()).format(config::FileFormat::Toml))
            .build()
            .map_err(|e| Error::Config(format!("{}: {}", path.display(), one_line(&e))))?;
        let cfg: Config =
            deserialize(raw).map_err(|msg| Error::Config(format!("{}: {msg}", path.display())))?;
        let cfg = cfg
            .with_logins()
            .and_then(|cfg| cfg.validate().map(|()| cfg));
        let cfg = cfg.map_err(|e| match e {
            Error::Config(msg) => Error::Config(format!("{}: {msg}", path.display())),
            other => other,
        })?;
        Ok(cfg)
    }

    /// `[logins]` as the source of its own it is: rows inserted into the table, each a user's
    /// login (`SourceConfig::login_user`). Done once, as the config is read, whatever reads it.
    fn with_logins(mut self) -> Result<Config> {
        let Some(logins) = self.logins.clone() else {
            return Ok(self);
        };
        if self.sources.iter().any(|s| s.table == logins.table) {
            return Err(Error::Config(format!(
                "logins: {} is also a [[source]]: a table is audited one way only",
                logins.table
            )));
        }
        self.sources.push(SourceConfig {
            category: Category::Users,
            table: logins.table,
            id_column: logins.id_column,
            workspace_if_null: Some("*".into()),
            workspace_column: logins.workspace_column,
            name_column: None,
            filter: None,
            soft_delete_column: None,
            soft_delete_inverted: false,
            origin_column: None,
            origins: BTreeMap::new(),
            login_column: None,
            role_column: None,
            actor_column: None,
            ignore_columns: Vec::new(),
            exclude_columns: Vec::new(),
            fields: Fields::default(),
            login_user: Some(logins.user_column),
        });
        Ok(self)
    }

    /// Parse a config from TOML text (tests and embedded examples).
    pub fn from_toml(text: &str) -> Result<Config> {
        let raw = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .map_err(|e| Error::Config(one_line(&e)))?;
        let cfg: Config = deserialize(raw).map_err(Error::Config)?.with_logins()?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks that need no database.
    fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::Config(msg));
        if let Some(source) = &self.source_id {
            let valid = !source.is_empty()
                && source.len() + self.schema.len() < 63
                && source
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !valid {
                return bad(format!(
                    "source_id: \"{source}\" must be lowercase letters, digits and _ (it names the schema {}_{source} in the log database, at most 63 characters)",
                    self.schema
                ));
            }
        }
        // No setting at all is for applications whose users log in as roles of their own (a
        // setting would let any of them name someone else), or whose rows say who wrote them.
        let inferred = self
            .authors
            .as_ref()
            .is_some_and(|a| a.db_role_column.is_some())
            || self.sources.iter().any(|s| s.actor_column.is_some());
        if self.actor_settings.is_empty() && !inferred {
            return bad(
                "actor_settings: name at least one setting (the default is [\"clockwatch.actor\"]), or set [authors] db_role_column or a source's actor_column"
                    .into(),
            );
        }
        for a in &self.actor_settings {
            let name = a.setting();
            let valid = name.contains('.')
                && name.len() <= 63
                && name.split('.').all(|part| {
                    !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                });
            if !valid {
                return bad(format!(
                    "actor_settings: \"{name}\" is not a custom setting's name (a prefix, a dot and a name: request.jwt.claims)"
                ));
            }
            if let ActorSetting::Json { key, .. } = a {
                // (No control character: capture stages the name and key before a U+001F.)
                if key.is_empty() || key.len() > 100 || key.chars().any(char::is_control) {
                    return bad(format!(
                        "actor_settings: {name}: key must be 1 to 100 characters, none of them a control character"
                    ));
                }
            }
        }
        if self.schema.is_empty() || self.schema.len() > 40 || self.schema.starts_with("pg_") {
            return bad(format!(
                "schema: \"{}\" is not usable (1 to 40 characters, not starting with pg_)",
                self.schema
            ));
        }
        if !(1..=3660).contains(&self.max_report_days) {
            return bad(format!(
                "max_report_days: {} is out of range 1..=3660",
                self.max_report_days
            ));
        }
        if !(1..=3660).contains(&self.max_export_days) {
            return bad(format!(
                "max_export_days: {} is out of range 1..=3660",
                self.max_export_days
            ));
        }
        for (key, value) in [
            ("daemon.batch_bytes", self.daemon.batch_bytes),
            ("daemon.max_change_bytes", self.daemon.max_change_bytes),
        ] {
            if !(1 << 10..=256 << 20).contains(&value) {
                return Err(Error::Config(format!(
                    "{key}: {value} is out of range 1024..={} (bytes)",
                    256 << 20
                )));
            }
        }
        if self.daemon.batch_size < 1 || self.daemon.batch_size > 100_000 {
            return bad(format!(
                "daemon.batch_size: {} is out of range 1..=100000",
                self.daemon.batch_size
            ));
        }
        if self.daemon.query_timeout_ms < 100 {
            return bad("daemon.query_timeout_ms: must be at least 100".into());
        }
        if !(1..=8).contains(&self.daemon.drain_connections) {
            return bad(format!(
                "daemon.drain_connections: {} is out of range 1..=8",
                self.daemon.drain_connections
            ));
        }
        if self.daemon.poll_interval_ms < 10 {
            return bad("daemon.poll_interval_ms: must be at least 10".into());
        }
        if !(1..=self.daemon.poll_interval_ms).contains(&self.daemon.busy_poll_ms) {
            return bad(format!(
                "daemon.busy_poll_ms: {} is out of range 1..={} (poll_interval_ms)",
                self.daemon.busy_poll_ms, self.daemon.poll_interval_ms
            ));
        }
        if let Some(max) = self.daemon.busy_poll_max_ms {
            if !(self.daemon.busy_poll_ms..=self.daemon.poll_interval_ms).contains(&max) {
                return bad(format!(
                    "daemon.busy_poll_max_ms: {max} is out of range {}..={} (busy_poll_ms to poll_interval_ms)",
                    self.daemon.busy_poll_ms, self.daemon.poll_interval_ms
                ));
            }
        }
        if !(1..=100).contains(&self.serve.max_connections) {
            return bad(format!(
                "serve.max_connections: {} is out of range 1..=100",
                self.serve.max_connections
            ));
        }
        if self.serve.response_secs == 0 || self.serve.slow_reader_secs == 0 {
            return bad("serve.response_secs and serve.slow_reader_secs: at least 1".into());
        }
        for origin in &self.serve.frame_ancestors {
            let bad_origin = !(origin.starts_with("https://") || origin.starts_with("http://"))
                || origin.contains([' ', ';', ',', '\'', '"']);
            if bad_origin {
                return bad(format!(
                    "serve.frame_ancestors: \"{origin}\" is not an origin (https://app.example.com)"
                ));
            }
        }
        if let Some(url) = &self.serve.return_url {
            // A redirect's Location: an absolute http(s) address, nothing a header cannot carry.
            let absolute = url.starts_with("https://") || url.starts_with("http://");
            if !absolute || url.chars().any(|c| c.is_control() || c == ' ') {
                return bad(format!(
                    "serve.return_url: \"{url}\" is not an absolute http(s) address (https://app.example.com/settings/audit)"
                ));
            }
        }
        if self.naive_timestamps.parse::<chrono_tz::Tz>().is_err() {
            return bad(format!(
                "naive_timestamps: \"{}\" is not a time zone (use an IANA name such as UTC or Europe/Berlin)",
                self.naive_timestamps
            ));
        }
        if self.workspace.as_deref() == Some("") {
            return bad("workspace: empty: give the id the application's single workspace has (any text, e.g. \"1\"), or leave it out".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for source in &self.sources {
            let table = source.table_name()?;
            if !seen.insert(table.clone().to_string()) {
                return bad(format!(
                    "{}: table: {table} is listed twice",
                    source.label()
                ));
            }
            if source.category != Category::Users
                && (source.login_column.is_some() || source.role_column.is_some())
            {
                return bad(format!(
                    "{}: login_column and role_column only apply to the users category",
                    source.label()
                ));
            }
            match (&source.workspace_column, &self.workspace) {
                (Some(column), _) if column.is_empty() => {
                    return bad(format!(
                        "{}: workspace_column is empty: name the column holding each row's workspace, or leave it out and set workspace = \"ID\" at the top of the config for a single-workspace application",
                        source.label()
                    ));
                }
                (None, None)
                    if source.login_user.is_none() && source.workspace_if_null.is_none() =>
                {
                    return bad(format!(
                        "{}: no workspace_column: name the column holding each row's workspace (workspace_column = \"workspace_id\"), or, for a single-workspace application, set workspace = \"ID\" at the top of the config",
                        source.label()
                    ));
                }
                _ => {}
            }
            if let Some(condition) = &source.filter {
                if let Err(why) = crate::filter::parse(condition) {
                    return bad(format!("{}: filter: {why}", source.label()));
                }
            }
            match (&source.workspace_if_null, &source.workspace_column) {
                (Some(_), None) if source.login_user.is_none() && self.workspace.is_some() => {
                    return bad(format!(
                        "{}: workspace_if_null with no workspace_column in a single-workspace application: every row is the workspace's already",
                        source.label()
                    ));
                }
                (Some(id), _) if id.is_empty() || id.chars().count() > 200 => {
                    return bad(format!(
                        "{}: workspace_if_null must be \"*\" (every workspace) or a workspace id of 1 to 200 characters",
                        source.label()
                    ));
                }
                _ => {}
            }
            if let Some(link) = source.link_table()? {
                if source.category == Category::Tags {
                    return bad(format!(
                        "{}: fields.tags: a tag has no tags of its own",
                        source.label()
                    ));
                }
                let is_source = self
                    .sources
                    .iter()
                    .any(|s| s.table_name().is_ok_and(|t| t == link));
                if is_source {
                    return bad(format!(
                        "{}: fields.tags: {link} is also listed as a source: a link table's rows are logged as changes of the records they tag, so remove its [[source]]",
                        source.label()
                    ));
                }
            }
            if source.soft_delete_inverted && source.soft_delete_column.is_none() {
                return bad(format!(
                    "{}: soft_delete_inverted without soft_delete_column",
                    source.label()
                ));
            }
            if source.origin_column.is_none() && !source.origins.is_empty() {
                return bad(format!(
                    "{}: origins: given without origin_column",
                    source.label()
                ));
            }
        }
        if let Some(authors) = &self.authors {
            TableName::parse(&authors.table)
                .map_err(|e| Error::Config(format!("authors.table: {e}")))?;
            if authors.db_role_column.as_deref() == Some("") {
                return bad("authors.db_role_column: name the column holding each user's database role, or leave the key out".into());
            }
        }
        if let Some(workspaces) = &self.workspaces {
            workspaces.table_name()?;
            let columns = workspaces.name_column.columns();
            let named = std::iter::once(&workspaces.id_column).chain(columns);
            if columns.is_empty() || named.into_iter().any(String::is_empty) {
                return bad("workspaces: id_column and name_column need column names (name_column = \"name\", or a list: [\"display_name\", \"name\"])".into());
            }
        }
        Ok(())
    }

    /// The source configured for a category, if any (the first one when several share it).
    pub fn source_for(&self, category: Category) -> Option<&SourceConfig> {
        self.sources
            .iter()
            .find(|s| s.category == category && s.login_user.is_none())
    }

    /// The zone the host's `timestamp without time zone` values are in (checked by validate()).
    pub fn naive_zone(&self) -> chrono_tz::Tz {
        self.naive_timestamps.parse().unwrap_or_default()
    }

    /// Where actor ids get their names: `[authors]`, else the users source when it has a name.
    pub fn authors(&self) -> Option<AuthorsConfig> {
        self.authors.clone().or_else(|| {
            let users = self.source_for(Category::Users)?;
            Some(AuthorsConfig {
                table: users.table.clone(),
                id_column: users.id_column.clone(),
                name_column: users.name_column.clone()?,
                db_role_column: None,
            })
        })
    }

    /// Whether capture stages the session's login role for the daemon to map to a user
    /// (`[authors] db_role_column`).
    pub fn reads_role(&self) -> bool {
        self.authors
            .as_ref()
            .is_some_and(|a| a.db_role_column.is_some())
    }

    /// The NOTIFY channel capture uses for this installation.
    /// Clockwatch's schema in the log database: its own, or, for one of several hosts sharing a
    /// log database (`source_id`), `<schema>_<source_id>`.
    pub fn log_schema(&self) -> String {
        match &self.source_id {
            Some(source) => format!("{}_{source}", self.schema),
            None => self.schema.clone(),
        }
    }

    /// This config for the source named `source` (`--source-id`) rather than its own.
    pub fn for_source(mut self, source: &str) -> Result<Config> {
        self.source_id = Some(source.to_string());
        self.validate()?;
        Ok(self)
    }

    /// The config as the commands that work in the log database see it: Clockwatch's schema
    /// there is [`Config::log_schema`].
    pub fn in_log(&self) -> Config {
        let mut config = self.clone();
        config.schema = self.log_schema();
        config
    }

    pub fn channel(&self) -> String {
        format!("clockwatch_{}", self.schema)
    }
}

/// Deserialize the whole config; when that fails inside a `[[source]]`, say which one (its
/// position, table and category, as far as they were given) before what is wrong with it.
fn deserialize(raw: config::Config) -> std::result::Result<Config, String> {
    let whole = raw.clone().try_deserialize::<Config>();
    let Err(e) = whole else {
        return whole.map_err(|e| one_line(&e));
    };
    let sources = raw.get::<Vec<config::Value>>("source").unwrap_or_default();
    for (i, source) in sources.into_iter().enumerate() {
        let Err(source_error) = source.clone().try_deserialize::<SourceConfig>() else {
            continue;
        };
        let table = source.into_table().unwrap_or_default();
        let text = |key: &str| table.get(key).and_then(|v| v.clone().into_string().ok());
        let name = match (text("table"), text("category")) {
            (Some(t), Some(c)) => format!("{t} ({c})"),
            (Some(t), None) => t,
            (None, Some(c)) => format!("({c})"),
            (None, None) => "with no table".into(),
        };
        return Err(format!(
            "source #{} {name}: {}",
            i + 1,
            one_line(&source_error)
        ));
    }
    Err(one_line(&e))
}

/// The config crate's TOML errors span several lines (a snippet with a caret, then the file);
/// keep the position and the explanation, so the binary still prints one line.
fn one_line(e: &config::ConfigError) -> String {
    let text = e.to_string();
    let snippet = |l: &&str| {
        l.starts_with('|')
            || l.starts_with("in ")
            || l.split_once(" |")
                .is_some_and(|(n, _)| n.trim().parse::<u32>().is_ok())
    };
    let kept: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter(|l| !snippet(l))
        .collect();
    if kept.is_empty() {
        text
    } else {
        kept.join(": ")
    }
}

fn default_listen() -> String {
    "127.0.0.1:8180".into()
}
fn default_serve_connections() -> usize {
    4
}
fn default_response_secs() -> u64 {
    300
}
fn default_slow_reader_secs() -> u64 {
    20
}
fn default_retention() -> String {
    "365 days".into()
}
fn default_max_lag_secs() -> u64 {
    300
}
fn default_max_report_days() -> i32 {
    30
}
fn default_max_export_days() -> i32 {
    366
}
fn default_schema() -> String {
    "audit_log".into()
}
fn default_timezone() -> String {
    "UTC".into()
}
fn default_id_column() -> String {
    "id".into()
}
fn default_batch_size() -> i64 {
    1000
}
fn default_drain_connections() -> u32 {
    2
}
fn default_poll_interval_ms() -> u64 {
    1000
}
fn default_batch_bytes() -> i64 {
    4 << 20
}
fn default_max_change_bytes() -> i64 {
    64 << 20
}
/// 15 ms rather than 5: at 2,400 captured writes a second the daemon and its backend spend
/// 75-98 us of CPU per event instead of 89-132, and at 500 writes a second an event still lands
/// 12 ms after its commit at p50, 22 ms at p99 (bench/README.md).
fn default_busy_poll_ms() -> u64 {
    15
}
/// 100 ms: at 2,700 captured writes a second, looks every 100 ms cost the daemon and its backend
/// about 50 us of CPU per event against 77-91 every 15 ms (bench/README.md), and an event still
/// lands well within the quarter second a report's reader would notice.
fn default_busy_poll_max_ms() -> u64 {
    100
}
fn default_query_timeout_ms() -> u64 {
    30_000
}
fn default_max_backoff_ms() -> u64 {
    30_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_default_to_public_and_quote_safely() {
        assert_eq!(TableName::parse("t").unwrap().to_string(), "public.t");
        assert_eq!(TableName::parse("a.b").unwrap().quoted(), "\"a\".\"b\"");
        assert_eq!(
            TableName::parse("a.b\"; drop").unwrap().quoted(),
            "\"a\".\"b\"\"; drop\""
        );
        assert!(TableName::parse("a.b.c").is_err());
        assert!(TableName::parse(".b").is_err());
    }

    #[test]
    fn unknown_keys_and_categories_are_refused() {
        let err = Config::from_toml("schemaa = 'x'").unwrap_err().to_string();
        assert!(err.contains("schemaa"), "{err}");
        let err = Config::from_toml(
            "[[source]]\ncategory = 'invoices'\ntable = 'a.b'\nworkspace_column = 'w'\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("invoices"), "{err}");
    }

    #[test]
    fn authors_default_to_the_users_source() {
        let cfg = Config::from_toml(
            "[[source]]\ncategory = 'users'\ntable = 'app.users'\nworkspace_column = 'ws'\nname_column = 'full_name'\n",
        )
        .unwrap();
        let authors = cfg.authors().unwrap();
        assert_eq!(
            (authors.table.as_str(), authors.name_column.columns()),
            ("app.users", &["full_name".to_string()][..])
        );
    }

    #[test]
    fn workspaces_name_a_table_and_its_columns() {
        let parsed =
            |section: &str| Config::from_toml(&format!("{ONE_SOURCE}[workspaces]\n{section}"));
        let workspaces = parsed("table = 'public.res_company'\nname_column = 'name'\n")
            .unwrap()
            .workspaces
            .unwrap();
        assert_eq!(workspaces.id_column, "id");
        assert_eq!(workspaces.name_column.columns(), &["name".to_string()][..]);
        let several =
            parsed("table = 'app.ws'\nid_column = 'code'\nname_column = ['alias', 'name']\n")
                .unwrap()
                .workspaces
                .unwrap();
        assert_eq!(several.name_column.columns().len(), 2);
        for (bad, expected) in [
            (
                "table = 'a.b.c'\nname_column = 'name'\n",
                "workspaces.table",
            ),
            (
                "table = 'app.ws'\nname_column = []\n",
                "workspaces: id_column and name_column",
            ),
            (
                "table = 'app.ws'\nname_column = ''\n",
                "workspaces: id_column and name_column",
            ),
            ("table = 'app.ws'\nname_colum = 'name'\n", "name_colum"),
        ] {
            let err = parsed(bad).unwrap_err().to_string();
            assert!(err.contains(expected), "{bad}: {err}");
        }
    }

    #[test]
    fn a_bad_source_is_named_by_position_table_and_category() {
        let first = "workspace = '1'\n[[source]]\ncategory = 'tags'\ntable = 'a.b'\n";
        for (second, expected) in [
            (
                "category = 'projects'\ntable = 'a.c'\nname_colum = 'x'\n",
                "source #2 a.c (projects): unknown field `name_colum`",
            ),
            (
                "category = 'projects'\n",
                "source #2 (projects): missing field `table`",
            ),
            (
                "category = 'time_entries'\ntable = 'a.d'\n[source.fields]\ntags = 5\n",
                "source #2 a.d (time_entries): a column of tag ids, \"link_table.tag_column\"",
            ),
        ] {
            let err = Config::from_toml(&format!("{first}[[source]]\n{second}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn tags_name_a_column_or_a_link_table() {
        let tags = |value: &str| {
            let text = format!(
                "workspace = '1'\n[[source]]\ncategory = 'time_entries'\ntable = 'a.e'\n[source.fields]\ntags = {value}\n"
            );
            Config::from_toml(&text).unwrap().sources[0]
                .fields
                .tags
                .clone()
                .unwrap()
        };
        assert_eq!(tags("'tag_ids'"), TagsField::Column("tag_ids".into()));
        let link = |table: &str, parent: Option<&str>| {
            TagsField::Link(LinkTags {
                table: table.into(),
                column: "tag_id".into(),
                parent_column: parent.map(str::to_string),
            })
        };
        assert_eq!(tags("'app.entry_tag.tag_id'"), link("app.entry_tag", None));
        assert_eq!(tags("'entry_tag.tag_id'"), link("entry_tag", None));
        assert_eq!(
            tags("{ table = 'entry_tag', column = 'tag_id', parent_column = 'entry' }"),
            link("entry_tag", Some("entry"))
        );
    }

    /// The smallest valid config: one source, everything else defaulted.
    const ONE_SOURCE: &str =
        "[[source]]\ncategory = 'tags'\ntable = 'a.b'\nworkspace_column = 'w'\n";

    #[test]
    fn drain_connections_default_to_two_and_are_bounded() {
        let source = ONE_SOURCE;
        assert_eq!(
            Config::from_toml(source).unwrap().daemon.drain_connections,
            2
        );
        for bad in [0, 9] {
            let err = Config::from_toml(&format!("[daemon]\ndrain_connections = {bad}\n{source}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("daemon.drain_connections"), "{err}");
        }
    }

    #[test]
    fn busy_poll_defaults_to_15_ms_and_stays_within_the_idle_poll() {
        let source = ONE_SOURCE;
        let daemon = Config::from_toml(source).unwrap().daemon;
        assert_eq!(daemon.busy_poll(), Duration::from_millis(15));
        assert_eq!(daemon.busy_poll_max(), Duration::from_millis(100));
        let slow = Config::from_toml(&format!("[daemon]\nbusy_poll_ms = 250\n{source}"));
        assert_eq!(
            slow.unwrap().daemon.busy_poll_max(),
            Duration::from_millis(250)
        );
        for (bad, key) in [
            ("busy_poll_ms = 0", "daemon.busy_poll_ms"),
            (
                "poll_interval_ms = 10\nbusy_poll_ms = 11",
                "daemon.busy_poll_ms",
            ),
            (
                "busy_poll_ms = 20\nbusy_poll_max_ms = 19",
                "daemon.busy_poll_max_ms",
            ),
            (
                "poll_interval_ms = 50\nbusy_poll_max_ms = 51",
                "daemon.busy_poll_max_ms",
            ),
        ] {
            let err = Config::from_toml(&format!("[daemon]\n{bad}\n{source}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{err}");
        }
    }
}

//! Turning one staged change (an old and a new host row, as JSON objects) into one audit event.
//!
//! Pure functions: everything they need from the database (names of users, projects...) is
//! looked up beforehand by [`crate::resolve`] and handed in as [`Names`]. That keeps the rules of
//! the audit log (what counts as a deletion, who is the author, which fields changed) testable
//! without a database and keeps the drain loop to a fixed number of queries per batch.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde_json::Value;

use crate::chain;
use crate::config::{Category, DurationUnit, NameColumns, SourceConfig};
use crate::detail::{self, Details, Key};
use crate::image::{Raw, RowImage};

/// The author shown for changes with no actor, and for linked changes.
pub const SYSTEM: &str = "System";

/// Every action code and its label, as the report shows it.
pub const ACTIONS: &[(&str, &str)] = &[
    ("time_entry.created", "Created time entry"),
    ("time_entry.updated", "Updated time entry"),
    ("time_entry.deleted", "Deleted time entry"),
    ("time_entry.restored", "Restored time entry"),
    ("expense.created", "Created expense"),
    ("expense.updated", "Updated expense"),
    ("expense.deleted", "Deleted expense"),
    ("expense.restored", "Restored expense"),
    ("project.created", "Created project"),
    ("project.updated", "Updated project"),
    ("project.deleted", "Deleted project"),
    ("task.created", "Created task"),
    ("task.updated", "Updated task"),
    ("task.deleted", "Deleted task"),
    ("client.created", "Created client"),
    ("client.updated", "Updated client"),
    ("client.deleted", "Deleted client"),
    ("tag.created", "Created tag"),
    ("tag.updated", "Updated tag"),
    ("tag.deleted", "Deleted tag"),
    ("time_entry.truncated", "Removed all time entries"),
    ("expense.truncated", "Removed all expenses"),
    ("project.truncated", "Removed all projects"),
    ("task.truncated", "Removed all tasks"),
    ("client.truncated", "Removed all clients"),
    ("tag.truncated", "Removed all tags"),
    ("user.truncated", "Removed all users"),
    ("user.created", "Added user"),
    ("user.deleted", "Removed user"),
    ("user.logged_in", "Logged in"),
    ("user.profile_updated", "Profile updated"),
    ("user.role_changed", "Role changed"),
];

pub fn action_label(code: &str) -> Option<&'static str> {
    ACTIONS
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, label)| *label)
}

/// A row of the staging table: what a capture trigger recorded.
#[derive(Debug, Clone)]
pub struct StagedChange {
    pub id: i64,
    pub source: String,
    pub category: String,
    pub op: Op,
    pub txid: i64,
    pub occurred_at: DateTime<Utc>,
    pub depth: i32,
    pub actor: Option<String>,
    /// The setting the actor came from (`request.jwt.claims.sub`); None for the first configured.
    pub actor_source: Option<String>,
    pub origin: Option<String>,
    pub workspace_id: Option<String>,
    pub old_row: Option<RowImage>,
    pub new_row: Option<RowImage>,
    /// The row the event keeps (after; before for a delete) as it was staged.
    pub kept: Option<KeptRow>,
    /// The record's tags, for a source whose tags are kept in a link table (its rows are not
    /// in the row image): what a link-table change did to them, or, for any other change, the
    /// tags the record has when the change is drained.
    pub tags: Option<TagChange>,
}

/// A row as staged, kept whole with its event: the record's text and the shape naming its fields.
/// Stored as it is, at about a quarter of the bytes the same row takes as jsonb; the report view
/// reads it as JSON (`row_json()`, sql/baseline/05_reports.sql).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptRow {
    pub shape: i64,
    pub image: String,
}

/// A record's tags (ids) before and after, as kept in a link table. `before` is None when they
/// did not change (or nothing says what they were).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TagChange {
    pub before: Option<Vec<String>>,
    pub after: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Insert,
    Update,
    Delete,
    /// TRUNCATE: every row of the table at once; no row images.
    Truncate,
    /// Rows of a link table changed the tags of a record: `new_row` is the record, the
    /// change's `tags` say how. Logged as an update of the record.
    Links,
}

impl Op {
    pub fn from_code(code: i8) -> Option<Op> {
        match code as u8 {
            b'I' => Some(Op::Insert),
            b'U' => Some(Op::Update),
            b'D' => Some(Op::Delete),
            b'T' => Some(Op::Truncate),
            b'L' => Some(Op::Links),
            _ => None,
        }
    }
}

impl StagedChange {
    /// A change caused by another one (foreign-key cascade, host trigger).
    pub fn is_linked(&self) -> bool {
        self.depth > 1
    }

    /// The row as it is after the change, or as it was before a delete.
    pub fn row(&self) -> Option<&RowImage> {
        self.new_row.as_ref().or(self.old_row.as_ref())
    }

    /// The whole change as JSON, for the dead-letter table.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "id": self.id, "source": self.source, "category": self.category,
            "op": format!("{:?}", self.op), "txid": self.txid, "occurred_at": self.occurred_at,
            "depth": self.depth, "actor": self.actor, "actor_source": self.actor_source,
            "origin": self.origin,
            "workspace_id": self.workspace_id,
            "old_row": self.old_row.as_ref().map(RowImage::to_value),
            "new_row": self.new_row.as_ref().map(RowImage::to_value),
            "tags": self.tags.as_ref().map(|t| serde_json::json!({"before": t.before, "after": t.after})),
        })
    }
}

/// An audit event, ready to be written.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub event_id: i64,
    pub occurred_at: DateTime<Utc>,
    pub workspace_id: String,
    pub category: Category,
    pub action_code: String,
    pub action: &'static str,
    pub origin: Option<String>,
    pub author_id: Option<String>,
    pub author: String,
    pub target_id: Option<String>,
    pub target: Option<String>,
    /// Filled in by the drain, which can see the other changes of the transaction.
    pub caused_by: Option<i64>,
    pub linked: bool,
    pub txid: i64,
    pub source: String,
    /// The changed columns before and after, as JSON object text.
    pub previous_value: Option<String>,
    pub new_value: Option<String>,
    /// The row (after; before for a delete) as staged.
    pub row: Option<KeptRow>,
    pub details: Details,
}

/// What became of one staged change.
#[derive(Debug)]
pub enum Outcome {
    Event(Box<AuditEvent>),
    /// An update that changed nothing worth recording.
    NoChange,
    /// Cannot be normalised; goes to the dead-letter table with this reason.
    Failed(String),
}

/// A name the normaliser may need, collected before the lookups.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NameRef {
    Author(String),
    /// An id of a row that a name reference points at (`NameReference::key()`, id).
    Via(String, String),
    Entity(Category, String),
    /// The client of a project, for entries that name a project but no client.
    ProjectClient(String),
}

/// Names looked up for a batch, and the zone the host's zone-less times are in (config
/// `naive_timestamps`).
#[derive(Debug, Default)]
pub struct Names {
    pub authors: HashMap<String, String>,
    /// Names through references: (`NameReference::key()`, id) -> name.
    pub via: HashMap<(String, String), String>,
    /// The locale a translated (jsonb) name reads in (config `name_locale`).
    pub locale: Option<String>,
    /// Actor ids that mean System (config `system_actors`).
    pub system_actors: Vec<String>,
    /// The first actor setting's name: where an actor staged with no source of its own came from.
    pub first_actor_setting: String,
    pub entities: HashMap<(Category, String), String>,
    pub project_clients: HashMap<String, String>,
    pub naive_zone: Tz,
}

impl Names {
    pub fn entity(&self, category: Category, id: &str) -> Option<&str> {
        self.entities
            .get(&(category, id.to_string()))
            .map(String::as_str)
    }
}

/// The text of a column's value as the host would print it; None for null or no such column.
pub fn column_text(row: &RowImage, column: Option<&str>) -> Option<String> {
    column.and_then(|c| row.get(c)).and_then(Raw::text)
}

/// A record's name: the first of its name columns that is neither null nor empty, in `locale`
/// when it holds translations. None for a name kept in another table (a reference).
pub fn name_text(
    row: &RowImage,
    columns: Option<&NameColumns>,
    locale: Option<&str>,
) -> Option<String> {
    let columns = columns?;
    if columns.reference().is_some() {
        return None;
    }
    columns
        .columns()
        .iter()
        .filter_map(|c| column_text(row, Some(c)))
        .map(|name| localized(name, locale))
        .find(|name| !name.is_empty())
}

/// A name as it reads in `locale`: a translated name (a JSON object of locale -> text, as an
/// application keeps jsonb translations) reads in that locale, then `en_US`, then its first
/// translation; any other text reads as it is. Only with a locale configured.
pub fn localized(name: String, locale: Option<&str>) -> String {
    let Some(locale) = locale else { return name };
    if !name.starts_with('{') {
        return name;
    }
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(&name)
    else {
        return name;
    };
    let text = |key: &str| map.get(key).and_then(Value::as_str).map(str::to_string);
    text(locale)
        .or_else(|| text("en_US"))
        .or_else(|| map.values().find_map(Value::as_str).map(str::to_string))
        .unwrap_or(name)
}

/// A person named by a user field: an author id, or an id of the table its reference names.
fn user_ref(user: &crate::config::FieldColumn, id: String) -> NameRef {
    match user.reference() {
        Some(r) => NameRef::Via(r.key(), id),
        None => NameRef::Author(id),
    }
}

impl Names {
    /// The name of the person a user field's value `id` is.
    pub fn user(&self, user: &crate::config::FieldColumn, id: &str) -> Option<&str> {
        match user.reference() {
            Some(r) => self.via.get(&(r.key(), id.to_string())),
            None => self.authors.get(id),
        }
        .map(String::as_str)
    }
}

/// The tag ids of a record: its link-table tags when the source keeps them so, else its tags
/// column.
fn tag_ids(change: &StagedChange, source: &SourceConfig, row: &RowImage) -> Option<Vec<String>> {
    if source.link_tags().is_some() {
        return change.tags.as_ref().map(|t| t.after.clone());
    }
    source
        .fields
        .tags
        .as_ref()
        .and_then(|t| t.column())
        .and_then(|c| row.get(c))
        .and_then(Raw::array_texts)
}

/// Names the normaliser will ask for; the drain looks them all up in one go.
pub fn references(change: &StagedChange, source: &SourceConfig) -> Vec<NameRef> {
    let mut refs = Vec::new();
    if let Some(user) = &source.login_user {
        refs.extend(
            change
                .row()
                .and_then(|row| column_text(row, Some(user)))
                .map(NameRef::Author),
        );
        return refs;
    }
    if let (Some(actor), false) = (&change.actor, change.is_linked()) {
        refs.push(NameRef::Author(actor.clone()));
    }
    // The author actor_column may name (see normalize()): asked for whether or not a setting
    // names someone, which only the mapping of roles settles.
    if let (Some(column), false, Some(row)) = (
        &source.actor_column,
        change.is_linked() || change.op == Op::Delete,
        change.new_row.as_ref(),
    ) {
        refs.extend(column_text(row, Some(column)).map(NameRef::Author));
    }
    let Some(row) = change.row() else { return refs };
    let fields = &source.fields;
    if let Some(user) = &fields.user {
        if let Some(id) = column_text(row, Some(user.column())) {
            refs.push(user_ref(user, id));
        }
    }
    // A target named through a reference.
    if let Some(r) = source.name_column.as_ref().and_then(NameColumns::reference) {
        if let Some(id) = column_text(row, Some(&r.column)) {
            refs.push(NameRef::Via(r.key(), id));
        }
    }
    for (category, column) in [
        (Category::Projects, &fields.project),
        (Category::Tasks, &fields.task),
        (Category::Clients, &fields.client),
    ] {
        if let Some(id) = column_text(row, column.as_deref()) {
            refs.push(NameRef::Entity(category, id));
        }
    }
    if fields.client.is_none() || column_text(row, fields.client.as_deref()).is_none() {
        if let Some(project) = column_text(row, fields.project.as_deref()) {
            refs.push(NameRef::ProjectClient(project));
        }
    }
    // An update's ids before, which its changes show by name too.
    if let (Op::Update, Some(old)) = (change.op, change.old_row.as_ref()) {
        if let Some(user) = &fields.user {
            if let Some(id) = column_text(old, Some(user.column())) {
                refs.push(user_ref(user, id));
            }
        }
        for (category, column) in [
            (Category::Projects, &fields.project),
            (Category::Tasks, &fields.task),
            (Category::Clients, &fields.client),
        ] {
            if let Some(id) = column_text(old, column.as_deref()) {
                refs.push(NameRef::Entity(category, id));
            }
        }
        if let Some(ids) = fields
            .tags
            .as_ref()
            .and_then(|t| t.column())
            .and_then(|c| old.get(c))
            .and_then(Raw::array_texts)
        {
            refs.extend(ids.into_iter().map(|t| NameRef::Entity(Category::Tags, t)));
        }
    }
    let before = change.tags.as_ref().and_then(|t| t.before.clone());
    refs.extend(
        tag_ids(change, source, row)
            .into_iter()
            .chain(before)
            .flatten()
            .map(|t| NameRef::Entity(Category::Tags, t)),
    );
    refs
}

/// Decide what one staged change means. An event takes the change's row image with it (moved,
/// not copied); a change that fails or changed nothing is left whole, for the dead-letter table.
pub fn normalise(change: &mut StagedChange, source: &SourceConfig, names: &Names) -> Outcome {
    if change.op == Op::Truncate {
        return truncated(change, source, names);
    }
    if let Some(user) = &source.login_user {
        return logged_in(change, source, names, user);
    }
    let (Some(row), category) = (change.row(), source.category) else {
        return Outcome::Failed("staged change has no row".into());
    };
    let workspace_id = match (&change.workspace_id, &source.workspace_column) {
        // '*' is this source's mark for every workspace: a row of its own that says so is set
        // aside rather than shown in every workspace.
        (Some(id), _) if id == "*" && source.workspace_if_null.as_deref() == Some("*") => {
            return Outcome::Failed(format!(
                "{}: the row's workspace is the text \"*\", which for this source means every workspace (workspace_if_null): not logged",
                source.label()
            ))
        }
        (Some(id), _) => id.clone(),
        (None, Some(column)) if row.get(column).is_some() => match &source.workspace_if_null {
            Some(shared) => shared.clone(),
            None => {
                return Outcome::Failed(format!(
                    "{}: the workspace column \"{column}\" is NULL: set workspace_if_null = \"*\" (every workspace) or a workspace's id for such rows",
                    source.label()
                ))
            }
        },
        // A table with no workspace column whose rows all belong to every workspace (or one).
        (None, None) if source.workspace_if_null.is_some() => {
            source.workspace_if_null.clone().unwrap_or_default()
        }
        (None, column) => {
            return Outcome::Failed(format!(
                "{}: the row has no column \"{}\" (renamed or dropped?): the workspace is unknown",
                source.label(),
                column.as_deref().unwrap_or_default()
            ))
        }
    };
    let (old, new) = (change.old_row.as_ref(), change.new_row.as_ref());

    // A link table's change of the record's tags, shown by name (the record has no column
    // to show raw).
    let tag_change = match (change.op, &change.tags) {
        (
            Op::Update | Op::Links,
            Some(TagChange {
                before: Some(before),
                after,
            }),
        ) if before != after => {
            let named = |ids: &[String]| chain::jsonb_text(&Value::from(tag_names(ids, names)));
            Some((named(before), named(after)))
        }
        _ => None,
    };
    let (changed, previous_value, new_value) = match change.op {
        Op::Update | Op::Links => {
            let changed = diff(old, new, &source.ignore_columns);
            if changed.is_empty() && tag_change.is_none() {
                return Outcome::NoChange;
            }
            let tags = tag_change.as_ref();
            let before = json_object(
                changed.iter().map(|(c, before, _)| (*c, before.json())),
                tags.map(|(before, _)| before.as_str()),
            );
            let after = json_object(
                changed.iter().map(|(c, _, after)| (*c, after.json())),
                tags.map(|(_, after)| after.as_str()),
            );
            (changed, Some(before), Some(after))
        }
        Op::Insert | Op::Delete | Op::Truncate => (Vec::new(), None, None),
    };
    let changed_columns: Vec<&str> = changed.iter().map(|(c, _, _)| *c).collect();
    let action_code = action_code(change.op, category, source, old, new, &changed_columns);
    let Some(action) = action_label(&action_code) else {
        return Outcome::Failed(format!("no label for action {action_code}"));
    };

    // No setting named an actor: an insert or update is the one its row says wrote it
    // (actor_column), before the session's login role; a deletion stays System (or the role's),
    // as the column names who wrote the row last.
    let no_setting =
        change.actor.is_none() || change.actor_source.as_deref() == Some(crate::resolve::ROLE);
    let by_column = match &source.actor_column {
        Some(column) if no_setting && !change.is_linked() && change.op != Op::Delete => change
            .new_row
            .as_ref()
            .and_then(|r| column_text(r, Some(column))),
        _ => None,
    };
    let actor_source = match by_column {
        Some(_) => Some("column".to_string()),
        None => change.actor_source.clone(),
    };
    let (author_id, author) = author(
        by_column.as_ref().or(change.actor.as_ref()),
        change.is_linked(),
        names,
    );
    let origin = if change.is_linked() {
        None
    } else {
        origin(change, source, Some(row))
    };

    let target_id = column_text(row, Some(&source.id_column));
    let target = match source.name_column.as_ref().and_then(NameColumns::reference) {
        Some(r) => {
            column_text(row, Some(&r.column)).and_then(|id| names.via.get(&(r.key(), id)).cloned())
        }
        None => name_text(row, source.name_column.as_ref(), names.locale.as_deref()),
    };
    let mut details = details(category, source, change, row, target.as_deref(), names);
    // Where the author came from, also when the id named is one of system_actors: an asserted
    // System is told apart from a change nobody named.
    let named = by_column.is_some() || (change.actor.is_some() && !change.is_linked());
    if named {
        let from = actor_source.unwrap_or_else(|| names.first_actor_setting.clone());
        details.set(Key::ActorSource, Some(from));
    }
    if let Some(object) = change_names(source, &changed, names) {
        details.set_names(object);
    }

    let event = Box::new(AuditEvent {
        event_id: change.id,
        occurred_at: change.occurred_at,
        workspace_id,
        category,
        action_code,
        action,
        origin,
        author_id,
        author,
        target_id,
        target,
        caused_by: None,
        linked: change.is_linked(),
        txid: change.txid,
        source: change.source.clone(),
        previous_value,
        new_value,
        row: change.kept.take(),
        details,
    });
    Outcome::Event(event)
}

/// The names of the ids an update's changed columns hold before and after, where the column is
/// a mapped user, project, task, client or tags field: `{"project_id": {"1": "Apollo"}}`, as
/// jsonb prints it. Kept in the event's details, which the chain covers, so that a report shows
/// the names the ids bore when the event was written, and nothing written later changes them.
fn change_names(
    source: &SourceConfig,
    changed: &[(&str, Raw, Raw)],
    names: &Names,
) -> Option<String> {
    let fields = &source.fields;
    let tags = fields.tags.as_ref().and_then(|t| t.column());
    let mut object = serde_json::Map::new();
    for (column, before, after) in changed {
        let is = |mapped: &Option<String>| mapped.as_deref() == Some(*column);
        let lookup = |id: &str| -> Option<String> {
            if let Some(user) = fields.user.as_ref().filter(|u| u.column() == *column) {
                return names.user(user, id).map(str::to_string);
            }
            let category = if is(&fields.project) {
                Category::Projects
            } else if is(&fields.task) {
                Category::Tasks
            } else if is(&fields.client) {
                Category::Clients
            } else if tags == Some(*column) {
                Category::Tags
            } else {
                return None;
            };
            names.entity(category, id).map(str::to_string)
        };
        let mut named = serde_json::Map::new();
        for value in [before, after] {
            let ids = value
                .array_texts()
                .or_else(|| value.text().map(|t| vec![t]))
                .unwrap_or_default();
            for id in ids {
                if let Some(name) = lookup(&id) {
                    named.insert(id, Value::String(name));
                }
            }
        }
        if !named.is_empty() {
            object.insert(column.to_string(), Value::Object(named));
        }
    }
    (!object.is_empty()).then(|| chain::jsonb_text(&Value::Object(object)))
}

/// Who made a change: the actor named by the transaction, or System (no actor, or linked).
fn author(actor: Option<&String>, linked: bool, names: &Names) -> (Option<String>, String) {
    match (actor, linked) {
        (Some(actor), false) if names.system_actors.contains(actor) => (None, SYSTEM.to_string()),
        (Some(actor), false) => {
            // An author with no name (none in the host, none remembered) shows as its id, marked
            // as one: "#4", as a target without a name does.
            let name = names
                .authors
                .get(actor)
                .cloned()
                .unwrap_or_else(|| format!("#{actor}"));
            (Some(actor.clone()), name)
        }
        _ => (None, SYSTEM.to_string()),
    }
}

/// A row added to the logins table (`[logins]`): the user it names logged in, in its workspace
/// or, with none, in every workspace ('*'). Its updates and deletions are no one's logins.
fn logged_in(
    change: &mut StagedChange,
    source: &SourceConfig,
    names: &Names,
    user: &str,
) -> Outcome {
    if change.op != Op::Insert {
        return Outcome::NoChange;
    }
    let Some(row) = change.row() else {
        return Outcome::Failed("staged change has no row".into());
    };
    let Some(id) = column_text(row, Some(user)) else {
        return Outcome::Failed(format!(
            "{}: the login row names no user (\"{user}\" is NULL)",
            source.label()
        ));
    };
    let name = names
        .authors
        .get(&id)
        .cloned()
        .unwrap_or_else(|| format!("#{id}"));
    let code = "user.logged_in".to_string();
    let Some(action) = action_label(&code) else {
        return Outcome::Failed(format!("no label for action {code}"));
    };
    let mut details = Details::default();
    details.set(Key::User, Some(name.clone()));
    Outcome::Event(Box::new(AuditEvent {
        event_id: change.id,
        occurred_at: change.occurred_at,
        workspace_id: change.workspace_id.clone().unwrap_or_else(|| "*".into()),
        category: Category::Users,
        action_code: code,
        action,
        origin: None,
        author_id: Some(id.clone()),
        author: name.clone(),
        target_id: Some(id),
        target: Some(name),
        caused_by: None,
        linked: false,
        txid: change.txid,
        source: change.source.clone(),
        previous_value: None,
        new_value: None,
        row: change.kept.take(),
        details,
    }))
}

/// A TRUNCATE: one event for every workspace ('*'), with no rows.
fn truncated(change: &StagedChange, source: &SourceConfig, names: &Names) -> Outcome {
    let code = format!("{}.truncated", source.category.entity());
    let Some(action) = action_label(&code) else {
        return Outcome::Failed(format!("no label for action {code}"));
    };
    let (author_id, author) = author(change.actor.as_ref(), change.is_linked(), names);
    Outcome::Event(Box::new(AuditEvent {
        event_id: change.id,
        occurred_at: change.occurred_at,
        workspace_id: change.workspace_id.clone().unwrap_or_else(|| "*".into()),
        category: source.category,
        action_code: code,
        action,
        origin: origin(change, source, None),
        author_id,
        author,
        target_id: None,
        target: Some(source.table.clone()),
        caused_by: None,
        linked: change.is_linked(),
        txid: change.txid,
        source: change.source.clone(),
        previous_value: None,
        new_value: None,
        row: None,
        details: Details::default(),
    }))
}

/// The columns whose value differs, with their value before and after, leaving out ignored
/// columns. A column present on one side only (the host table changed shape) is not a change of
/// the data. Values compare by their text (see [`crate::image`]).
fn diff<'a>(
    old: Option<&'a RowImage>,
    new: Option<&'a RowImage>,
    ignored: &[String],
) -> Vec<(&'a str, Raw<'a>, Raw<'a>)> {
    let (Some(old), Some(new)) = (old, new) else {
        return Vec::new();
    };
    // Both images list the same columns in the same order unless the table changed shape in
    // between, so the old value is looked for in step first.
    let mut old_fields = old.fields();
    new.fields()
        .filter_map(|(column, after)| {
            let before = match old_fields.next() {
                Some((c, v)) if c == column => Some(v),
                _ => old.get(column),
            }?;
            (before != after && !ignored.iter().any(|i| i == column))
                .then_some((column, before, after))
        })
        .collect()
}

/// A JSON object of the given columns and their values' JSON text, and the record's link-table
/// tags under "tags" when they changed. Keys go as `jsonb` orders them, so the stored text (a
/// `json` value, kept as written) reads as the details do.
fn json_object<'a>(
    fields: impl Iterator<Item = (&'a str, &'a str)>,
    tags: Option<&'a str>,
) -> String {
    let mut entries: Vec<(&str, &str)> = fields.chain(tags.map(|t| ("tags", t))).collect();
    entries.sort_by(|(a, _), (b, _)| chain::jsonb_key_order(a, b));
    let mut out = String::from("{");
    for (i, (column, value)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&Value::from(column).to_string());
        out.push_str(": ");
        out.push_str(value);
    }
    out.push('}');
    out
}

/// Tag ids as names (the id when no name is known), sorted as a reader looks for them.
fn tag_names(ids: &[String], names: &Names) -> Vec<String> {
    let mut out: Vec<String> = ids
        .iter()
        .map(|id| {
            names
                .entity(Category::Tags, id)
                .map_or_else(|| id.clone(), str::to_string)
        })
        .collect();
    out.sort_by_key(|n| n.to_lowercase());
    out
}

fn action_code(
    op: Op,
    category: Category,
    source: &SourceConfig,
    old: Option<&RowImage>,
    new: Option<&RowImage>,
    changed: &[&str],
) -> String {
    let entity = category.entity();
    let changed_column =
        |column: &Option<String>| column.as_deref().is_some_and(|c| changed.contains(&c));
    let verb = match op {
        Op::Links => "updated",
        Op::Insert => "created",
        Op::Delete => "deleted",
        Op::Truncate => "truncated",
        Op::Update => {
            // A flag is deleted when true (false when inverted); a time or date once set. A
            // null flag says nothing either way.
            let is_deleted = |row: Option<&RowImage>, column: &str| match row
                .and_then(|r| r.get(column))
                .map(|v| v.json())
            {
                None | Some("null") => false,
                Some("true") => !source.soft_delete_inverted,
                Some("false") => source.soft_delete_inverted,
                Some(_) => true,
            };
            let soft_delete = source
                .soft_delete_column
                .as_deref()
                .filter(|c| changed_column(&Some(c.to_string())));
            match soft_delete {
                Some(c) if !is_deleted(old, c) && is_deleted(new, c) => "deleted",
                Some(c)
                    if is_deleted(old, c)
                        && !is_deleted(new, c)
                        && matches!(category, Category::TimeEntries | Category::Expenses) =>
                {
                    "restored"
                }
                _ if category == Category::Users => {
                    if changed_column(&source.role_column) {
                        "role_changed"
                    } else if changed_column(&source.login_column) {
                        "logged_in"
                    } else {
                        "profile_updated"
                    }
                }
                _ => "updated",
            }
        }
    };
    format!("{entity}.{verb}")
}

/// The origins Clockwatch names itself, by the value `clockwatch.origin` gives, with their labels.
pub const KNOWN_ORIGINS: [(&str, &str); 5] = [
    ("timer", "Timer"),
    ("manual", "Manual"),
    ("kiosk", "Kiosk"),
    ("import", "Import"),
    ("quickbooks", "QuickBooks"),
];

/// Where the change came from: the transaction's `clockwatch.origin` when the host set one (it
/// describes this change: an import, a sync), else the row's origin column through `origins`.
fn origin(change: &StagedChange, source: &SourceConfig, row: Option<&RowImage>) -> Option<String> {
    if let Some(o) = change.origin.as_deref() {
        let label = KNOWN_ORIGINS
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(o))
            .map(|(_, l)| *l);
        return Some(label.unwrap_or(o).to_string());
    }
    column_text(row?, source.origin_column.as_deref())
        .map(|value| source.origins.get(&value).cloned().unwrap_or(value))
}

/// Clockify's detail fields, resolved to names where they refer to other records.
fn details(
    category: Category,
    source: &SourceConfig,
    change: &StagedChange,
    row: &RowImage,
    target: Option<&str>,
    names: &Names,
) -> Details {
    let fields = &source.fields;
    let mut out = Details::default();
    let mut put = |key: Key, value: Option<String>| out.set(key, value);
    let text = |column: &Option<String>| column_text(row, column.as_deref());
    let named = |category: Category, id: Option<String>| {
        id.map(|id| {
            names
                .entity(category, &id)
                .map(str::to_string)
                .unwrap_or(id)
        })
    };

    put(
        Key::User,
        fields.user.as_ref().and_then(|user| {
            column_text(row, Some(user.column()))
                .map(|id| names.user(user, &id).map_or(id, str::to_string))
        }),
    );
    put(Key::Description, text(&fields.description));
    let project_id = text(&fields.project);
    let own = |c: Category| {
        if category == c {
            target.map(str::to_string)
        } else {
            None
        }
    };
    put(
        Key::Project,
        own(Category::Projects).or_else(|| named(Category::Projects, project_id.clone())),
    );
    put(
        Key::Task,
        own(Category::Tasks).or_else(|| named(Category::Tasks, text(&fields.task))),
    );
    let client_id = text(&fields.client).or_else(|| {
        project_id
            .as_ref()
            .and_then(|p| names.project_clients.get(p).cloned())
    });
    put(
        Key::Client,
        own(Category::Clients).or_else(|| named(Category::Clients, client_id)),
    );
    // A date column (a timesheet's day) keeps its date; a time is an instant.
    let instant = |t: String| {
        if detail::is_date(&t) {
            Some(t)
        } else {
            utc_timestamp(&t, names.naive_zone)
        }
    };
    put(Key::Start, text(&fields.start).and_then(instant));
    put(Key::End, text(&fields.end).and_then(instant));
    if let Some(duration) = &fields.duration {
        put(
            Key::Duration,
            column_text(row, Some(duration.column()))
                .and_then(|v| seconds(&v, duration.unit()))
                .map(detail::clock),
        );
    }
    for (key, column) in [
        (Key::Kiosk, &fields.kiosk),
        (Key::Type, &fields.kind),
        (Key::Billable, &fields.billable),
        (Key::BillableRate, &fields.billable_rate),
        (Key::CostRate, &fields.cost_rate),
        (Key::Approved, &fields.approved),
        (Key::Invoiced, &fields.invoiced),
    ] {
        put(key, text(column));
    }
    if let Some(tags) = tag_ids(change, source, row) {
        let named = match source.link_tags() {
            Some(_) => tag_names(&tags, names),
            // An array column keeps the host's order.
            None => tags
                .iter()
                .map(|id| {
                    names
                        .entity(Category::Tags, id)
                        .map_or_else(|| id.clone(), str::to_string)
                })
                .collect(),
        };
        out.set_tags(named);
    }
    out
}

/// A duration's value as whole seconds (truncated toward zero): a number counted in `unit`, or
/// an interval as PostgreSQL prints it (`1 day 02:30:00`, `-01:30:00`; a month counted as 30
/// days and a year as 365.25, as PostgreSQL's own epoch of an interval does). None for anything
/// else, or a value beyond a century.
pub fn seconds(value: &str, unit: DurationUnit) -> Option<i64> {
    let total = match value.trim().parse::<f64>() {
        Ok(n) => n * unit.seconds(),
        Err(_) => interval_seconds(value)?,
    };
    (total.is_finite() && total.abs() < 3.2e9).then(|| total.trunc() as i64)
}

fn interval_seconds(text: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut words = text.split_whitespace().peekable();
    let mut any = false;
    while let Some(word) = words.next() {
        any = true;
        if word.contains(':') {
            let negative = word.starts_with('-');
            let parts: Vec<f64> = word
                .trim_start_matches(['-', '+'])
                .split(':')
                .map(|p| p.parse::<f64>().ok())
                .collect::<Option<_>>()?;
            let [h, m, sec] = parts[..] else { return None };
            let t = h * 3600.0 + m * 60.0 + sec;
            total += if negative { -t } else { t };
            continue;
        }
        let n: f64 = word.parse().ok()?;
        let per = match words.next()?.trim_end_matches('s') {
            "year" => 365.25 * 86400.0,
            "mon" => 30.0 * 86400.0,
            "day" => 86400.0,
            _ => return None,
        };
        total += n * per;
    }
    any.then_some(total)
}

/// A host timestamp as RFC 3339 in UTC, for the details the report view reads as timestamps.
/// `timestamp without time zone` values carry no zone and are read in `naive` (config
/// `naive_timestamps`, UTC by default); PostgreSQL's `infinity` and `-infinity` are kept.
/// Anything else (text that is no time, a year past 9999) is left out of the details, so that
/// no host value can make the report view fail; the row itself keeps it.
fn utc_timestamp(text: &str, naive: Tz) -> Option<String> {
    if text == "infinity" || text == "-infinity" {
        return Some(text.to_string());
    }
    instant(text, naive).map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// A time as a host prints it in JSON (`2026-11-02T09:00:00+01:00`, or without an offset for
/// `timestamp without time zone`, read in `naive`), as an instant. In a zone's autumn hour that
/// happens twice, a zone-less time is taken as the earlier; in its spring gap, as not a time.
pub fn instant(text: &str, naive: Tz) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    let local = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    local
        .and_local_timezone(naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use serde_json::json;

    fn source() -> SourceConfig {
        Config::from_toml(
            r#"
            [[source]]
            category = "time_entries"
            table = "app.time_entry"
            workspace_column = "ws"
            name_column = "description"
            soft_delete_column = "deleted_at"
            origin_column = "source"
            ignore_columns = ["updated_at"]
            [source.origins]
            timer = "Timer"
            [source.fields]
            project = "project_id"
            start = "start_at"
            tags = "tag_ids"
            "#,
        )
        .unwrap()
        .sources
        .remove(0)
    }

    fn change(op: Op, old: Option<Value>, new: Option<Value>) -> StagedChange {
        StagedChange {
            id: 7,
            source: "app.time_entry".into(),
            category: "time_entries".into(),
            op,
            txid: 1,
            occurred_at: Utc::now(),
            depth: 1,
            actor: Some("u1".into()),
            actor_source: None,
            origin: None,
            workspace_id: Some("w".into()),
            old_row: old.map(|v| RowImage::parse(v.to_string()).unwrap()),
            new_row: new.map(|v| RowImage::parse(v.to_string()).unwrap()),
            kept: None,
            tags: None,
        }
    }

    fn event(outcome: Outcome) -> AuditEvent {
        match outcome {
            Outcome::Event(e) => *e,
            other => panic!("expected an event, got {other:?}"),
        }
    }

    #[test]
    fn soft_delete_and_restore_are_recognised() {
        let live = json!({"id": 1, "ws": "w", "deleted_at": null, "description": "a"});
        let gone =
            json!({"id": 1, "ws": "w", "deleted_at": "2026-01-01T00:00:00", "description": "a"});
        let names = Names::default();
        let deleted = event(normalise(
            &mut change(Op::Update, Some(live.clone()), Some(gone.clone())),
            &source(),
            &names,
        ));
        assert_eq!(deleted.action_code, "time_entry.deleted");
        let restored = event(normalise(
            &mut change(Op::Update, Some(gone), Some(live)),
            &source(),
            &names,
        ));
        assert_eq!(restored.action, "Restored time entry");
    }

    #[test]
    fn boolean_soft_delete_flags_either_way_round() {
        let names = Names::default();
        for (inverted, live, gone) in [(false, false, true), (true, true, false)] {
            let mut source = source();
            source.soft_delete_column = Some("flag".into());
            source.soft_delete_inverted = inverted;
            let row = |flag: bool| json!({"id": 1, "ws": "w", "flag": flag, "description": "a"});
            let deleted = event(normalise(
                &mut change(Op::Update, Some(row(live)), Some(row(gone))),
                &source,
                &names,
            ));
            assert_eq!(
                deleted.action_code, "time_entry.deleted",
                "inverted: {inverted}"
            );
            let restored = event(normalise(
                &mut change(Op::Update, Some(row(gone)), Some(row(live))),
                &source,
                &names,
            ));
            assert_eq!(
                restored.action_code, "time_entry.restored",
                "inverted: {inverted}"
            );
        }
    }

    #[test]
    fn ignored_columns_alone_are_no_change() {
        let a = json!({"id": 1, "ws": "w", "updated_at": "x"});
        let b = json!({"id": 1, "ws": "w", "updated_at": "y"});
        assert!(matches!(
            normalise(
                &mut change(Op::Update, Some(a), Some(b)),
                &source(),
                &Names::default()
            ),
            Outcome::NoChange
        ));
    }

    #[test]
    fn details_resolve_names_and_origins_map() {
        let mut names = Names::default();
        names.authors.insert("u1".into(), "Ann".into());
        names
            .entities
            .insert((Category::Projects, "5".into()), "Apollo".into());
        names
            .entities
            .insert((Category::Tags, "9".into()), "urgent".into());
        names.project_clients.insert("5".into(), "3".into());
        names
            .entities
            .insert((Category::Clients, "3".into()), "ACME".into());
        let row = json!({"id": 1, "ws": "w", "project_id": 5, "tag_ids": [9, 10], "source": "timer",
                         "start_at": "2026-11-02T09:00:00", "description": "x"});
        let e = event(normalise(
            &mut change(Op::Insert, None, Some(row)),
            &source(),
            &names,
        ));
        assert_eq!(e.author, "Ann");
        assert_eq!(e.origin.as_deref(), Some("Timer"));
        assert_eq!(e.details.get(Key::Project), Some("Apollo"));
        assert_eq!(e.details.get(Key::Client), Some("ACME"));
        assert_eq!(
            e.details.tags(),
            Some(&["urgent".to_string(), "10".to_string()][..])
        );
        assert_eq!(e.details.get(Key::Start), Some("2026-11-02T09:00:00Z"));
    }

    #[test]
    fn linked_changes_are_authored_by_system() {
        let mut c = change(
            Op::Update,
            Some(json!({"id": 1, "ws": "w", "project_id": 5})),
            Some(json!({"id": 1, "ws": "w", "project_id": null})),
        );
        c.depth = 2;
        let e = event(normalise(&mut c, &source(), &Names::default()));
        assert_eq!(
            (e.author.as_str(), e.author_id.as_deref(), e.linked),
            (SYSTEM, None, true)
        );
        assert_eq!(e.previous_value.as_deref(), Some(r#"{"project_id": 5}"#));
        assert_eq!(e.new_value.as_deref(), Some(r#"{"project_id": null}"#));
    }

    #[test]
    fn a_missing_workspace_column_fails_the_change() {
        let mut c = change(Op::Insert, None, Some(json!({"id": 1})));
        c.workspace_id = None;
        assert!(
            matches!(normalise(&mut c, &source(), &Names::default()), Outcome::Failed(m) if m.contains("\"ws\""))
        );
    }
}

//! Looking up the names that details refer to: the author of a change, the project, task, client
//! and tags of a time entry.
//!
//! One query per referenced category per batch, against the host tables the config maps, then
//! Clockwatch's own `known_name` table for what the host no longer has (a deleted project keeps
//! the name the log last saw). Host lookups run inside a savepoint: if the host renamed a column
//! since install, the batch still goes through with ids instead of names, and a warning says why.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use tokio_postgres::{GenericClient, Transaction};

use crate::config::{quote_ident, Category, Config, NameColumns, TableName};
use crate::db::Prepared;
use crate::error::{DbContext, Result};
use crate::normalize::{localized, NameRef, Names, StagedChange};

/// `known_name` category for authors (user ids as actors, not a configured source's ids).
const AUTHOR: &str = "author";

/// The `actor_source` capture stages with a session's login role in place of an actor.
pub const ROLE: &str = "role";

/// One host table to look names up in: `select id, name[, client] where id = any($1)`.
#[derive(Debug, Clone)]
struct Lookup {
    sql: String,
    /// The table, quoted, as `lookup_table()` checks it before each lookup.
    relation: String,
    /// Label for log lines.
    table: String,
}

/// Name lookups prepared from the config.
#[derive(Debug, Default)]
pub struct Resolver {
    authors: Option<Lookup>,
    /// The authors table names them through a reference: its lookup gives each author the id
    /// of the row in `via` that holds the name (this key).
    authors_via: Option<String>,
    /// Database role -> user id, in the authors table (`[authors] db_role_column`).
    roles: Option<Lookup>,
    /// Whether `[authors] db_role_column` is set: `roles` is None then only when the table did
    /// not read as configured when this resolver was built.
    roles_configured: bool,
    /// Lookups of names kept in other tables, by `NameReference::key()`.
    via: BTreeMap<String, Lookup>,
    /// The locale translated names read in (config `name_locale`).
    locale: Option<String>,
    entities: BTreeMap<Category, Lookup>,
    /// Tags of the records of sources that keep them in a link table, by source.
    link_tags: HashMap<String, Lookup>,
    /// A lookup failed (the host changed a table since): prepare again before the next batch.
    stale: std::sync::atomic::AtomicBool,
}

impl Resolver {
    /// Build the lookup queries. Needs the catalog only for the type of each id column (ids arrive
    /// as text and are cast back, so the host's index on the id is used).
    pub async fn prepare(tx: &Transaction<'_>, config: &Config) -> Result<Resolver> {
        let mut resolver = Resolver {
            locale: config.name_locale.clone(),
            ..Resolver::default()
        };
        // Every table a name reference points at: the authors', a source's, a user field's.
        let references = config
            .authors()
            .and_then(|a| a.name_column.reference().cloned())
            .into_iter()
            .chain(config.sources.iter().filter_map(|s| {
                s.name_column
                    .as_ref()
                    .and_then(NameColumns::reference)
                    .cloned()
            }))
            .chain(
                config
                    .sources
                    .iter()
                    .filter_map(|s| s.fields.user.as_ref().and_then(|u| u.reference()).cloned()),
            );
        for r in references {
            if resolver.via.contains_key(&r.key()) {
                continue;
            }
            if let Ok(table) = TableName::parse(&r.table) {
                let name = std::slice::from_ref(&r.name_column);
                if let Some(l) = lookup(tx, &table, &r.id_column, name, None).await? {
                    resolver.via.insert(r.key(), l);
                }
            }
        }
        if let Some(authors) = config.authors() {
            resolver.authors_via = authors.name_column.reference().map(|r| r.key());
            if let Ok(table) = TableName::parse(&authors.table) {
                resolver.authors = lookup(
                    tx,
                    &table,
                    &authors.id_column,
                    authors.name_column.columns(),
                    None,
                )
                .await?;
                // The role's user: the same lookup, keyed by the role column, "naming" the id.
                if let Some(role_column) = &authors.db_role_column {
                    resolver.roles_configured = true;
                    let id = std::slice::from_ref(&authors.id_column);
                    resolver.roles = lookup(tx, &table, role_column, id, None).await?;
                }
            }
        }
        for category in [
            Category::Projects,
            Category::Tasks,
            Category::Clients,
            Category::Tags,
        ] {
            let Some(source) = config.source_for(category) else {
                continue;
            };
            let Some(name_column) = source.name_column.as_ref().map(NameColumns::columns) else {
                continue;
            };
            let table = source.table_name()?;
            let client = if category == Category::Projects {
                source.fields.client.as_deref()
            } else {
                None
            };
            if let Some(l) = lookup(tx, &table, &source.id_column, name_column, client).await? {
                resolver.entities.insert(category, l);
            }
        }
        // Link tables as install attached them (it found the column pointing at the record).
        for row in tx
            .query(
                "select c.source, n.nspname::text, r.relname::text, c.parent_column, c.tag_column
                 from captured_table c
                 join pg_class r on r.oid = c.relid
                 join pg_namespace n on n.oid = r.relnamespace
                 where c.link_parent is not null",
                &[],
            )
            .await
            .context("read the link tables")?
        {
            let table = TableName {
                schema: row.get(1),
                name: row.get(2),
            };
            let (parent, tag): (String, String) = (row.get(3), row.get(4));
            if let Some(l) = tags_lookup(tx, &table, &parent, &tag).await? {
                resolver.link_tags.insert(row.get(0), l);
            }
        }
        Ok(resolver)
    }

    /// The user each change staged with its session's login role acts as (`[authors]
    /// db_role_column`, read when the change is drained): the change's actor becomes that
    /// user's id, or none (System) for a role that is no user's, such as an application's shared
    /// login. A role is never taken for System, nor for a user, on a doubt: while the authors
    /// table cannot be read (the host holds it locked, or it no longer reads as configured) or
    /// when two of its rows hold the role, the role's name stays the actor (shown as an id,
    /// source `role`), and the drain goes on.
    pub async fn map_roles(
        &self,
        tx: &mut Transaction<'_>,
        prepared: &mut Prepared,
        changes: &mut [StagedChange],
    ) -> Result<()> {
        let by_role = |c: &StagedChange| c.actor_source.as_deref() == Some(ROLE);
        let roles: BTreeSet<String> = changes
            .iter()
            .filter(|c| by_role(c))
            .filter_map(|c| c.actor.clone())
            .collect();
        if roles.is_empty() || !self.roles_configured {
            return Ok(());
        }
        let rows = match &self.roles {
            Some(lookup) => match looked(tx, prepared, &self.stale, lookup, &roles).await? {
                Looked::Rows(rows) => rows,
                Looked::Locked | Looked::Failed => return Ok(()),
            },
            None => {
                // Built while the table lacked the column: build again for the next batch.
                self.stale.store(true, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!("login roles not mapped: the authors table does not read as configured; role names kept as authors");
                return Ok(());
            }
        };
        // role -> its user, or None when several rows hold it.
        let mut users: HashMap<String, Option<String>> = HashMap::new();
        for (role, id, _) in rows {
            users
                .entry(role)
                .and_modify(|user| {
                    if user.as_ref() != Some(&id) {
                        *user = None;
                    }
                })
                .or_insert(Some(id));
        }
        for change in changes.iter_mut().filter(|c| by_role(c)) {
            let Some(role) = change.actor.clone() else {
                continue;
            };
            match users.get(&role) {
                Some(Some(user)) => change.actor = Some(user.clone()),
                Some(None) => {
                    tracing::warn!(role = %role, "login role held by several authors; the role's name kept as the author");
                }
                None => {
                    change.actor = None;
                    change.actor_source = None;
                }
            }
        }
        Ok(())
    }

    /// The tags each record has now, for records of sources that keep their tags in a link
    /// table: `(source, record id) -> tag ids`, sorted. A record with no tags is left out.
    pub async fn current_tags(
        &self,
        tx: &mut Transaction<'_>,
        prepared: &mut Prepared,
        wanted: &BTreeMap<String, BTreeSet<String>>,
    ) -> Result<HashMap<(String, String), Vec<String>>> {
        let mut out = HashMap::new();
        for (source, ids) in wanted {
            let Some(lookup) = self.link_tags.get(source) else {
                continue;
            };
            for (id, tags, _) in run_lookup(tx, prepared, &self.stale, lookup, ids).await? {
                let tags: Vec<String> = serde_json::from_str(&tags).unwrap_or_default();
                out.insert((source.clone(), id), tags);
            }
        }
        Ok(out)
    }

    /// Look up every name the batch refers to: in the host tables first (current names), then in
    /// `in_batch` (names carried by the batch's own rows: a project created and deleted before the
    /// daemon got to its time entries), then in what the log remembers.
    ///
    /// `log` is the log's own database when it has one: what the log remembers is read there.
    pub async fn resolve(
        &self,
        tx: &mut Transaction<'_>,
        prepared: &mut Prepared,
        mut log: Option<(&Transaction<'_>, &mut Prepared)>,
        refs: &BTreeSet<NameRef>,
        in_batch: &Remembered,
    ) -> Result<Names> {
        let mut names = Names::default();
        let mut authors = BTreeSet::new();
        let mut entities: BTreeMap<Category, BTreeSet<String>> = BTreeMap::new();
        let mut via: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut authors_through: Vec<(String, String)> = Vec::new();
        for r in refs {
            match r {
                NameRef::Author(id) => {
                    authors.insert(id.clone());
                }
                NameRef::Entity(category, id) => {
                    entities.entry(*category).or_default().insert(id.clone());
                }
                NameRef::ProjectClient(project) => {
                    let projects = entities.entry(Category::Projects).or_default();
                    projects.insert(project.clone());
                }
                NameRef::Via(key, id) => {
                    via.entry(key.clone()).or_default().insert(id.clone());
                }
            }
        }

        if let Some(lookup) = &self.authors {
            let found = run_lookup(tx, prepared, &self.stale, lookup, &authors).await?;
            match &self.authors_via {
                // Each author's row names the row that holds the name.
                Some(key) => {
                    let rows: Vec<(String, String)> =
                        found.into_iter().map(|(id, row, _)| (id, row)).collect();
                    via.entry(key.clone())
                        .or_default()
                        .extend(rows.iter().map(|(_, row)| row.clone()));
                    authors_through = rows;
                }
                None => {
                    for (id, name, _) in found {
                        names
                            .authors
                            .insert(id, localized(name, self.locale.as_deref()));
                    }
                }
            }
        }
        for (key, ids) in &via {
            let Some(lookup) = self.via.get(key) else {
                continue;
            };
            for (id, name, _) in run_lookup(tx, prepared, &self.stale, lookup, ids).await? {
                names
                    .via
                    .insert((key.clone(), id), localized(name, self.locale.as_deref()));
            }
        }
        if let Some(key) = &self.authors_via {
            for (id, row) in authors_through {
                if let Some(name) = names.via.get(&(key.clone(), row)) {
                    names.authors.insert(id, name.clone());
                }
            }
        }
        for (category, ids) in &entities {
            self.look_up_entities(tx, prepared, &mut names, *category, ids)
                .await?;
        }
        let mut missing: Vec<Key> = authors
            .iter()
            .filter(|a| !names.authors.contains_key(*a))
            .map(|a| author_key(a))
            .collect();
        for (category, ids) in &entities {
            let absent = ids
                .iter()
                .filter(|id| names.entity(*category, id).is_none());
            missing.extend(absent.map(|id| (category.as_str().to_string(), id.clone())));
        }
        let recalled = match log.as_mut() {
            Some((log, log_prepared)) => recall(log, log_prepared, missing, in_batch).await?,
            None => recall(tx, prepared, missing, in_batch).await?,
        };
        for (key, known) in recalled {
            names.learn(key, known);
        }

        // Clients of projects, now that every project that can be found has been.
        let clients: BTreeSet<String> = names
            .project_clients
            .values()
            .filter(|c| names.entity(Category::Clients, c).is_none())
            .cloned()
            .collect();
        if !clients.is_empty() {
            self.look_up_entities(tx, prepared, &mut names, Category::Clients, &clients)
                .await?;
            let missing = clients
                .iter()
                .filter(|c| names.entity(Category::Clients, c).is_none())
                .map(|c| (Category::Clients.as_str().to_string(), c.clone()))
                .collect();
            let recalled = match log.as_mut() {
                Some((log, log_prepared)) => recall(log, log_prepared, missing, in_batch).await?,
                None => recall(tx, prepared, missing, in_batch).await?,
            };
            for (key, known) in recalled {
                names.learn(key, known);
            }
        }
        Ok(names)
    }

    /// Whether a lookup failed, so the queries should be prepared again from the catalog.
    pub fn is_stale(&self) -> bool {
        self.stale.load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn look_up_entities(
        &self,
        tx: &mut Transaction<'_>,
        prepared: &mut Prepared,
        names: &mut Names,
        category: Category,
        ids: &BTreeSet<String>,
    ) -> Result<()> {
        let Some(lookup) = self.entities.get(&category) else {
            return Ok(());
        };
        for (id, name, client) in run_lookup(tx, prepared, &self.stale, lookup, ids).await? {
            let name = localized(name, self.locale.as_deref());
            names.learn((category.as_str().to_string(), id), Known { name, client });
        }
        Ok(())
    }
}

/// `(category, id)`, or `("author", id)` for an actor.
pub type Key = (String, String);

/// A name the log knows for a record, with a project's client (so a deleted project's entries
/// can still name their client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub name: String,
    pub client: Option<String>,
}

/// Names gathered from a batch's own rows, or to be remembered after it.
pub type Remembered = HashMap<Key, Known>;

impl Names {
    fn learn(&mut self, (kind, id): Key, known: Known) {
        if kind == AUTHOR {
            self.authors.insert(id, known.name);
            return;
        }
        let Ok(category) = Category::parse(&kind) else {
            return;
        };
        if let (Category::Projects, Some(client)) = (category, known.client) {
            self.project_clients.insert(id.clone(), client);
        }
        self.entities.insert((category, id), known.name);
    }
}

/// Names for `wanted` from the batch's own rows, else from the `known_name` table.
async fn recall(
    tx: &Transaction<'_>,
    prepared: &mut Prepared,
    wanted: Vec<Key>,
    in_batch: &Remembered,
) -> Result<Vec<(Key, Known)>> {
    let mut found = Vec::new();
    let mut ask = Vec::new();
    for key in wanted {
        match in_batch.get(&key) {
            Some(known) => found.push((key, known.clone())),
            None => ask.push(key),
        }
    }
    if ask.is_empty() {
        return Ok(found);
    }
    let (categories, ids): (Vec<String>, Vec<String>) = ask.into_iter().unzip();
    let rows = prepared
        .query(
            tx,
            "select distinct on (k.category, k.id) k.category, k.id, k.name, k.client_id
             from known_name k
             join unnest($1::text[], $2::text[]) w(category, id) using (category, id)
             where k.name is not null
             order by k.category, k.id, k.seen_at desc",
            &[&categories, &ids],
        )
        .await
        .context("read known names")?;
    found.extend(rows.iter().map(|row| {
        let known = Known {
            name: row.get(2),
            client: row.get(3),
        };
        ((row.get(0), row.get(1)), known)
    }));
    Ok(found)
}

/// Remember names seen in this batch, so they outlive the host's rows: a name an id did not bear
/// last is added beside the ones before it (`known_name` keeps each, with when it was seen).
pub async fn remember(
    client: &impl GenericClient,
    prepared: &mut Prepared,
    seen: &Remembered,
) -> Result<()> {
    if seen.is_empty() {
        return Ok(());
    }
    let mut categories = Vec::with_capacity(seen.len());
    let mut ids = Vec::with_capacity(seen.len());
    let mut names = Vec::with_capacity(seen.len());
    let mut clients = Vec::with_capacity(seen.len());
    for ((category, id), known) in seen {
        categories.push(category.as_str());
        ids.push(id.as_str());
        names.push(known.name.as_str());
        clients.push(known.client.as_deref());
    }
    prepared
        .execute(
            client,
            "insert into known_name (category, id, name, client_id)
             select w.* from unnest($1::text[], $2::text[], $3::text[], $4::text[]) w(category, id, name, client_id)
             where not exists (
                 select from (select k.name, k.client_id from known_name k
                              where k.category = w.category and k.id = w.id
                              order by k.seen_at desc limit 1) last
                 where (last.name, last.client_id) is not distinct from (w.name, w.client_id))
             on conflict do nothing",
            &[&categories, &ids, &names, &clients],
        )
        .await
        .context("remember names")?;
    Ok(())
}

/// Remember author ids that have no name, so that reports can be filtered by them (`--author
/// 4`): a name found later is added after the empty one.
pub async fn remember_nameless(
    client: &impl GenericClient,
    prepared: &mut Prepared,
    ids: &[&str],
) -> Result<()> {
    prepared
        .execute(
            client,
            "insert into known_name (category, id, name)
             select 'author', w.id, null from unnest($1::text[]) w(id)
             where not exists (select from known_name k where k.category = 'author' and k.id = w.id)
             on conflict do nothing",
            &[&ids],
        )
        .await
        .context("remember authors")?;
    Ok(())
}

/// The names of a batch in the form `known_name` keeps them.
pub fn remembered(names: &Names) -> Remembered {
    let mut out = Remembered::new();
    for ((category, id), name) in &names.entities {
        let client = match category {
            Category::Projects => names.project_clients.get(id).cloned(),
            _ => None,
        };
        out.insert(
            (category.as_str().to_string(), id.clone()),
            Known {
                name: name.clone(),
                client,
            },
        );
    }
    for (id, name) in &names.authors {
        out.insert(
            author_key(id),
            Known {
                name: name.clone(),
                client: None,
            },
        );
    }
    out
}

/// Key under which an author's name is remembered.
pub fn author_key(id: &str) -> Key {
    (AUTHOR.to_string(), id.to_string())
}

async fn lookup(
    tx: &Transaction<'_>,
    table: &TableName,
    id_column: &str,
    name_columns: &[String],
    client_column: Option<&str>,
) -> Result<Option<Lookup>> {
    let Some(id_type) = id_type(tx, table, id_column).await? else {
        return Ok(None);
    };
    // A name or client column the host renamed or dropped would fail every lookup: leave the
    // lookup out (ids are shown) rather than fail and warn on every batch.
    let names = name_columns.iter().map(String::as_str);
    for column in names.chain(client_column) {
        let present: bool = tx
            .query_one(
                "select exists (select 1 from pg_attribute
                                where attrelid = to_regclass($1) and attname = $2 and not attisdropped)",
                &[&table.quoted(), &column],
            )
            .await
            .context(format!("read the columns of {table}"))?
            .get(0);
        if !present {
            tracing::warn!(%table, column, "names will not be resolved: column not found");
            return Ok(None);
        }
    }
    let id = quote_ident(id_column);
    let printed = |column: &str| {
        let c = quote_ident(column);
        format!("case when {c} is null then null else format('%s', {c}) end")
    };
    let client = client_column
        .map(printed)
        .unwrap_or_else(|| "null::text".into());
    // The first name column that is neither null nor empty.
    let name = name_columns
        .iter()
        .map(|c| format!("nullif({}, '')", printed(c)))
        .collect::<Vec<_>>()
        .join(", ");
    // A name is cut at 1,000 characters (999 and an ellipsis): each event's details carry a copy
    // of the names they refer to, and a project named with megabytes would otherwise cost a
    // batch of its time entries that many megabytes each.
    let sql = format!(
        "select {id_text}, (select case when length(n) > 1000 then left(n, 999) || chr(8230) else n end
                            from (select coalesce({name}) as n) x),
                {client} from {table} where {id}::{id_type} = any($1::text[]::{id_type}[])",
        id_text = printed(id_column),
        table = table.quoted(),
    );
    Ok(Some(Lookup {
        sql,
        relation: table.quoted(),
        table: table.to_string(),
    }))
}

/// The built-in type a lookup compares `column` of `table` as, or None (with a warning) when it
/// cannot be looked up by it.
async fn id_type(tx: &Transaction<'_>, table: &TableName, column: &str) -> Result<Option<String>> {
    // The daemon reads host tables with its own rights, so nothing in a lookup may run code the
    // host's roles control: casts and domain checks are functions their owner writes. So the id
    // is compared as its built-in base type (through domains, which cast to it without a check),
    // names are printed by their type's output function (`format('%s')`, which no CREATE CAST
    // can replace), and row-level security is off for the daemon's sessions (a policy would
    // otherwise run as the daemon; with it off, a table under a policy fails the lookup, and ids
    // are shown). An id column of a type the host created (an enum, say) is not looked up.
    let row = tx
        .query_opt(
            "with recursive base as (
                 select a.atttypid as typ, a.atttypmod as typmod
                 from pg_attribute a
                 join pg_class r on r.oid = a.attrelid and r.relkind in ('r', 'p')
                 where a.attrelid = to_regclass($1) and a.attname = $2 and not a.attisdropped
                 union all
                 select t.typbasetype, t.typtypmod from base b join pg_type t on t.oid = b.typ
                 where t.typtype = 'd'
             )
             select format_type(b.typ, b.typmod), b.typ < 16384
             from base b join pg_type t on t.oid = b.typ
             where t.typtype <> 'd'",
            &[&table.quoted(), &column],
        )
        .await
        .context(format!("read the id type of {table}"))?;
    let Some(row) = row else {
        tracing::warn!(%table, column, "names will not be resolved: no such table (a view is not read) or id column");
        return Ok(None);
    };
    let (id_type, built_in): (String, bool) = (row.get(0), row.get(1));
    if !built_in {
        tracing::warn!(%table, column, id_type, "names will not be resolved: the id column's type is not built in");
        return Ok(None);
    }
    Ok(Some(id_type))
}

/// The lookup of records' tags in a link table: `select record id, json array of tag ids`.
async fn tags_lookup(
    tx: &Transaction<'_>,
    link: &TableName,
    parent_column: &str,
    tag_column: &str,
) -> Result<Option<Lookup>> {
    let Some(id_type) = id_type(tx, link, parent_column).await? else {
        return Ok(None);
    };
    let (parent, tag) = (quote_ident(parent_column), quote_ident(tag_column));
    let sql = format!(
        "select format('%s', {parent}), json_agg(format('%s', {tag}) order by format('%s', {tag}))::text, null::text
         from {table} where {parent}::{id_type} = any($1::text[]::{id_type}[]) and {tag} is not null
         group by {parent}",
        table = link.quoted(),
    );
    Ok(Some(Lookup {
        sql,
        relation: link.quoted(),
        table: link.to_string(),
    }))
}

/// Rows a lookup found, or why it found none.
enum Looked {
    Rows(Vec<(String, String, Option<String>)>),
    /// The host holds the table locked.
    Locked,
    /// The table no longer reads as it did (a column dropped or retyped).
    Failed,
}

/// Run one lookup inside a savepoint, for names: a failure (the host changed the table) costs
/// the names, not the batch.
async fn run_lookup(
    tx: &mut Transaction<'_>,
    prepared: &mut Prepared,
    stale: &std::sync::atomic::AtomicBool,
    lookup: &Lookup,
    ids: &BTreeSet<String>,
) -> Result<Vec<(String, String, Option<String>)>> {
    Ok(match looked(tx, prepared, stale, lookup, ids).await? {
        Looked::Rows(rows) => rows,
        Looked::Locked | Looked::Failed => Vec::new(),
    })
}

/// Run one lookup inside a savepoint. The statement is prepared inside the savepoint too:
/// preparing it against a changed table fails like running it does.
async fn looked(
    tx: &mut Transaction<'_>,
    prepared: &mut Prepared,
    stale: &std::sync::atomic::AtomicBool,
    lookup: &Lookup,
    ids: &BTreeSet<String>,
) -> Result<Looked> {
    if ids.is_empty() {
        return Ok(Looked::Rows(Vec::new()));
    }
    let ids: Vec<&String> = ids.iter().collect();
    let savepoint = tx
        .savepoint("clockwatch_lookup")
        .await
        .context("savepoint")?;
    // Only a plain table, locked until the batch commits, is read (see lookup_table()).
    let checked = prepared
        .query(&savepoint, "select lookup_table($1)", &[&lookup.relation])
        .await;
    let looked_up = match checked {
        Ok(_) => prepared.query(&savepoint, &lookup.sql, &[&ids]).await,
        Err(e) => Err(e),
    };
    match looked_up {
        Ok(rows) => {
            savepoint.commit().await.context("release savepoint")?;
            Ok(Looked::Rows(
                rows.iter()
                    .filter_map(|r| {
                        Some((
                            r.get::<_, Option<String>>(0)?,
                            r.get::<_, Option<String>>(1)?,
                            r.get(2),
                        ))
                    })
                    .collect(),
            ))
        }
        Err(e) if crate::db::is_transient(&e) => {
            Err(e).context(format!("look up names in {}", lookup.table))
        }
        Err(e)
            if e.code() == Some(&tokio_postgres::error::SqlState::INVALID_TEXT_REPRESENTATION)
                || e.code()
                    == Some(&tokio_postgres::error::SqlState::NUMERIC_VALUE_OUT_OF_RANGE) =>
        {
            // An id that cannot be of the id column's type names no row, and must not cost the
            // other ids of the batch their names: each is looked up alone.
            savepoint.rollback().await.context("rollback savepoint")?;
            if ids.len() == 1 {
                return Ok(Looked::Rows(Vec::new()));
            }
            let mut found = Vec::new();
            for id in ids {
                let one = BTreeSet::from([id.clone()]);
                found.extend(Box::pin(run_lookup(tx, prepared, stale, lookup, &one)).await?);
            }
            Ok(Looked::Rows(found))
        }
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
            // The host holds the table (an ALTER, a VACUUM FULL): this batch's names come from
            // what the log remembers, rather than every workspace's draining waiting on it.
            tracing::warn!(table = %lookup.table, "name lookup skipped: the table is locked; remembered names or ids shown");
            savepoint.rollback().await.context("rollback savepoint")?;
            Ok(Looked::Locked)
        }
        Err(e) => {
            // The prepared statement may be what broke (a result type that changed): prepare
            // everything again.
            prepared.clear();
            stale.store(true, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(table = %lookup.table, error = %crate::db::describe(&e), "name lookup failed; ids shown instead");
            savepoint.rollback().await.context("rollback savepoint")?;
            Ok(Looked::Failed)
        }
    }
}

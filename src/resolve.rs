//! Looking up the names that details refer to: the author of a change, the project, task, client
//! and tags of a time entry.
//!
//! One query per referenced category per batch, against the host tables the config maps, then
//! Clockwatch's own `known_name` table for what the host no longer has (a deleted project keeps
//! the name the log last saw). Host lookups run inside a savepoint: if the host renamed a column
//! since install, the batch still goes through with ids instead of names, and a warning says why.

use std::collections::{BTreeMap, BTreeSet};

use tokio_postgres::Transaction;

use crate::config::{quote_ident, Category, Config, TableName};
use crate::error::{DbContext, Result};
use crate::normalize::{NameRef, Names};

/// `known_name` category for authors (user ids as actors, not a configured source's ids).
const AUTHOR: &str = "author";

/// One host table to look names up in: `select id, name[, client] where id = any($1)`.
#[derive(Debug, Clone)]
struct Lookup {
    sql: String,
    /// Label for log lines.
    table: String,
}

/// Name lookups prepared from the config.
#[derive(Debug, Default)]
pub struct Resolver {
    authors: Option<Lookup>,
    entities: BTreeMap<Category, Lookup>,
    /// The projects lookup also returns the project's client (third column), when mapped.
    projects_have_client: bool,
}

impl Resolver {
    /// Build the lookup queries. Needs the catalog only for the type of each id column (ids arrive
    /// as text and are cast back, so the host's index on the id is used).
    pub async fn prepare(tx: &Transaction<'_>, config: &Config) -> Result<Resolver> {
        let mut resolver = Resolver::default();
        if let Some(authors) = config.authors() {
            if let Ok(table) = TableName::parse(&authors.table) {
                resolver.authors =
                    lookup(tx, &table, &authors.id_column, &authors.name_column, None).await?;
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
            let Some(name_column) = source.name_column.as_deref() else {
                continue;
            };
            let table = source.table_name()?;
            let client = if category == Category::Projects {
                source.fields.client.as_deref()
            } else {
                None
            };
            if let Some(l) = lookup(tx, &table, &source.id_column, name_column, client).await? {
                resolver.projects_have_client |= client.is_some();
                resolver.entities.insert(category, l);
            }
        }
        Ok(resolver)
    }

    /// Look up every name the batch refers to.
    pub async fn resolve(
        &self,
        tx: &mut Transaction<'_>,
        refs: &BTreeSet<NameRef>,
    ) -> Result<Names> {
        let mut names = Names::default();
        let mut authors = BTreeSet::new();
        let mut entities: BTreeMap<Category, BTreeSet<String>> = BTreeMap::new();
        for r in refs {
            match r {
                NameRef::Author(id) => {
                    authors.insert(id.clone());
                }
                NameRef::Entity(category, id) => {
                    entities.entry(*category).or_default().insert(id.clone());
                }
                NameRef::ProjectClient(project) => {
                    entities
                        .entry(Category::Projects)
                        .or_default()
                        .insert(project.clone());
                }
            }
        }

        if let Some(lookup) = &self.authors {
            for (id, name, _) in run_lookup(tx, lookup, &authors).await? {
                names.authors.insert(id, name);
            }
        }
        // Projects first: their clients join the client lookup.
        for (category, ids) in &entities {
            let Some(lookup) = self.entities.get(category) else {
                continue;
            };
            for (id, name, client) in run_lookup(tx, lookup, ids).await? {
                if let Some(client) = client {
                    names.project_clients.insert(id.clone(), client);
                }
                names.entities.insert((*category, id), name);
            }
        }
        let missing_clients: BTreeSet<String> = names
            .project_clients
            .values()
            .filter(|c| {
                !names
                    .entities
                    .contains_key(&(Category::Clients, (*c).clone()))
            })
            .cloned()
            .collect();
        if let (false, Some(lookup)) = (
            missing_clients.is_empty(),
            self.entities.get(&Category::Clients),
        ) {
            for (id, name, _) in run_lookup(tx, lookup, &missing_clients).await? {
                names.entities.insert((Category::Clients, id), name);
            }
        }

        // What the host no longer has, the log may remember.
        let mut wanted: Vec<(String, String)> = authors
            .iter()
            .filter(|a| !names.authors.contains_key(*a))
            .map(|a| (AUTHOR.to_string(), a.clone()))
            .collect();
        for (category, ids) in &entities {
            wanted.extend(
                ids.iter()
                    .filter(|id| !names.entities.contains_key(&(*category, (*id).clone())))
                    .map(|id| (category.as_str().to_string(), id.clone())),
            );
        }
        if !wanted.is_empty() {
            let (categories, ids): (Vec<String>, Vec<String>) = wanted.into_iter().unzip();
            let rows = tx
                .query(
                    "select k.category, k.id, k.name from known_name k
                     join unnest($1::text[], $2::text[]) w(category, id) using (category, id)",
                    &[&categories, &ids],
                )
                .await
                .context("read known names")?;
            for row in rows {
                let (category, id, name): (String, String, String) =
                    (row.get(0), row.get(1), row.get(2));
                if category == AUTHOR {
                    names.authors.insert(id, name);
                } else if let Ok(c) = Category::parse(&category) {
                    names.entities.insert((c, id), name);
                }
            }
        }
        Ok(names)
    }
}

/// Remember names seen in this batch, so they outlive the host's rows.
pub async fn remember(
    tx: &Transaction<'_>,
    seen: BTreeMap<(String, String), String>,
) -> Result<()> {
    if seen.is_empty() {
        return Ok(());
    }
    let mut categories = Vec::with_capacity(seen.len());
    let mut ids = Vec::with_capacity(seen.len());
    let mut names = Vec::with_capacity(seen.len());
    for ((category, id), name) in seen {
        categories.push(category);
        ids.push(id);
        names.push(name);
    }
    tx.execute(
        "insert into known_name (category, id, name)
         select * from unnest($1::text[], $2::text[], $3::text[])
         on conflict (category, id) do update set name = excluded.name, seen_at = now()
         where known_name.name is distinct from excluded.name",
        &[&categories, &ids, &names],
    )
    .await
    .context("remember names")?;
    Ok(())
}

/// Key under which an author's name is remembered.
pub fn author_key(id: &str) -> (String, String) {
    (AUTHOR.to_string(), id.to_string())
}

async fn lookup(
    tx: &Transaction<'_>,
    table: &TableName,
    id_column: &str,
    name_column: &str,
    client_column: Option<&str>,
) -> Result<Option<Lookup>> {
    // format_type gives the id column's type as SQL text (bigint, uuid, character varying(36)).
    let row = tx
        .query_opt(
            "select format_type(a.atttypid, a.atttypmod)
             from pg_attribute a
             where a.attrelid = to_regclass($1) and a.attname = $2 and not a.attisdropped",
            &[&table.quoted(), &id_column],
        )
        .await
        .context(format!("read the id type of {table}"))?;
    let Some(row) = row else {
        tracing::warn!(%table, id_column, "names will not be resolved: table or id column not found");
        return Ok(None);
    };
    let id_type: String = row.get(0);
    let id = quote_ident(id_column);
    let client = client_column
        .map(|c| format!("{}::text", quote_ident(c)))
        .unwrap_or_else(|| "null::text".into());
    let sql = format!(
        "select {id}::text, {name}::text, {client} from {table} where {id} = any($1::text[]::{id_type}[])",
        name = quote_ident(name_column),
        table = table.quoted(),
    );
    Ok(Some(Lookup {
        sql,
        table: table.to_string(),
    }))
}

/// Run one lookup inside a savepoint; a failure (the host changed the table) costs the names,
/// not the batch.
async fn run_lookup(
    tx: &mut Transaction<'_>,
    lookup: &Lookup,
    ids: &BTreeSet<String>,
) -> Result<Vec<(String, String, Option<String>)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&String> = ids.iter().collect();
    let savepoint = tx
        .savepoint("clockwatch_lookup")
        .await
        .context("savepoint")?;
    match savepoint.query(&lookup.sql, &[&ids]).await {
        Ok(rows) => {
            savepoint.commit().await.context("release savepoint")?;
            Ok(rows
                .iter()
                .filter_map(|r| {
                    Some((
                        r.get::<_, Option<String>>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get(2),
                    ))
                })
                .collect())
        }
        Err(e) if crate::db::is_transient(&e) => {
            Err(e).context(format!("look up names in {}", lookup.table))
        }
        Err(e) => {
            tracing::warn!(table = %lookup.table, error = %crate::db::describe(&e), "name lookup failed; ids shown instead");
            savepoint.rollback().await.context("rollback savepoint")?;
            Ok(Vec::new())
        }
    }
}

//! `install` and `uninstall`: Clockwatch's schema and the capture triggers on the host tables.
//!
//! Install is one transaction under an advisory lock: the config is checked against the live
//! catalog first, then migrations run and triggers are attached. Any refusal rolls everything
//! back, so nothing is ever half-installed, and running it again converges on the config
//! (triggers on tables the config no longer lists are removed).

use std::collections::BTreeSet;

use tokio_postgres::{Client, GenericClient, Transaction};

use crate::config::{quote_ident, Config, SourceConfig, TableName};
use crate::error::{DbContext, Error, Result};
use crate::migrate::{self, Part};
use crate::normalize::ACTIONS;

/// Key of the advisory lock that serialises installs, migrations and uninstalls.
const LOCK_CLASS: i32 = 0x000C_10C4;

#[derive(Debug, Default)]
pub struct InstallReport {
    pub migrations_applied: usize,
    pub attached: Vec<String>,
    pub detached: Vec<String>,
    /// The log kept beside capture until now, moved to the log database (src/move_log.rs).
    pub moved: Option<crate::move_log::Moved>,
}

/// Install on the host: schema and capture triggers, with the log beside them unless the
/// config's `log_database_url` puts it elsewhere (see [`install_host`]).
pub async fn install(client: &mut Client, config: &Config) -> Result<InstallReport> {
    let side = match config.log_database_url {
        Some(_) => Side::Host,
        None => Side::Together,
    };
    install_host(client, config, side, None).await
}

/// Install on the host: Clockwatch's schema and the capture triggers; `side` says whether the
/// log lives here too ([`Side::Together`]) or in a database of its own ([`Side::Host`]). A log
/// kept here until now is moved to `log` (the log database, installed) first: without it, a
/// schema with a log to move is refused rather than left holding a history nothing reads.
pub async fn install_host(
    client: &mut Client,
    config: &Config,
    side: Side,
    log: Option<&mut Client>,
) -> Result<InstallReport> {
    let tx = client.transaction().await.context("begin install")?;
    lock(&tx, &config.schema).await?;
    let move_to = match log {
        _ if !check_host_install(&tx, config, side).await? => None,
        Some(log) => Some(log),
        None => {
            return Err(Error::Config(format!(
                "schema \"{}\" keeps its log beside capture: moving it to log_database_url takes the log database's connection too (`clockwatch install` with this config)",
                config.schema
            )))
        }
    };
    for source in &config.sources {
        check_source(&tx, source).await?;
    }
    if let Some(authors) = config.authors() {
        let table = TableName::parse(&authors.table)
            .map_err(|e| Error::Config(format!("authors.table: {e}")))?;
        let Some(columns) = table_columns(&tx, &table).await? else {
            let why = missing_table(&tx, &table).await?;
            return Err(Error::Schema(format!("authors: table {table} {why}")));
        };
        let names = authors.name_column.columns().iter();
        for (key, column) in std::iter::once(("id_column", &authors.id_column))
            .chain(names.map(|c| ("name_column", c)))
        {
            if !columns.contains(column) {
                return Err(Error::Schema(format!(
                    "authors: {key} \"{column}\" not found in {table}"
                )));
            }
        }
    }
    if let Some(problem) = workspaces_problems(&tx, config).await?.into_iter().next() {
        return Err(Error::Schema(problem));
    }
    let mut report = InstallReport {
        migrations_applied: prepare_schema(&tx, config, side).await?,
        ..Default::default()
    };

    let mut wanted = BTreeSet::new();
    for source in &config.sources {
        let table = source.table_name()?;
        let filter = match source.filter.as_deref().map(crate::filter::parse) {
            Some(Ok(f)) => Some(f),
            Some(Err(why)) => {
                return Err(Error::Config(format!("{}: filter: {why}", source.label())))
            }
            None => None,
        };
        // The table, then each of its partitions and sub-partitions: a statement aimed at one
        // partition fires that partition's statement triggers, not the parent's, so each gets
        // capture triggers of its own, for the same source (a statement through the parent
        // fires only the parent's).
        for row in tx
            .query(
                "with recursive tree(relid, level) as (
                     select $1::text::regclass::oid, 0
                     union
                     select i.inhrelid, t.level + 1 from pg_inherits i join tree t on i.inhparent = t.relid)
                 select p.relid, p.relid::regclass::text from tree p
                 order by p.level, p.relid::regclass::text",
                &[&table.quoted()],
            )
            .await
            .context(format!("read the partitions of {table}"))?
        {
            let (oid, name): (u32, String) = (row.get(0), row.get(1));
            tx.execute(
                "select attach($1::oid::regclass, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[
                    &oid,
                    &source.table,
                    &source.category.as_str(),
                    &source.workspace_column,
                    &source.fixed_workspace(config),
                    &source.exclude_columns,
                    &config.channel(),
                    &filter.as_ref().map(|f| f.sql.clone()),
                    &filter.as_ref().map(|f| f.columns.clone()),
                ],
            )
            .await
            .context(format!("attach triggers to {name}"))?;
            wanted.insert(oid);
            report.attached.push(name);
        }
    }
    // Link tables after every source: each takes its record table's settings.
    for source in &config.sources {
        if let Some(link) = attach_link(&tx, source).await? {
            wanted.insert(link.0);
            report.attached.push(link.1);
        }
    }
    for row in tx
        .query("select t::oid, t::text from attached_tables() t", &[])
        .await
        .context("list attached tables")?
    {
        let oid: u32 = row.get(0);
        if !wanted.contains(&oid) {
            tx.execute("select detach($1::oid::regclass)", &[&oid])
                .await
                .context("detach triggers")?;
            report.detached.push(row.get(1));
        }
    }
    // Last, once everything else has passed: the log database commits the history it takes
    // over just before the host lets go of it, with the new layout.
    if let Some(log) = move_to {
        report.moved = Some(crate::move_log::move_log(&tx, log, config).await?);
    }
    tx.commit().await.context("commit install")?;
    Ok(report)
}

/// What an install on the host must refuse before it changes anything, on either side: a host
/// whose log was moved out, installed again without `log_database_url` (it would start a second
/// log beside the moved one, whose chains the next move would break); a schema installed for
/// another source; a log database's schema; and a log kept beside capture that is to be moved
/// while a daemon may still drain into it. `clockwatch install` asks before it installs the log
/// database, and the host's install again under its lock. Returns whether the install moves a
/// log kept beside capture out to the log database (src/move_log.rs).
pub async fn check_host_install(
    client: &impl GenericClient,
    config: &Config,
    side: Side,
) -> Result<bool> {
    if !is_installed(client, &config.schema).await? {
        return Ok(false);
    }
    let row = client
        .query_one(
            &format!(
                "select layout, source_id from {}.settings",
                quote_ident(&config.schema)
            ),
            &[],
        )
        .await
        .context("read the installed layout")?;
    let (found, recorded): (Option<String>, Option<String>) = (row.get(0), row.get(1));
    let schema = &config.schema;
    match (side, Side::of(found.as_deref())) {
        (Side::Together, Side::Host) => Err(Error::Config(format!(
            "schema \"{schema}\" keeps capture only, its audit log is in a database of its own: set log_database_url (or CLOCKWATCH_LOG_DATABASE_URL) to the log database"
        ))),
        (_, Side::Log) => Err(Error::Config(format!(
            "schema \"{schema}\" is a log database's, not the application's: check the database URL"
        ))),
        _ if (found.is_some() || recorded.is_some()) && recorded != config.source_id => {
            Err(other_source(config, recorded.as_deref()))
        }
        (Side::Host, Side::Together) => crate::move_log::refuse_while_draining(client)
            .await
            .map(|()| true),
        _ => Ok(false),
    }
}

/// A schema installed for one source, met by a config for another.
fn other_source(config: &Config, recorded: Option<&str>) -> Error {
    Error::Config(format!(
        "schema \"{}\" was installed for {}, and this config is for {}: check source_id and the database URLs (to move it, `clockwatch uninstall --purge` first)",
        config.schema,
        source_named(recorded),
        source_named(config.source_id.as_deref())
    ))
}

/// Clockwatch's schema, migrated, with the config's settings, the daemon role's grants,
/// partitions ahead and action labels: all a database needs to hold the log (the host's, or the
/// log's own). Returns how many migrations ran.
async fn prepare_schema(tx: &Transaction<'_>, config: &Config, side: Side) -> Result<usize> {
    let valid_zone: bool = tx
        .query_one(
            "select exists (select 1 from pg_timezone_names where name = $1)",
            &[&config.timezone],
        )
        .await
        .context("check timezone")?
        .get(0);
    if !valid_zone {
        return Err(Error::Config(format!(
            "timezone: \"{}\" is not a time zone PostgreSQL knows (use an IANA name such as Europe/Berlin)",
            config.timezone
        )));
    }
    let applied = migrate::migrate(tx, &config.schema, side.parts()).await?;
    // A schema installed for one source stays that source's: installed again for another, its
    // staged changes, or its log, would be taken for the other host's.
    // (A schema with its log beside it has no source yet: it may become one host of several.)
    let row = tx
        .query_one("select layout, source_id from settings", &[])
        .await
        .context("read the installed source")?;
    let (layout, recorded): (Option<String>, Option<String>) = (row.get(0), row.get(1));
    if (layout.is_some() || recorded.is_some()) && recorded != config.source_id {
        return Err(other_source(config, recorded.as_deref()));
    }
    tx.execute(
        "update settings set layout = $1, source_id = $2",
        &[&side.code(), &config.source_id],
    )
    .await
    .context("save the layout")?;
    tx.execute(
        "update settings set timezone = $1, max_report_days = $2, retention = $3::text::interval,
                             shared_sources = $4, actor_settings = $5::text::jsonb,
                             actor_role = $6",
        &[
            &config.timezone,
            &config.max_report_days,
            &config.retention,
            &config
                .sources
                .iter()
                .filter(|s| s.workspace_if_null.as_deref() == Some("*"))
                .map(|s| s.table.clone())
                .collect::<Vec<_>>(),
            &serde_json::Value::from(
                config
                    .actor_settings
                    .iter()
                    .map(|a| a.json())
                    .collect::<Vec<_>>(),
            )
            .to_string(),
            &config.reads_role(),
        ],
    )
    .await
    .map_err(|e| match e.code().map(|c| c.code()) {
        // invalid_datetime_format, or the check constraint: the retention value is the cause.
        Some("22007") | Some("23514") => Error::Config(format!(
            "retention: \"{}\" is not an interval of a day or more (e.g. \"365 days\", \"18 months\")",
            config.retention
        )),
        _ => Error::db("save settings", &e),
    })?;
    if let Some(role) = &config.daemon_role {
        let exists: bool = tx
            .query_one(
                "select exists (select 1 from pg_roles where rolname = $1)",
                &[role],
            )
            .await
            .context("look up daemon_role")?
            .get(0);
        if !exists {
            return Err(Error::Config(format!(
                "daemon_role: role \"{role}\" does not exist: create it first (create role ... login)"
            )));
        }
        tx.execute("select grant_daemon($1::text::name)", &[role])
            .await
            .context(format!("grant the daemon's privileges to {role}"))?;
    }
    if side != Side::Host {
        tx.query_one("select ensure_partitions_ahead()", &[])
            .await
            .context("create partitions ahead")?;
    }
    // The action table mirrors the labels the daemon writes, so filters can name either.
    let (codes, labels): (Vec<&str>, Vec<&str>) = ACTIONS.iter().copied().unzip();
    tx.execute(
        "insert into action (code, label, category)
         select a.code, a.label, c.category
         from unnest($1::text[], $2::text[]) a(code, label)
         join category c on c.entity = split_part(a.code, '.', 1)
         on conflict (code) do update set label = excluded.label",
        &[&codes, &labels],
    )
    .await
    .context("save action labels")?;
    Ok(applied)
}

/// Install Clockwatch's schema in the log's own database (`log_database_url`): everything the log
/// needs, and no triggers, the host's tables being elsewhere. Returns how many migrations ran.
pub async fn install_log(client: &mut Client, config: &Config) -> Result<usize> {
    let tx = client.transaction().await.context("begin install")?;
    lock(&tx, &config.schema).await?;
    if let Some(role) = &config.daemon_role {
        // A daemon role drains one host: granted on two hosts' schemas, either host's daemon
        // could write, or read, the other's log. (The catalog, not to_regclass(): that needs
        // USAGE on each schema it looks in, pg_toast and other sessions' temporary schemas
        // among them, which a database's owner does not have.)
        let other = tx
            .query_opt(
                "select n.nspname::text from pg_namespace n join pg_roles r on r.rolname = $1
                 where n.nspname <> $2 and has_schema_privilege(r.oid, n.oid, 'USAGE')
                   and exists (select 1 from pg_class c
                               where c.relnamespace = n.oid and c.relname = 'chain_head')
                 limit 1",
                &[role, &config.schema],
            )
            .await
            .context("look for other logs the daemon role drains")?;
        if let Some(other) = other {
            let other: String = other.get(0);
            return Err(Error::Config(format!(
                "daemon_role: {role} already drains the log in schema {other} of this database: give each host a daemon role of its own, so that none can write another's log"
            )));
        }
    }
    let applied = prepare_schema(&tx, config, Side::Log).await?;
    tx.commit().await.context("commit install")?;
    Ok(applied)
}

/// Attach the capture triggers to the link table holding a source's tags, if it has one, after
/// checking its columns. Returns its oid and name.
async fn attach_link(tx: &Transaction<'_>, source: &SourceConfig) -> Result<Option<(u32, String)>> {
    let (Some(link), Some(table)) = (source.link_tags(), source.link_table()?) else {
        return Ok(None);
    };
    let parent = source.table_name()?;
    let key = format!("{}: fields.tags", source.label());
    let columns = table_columns(tx, &table)
        .await?
        .ok_or_else(|| Error::Schema(format!("{key}: link table {table} not found")))?;
    for column in std::iter::once(&link.column).chain(&link.parent_column) {
        if !columns.contains(column) {
            return Err(Error::Schema(format!(
                "{key}: column \"{column}\" not found in {table}"
            )));
        }
    }
    let parent_column = match &link.parent_column {
        Some(column) => column.clone(),
        None => {
            // The link table's single-column foreign key to the record's id.
            let found: Vec<String> = tx
                .query(
                    "select a.attname::text
                     from pg_constraint c
                     join pg_attribute a on a.attrelid = c.conrelid and a.attnum = c.conkey[1]
                     join pg_attribute r on r.attrelid = c.confrelid and r.attnum = c.confkey[1]
                     where c.contype = 'f' and c.conrelid = $1::text::regclass
                       and c.confrelid = $2::text::regclass and cardinality(c.conkey) = 1
                       and r.attname = $3",
                    &[&table.quoted(), &parent.quoted(), &source.id_column],
                )
                .await
                .context(format!("read the foreign keys of {table}"))?
                .iter()
                .map(|r| r.get(0))
                .collect();
            match found.as_slice() {
                [column] => column.clone(),
                [] | [_, _, ..] => {
                    let how = if found.is_empty() {
                        "no"
                    } else {
                        "more than one"
                    };
                    return Err(Error::Schema(format!(
                        "{key}: {table} has {how} foreign key to {parent}({}): name the column holding the record's id, tags = {{ table = \"{}\", column = \"{}\", parent_column = \"...\" }}",
                        source.id_column, link.table, link.column
                    )));
                }
            }
        }
    };
    tx.execute(
        "select attach_link($1::text::regclass, $2::text::regclass, $3, $4, $5)",
        &[
            &table.quoted(),
            &parent.quoted(),
            &parent_column,
            &link.column,
            &source.id_column,
        ],
    )
    .await
    .context(format!("attach triggers to {table}"))?;
    Ok(Some((table_oid(tx, &table).await?, table.to_string())))
}

/// The oid of a table the config names (attached tables are matched by oid).
async fn table_oid(tx: &Transaction<'_>, table: &TableName) -> Result<u32> {
    Ok(tx
        .query_one("select $1::text::regclass::oid", &[&table.quoted()])
        .await
        .context("resolve table")?
        .get(0))
}

/// Remove the triggers from every host table; with `purge`, drop Clockwatch's schema too.
/// Returns the tables the triggers were removed from.
pub async fn uninstall(client: &mut Client, schema: &str, purge: bool) -> Result<Vec<String>> {
    let tx = client.transaction().await.context("begin uninstall")?;
    lock(&tx, schema).await?;
    let mut detached = Vec::new();
    // (A log database of its own holds no capture, and nothing to detach.)
    let captures: bool = tx
        .query_one(
            "select to_regclass(format('%I.captured_table', $1::text)) is not null",
            &[&schema],
        )
        .await
        .context("look for capture")?
        .get(0);
    if captures {
        migrate::set_search_path(&tx, schema).await?;
        for row in tx
            .query("select t::oid, t::text from attached_tables() t", &[])
            .await
            .context("list attached tables")?
        {
            let oid: u32 = row.get(0);
            tx.execute("select detach($1::oid::regclass)", &[&oid])
                .await
                .context("detach triggers")?;
            detached.push(row.get(1));
        }
    }
    if purge {
        tx.batch_execute(&format!(
            "drop schema if exists {} cascade",
            quote_ident(schema)
        ))
        .await
        .context(format!("drop schema \"{schema}\""))?;
    }
    tx.commit().await.context("commit uninstall")?;
    Ok(detached)
}

/// Where a schema stands when the log may be in a database of its own (`settings.layout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Capture and the log together, in the host's database (the default).
    Together,
    /// The host's database, whose log is in a database of its own: capture and staging only.
    Host,
    /// One host's log, in the log database.
    Log,
}

impl Side {
    /// The parts of Clockwatch's schema a database on this side holds.
    fn parts(self) -> &'static [Part] {
        match self {
            Side::Together => &[Part::Common, Part::Capture, Part::Log],
            Side::Host => &[Part::Common, Part::Capture],
            Side::Log => &[Part::Common, Part::Log],
        }
    }

    fn code(self) -> Option<&'static str> {
        match self {
            Side::Together => None,
            Side::Host => Some("host"),
            Side::Log => Some("log"),
        }
    }

    pub fn of(code: Option<&str>) -> Side {
        match code {
            Some("host") => Side::Host,
            Some("log") => Side::Log,
            _ => Side::Together,
        }
    }
}

/// Check that Clockwatch's schema is installed and is what the command expects to meet there:
/// `side`, for `source`. One line saying what is wrong and what to set, rather than a change
/// drained into another host's log, or an empty report from tables a host does not use.
pub async fn require_side(
    client: &impl GenericClient,
    schema: &str,
    side: Side,
    source: Option<&str>,
) -> Result<()> {
    check_side(client, schema, side, source, false).await
}

/// Check that Clockwatch's schema here holds this config's log: a log database's for `source`
/// when the log is `apart`, else one with capture and the log together, or a log database's (a
/// reading command pointed straight at the log database reads what it should).
pub async fn require_log(
    client: &impl GenericClient,
    schema: &str,
    apart: bool,
    source: Option<&str>,
) -> Result<()> {
    let side = if apart { Side::Log } else { Side::Together };
    check_side(client, schema, side, source, true).await
}

async fn check_side(
    client: &impl GenericClient,
    schema: &str,
    side: Side,
    source: Option<&str>,
    log_will_do: bool,
) -> Result<()> {
    require_installed(client, schema).await?;
    let row = client
        .query_one(
            &format!(
                "select layout, source_id from {}.settings",
                quote_ident(schema)
            ),
            &[],
        )
        .await
        .context("read the installed layout")?;
    let (found, recorded): (Option<String>, Option<String>) = (row.get(0), row.get(1));
    let found = Side::of(found.as_deref());
    let wrong = |why: &str| Err(Error::Config(format!("schema \"{schema}\": {why}")));
    match (side, found) {
        (Side::Together, Side::Host) => {
            return wrong("this database keeps capture only, its audit log is in a database of its own: set log_database_url (or CLOCKWATCH_LOG_DATABASE_URL) to the log database")
        }
        (Side::Host, Side::Together) => {
            return wrong("the log of this database is kept beside it, not in log_database_url: run `clockwatch install` with this config to move it, or unset log_database_url")
        }
        (Side::Host, Side::Log) => {
            return wrong("this is a log database, not the application's: check the database URL")
        }
        (Side::Log, Side::Together | Side::Host) => {
            return wrong("this database is not a log database installed by `clockwatch install` with log_database_url: check log_database_url")
        }
        (Side::Together, Side::Log) if !log_will_do => {
            return wrong("this is a log database, not the application's: check the database URL (and log_database_url)")
        }
        _ => {}
    }
    if found != Side::Together && recorded.as_deref() != source {
        return wrong(&format!(
            "installed for {}, and this command is for {}: check source_id (--source-id, CLOCKWATCH_SOURCE_ID) and the database URLs",
            source_named(recorded.as_deref()),
            source_named(source)
        ));
    }
    Ok(())
}

/// A source as a message names it: `source_id "eu_42"`, or `no source_id`.
fn source_named(source: Option<&str>) -> String {
    source
        .map(|s| format!("source_id \"{s}\""))
        .unwrap_or_else(|| "no source_id".into())
}

/// The schemas of a log database that hold a log under the config's schema name: `schema` itself
/// and `schema_<source_id>` for each source. Read from the catalog, which needs no privilege on
/// them.
pub async fn log_schemas(client: &impl GenericClient, schema: &str) -> Result<Vec<String>> {
    let rows = client
        .query(
            "select n.nspname::text from pg_namespace n
             where (n.nspname = $1 or left(n.nspname, length($1) + 1) = $1 || '_')
               and exists (select 1 from pg_class c
                           where c.relnamespace = n.oid and c.relname = 'chain_head')
             order by 1",
            &[&schema],
        )
        .await
        .context("look for the logs in the log database")?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Whether Clockwatch's schema exists with its migrations table.
pub async fn is_installed(
    client: &impl tokio_postgres::GenericClient,
    schema: &str,
) -> Result<bool> {
    let row = client
        .query_one(
            "select to_regclass(format('%I.migrations', $1::text)) is not null",
            &[&schema],
        )
        .await
        .context("look for clockwatch's schema")?;
    Ok(row.get(0))
}

/// Fail with [`Error::NotInstalled`] unless install has run.
pub async fn require_installed(
    client: &impl tokio_postgres::GenericClient,
    schema: &str,
) -> Result<()> {
    if is_installed(client, schema).await? {
        Ok(())
    } else {
        Err(Error::NotInstalled(schema.to_string()))
    }
}

/// How long install and uninstall wait for another session's hold on the install lock.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Take the install lock, so that two installs never apply a migration or attach a table at once.
/// An advisory lock any role can take too: rather than wait on a session that never lets go, give
/// up after [`LOCK_WAIT`] naming the session that holds it.
async fn lock(tx: &Transaction<'_>, schema: &str) -> Result<()> {
    let started = std::time::Instant::now();
    loop {
        let taken: bool = tx
            .query_one(
                "select pg_try_advisory_xact_lock($1, hashtext($2))",
                &[&LOCK_CLASS, &schema],
            )
            .await
            .context("take the install lock")?
            .get(0);
        if taken {
            return Ok(());
        }
        if started.elapsed() >= LOCK_WAIT {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let holder = tx
        .query_opt(
            "select a.pid, coalesce(a.usename::text, '?'), coalesce(nullif(a.application_name, ''), '?')
             from pg_locks l left join pg_stat_activity a on a.pid = l.pid
             where l.locktype = 'advisory' and l.granted and l.classid = $1
               and l.objid = hashtext($2)::oid and l.objsubid = 2
               and l.database = (select oid from pg_database where datname = current_database())
             limit 1",
            &[&(LOCK_CLASS as u32), &schema],
        )
        .await
        .context("find the holder of the install lock")?;
    let who = match holder {
        Some(row) => format!(
            "session {} (role {}, application {})",
            row.get::<_, i32>(0),
            row.get::<_, String>(1),
            row.get::<_, String>(2)
        ),
        None => "another session".to_string(),
    };
    Err(Error::Busy(format!(
        "{who} has held Clockwatch's install lock for schema \"{schema}\" for {}s: wait until it finishes, or end it (select pg_terminate_backend(pid)) and run this again",
        LOCK_WAIT.as_secs()
    )))
}

/// Every column the source names must exist in its table; the message names the first that does not.
async fn check_source(tx: &Transaction<'_>, source: &SourceConfig) -> Result<()> {
    if let Some(problem) = source_problems(tx, source).await?.into_iter().next() {
        return Err(Error::Schema(problem));
    }
    if let Some(column) = &source.soft_delete_column {
        check_soft_delete_type(tx, source, column).await?;
    }
    if let Some(Ok(filter)) = source.filter.as_deref().map(crate::filter::parse) {
        check_filter(tx, source, &source.table_name()?, &filter.sql).await?;
    }
    for kept in std::iter::once(&source.id_column).chain(&source.workspace_column) {
        if source.exclude_columns.contains(kept) {
            return Err(Error::Config(format!(
                "{}: exclude_columns: \"{kept}\" identifies the row and cannot be excluded",
                source.label()
            )));
        }
    }
    Ok(())
}

/// A soft-delete column is a boolean flag, or a time or date that is null while the row lives;
/// any other type would be read wrongly without a word, so install refuses it.
async fn check_soft_delete_type(
    tx: &Transaction<'_>,
    source: &SourceConfig,
    column: &str,
) -> Result<()> {
    let table = source.table_name()?;
    let row = tx
        .query_one(
            "select t.typname::text
             from pg_attribute a
             join pg_type t on t.oid = case when (select typtype from pg_type where oid = a.atttypid) = 'd'
                                            then (select typbasetype from pg_type where oid = a.atttypid)
                                            else a.atttypid end
             where a.attrelid = $1::text::regclass and a.attname = $2 and not a.attisdropped",
            &[&table.quoted(), &column],
        )
        .await
        .context(format!("read the type of {table}.{column}"))?;
    let type_name: String = row.get(0);
    let flag = type_name == "bool";
    let time = matches!(type_name.as_str(), "timestamptz" | "timestamp" | "date");
    let problem = if source.soft_delete_inverted && !flag {
        Some("soft_delete_inverted applies to a boolean column only")
    } else if !flag && !time {
        Some("expected a boolean (true once deleted, or false with soft_delete_inverted = true) or a timestamp or date (null while the row lives)")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(Error::Config(format!(
            "{}: soft_delete_column: \"{column}\" is of type {type_name}: {problem}",
            source.label()
        ))),
        None => Ok(()),
    }
}

/// What no longer matches between a source's config and its table: the table gone, or a
/// column the config names gone (renamed, dropped). One line each.
pub async fn source_problems(
    client: &impl GenericClient,
    source: &SourceConfig,
) -> Result<Vec<String>> {
    let table = source.table_name()?;
    let Some(columns) = table_columns(client, &table).await? else {
        return Ok(vec![format!(
            "{}: table: {table} {}",
            source.label(),
            missing_table(client, &table).await?
        )]);
    };
    let mut problems: Vec<String> = source
        .referenced_columns()
        .into_iter()
        .filter(|(_, column)| !columns.contains(*column))
        .map(|(key, column)| {
            // Capture keeps excluding the column it found under that name (see image_columns()).
            let still = if key == "exclude_columns" {
                " (renamed? it is still excluded under its new name: name that in the config)"
            } else {
                ""
            };
            format!(
                "{}: {key}: column \"{column}\" not found in {table}{still}",
                source.label()
            )
        })
        .collect();
    problems.extend(type_problems(client, source, &table).await?);
    Ok(problems)
}

/// Whether `filter` (as src/filter.rs prints it) is a boolean condition over a row of `table`:
/// parsed and analysed as a prepared statement's condition, never planned or run. An operator
/// the columns' types lack (`note > 0` on text) would otherwise fail every host write to the
/// table. (Not as the body of a throwaway function in pg_temp: a session that has made temporary
/// objects is never believed about linked changes, see session_code_free(), and the installing
/// session may go on to write the host's tables.)
async fn check_filter(
    tx: &Transaction<'_>,
    source: &SourceConfig,
    table: &TableName,
    filter: &str,
) -> Result<()> {
    let prepare: String = tx
        .query_one(
            "select format('prepare clockwatch_filter_check as select from %s t where %s', to_regclass($1), $2::text)",
            &[&table.quoted(), &filter],
        )
        .await
        .context("check the filter")?
        .get(0);
    // One statement through the extended protocol: nothing in the filter can start a second.
    let checked = match tx.execute(prepare.as_str(), &[]).await {
        Ok(_) => tx
            .execute("deallocate clockwatch_filter_check", &[])
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    checked.map_err(|e| {
        let why = e
            .as_db_error()
            .map(|d| d.message().to_string())
            .unwrap_or_else(|| e.to_string());
        Error::Config(format!(
            "{}: filter: {why} (compare each column with constants of its type)",
            source.label()
        ))
    })
}

/// Mapped columns whose type cannot serve their detail: a start or end that is no date or time,
/// a duration that is neither a number nor an interval (or an interval given a unit). Refused at
/// install rather than left out of every event.
async fn type_problems(
    client: &impl GenericClient,
    source: &SourceConfig,
    table: &TableName,
) -> Result<Vec<String>> {
    let fields = &source.fields;
    let wanted: Vec<(&str, &str)> = [
        ("start", fields.start.as_deref()),
        ("end", fields.end.as_deref()),
        ("duration", fields.duration.as_ref().map(|d| d.column())),
    ]
    .into_iter()
    .filter_map(|(field, column)| column.map(|c| (field, c)))
    .collect();
    let mut problems = Vec::new();
    // A filter's columns: its operators are those of the columns' types, which must be built in
    // (a type the host created can carry an operator of its own, which capture would run as
    // Clockwatch's owner).
    if let Some(filter) = source.filter.as_deref().map(crate::filter::parse) {
        let filter =
            filter.map_err(|why| Error::Config(format!("{}: filter: {why}", source.label())))?;
        for column in &filter.columns {
            let row = client
                .query_opt(
                    "select t.oid < 16384 and t.typtype = 'b'
                     from pg_attribute a join pg_type t on t.oid = a.atttypid
                     where a.attrelid = to_regclass($1) and a.attname = $2 and a.attnum > 0 and not a.attisdropped",
                    &[&table.quoted(), column],
                )
                .await
                .context(format!("read the type of {table}.{column}"))?;
            match row.map(|r| r.get::<_, bool>(0)) {
                None => problems.push(format!(
                    "{}: filter: column \"{column}\" not found in {table}",
                    source.label()
                )),
                Some(false) => problems.push(format!(
                    "{}: filter: column \"{column}\" is of a type that is not built in (a domain, enum or the host's own type): a filter compares built-in types only",
                    source.label()
                )),
                Some(true) => {}
            }
        }
    }
    for (field, column) in wanted {
        // The type a domain stands for, by its category: D for dates and times, N for numbers,
        // T for intervals.
        let row = client
            .query_opt(
                "select coalesce(nullif(t.typbasetype, 0), t.oid)::regtype::text,
                        (select b.typcategory::text from pg_type b
                         where b.oid = coalesce(nullif(t.typbasetype, 0), t.oid))
                 from pg_attribute a join pg_type t on t.oid = a.atttypid
                 where a.attrelid = to_regclass($1) and a.attname = $2 and a.attnum > 0 and not a.attisdropped",
                &[&table.quoted(), &column],
            )
            .await
            .context(format!("read the type of {table}.{column}"))?;
        let Some(row) = row else { continue };
        let (type_name, kind): (String, String) = (row.get(0), row.get(1));
        let fits = match field {
            "start" | "end" => matches!(
                type_name.as_str(),
                "date" | "timestamp without time zone" | "timestamp with time zone"
            ),
            _ => {
                kind == "N"
                    || (type_name == "interval"
                        && !fields.duration.as_ref().is_some_and(|d| d.has_unit()))
            }
        };
        if !fits {
            let wants = match field {
                "start" | "end" => "a date, timestamp or timestamptz",
                _ if type_name == "interval" => "no unit: an interval counts itself",
                _ => "a number (of seconds, or of its unit) or an interval",
            };
            problems.push(format!(
                "{}: fields.{field}: column \"{column}\" is {type_name}; {field} needs {wants}",
                source.label()
            ));
        }
    }
    Ok(problems)
}

/// Every way the installation no longer matches the config: missing tables or columns, and
/// tables whose capture triggers are gone (a table dropped and recreated loses them: changes
/// to it are not captured until `clockwatch install` runs again).
pub async fn health_problems(client: &impl GenericClient, config: &Config) -> Result<Vec<String>> {
    let prefix = format!("clockwatch_{}_", config.schema);
    let expected: Vec<String> = ["linked", "insert", "update", "delete", "truncate"]
        .iter()
        .map(|t| format!("{prefix}{t}"))
        .collect();
    let mut problems = Vec::new();
    // Names are read from the authors table: a view put in its place is never read.
    if let Some(table) = config
        .authors()
        .and_then(|a| TableName::parse(&a.table).ok())
    {
        if table_columns(client, &table).await?.is_none() {
            let why = missing_table(client, &table).await?;
            problems.push(format!(
                "authors: table {table} {why}: authors are shown by id"
            ));
        }
    }
    // Workspace names are read from a table as well, by the reporting role.
    problems.extend(
        workspaces_problems(client, config)
            .await?
            .into_iter()
            .map(|p| format!("{p}: reports show workspace ids instead of names")),
    );
    // Tables with none of their capture triggers, and how many audited tables exist at all: when
    // none has any, capture as a whole is off (`clockwatch uninstall` detaches them all), which
    // one line says better than a line per table blaming each.
    let (mut existing, mut bare) = (0, 0);
    let mut missing_triggers = Vec::new();
    for source in &config.sources {
        problems.extend(source_problems(client, source).await?);
        let table = source.table_name()?;
        for captured in std::iter::once(&table).chain(source.link_table()?.as_ref()) {
            let row = client
                .query_one(
                    "select to_regclass($1) is not null,
                            (select count(*) from pg_trigger
                             where tgrelid = to_regclass($1) and tgname = any ($2) and tgenabled <> 'D')",
                    &[&captured.quoted(), &expected],
                )
                .await
                .context(format!("read triggers of {captured}"))?;
            let (exists, attached): (bool, i64) = (row.get(0), row.get(1));
            existing += usize::from(exists);
            bare += usize::from(exists && attached == 0);
            if exists && attached < expected.len() as i64 {
                missing_triggers.push(format!(
                    "{}: capture triggers missing or disabled on {captured} (table recreated? ALTER TABLE ... DISABLE TRIGGER?): changes are not captured; run `clockwatch install`",
                    source.label()
                ));
            }
        }
        // A partition or inheritance child created since install has no capture triggers of
        // its own: writes aimed straight at it are not captured. And a rule on the table (or
        // one of them) rewrites writes into other statements, which may land where nothing is
        // captured.
        for row in client
            .query(
                &format!(
                    "with recursive tree(relid, level) as (
                         select to_regclass($1)::oid, 0
                         union
                         select i.inhrelid, t.level + 1 from pg_inherits i join tree t on i.inhparent = t.relid)
                     select format('%s %s of %s has no capture triggers (created after install?): changes written straight to it are not captured; run `clockwatch install`',
                                   case when c.relispartition then 'partition' else 'inheritance child' end,
                                   t.relid::regclass, to_regclass($1))
                     from tree t join pg_class c on c.oid = t.relid
                     where t.level > 0
                       and not exists (select 1 from {schema}.captured_table x where x.relid = t.relid)
                     union all
                     select format('rule %I on %s rewrites its writes (%s): what the rule sends to a table Clockwatch does not audit is not captured; drop the rule or audit its target',
                                   r.rulename, t.relid::regclass,
                                   case r.ev_type when '2' then 'UPDATE' when '3' then 'INSERT' else 'DELETE' end)
                     from tree t join pg_rewrite r on r.ev_class = t.relid
                     where r.ev_type in ('2', '3', '4')
                     order by 1",
                    schema = quote_ident(&config.schema),
                ),
                &[&table.quoted()],
            )
            .await
            .context(format!("read the partitions, children and rules of {table}"))?
        {
            let problem: String = row.get(0);
            problems.push(format!("{}: {problem}", source.label()));
        }
        // The capture function was compiled for other columns: it still captures every change,
        // through the slower path that reads the columns on every statement.
        let stale: bool = client
            .query_one(
                &format!(
                    "select exists (select 1 from {}.captured_table c
                                    where c.relid = to_regclass($1)
                                      and not {0}.shape_is_current(c.shape, c.relid))",
                    quote_ident(&config.schema)
                ),
                &[&table.quoted()],
            )
            .await
            .context(format!("read the capture function of {table}"))?
            .get(0);
        if stale {
            problems.push(format!(
                "{}: the columns of {table} changed since install: changes are still captured, more slowly; run `clockwatch install`",
                source.label()
            ));
        }
    }
    if existing > 0 && bare == existing {
        problems.insert(
            0,
            "capture is off: no audited table has Clockwatch's triggers (`clockwatch uninstall` removes them; the log is kept): changes are not captured; run `clockwatch install` to capture again".into(),
        );
    } else {
        problems.extend(missing_triggers);
    }
    Ok(problems)
}

/// What no longer matches between `[workspaces]` and the host's table: the table gone (or a view
/// in its place, which reports never read), or a column the config names gone. One line each.
pub async fn workspaces_problems(
    client: &impl GenericClient,
    config: &Config,
) -> Result<Vec<String>> {
    let Some(workspaces) = &config.workspaces else {
        return Ok(Vec::new());
    };
    let table = workspaces.table_name()?;
    let Some(columns) = table_columns(client, &table).await? else {
        let why = missing_table(client, &table).await?;
        return Ok(vec![format!("workspaces: table {table} {why}")]);
    };
    let names = workspaces.name_column.columns().iter();
    Ok(std::iter::once(("id_column", &workspaces.id_column))
        .chain(names.map(|c| ("name_column", c)))
        .filter(|(_, column)| !columns.contains(*column))
        .map(|(key, column)| format!("workspaces: {key} \"{column}\" not found in {table}"))
        .collect())
}

/// Why `table` is not a table names can be read from: not found, or what stands in its place.
/// The daemon never reads a view, a foreign table or anything else a host role could make run
/// its code with the daemon's rights (see `lookup_table()` in sql/baseline/07_roles.sql).
async fn missing_table(client: &impl GenericClient, table: &TableName) -> Result<String> {
    let kind: Option<String> = client
        .query_one(
            "select case c.relkind when 'v' then 'view' when 'm' then 'materialized view'
                                   when 'f' then 'foreign table' else 'relation of kind ' || c.relkind::text end
             from (select 1) one left join pg_class c on c.oid = to_regclass($1)",
            &[&table.quoted()],
        )
        .await
        .context(format!("read the kind of {table}"))?
        .get(0);
    Ok(match kind {
        Some(kind) => format!("is a {kind}, not a table: point the config at the table itself (a view's code would run with Clockwatch's rights)"),
        None => "not found".to_string(),
    })
}

/// The live columns of a table or partitioned table, or None when there is no such table.
async fn table_columns(
    client: &impl GenericClient,
    table: &TableName,
) -> Result<Option<BTreeSet<String>>> {
    let rows = client
        .query(
            "select a.attname::text
             from pg_class c
             join pg_namespace n on n.oid = c.relnamespace
             left join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
             where n.nspname = $1 and c.relname = $2 and c.relkind in ('r', 'p')",
            &[&table.schema, &table.name],
        )
        .await
        .context(format!("read columns of {table}"))?;
    if rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        rows.iter()
            .filter_map(|r| r.get::<_, Option<String>>(0))
            .collect(),
    ))
}

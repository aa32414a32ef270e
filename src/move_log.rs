//! Moving an installed log out to a database of its own.
//!
//! A host whose log was kept beside capture and is then installed with `log_database_url` has a
//! history there: events and their chains, prune records, remembered names, dead letters. Left
//! behind, it would be out of reach of every report, `verify` and retention, all of which read
//! the log database from then on. `clockwatch install` moves it before the host's schema
//! changes layout: every row is copied into the log database's schema (binary COPY, so no
//! session setting changes a value on the way), the log commits, and only then is the host's
//! copy emptied, in the transaction that makes the host's schema capture only.
//!
//! The move is safe to run again: were the host's transaction lost after the log's commit, the
//! next install copies the same rows again and the log keeps the ones it has (each table's key).
//! A daemon still draining into the host's log would write events behind the move, so the move
//! refuses while one is connected.

use futures_util::{pin_mut, SinkExt, TryStreamExt};
use tokio_postgres::{Client, GenericClient, Transaction};

use crate::config::{quote_ident, Config};
use crate::error::{DbContext, Error, Result};

/// The log's tables that hold history, in the order they are moved, each with how its rows are
/// added to the log's: rows it already has (from a move run before) are kept, but for the
/// chains' heads and anchors and the last runs of its jobs, which the host's copy overrides (it
/// may have moved on since). Tallies are not moved: the log's own triggers count the events as
/// they arrive. Shapes stay on the host too (capture records them there) and are copied, since
/// the moved events' row images are read with them.
const MOVED: &[(&str, &str, &str)] = &[
    ("shape", "overriding system value", "do nothing"),
    ("known_name", "", "do nothing"),
    ("dead_letter", "", "do nothing"),
    (
        "maintenance",
        "",
        "(job) do update set last_run = excluded.last_run",
    ),
    ("prune_log", "overriding system value", "do nothing"),
    (
        "chain_anchor",
        "",
        "(workspace_id) do update set seq = excluded.seq, hash = excluded.hash,
         occurred_at = excluded.occurred_at, recorded_at = excluded.recorded_at,
         cutoff = excluded.cutoff, pruned_at = excluded.pruned_at",
    ),
    (
        "chain_head",
        "",
        "(workspace_id) do update set seq = excluded.seq, hash = excluded.hash",
    ),
    ("events", "", "do nothing"),
];

/// What a move took across.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Moved {
    pub events: u64,
    pub workspaces: u64,
}

/// Refuse to move the host's log while a daemon is connected to the host: it would go on
/// draining into the log being moved, behind the copy.
pub async fn refuse_while_draining(host: &impl GenericClient) -> Result<()> {
    let Some(session) = host
        .query_opt(
            "select pid, coalesce(host(client_addr), 'a local socket') from pg_stat_activity
             where datname = current_database() and application_name like 'clockwatch daemon%'
               and pid <> pg_backend_pid()
             limit 1",
            &[],
        )
        .await
        .context("look for a running daemon")?
    else {
        return Ok(());
    };
    let (pid, from): (i32, String) = (session.get(0), session.get(1));
    Err(Error::Input(format!(
        "a Clockwatch daemon is connected to this database (its session: server process {pid}, from {from}): stop the daemon before moving the log to log_database_url, then run `clockwatch install` again"
    )))
}

/// Copy the host's log (`host` in the transaction that will switch its layout) into the log
/// database's schema, commit it there, and empty it on the host. The host's transaction is left
/// open: the caller commits it with the new layout.
pub async fn move_log(host: &Transaction<'_>, log: &mut Client, config: &Config) -> Result<Moved> {
    let schema = quote_ident(&config.schema);
    let log_schema = quote_ident(&config.log_schema());
    refuse_while_draining(host).await?;
    // No event may be appended here behind the copy; reports may still read.
    host.batch_execute(&format!("lock table {schema}.events in exclusive mode"))
        .await
        .context("lock the log's events for the move")?;
    let tx = log.transaction().await.context("begin the move")?;
    // Each chain goes on in the log from the host's head, which overrides the log's: a log whose
    // chain is already further along did not come from this host's, and would be broken.
    let heads = host
        .query(
            &format!("select workspace_id, seq from {schema}.chain_head"),
            &[],
        )
        .await
        .context("read the host's chain heads")?;
    let (workspaces, seqs): (Vec<String>, Vec<i64>) =
        heads.iter().map(|r| (r.get(0), r.get::<_, i64>(1))).unzip();
    if let Some(ahead) = tx
        .query_opt(
            &format!(
                "select h.workspace_id, h.seq, m.seq from {log_schema}.chain_head h
                 join unnest($1::text[], $2::bigint[]) m(workspace_id, seq) using (workspace_id)
                 where h.seq > m.seq limit 1"
            ),
            &[&workspaces, &seqs],
        )
        .await
        .context("compare the chains' heads")?
    {
        let (workspace, theirs, ours): (String, i64, i64) =
            (ahead.get(0), ahead.get(1), ahead.get(2));
        return Err(Error::Schema(format!(
            "workspace {workspace}: the log database's chain is at position {theirs}, past the host's {ours}: it holds another log than this host's; nothing was moved"
        )));
    }
    // A month the host holds events for needs its partition in the log.
    for row in host
        .query(
            &format!("select min(occurred_at) from {schema}.events group by date_trunc('month', occurred_at at time zone 'UTC')"),
            &[],
        )
        .await
        .context("read the months of the log")?
    {
        let first: chrono::DateTime<chrono::Utc> = row.get(0);
        tx.execute(
            &format!("select {log_schema}.ensure_partition($1)"),
            &[&first],
        )
        .await
        .context("create a partition in the log database")?;
    }
    for (table, clause, conflict) in MOVED {
        copy_table(host, &tx, &schema, &log_schema, table, clause, conflict).await?;
    }
    // The log's own prunes go on numbering after the moved ones.
    // (The table's name as a value: spliced into a quoted literal, a quote in a schema's name
    // would end it.)
    tx.execute(
        &format!(
            "select setval(pg_get_serial_sequence($1, 'id'), max(id))
             from {log_schema}.prune_log having max(id) is not null"
        ),
        &[&format!("{log_schema}.prune_log")],
    )
    .await
    .context("number the log's prunes after the moved ones")?;
    let counted = host
        .query_one(
            &format!(
                "select (select count(*) from {schema}.events), (select count(*) from {schema}.chain_head)"
            ),
            &[],
        )
        .await
        .context("count the moved events")?;
    let moved = Moved {
        events: counted.get::<_, i64>(0) as u64,
        workspaces: counted.get::<_, i64>(1) as u64,
    };
    tx.commit()
        .await
        .context("commit the move to the log database")?;
    // The log first, as a drained batch: a host that then loses its transaction still has the
    // rows, and moving them again adds none twice.
    host.batch_execute(&format!(
        "truncate {schema}.events, {schema}.chain_head, {schema}.chain_anchor, {schema}.prune_log,
                  {schema}.known_name, {schema}.dead_letter, {schema}.maintenance,
                  {schema}.event_tally, {schema}.author_tally"
    ))
    .await
    .context("empty the host's log after the move")?;
    Ok(moved)
}

/// Copy one table's rows from the host's schema into the log database's, by binary COPY into a
/// temporary table there and an INSERT ... ON CONFLICT `conflict`.
async fn copy_table(
    host: &Transaction<'_>,
    log: &Transaction<'_>,
    schema: &str,
    log_schema: &str,
    table: &str,
    clause: &str,
    conflict: &str,
) -> Result<()> {
    let moving = format!("moving_{table}");
    log.batch_execute(&format!(
        "create temp table {moving} (like {log_schema}.{table}) on commit drop"
    ))
    .await
    .context(format!("prepare the move of {table}"))?;
    // Named, not by position: a schema migrated over the years may order its columns otherwise
    // than one installed fresh.
    let columns: String = log
        .query_one(
            "select string_agg(quote_ident(attname), ', ' order by attnum) from pg_attribute
             where attrelid = $1::text::regclass and attnum > 0 and not attisdropped",
            &[&format!("{log_schema}.{table}")],
        )
        .await
        .context(format!("read the columns of {table}"))?
        .get(0);
    let out = host
        .copy_out(&format!(
            "copy (select {columns} from {schema}.{table}) to stdout (format binary)"
        ))
        .await
        .context(format!("read the host's {table}"))?;
    let sink = log
        .copy_in(&format!(
            "copy {moving} ({columns}) from stdin (format binary)"
        ))
        .await
        .context(format!("write {table} to the log database"))?;
    pin_mut!(out, sink);
    while let Some(chunk) = out
        .try_next()
        .await
        .context(format!("read the host's {table}"))?
    {
        sink.send(chunk)
            .await
            .context(format!("write {table} to the log database"))?;
    }
    sink.finish()
        .await
        .context(format!("write {table} to the log database"))?;
    log.batch_execute(&format!(
        "insert into {log_schema}.{table} ({columns}) {clause} select {columns} from {moving} on conflict {conflict}"
    ))
    .await
    .context(format!("add the host's {table} to the log database"))?;
    Ok(())
}

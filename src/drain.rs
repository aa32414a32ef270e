//! Moving staged changes into the audit log.
//!
//! One transaction takes a batch of staged rows out of staging (`DELETE ... RETURNING`; see
//! [`Claim`]), writes their events and sets aside the ones that cannot be normalised. Because the
//! move is one transaction, a crash at any point leaves each change either still staged or an
//! event, never both and never neither; and because a claimed row is deleted (and locked until
//! the transaction ends), several daemons can drain at once without taking the same change twice.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Datelike, Utc};
use serde_json::Value;
use tokio_postgres::{Client, Transaction};

use crate::cause::{self, Candidate, Did, ForeignKey};
use crate::chain;
use crate::config::{Category, Config, SourceConfig};
use crate::db::Prepared;
use crate::error::{DbContext, Error, Result};
use crate::image::JsonText;
use crate::jsonfield;
use crate::links;
use crate::normalize::{self, AuditEvent, KeptRow, Names, Op, Outcome, StagedChange, TagChange};
use crate::record::Shape;
use crate::resolve::{self, Known, Remembered, Resolver};

const PRIMARY_EVENTS: &str = include_str!("../sql/queries/primary_events.sql");
const PRIMARY_STAGED: &str = include_str!("../sql/queries/primary_staged.sql");
const STATEMENT_EVENTS: &str = include_str!("../sql/queries/statement_events.sql");
const FOREIGN_KEYS: &str = include_str!("../sql/queries/foreign_keys.sql");
const CHAIN_HEADS: &str = include_str!("../sql/queries/chain_heads.sql");
const INSERT_EVENTS: &str = include_str!("../sql/queries/insert_events.sql");
const DEAD_LETTER: &str = include_str!("../sql/queries/dead_letter.sql");
const SHAPES: &str = "select id, columns, types from shape where id = any($1)";
/// `known_name` category of workspace names (sql/baseline/09_log.sql, remembered_workspace()).
const WORKSPACE: &str = "workspace";
const LOGGED: &str = include_str!("../sql/queries/logged_events.sql");

/// How long a batch holding a foreign-key action's changes is put back while the change that
/// caused them, claimed by another connection draining the same backlog, is not yet in the log.
/// Its batch commits in moments; the bound is for what nothing here foresees, after which the
/// changes are logged as their actor's, as a cause that cannot be found leaves them.
const PRIMARY_WAIT: Duration = Duration::from_secs(60);
/// How long a batch put back waits before it is claimed again.
const PRIMARY_RETRY: Duration = Duration::from_millis(20);
/// How a batch claims its staged rows. Connections draining a backlog together claim with
/// `FOR UPDATE SKIP LOCKED`, so that none waits on another's rows. A connection draining alone
/// claims by deleting only: the row lock wrote a WAL record per staged row that the deletion then
/// repeats (sql/baseline/08_claims.sql says why that is still safe).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    Alone,
    Together,
}

impl Claim {
    /// The claim of a batch, and of the rest of its transactions, as this mode runs them.
    fn queries(self) -> (&'static str, &'static str) {
        match self {
            Claim::Together => (
                "select * from claim_together($1, $2, $3, $4)",
                "select * from claim_rest_together($1, $2, $3, $4)",
            ),
            Claim::Alone => (
                "select * from claim_alone($1, $2, $3, $4)",
                "select * from claim_rest_alone($1, $2, $3, $4)",
            ),
        }
    }
}

/// What one batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchReport {
    /// Staged changes claimed (and removed from staging).
    pub staged: usize,
    pub events: usize,
    /// Updates that changed nothing worth an event.
    pub unchanged: usize,
    pub dead_lettered: usize,
    /// Staging held more than the batch took (it was cut by count or by bytes).
    pub more: bool,
}

impl std::ops::AddAssign for BatchReport {
    fn add_assign(&mut self, other: BatchReport) {
        self.staged += other.staged;
        self.events += other.events;
        self.unchanged += other.unchanged;
        self.dead_lettered += other.dead_lettered;
        self.more = other.more;
    }
}

/// The audit log's own database, when `log_database_url` puts it apart from the host's: its
/// connection, the statements prepared on it, and the shapes already copied to it.
struct LogDatabase {
    client: Client,
    prepared: Prepared,
    shapes: HashSet<i64>,
}

/// A transaction on the log's own database and the statements prepared there; None where the
/// log is the host database, whose transaction then does everything.
type LogTx<'a, 'c> = Option<(&'a Transaction<'c>, &'a mut Prepared)>;

/// How many times a batch is taken again when the log's key refuses one of its events: an
/// event the previous attempt committed as its connection was lost, which the next look finds.
const DUPLICATE_RETRIES: u32 = 3;

/// Drains staging into events for one configuration.
pub struct Drainer {
    config: Config,
    sources: HashMap<String, SourceConfig>,
    resolver: Option<Resolver>,
    /// Months whose partition is known to exist.
    partitions: HashSet<(i32, u32)>,
    /// The drain's statements, prepared on this drainer's connection.
    prepared: Prepared,
    batch_deadline: Option<Duration>,
    /// Since when batches have been put back to wait for a cause another connection is draining
    /// (see [`PRIMARY_WAIT`]).
    waiting_since: Option<std::time::Instant>,
    /// Shapes of staged images, by id: written once, never changed, so kept for good.
    shapes: HashMap<i64, Shape>,
    /// Changes the next batch may claim: batch_size, or less while a batch that PostgreSQL
    /// refused for its data is split to find the change it cannot take.
    limit: i64,
    /// Names already written to `known_name` by this drainer, so an unchanged name is not
    /// written again by every batch (see [`NameMemory`]).
    remembered: NameMemory,
    /// Author ids with no name, already written to `known_name` by this drainer.
    nameless: HashSet<String>,
    claim: Claim,
    /// Where the next claim starts looking (see [`ClaimFrom`]).
    from: ClaimFrom,
    /// The log's own database; None: the log is in the host database.
    log: Option<LogDatabase>,
    /// Whether the host's dead_letter may hold changes not yet moved to the log's.
    dead_pending: bool,
}

/// Where a claim starts looking in staging. Drained rows leave their entries in staging's
/// primary key until vacuum comes by, and a claim that starts at the lowest id walks all of
/// them: late in a long backlog, tens of thousands a batch. So while a backlog lasts each claim
/// starts after the last one's highest id. A change below that which was not yet committed when
/// it was passed (a long host transaction) is found by the next claim from the start, which
/// comes when a claim finds staging empty past its start, and at least every
/// [`ClaimFrom::FULL_EVERY`] claims.
#[derive(Debug, Default, Clone, Copy)]
struct ClaimFrom {
    /// Claim ids above this (0: from the start).
    after: i64,
    /// Claims since the last one from the start.
    bounded: u32,
}

impl ClaimFrom {
    const FULL_EVERY: u32 = 20;

    /// After a committed batch whose own claim (before claim_rest_*()'s additions) reached
    /// `through`, with more waiting past it or not.
    fn advance(&mut self, through: i64, more: bool) {
        if more && self.bounded < Self::FULL_EVERY {
            self.after = through;
            self.bounded += 1;
        } else {
            *self = ClaimFrom::default();
        }
    }
}

/// What this drainer last wrote to `known_name`. In steady state every batch names the same
/// few authors and projects; upserting them anyway cost each batch a statement and a commit of
/// its own (the upsert locks the existing row even when the name is unchanged, which writes WAL
/// that the commit then waits to flush). Forgotten every [`NameMemory::TTL`] and past
/// [`NameMemory::CAPACITY`] entries, so that a name another daemon overwrote is written again
/// within a minute, and memory stays bounded.
#[derive(Debug, Default)]
struct NameMemory {
    names: Remembered,
    since: Option<std::time::Instant>,
}

impl NameMemory {
    const TTL: Duration = Duration::from_secs(60);
    const CAPACITY: usize = 100_000;

    /// The names in `seen` that differ from what was last written.
    fn news(&mut self, seen: Remembered) -> Remembered {
        let expired = self.since.is_some_and(|t| t.elapsed() >= Self::TTL);
        if expired || self.names.len() > Self::CAPACITY {
            self.forget();
        }
        seen.into_iter()
            .filter(|(key, known)| self.names.get(key) != Some(known))
            .collect()
    }

    /// Record names just written.
    fn learn(&mut self, written: Remembered) {
        self.since.get_or_insert_with(std::time::Instant::now);
        self.names.extend(written);
    }

    fn forget(&mut self) {
        self.names.clear();
        self.since = None;
    }
}

impl Drainer {
    pub fn new(config: Config) -> Drainer {
        let limit = config.daemon.batch_size;
        let sources = config
            .sources
            .iter()
            .map(|s| (s.table.clone(), s.clone()))
            .collect();
        Drainer {
            config,
            sources,
            resolver: None,
            partitions: HashSet::new(),
            prepared: Prepared::default(),
            batch_deadline: None,
            waiting_since: None,
            shapes: HashMap::new(),
            limit,
            remembered: NameMemory::default(),
            nameless: HashSet::new(),
            claim: Claim::Alone,
            from: ClaimFrom::default(),
            log: None,
            dead_pending: true,
        }
    }

    /// Write events to the log's own database, through `client`, from now on (after every
    /// reconnect too). Its session must commit synchronously: the host's staged rows are deleted
    /// once the log's commit returns, so that commit must be on disk by then.
    pub fn set_log(&mut self, client: Client) {
        self.log = Some(LogDatabase {
            client,
            prepared: Prepared::default(),
            shapes: HashSet::new(),
        });
        self.dead_pending = true;
    }

    /// Claim alone (the default) or together with other connections draining at the same time.
    pub fn set_claim(&mut self, claim: Claim) {
        self.claim = claim;
    }

    pub fn batch_size(&self) -> i64 {
        self.config.daemon.batch_size
    }

    /// Forget what was learnt about the database (after a reconnect: it may have changed).
    pub fn reset(&mut self) {
        self.resolver = None;
        self.partitions.clear();
        self.prepared.clear();
        self.remembered.forget();
        self.from = ClaimFrom::default();
        self.log = None;
        self.dead_pending = true;
    }

    /// Drain until staging is empty (as far as this daemon can see). Returns what was done.
    pub async fn drain_all(&mut self, client: &mut Client) -> Result<BatchReport> {
        self.drain_while(client, || true).await
    }

    /// Drain batch after batch until staging looks empty or `keep_going` says stop; it is asked
    /// between batches, so the batch in hand always commits or rolls back first.
    pub async fn drain_while(
        &mut self,
        client: &mut Client,
        keep_going: impl Fn() -> bool,
    ) -> Result<BatchReport> {
        let mut total = BatchReport::default();
        while keep_going() {
            let batch = self.drain_batch(client).await?;
            total += batch;
            if !batch.more {
                break;
            }
        }
        Ok(total)
    }

    /// Read the shapes of a batch's images that this drainer has not seen yet.
    async fn load_shapes(
        &mut self,
        tx: &Transaction<'_>,
        rows: &[tokio_postgres::Row],
    ) -> Result<()> {
        let missing: Vec<i64> = rows
            .iter()
            .filter_map(|row| row.get::<_, Option<i64>>("shape"))
            .filter(|id| !self.shapes.contains_key(id))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        for row in tx
            .query(SHAPES, &[&missing])
            .await
            .context("read image shapes")?
        {
            let types: Vec<String> = row.get("types");
            self.shapes
                .insert(row.get("id"), Shape::new(row.get("columns"), &types));
        }
        Ok(())
    }

    /// Give up on a batch (and report the connection as lost) when the database has not
    /// answered within `deadline`: a half-open connection otherwise waits for TCP to notice.
    pub fn with_batch_deadline(mut self, deadline: Duration) -> Drainer {
        self.batch_deadline = Some(deadline);
        self
    }

    /// Move one batch from staging to events, in one transaction.
    ///
    /// A batch PostgreSQL refuses for what it holds (a data exception or a limit exceeded, which
    /// retrying the same batch would meet again forever) is split: halved until the change it
    /// cannot take is alone, which is then set aside in `dead_letter` with the error, whole.
    /// The batches after it grow back to `batch_size`.
    pub async fn drain_batch(&mut self, client: &mut Client) -> Result<BatchReport> {
        let mut duplicates = 0;
        loop {
            match self.move_batch_in_time(client).await {
                Ok(mut report) => {
                    self.limit = (self.limit * 2).min(self.batch_size());
                    if self.log.is_some() && (self.dead_pending || report.dead_lettered > 0) {
                        report.more |= self.forward_dead_letters(client).await?;
                    }
                    return Ok(report);
                }
                Err(e)
                    if self.log.is_some()
                        && e.code() == Some("23505")
                        && duplicates < DUPLICATE_RETRIES =>
                {
                    duplicates += 1;
                    tracing::warn!(error = %e, "the log already holds an event of this batch; taking the batch again");
                }
                Err(e) if e.is_data_error() && self.limit > 1 => {
                    self.limit = (self.limit / 2).max(1);
                    tracing::warn!(error = %e, limit = self.limit, "batch refused for its data; splitting it");
                }
                Err(e) if e.is_data_error() => {
                    let reason = e.to_string();
                    tracing::warn!(error = %reason, "a staged change cannot be logged; set aside in dead_letter");
                    return self.set_aside_first(client, &reason).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn move_batch_in_time(&mut self, client: &mut Client) -> Result<BatchReport> {
        let Some(deadline) = self.batch_deadline else {
            return self.move_batch(client).await;
        };
        match tokio::time::timeout(deadline, self.move_batch(client)).await {
            Ok(result) => result,
            Err(_) => Err(Error::Connect(format!(
                "no answer from the database within {deadline:?}"
            ))),
        }
    }

    /// Set the first claimable staged change aside in `dead_letter`, images and all, with the
    /// reason it could not be logged.
    async fn set_aside_first(&mut self, client: &mut Client, reason: &str) -> Result<BatchReport> {
        let tx = client.transaction().await.context("begin set aside")?;
        let moved = tx
            .query_one(
                "select set_aside_first($1, $2)",
                &[&reason, &self.from.after],
            )
            .await
            .context("set a change aside")?
            .get::<_, i64>(0);
        tx.commit().await.context("commit set aside")?;
        // Set aside in the host's dead_letter: with the log apart, to be moved there.
        self.dead_pending = true;
        Ok(BatchReport {
            staged: moved as usize,
            dead_lettered: moved as usize,
            more: true,
            ..Default::default()
        })
    }

    /// Move the dead letters the host's claims set aside into the log's dead_letter: a host
    /// transaction takes them and commits once the log's has. Returns whether more wait.
    async fn forward_dead_letters(&mut self, client: &mut Client) -> Result<bool> {
        const AT_ONCE: i32 = 100;
        let Some(log) = self.log.as_mut() else {
            return Ok(false);
        };
        let tx = client
            .transaction()
            .await
            .context("begin moving dead letters")?;
        let rows = tx
            .query(
                "select staging_id, failed_at, reason, change, old_row, new_row
                 from take_dead_letters($1)",
                &[&AT_ONCE],
            )
            .await
            .context("take the host's dead letters")?;
        if !rows.is_empty() {
            let column = |i: usize| rows.iter().map(move |r| r.get::<_, Option<String>>(i));
            let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
            let failed: Vec<DateTime<Utc>> = rows.iter().map(|r| r.get(1)).collect();
            let reasons: Vec<String> = rows.iter().map(|r| r.get(2)).collect();
            let changes: Vec<Value> = rows.iter().map(|r| r.get(3)).collect();
            let (old, new): (Vec<_>, Vec<_>) = (column(4).collect(), column(5).collect());
            let log_tx = log.client.transaction().await.context("begin log")?;
            log_tx
                .execute(
                    "insert into dead_letter (staging_id, failed_at, reason, change, old_row, new_row)
                     select * from unnest($1::bigint[], $2::timestamptz[], $3::text[],
                                          $4::jsonb[], $5::text[], $6::text[])
                     on conflict (staging_id) do nothing",
                    &[&ids, &failed, &reasons, &changes, &old, &new],
                )
                .await
                .context("write dead letters to the log")?;
            log_tx.commit().await.context("commit to the log")?;
        }
        tx.commit().await.context("commit moving dead letters")?;
        let more = rows.len() as i32 == AT_ONCE;
        self.dead_pending = more;
        Ok(more)
    }

    async fn move_batch(&mut self, client: &mut Client) -> Result<BatchReport> {
        // Taken out for the batch, so that its transaction can be open beside the host's.
        let mut log = self.log.take();
        let moved = self.move_batch_to(client, log.as_mut()).await;
        self.log = log;
        moved
    }

    /// Move one batch, to the log's own database when there is one.
    ///
    /// Exactly once across two servers: the host's transaction claims the batch (deleting it
    /// from staging, rows locked against every other claim) and stays open while the log's
    /// transaction writes the events and commits; only then does the host's commit. A failure
    /// before the log's commit rolls both back, the batch still staged. A failure after it (the
    /// host's commit lost, the connection gone) leaves the batch staged and already logged: the
    /// log's transaction looks for the batch's events before writing and leaves out those it
    /// holds, and the events' key (workspace, time, staging id: each is a function of the staged
    /// change) refuses a copy that the look could not see yet (a commit still in flight), after
    /// which the batch is taken again.
    async fn move_batch_to(
        &mut self,
        client: &mut Client,
        log: Option<&mut LogDatabase>,
    ) -> Result<BatchReport> {
        let mut tx = client.transaction().await.context("begin drain")?;
        if self.resolver.is_none() {
            self.resolver = Some(Resolver::prepare(&tx, &self.config).await?);
        }
        let daemon = &self.config.daemon;
        let mut rows = Vec::new();
        // Past the last claim's highest id first; from the start when nothing waits past it.
        for from in [self.from, ClaimFrom::default()] {
            rows = self
                .prepared
                .query(
                    &tx,
                    self.claim.queries().0,
                    &[
                        &self.limit,
                        &daemon.batch_bytes,
                        &daemon.max_change_bytes,
                        &from.after,
                    ],
                )
                .await
                .context("claim staged changes")?;
            self.from = from;
            if !rows.is_empty() || from.after == 0 {
                break;
            }
        }
        // DELETE ... RETURNING gives no order; changes to one record must be normalised in order.
        rows.sort_unstable_by_key(|row| row.get::<_, i64>("id"));
        // The highest id of the claim itself: claim_rest_*() may add higher ones, of the same
        // transactions only, past others not yet claimed.
        let Some(through) = rows.last().map(|row| row.get::<_, i64>("id")) else {
            tx.commit().await.context("commit drain")?;
            return Ok(BatchReport::default());
        };
        let mut report = BatchReport {
            staged: rows.len(),
            more: rows.first().is_some_and(|r| r.get("more")),
            ..Default::default()
        };
        // Changes too large to log were set aside by the claim itself.
        let before = rows.len();
        rows.retain(|row| !row.get::<_, bool>("oversize"));
        report.dead_lettered += before - rows.len();
        if rows.is_empty() {
            tx.commit().await.context("commit drain")?;
            self.from.advance(through, report.more);
            return Ok(report);
        }
        if report.more {
            report.staged += self.claim_rest(&tx, &mut rows).await?;
        }
        self.load_shapes(&tx, &rows).await?;
        let mut changes = Vec::with_capacity(rows.len());
        let mut dead: Vec<(i64, String, Value)> = Vec::new();
        for row in &rows {
            let op: i8 = row.get("op");
            let shape_id = row.get::<_, Option<i64>>("shape");
            let shape = shape_id.and_then(|id| self.shapes.get(&id));
            // Each image read as JSON, with its text.
            let image = |column: &str| {
                let record = row
                    .try_get::<_, Option<String>>(column)
                    .map_err(|e| format!("row image unreadable: {e}"))?;
                match (record, shape) {
                    (None, _) => Ok(None),
                    (Some(record), Some(shape)) => {
                        shape.to_image(&record).map(|image| Some((image, record)))
                    }
                    (Some(_), None) => Err("row image has no recorded shape".to_string()),
                }
            };
            let (old, new) = match (image("old_row"), image("new_row")) {
                (Ok(old), Ok(new)) => (old, new),
                (Err(reason), _) | (_, Err(reason)) => {
                    dead.push((row.get("id"), reason, unreadable(row)));
                    continue;
                }
            };
            // The event keeps the row after the change (before it, for a delete) as staged.
            let (old_row, old_text) = old.unzip();
            let (new_row, new_text) = new.unzip();
            let kept = new_text
                .or(old_text)
                .zip(shape_id)
                .map(|(image, shape)| KeptRow { shape, image });
            let tags = match (row.get("old_tags"), row.get("new_tags")) {
                (Some(before), Some(after)) => Some(TagChange {
                    before: Some(before),
                    after,
                }),
                _ => None,
            };
            let (actor_source, actor) = staged_actor(row.get("actor"));
            let change = StagedChange {
                tags,
                id: row.get("id"),
                source: row.get("source"),
                category: row.get("category"),
                op: Op::from_code(op).unwrap_or(Op::Update),
                txid: row.get("txid"),
                occurred_at: row.get("stmt_at"),
                depth: row.get("depth"),
                actor,
                actor_source,
                origin: bounded_actor(row.get("origin")),
                workspace_id: row.get("workspace_id"),
                old_row,
                new_row,
                kept,
            };
            if Op::from_code(op).is_none() {
                dead.push((
                    change.id,
                    format!("unknown operation code {:?}", op as u8 as char),
                    change.to_json(),
                ));
            } else if !self.sources.contains_key(&change.source) {
                dead.push((
                    change.id,
                    format!(
                        "source {} is not in the config: add it back, or uninstall its triggers",
                        change.source
                    ),
                    change.to_json(),
                ));
            } else {
                changes.push(change);
            }
        }

        let (mut changes, folded) = links::merge(changes, &self.sources);
        report.unchanged += folded;
        let resolver = self.resolver.as_ref().expect("prepared above");
        current_tags(
            &mut tx,
            resolver,
            &mut self.prepared,
            &self.sources,
            &mut changes,
        )
        .await?;

        // A session's login role, staged for want of an actor, is the user it belongs to.
        resolver
            .map_roles(&mut tx, &mut self.prepared, &mut changes)
            .await?;

        // A change made below the host's own statement is linked (System's) only when a change
        // Clockwatch captured caused it; one that a trigger on some other table made (the
        // application's temp table, say) is its actor's like any other.
        // The log's transaction, from the first read of what it holds to its commit.
        let (log_tx, log_prepared, log_shapes) = match log {
            Some(LogDatabase {
                client,
                prepared,
                shapes,
            }) => (
                Some(client.transaction().await.context("begin log")?),
                Some(prepared),
                Some(shapes),
            ),
            None => (None, None, None),
        };
        let mut log_prepared = log_prepared;
        macro_rules! on_log {
            () => {
                match (log_tx.as_ref(), log_prepared.as_deref_mut()) {
                    (Some(t), Some(p)) => Some((t, p)),
                    _ => None,
                }
            };
        }
        macro_rules! log_side {
            () => {
                match (log_tx.as_ref(), log_prepared.as_deref_mut()) {
                    (Some(t), Some(p)) => (t, p),
                    _ => (&tx, &mut self.prepared),
                }
            };
        }
        let (mut primaries, in_flight) =
            find_primaries(&tx, &mut self.prepared, on_log!(), &changes).await?;
        // A foreign-key action's change whose cause another connection has claimed and not yet
        // logged: the cause's event, which says what the action followed, is not there to read,
        // and without it the change would be logged as its actor's. The batch is put back and
        // claimed again once that connection has committed (its claim, of lower ids, never
        // waits on this one's).
        let waits = changes
            .iter()
            .any(|c| c.depth == 2 && in_flight.contains(&(c.txid, c.occurred_at)));
        if !waits {
            self.waiting_since = None;
        } else if self
            .waiting_since
            .get_or_insert_with(std::time::Instant::now)
            .elapsed()
            < PRIMARY_WAIT
        {
            if let Some(log_tx) = log_tx {
                log_tx.rollback().await.context("put a batch back")?;
            }
            tx.rollback().await.context("put a batch back")?;
            // From the start next time: the cause's id is below this batch's.
            self.from = ClaimFrom::default();
            tokio::time::sleep(PRIMARY_RETRY).await;
            return Ok(BatchReport {
                more: true,
                ..Default::default()
            });
        } else {
            tracing::warn!(
                waited_secs = PRIMARY_WAIT.as_secs(),
                "a foreign-key action's cause is still not in the log; its changes are logged as their actor's"
            );
            // The next batch that waits waits its own while.
            self.waiting_since = None;
        }
        for change in changes.iter_mut().filter(|c| c.is_linked()) {
            if !primaries.contains_key(&(change.txid, change.occurred_at)) {
                change.depth = 1;
            }
        }
        let refs: BTreeSet<_> = changes
            .iter()
            .flat_map(|c| normalize::references(c, &self.sources[&c.source]))
            .collect();
        let mut in_batch = self.names_in(&changes);
        let mut names = resolver
            .resolve(&mut tx, &mut self.prepared, on_log!(), &refs, &in_batch)
            .await?;
        names.naive_zone = self.config.naive_zone();
        names.locale = self.config.name_locale.clone();
        names.system_actors = self.config.system_actors.clone();
        names.first_actor_setting = self
            .config
            .actor_settings
            .first()
            .map(|a| a.setting().to_string())
            .unwrap_or_default();
        if resolver.is_stale() {
            self.resolver = None;
        }
        // Remember every name found, so it outlives a later rename or deletion in the host.
        in_batch.extend(resolve::remembered(&names));

        let mut events = Vec::with_capacity(changes.len());
        for change in &mut changes {
            let source = &self.sources[&change.source];
            match normalize::normalise(change, source, &names) {
                Outcome::Event(event) => events.push(*event),
                Outcome::NoChange => report.unchanged += 1,
                Outcome::Failed(reason) => {
                    tracing::warn!(staging_id = change.id, %reason, "change set aside in dead_letter");
                    dead.push((change.id, reason, change.to_json()));
                }
            }
        }
        // A primary of this batch that made no event (it changed only ignored columns) explains
        // nothing: a change linked to such primaries alone is its actor's, normalised again.
        let produced: HashSet<i64> = events
            .iter()
            .filter(|e| !e.linked)
            .map(|e| e.event_id)
            .collect();
        let batch: HashMap<i64, usize> =
            changes.iter().enumerate().map(|(i, c)| (c.id, i)).collect();
        primaries.retain(|_, ids| {
            ids.retain(|id| !batch.contains_key(id) || produced.contains(id));
            !ids.is_empty()
        });
        for event in events.iter_mut().filter(|e| e.linked) {
            if primaries.contains_key(&(event.txid, event.occurred_at)) {
                continue;
            }
            let change = &mut changes[batch[&event.event_id]];
            make_own(change, event, &self.sources[&change.source], &names);
        }
        self.link_actions(&tx, on_log!(), &mut changes, &mut events, &batch, &names)
            .await?;
        link_primaries(&mut events, &primaries);
        // Shapes copied by this batch: known to be in the log once its transaction commits.
        let mut shapes_copied = Vec::new();
        if let (Some(log_tx), Some(copied)) = (log_tx.as_ref(), log_shapes.as_deref()) {
            let prepared = log_prepared
                .as_deref_mut()
                .expect("with the log's transaction");
            already_logged(log_tx, prepared, &mut events).await?;
            shapes_copied = copy_shapes(&tx, log_tx, copied, &events).await?;
        }
        {
            let (log, _) = log_side!();
            ensure_partitions(log, &mut self.partitions, &events).await?;
        }
        if !dead.is_empty() {
            let (ids, reasons, bodies): (Vec<i64>, Vec<String>, Vec<Value>) = unzip3(dead);
            let (log, prepared) = log_side!();
            prepared
                .execute(log, DEAD_LETTER, &[&ids, &reasons, &bodies])
                .await
                .context("write dead letters")?;
            report.dead_lettered += ids.len();
        }
        // Names are remembered in the batch's transaction, stamped with its time as its events
        // are (an event's ids read by the names they bore when it was written), and only those
        // new or changed since this drainer last wrote them: batches name the same few projects,
        // tags and authors. Each is a row of its own (known_name), added and never updated, so
        // no row is locked that another drain connection would wait on.
        let nameless: Vec<String> = events
            .iter()
            .filter_map(|e| e.author_id.as_deref())
            .filter(|id| !names.authors.contains_key(*id))
            .filter(|id| !self.nameless.contains(*id))
            .collect::<BTreeSet<&str>>()
            .into_iter()
            .map(str::to_string)
            .collect();
        if !nameless.is_empty() {
            let ids: Vec<&str> = nameless.iter().map(String::as_str).collect();
            let (log, prepared) = log_side!();
            resolve::remember_nameless(log, prepared, &ids).await?;
        }
        // With the log in a database of its own, reports there cannot read the host's table of
        // workspaces: the names of the batch's workspaces are remembered with the other names.
        if log_tx.is_some() && self.config.workspaces.is_some() {
            let workspaces: BTreeSet<&str> = events
                .iter()
                .map(|e| e.workspace_id.as_str())
                .filter(|w| *w != "*")
                .collect();
            for workspace in workspaces {
                let key = (WORKSPACE.to_string(), workspace.to_string());
                if self.remembered.names.contains_key(&key) {
                    continue;
                }
                let named = crate::workspace::workspace_name(&tx, &self.config, workspace);
                if let Some(name) = named.await? {
                    in_batch.insert(key, Known { name, client: None });
                }
            }
        }
        let news = self.remembered.news(in_batch);
        if !news.is_empty() {
            let (log, prepared) = log_side!();
            resolve::remember(log, prepared, &news).await?;
        }
        // Last before the commit: appending locks the workspace's chain head until the commit,
        // and another connection draining the same workspace waits on that lock.
        {
            let (log, prepared) = log_side!();
            insert_events(log, prepared, &events).await?;
        }
        // The log first: see above.
        if let Some(log_tx) = log_tx {
            log_tx.commit().await.context("commit to the log")?;
        }
        if let Some(copied) = log_shapes {
            copied.extend(shapes_copied);
        }
        tx.commit().await.context("commit drain")?;
        self.from.advance(through, report.more);
        report.events = events.len();
        if !nameless.is_empty() {
            if self.nameless.len() > NameMemory::CAPACITY {
                self.nameless.clear();
            }
            self.nameless.extend(nameless);
        }
        if !news.is_empty() {
            self.remembered.learn(news);
        }
        tracing::debug!(
            staged = report.staged,
            events = report.events,
            unchanged = report.unchanged,
            dead_lettered = report.dead_lettered,
            "batch drained"
        );
        Ok(report)
    }

    /// Claim the rest of the batch's transactions that touch records whose tags are kept in a
    /// link table, when the batch ended in the middle of them (see claim_rest_*() in sql/baseline/08_claims.sql). Returns how
    /// many changes were added.
    async fn claim_rest(
        &mut self,
        tx: &Transaction<'_>,
        rows: &mut Vec<tokio_postgres::Row>,
    ) -> Result<usize> {
        let linked: Vec<&str> = self
            .sources
            .values()
            .filter(|s| s.link_tags().is_some())
            .map(|s| s.table.as_str())
            .collect();
        let txids: Vec<i64> = rows
            .iter()
            .filter(|r| linked.contains(&r.get::<_, &str>("source")))
            .map(|r| r.get("txid"))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let Some(last) = rows.iter().map(|r| r.get::<_, i64>("id")).max() else {
            return Ok(0);
        };
        if txids.is_empty() {
            return Ok(0);
        }
        let rest = self
            .prepared
            .query(
                tx,
                self.claim.queries().1,
                &[&last, &txids, &linked, &self.limit],
            )
            .await
            .context("claim the rest of the batch's transactions")?;
        let added = rest.len();
        rows.extend(rest);
        rows.sort_unstable_by_key(|row| row.get::<_, i64>("id"));
        Ok(added)
    }

    /// Names the batch's own rows carry, the latest change winning: (category, id) -> name and,
    /// for projects, client. Only categories other events name in their details are kept: a time
    /// entry's or expense's description names nothing else, and remembering one per event cost
    /// an upsert per event.
    fn names_in(&self, changes: &[StagedChange]) -> Remembered {
        let mut names = Remembered::new();
        for change in changes {
            let source = &self.sources[&change.source];
            if !matches!(
                source.category,
                Category::Projects | Category::Tasks | Category::Clients | Category::Tags
            ) {
                continue;
            }
            let Some(row) = change.row() else {
                continue;
            };
            let text = |column: Option<&str>| normalize::column_text(row, column);
            let name = normalize::name_text(
                row,
                source.name_column.as_ref(),
                self.config.name_locale.as_deref(),
            );
            if let (Some(id), Some(name)) = (text(Some(&source.id_column)), name) {
                let client = match source.category {
                    Category::Projects => text(source.fields.client.as_deref()),
                    _ => None,
                };
                names.insert(
                    (source.category.as_str().to_string(), id),
                    Known { name, client },
                );
            }
        }
        names
    }
}

/// Create the partitions of the months `events` fall in that `known` does not list yet.
async fn ensure_partitions(
    tx: &Transaction<'_>,
    known: &mut HashSet<(i32, u32)>,
    events: &[AuditEvent],
) -> Result<()> {
    let months: BTreeSet<(i32, u32)> = events.iter().map(|e| month(e.occurred_at)).collect();
    for (year, month) in months {
        if known.contains(&(year, month)) {
            continue;
        }
        let first = events
            .iter()
            .find(|e| self::month(e.occurred_at) == (year, month))
            .expect("month from events");
        tx.execute("select ensure_partition($1)", &[&first.occurred_at])
            .await
            .context("create partition")?;
        known.insert((year, month));
    }
    Ok(())
}

/// Leave out of `events` those the log already holds: a batch whose host commit was lost after
/// the log's had landed, claimed again.
async fn already_logged(
    log: &Transaction<'_>,
    prepared: &mut Prepared,
    events: &mut Vec<AuditEvent>,
) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let workspaces: Vec<&str> = events.iter().map(|e| e.workspace_id.as_str()).collect();
    let times: Vec<DateTime<Utc>> = events.iter().map(|e| e.occurred_at).collect();
    let ids: Vec<i64> = events.iter().map(|e| e.event_id).collect();
    let logged: HashSet<i64> = prepared
        .query(log, LOGGED, &[&workspaces, &times, &ids])
        .await
        .context("look for the batch in the log")?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if !logged.is_empty() {
        tracing::info!(
            events = logged.len(),
            "events of this batch were already in the log; left out"
        );
        events.retain(|e| !logged.contains(&e.event_id));
    }
    Ok(())
}

/// Copy to the log the shapes of the batch's row images that it may not hold yet, in the log
/// transaction that writes the batch's events (before them). Returns the ids copied, which the
/// caller counts as in the log once that transaction has committed: counted before, a batch
/// rolled back would leave later events naming a shape the log never got.
async fn copy_shapes(
    host: &Transaction<'_>,
    log: &Transaction<'_>,
    copied: &HashSet<i64>,
    events: &[AuditEvent],
) -> Result<Vec<i64>> {
    let wanted: Vec<i64> = events
        .iter()
        .filter_map(|e| e.row.as_ref().map(|r| r.shape))
        .filter(|id| !copied.contains(id))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if wanted.is_empty() {
        return Ok(wanted);
    }
    let shapes: Value = host
        .query_one(
            "select coalesce(jsonb_agg(jsonb_build_object(
                        'id', s.id, 'source', s.source, 'category', s.category,
                        'columns', s.columns, 'types', s.types, 'excluded', s.excluded,
                        'signature', s.signature)), '[]')
             from shape s where s.id = any($1)",
            &[&wanted],
        )
        .await
        .context("read the batch's shapes")?
        .get(0);
    log.execute("select copy_shapes($1)", &[&shapes])
        .await
        .context("copy shapes to the log")?;
    Ok(wanted)
}

/// Give each change of a record whose tags are kept in a link table, and whose tags no
/// link-table change of its transaction describes, the tags the record has now.
async fn current_tags(
    tx: &mut Transaction<'_>,
    resolver: &Resolver,
    prepared: &mut Prepared,
    sources: &HashMap<String, SourceConfig>,
    changes: &mut [StagedChange],
) -> Result<()> {
    let mut wanted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let id_of = |change: &StagedChange, sources: &HashMap<String, SourceConfig>| {
        let source = &sources[&change.source];
        source.link_tags()?;
        if change.tags.is_some() || change.op == Op::Truncate {
            return None;
        }
        normalize::column_text(change.row()?, Some(&source.id_column))
    };
    for change in changes.iter() {
        if let Some(id) = id_of(change, sources) {
            wanted.entry(change.source.clone()).or_default().insert(id);
        }
    }
    if wanted.is_empty() {
        return Ok(());
    }
    let found = resolver.current_tags(tx, prepared, &wanted).await?;
    for change in changes.iter_mut() {
        if let Some(id) = id_of(change, sources) {
            let after = found
                .get(&(change.source.clone(), id))
                .cloned()
                .unwrap_or_default();
            change.tags = Some(TagChange {
                before: None,
                after,
            });
        }
    }
    Ok(())
}

fn month(t: DateTime<Utc>) -> (i32, u32) {
    (t.year(), t.month())
}

/// A transaction's statement: its txid and statement time.
type Statement = (i64, DateTime<Utc>);

/// The primary changes of the statements that the batch's linked changes belong to: changes the
/// host made itself (depth 1) in the same transaction and statement, in this batch, in events
/// already written, or still staged beyond the batch. Event ids are staging ids, so a primary
/// still in staging can be pointed at before its event exists.
/// The changes that may have caused each linked change's statement (see [`cause`]), and the
/// statements whose only such changes are still staged below this batch's first id: claimed by
/// another connection draining the same backlog, whose batch has not committed.
async fn find_primaries(
    tx: &Transaction<'_>,
    prepared: &mut Prepared,
    mut log: LogTx<'_, '_>,
    changes: &[StagedChange],
) -> Result<(HashMap<Statement, Vec<i64>>, HashSet<Statement>)> {
    let statements: HashSet<Statement> = changes
        .iter()
        .filter(|c| c.is_linked())
        .map(|c| (c.txid, c.occurred_at))
        .collect();
    let mut primaries: HashMap<Statement, Vec<i64>> = HashMap::new();
    let mut in_flight = HashSet::new();
    if statements.is_empty() {
        return Ok((primaries, in_flight));
    }
    let add = |primaries: &mut HashMap<Statement, Vec<i64>>, txid, at, id| {
        if statements.contains(&(txid, at)) {
            primaries.entry((txid, at)).or_default().push(id);
        }
    };
    for c in changes.iter().filter(|c| !c.is_linked()) {
        add(&mut primaries, c.txid, c.occurred_at, c.id);
    }
    let txids: Vec<i64> = statements.iter().map(|(txid, _)| *txid).collect();
    let times: Vec<DateTime<Utc>> = statements.iter().map(|(_, at)| *at).collect();
    // Primaries drained in earlier batches, found by their statement's time.
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&txids, &times];
    let logged = match log.as_mut() {
        Some((log, log_prepared)) => log_prepared.query(*log, PRIMARY_EVENTS, &params),
        None => prepared.query(tx, PRIMARY_EVENTS, &params),
    };
    for row in logged.await.context("find primary events")? {
        add(&mut primaries, row.get(0), row.get(1), row.get(2));
    }
    // A primary captured after a full batch is still staged beyond it. Staging has no txid index
    // (it would slow every host write), so this scan runs only when nothing else was found.
    let unresolved: Vec<i64> = statements
        .iter()
        .filter(|s| !primaries.contains_key(s))
        .map(|(txid, _)| *txid)
        .collect();
    if !unresolved.is_empty() {
        let first = changes.iter().map(|c| c.id).min().unwrap_or(i64::MAX);
        for row in prepared
            .query(tx, PRIMARY_STAGED, &[&unresolved])
            .await
            .context("find staged primaries")?
        {
            let (txid, at, id): (i64, DateTime<Utc>, i64) = (row.get(0), row.get(1), row.get(2));
            if id < first && statements.contains(&(txid, at)) {
                in_flight.insert((txid, at));
            }
            add(&mut primaries, txid, at, id);
        }
    }
    Ok((primaries, in_flight))
}

impl Drainer {
    /// Point each foreign-key action's change (depth 2) at the change that caused it, or make it
    /// its actor's when no change of its statement can have (src/cause.rs).
    async fn link_actions(
        &mut self,
        tx: &Transaction<'_>,
        mut log: LogTx<'_, '_>,
        changes: &mut [StagedChange],
        events: &mut [AuditEvent],
        batch: &HashMap<i64, usize>,
        names: &Names,
    ) -> Result<()> {
        let by_action = |e: &AuditEvent, changes: &[StagedChange]| {
            let c = &changes[batch[&e.event_id]];
            e.linked && c.depth == 2 && matches!(c.op, Op::Update | Op::Delete)
        };
        let statements: HashSet<Statement> = events
            .iter()
            .filter(|e| by_action(e, changes))
            .map(|e| (e.txid, e.occurred_at))
            .collect();
        if statements.is_empty() {
            return Ok(());
        }
        let keys: Vec<ForeignKey> = self
            .prepared
            .query(tx, FOREIGN_KEYS, &[])
            .await
            .context("read the foreign keys between audited tables")?
            .iter()
            .map(|r| ForeignKey {
                child: r.get(0),
                parent: r.get(1),
                child_columns: r.get(2),
                parent_columns: r.get(3),
                on_delete: r.get::<_, String>(4).chars().next().unwrap_or('a'),
                on_update: r.get::<_, String>(5).chars().next().unwrap_or('a'),
            })
            .collect();
        let txids: Vec<i64> = statements.iter().map(|(txid, _)| *txid).collect();
        let times: Vec<DateTime<Utc>> = statements.iter().map(|(_, at)| *at).collect();
        let mut written: HashMap<Statement, Vec<Candidate>> = HashMap::new();
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&txids, &times];
        let logged = match log.as_mut() {
            Some((log, prepared)) => prepared.query(*log, STATEMENT_EVENTS, &params),
            None => self.prepared.query(tx, STATEMENT_EVENTS, &params),
        };
        for row in logged.await.context("read the events of the statements")? {
            let id: i64 = row.get(2);
            let linked: bool = row.get(6);
            written
                .entry((row.get(0), row.get(1)))
                .or_default()
                .push(Candidate {
                    event_id: id,
                    source: row.get(3),
                    did: Did::of_action(row.get(4)),
                    key: row.get(5),
                    root: if linked {
                        row.get::<_, Option<i64>>(7).unwrap_or(id)
                    } else {
                        id
                    },
                });
        }
        for i in 0..events.len() {
            if !by_action(&events[i], changes) {
                continue;
            }
            let statement = (events[i].txid, events[i].occurred_at);
            let mut candidates: Vec<Candidate> = events[..i]
                .iter()
                .filter(|e| (e.txid, e.occurred_at) == statement)
                .map(|e| Candidate {
                    event_id: e.event_id,
                    source: e.source.clone(),
                    did: Did::of_op(changes[batch[&e.event_id]].op),
                    key: e.target_id.clone(),
                    root: if e.linked {
                        e.caused_by.unwrap_or(e.event_id)
                    } else {
                        e.event_id
                    },
                })
                .collect();
            candidates.extend(written.get(&statement).into_iter().flatten().cloned());
            let change = &mut changes[batch[&events[i].event_id]];
            let sources = &self.sources;
            let id_column = |s: &str| sources.get(s).map(|source| source.id_column.as_str());
            match cause::action_cause(change, &candidates, &keys, id_column) {
                Some(root) => events[i].caused_by = Some(root),
                None => make_own(change, &mut events[i], &self.sources[&change.source], names),
            }
        }
        Ok(())
    }
}

/// Normalise `change` again as its actor's own (a linked change that nothing logged can have
/// caused), in place of `event`. The first normalisation moved the row image into `event`.
fn make_own(
    change: &mut StagedChange,
    event: &mut AuditEvent,
    source: &SourceConfig,
    names: &Names,
) {
    change.depth = 1;
    if let Outcome::Event(mut own) = normalize::normalise(change, source, names) {
        own.row = event.row.take();
        *event = *own;
    }
}

/// Point each linked change at its primary event. A foreign-key cascade is captured after the
/// statement that caused it and a host trigger's change before, so the nearest earlier primary
/// is preferred, then the nearest later one.
fn link_primaries(events: &mut [AuditEvent], primaries: &HashMap<Statement, Vec<i64>>) {
    for event in events
        .iter_mut()
        .filter(|e| e.linked && e.caused_by.is_none())
    {
        let Some(candidates) = primaries.get(&(event.txid, event.occurred_at)) else {
            continue;
        };
        let earlier = candidates.iter().filter(|id| **id < event.event_id).max();
        let later = candidates.iter().filter(|id| **id > event.event_id).min();
        event.caused_by = earlier.or(later).copied();
    }
}

async fn insert_events(
    tx: &Transaction<'_>,
    prepared: &mut Prepared,
    events: &[AuditEvent],
) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    // Borrowed, not cloned: the arrays are only encoded into the query's parameters.
    let col = |f: &dyn Fn(&AuditEvent) -> Option<&str>| events.iter().map(f).collect::<Vec<_>>();
    let event_ids: Vec<i64> = events.iter().map(|e| e.event_id).collect();
    let occurred: Vec<DateTime<Utc>> = events.iter().map(|e| e.occurred_at).collect();
    let workspaces = col(&|e| Some(&e.workspace_id));
    let categories = col(&|e| Some(e.category.as_str()));
    let codes = col(&|e| Some(&e.action_code));
    let actions = col(&|e| Some(e.action));
    let origins = col(&|e| e.origin.as_deref());
    let author_ids = col(&|e| e.author_id.as_deref());
    let authors = col(&|e| Some(&e.author));
    let target_ids = col(&|e| e.target_id.as_deref());
    let targets = col(&|e| e.target.as_deref());
    let caused_by: Vec<Option<i64>> = events.iter().map(|e| e.caused_by).collect();
    let linked: Vec<bool> = events.iter().map(|e| e.linked).collect();
    let txids: Vec<i64> = events.iter().map(|e| e.txid).collect();
    let sources = col(&|e| Some(&e.source));
    let json = |f: &dyn Fn(&AuditEvent) -> Option<&str>| {
        events
            .iter()
            .map(|e| f(e).map(JsonText))
            .collect::<Vec<_>>()
    };
    let previous = json(&|e| e.previous_value.as_deref());
    let new = json(&|e| e.new_value.as_deref());
    let row_images = col(&|e| e.row.as_ref().map(|r| r.image.as_str()));
    let row_shapes: Vec<Option<i64>> = events
        .iter()
        .map(|e| e.row.as_ref().map(|r| r.shape))
        .collect();
    // The details spelled as jsonb prints them, each event's content digest over that text
    // (src/chain.rs), and its link in its workspace's chain from the heads locked here: the
    // server stores the links without printing or hashing anything.
    let details_text: Vec<String> = events.iter().map(|e| e.details.jsonb_text()).collect();
    let digests: Vec<(&str, i64, [u8; 32])> = events
        .iter()
        .zip(&details_text)
        .map(|(e, d)| {
            (
                e.workspace_id.as_str(),
                e.event_id,
                chain::content_digest(e, d),
            )
        })
        .collect();
    let mut batch_workspaces: Vec<&str> = digests.iter().map(|(w, _, _)| *w).collect();
    batch_workspaces.sort_unstable();
    batch_workspaces.dedup();
    let mut heads: HashMap<String, chain::Head> = prepared
        .query(tx, CHAIN_HEADS, &[&batch_workspaces])
        .await
        .context("lock the chain heads")?
        .iter()
        .map(|r| {
            let head = chain::Head {
                seq: r.get("seq"),
                hash: r.get("hash"),
            };
            (r.get("workspace_id"), head)
        })
        .collect();
    let links = chain::chain_batch(&digests, &mut heads)
        .map_err(|e| Error::Schema(format!("write events: {e}")))?;
    let chain_seqs: Vec<i64> = links.iter().map(|l| l.seq).collect();
    let prev_hashes: Vec<&[u8]> = links.iter().map(|l| &l.prev_hash[..]).collect();
    let hashes: Vec<&[u8]> = links.iter().map(|l| &l.hash[..]).collect();
    let details: Vec<JsonText> = details_text.iter().map(|d| JsonText(d)).collect();
    prepared
        .execute(
            tx,
            INSERT_EVENTS,
            &[
                &event_ids,
                &occurred,
                &workspaces,
                &categories,
                &codes,
                &actions,
                &origins,
                &author_ids,
                &authors,
                &target_ids,
                &targets,
                &caused_by,
                &linked,
                &txids,
                &sources,
                &previous,
                &new,
                &row_images,
                &row_shapes,
                &details,
                &chain_seqs,
                &prev_hashes,
                &hashes,
            ],
        )
        .await
        .context("write events")?;
    Ok(())
}

/// A staged row whose images could not be read, for the dead-letter table: its columns as staged,
/// who made it, when and where kept with the images, so that it can still be replayed and
/// credited to its author.
fn unreadable(row: &tokio_postgres::Row) -> Value {
    let text = |column: &str| row.try_get::<_, Option<String>>(column).ok().flatten();
    let (actor_source, actor) = staged_actor(text("actor"));
    serde_json::json!({
        "id": row.get::<_, i64>("id"), "source": row.get::<_, String>("source"),
        "category": row.get::<_, String>("category"),
        "op": row.get::<_, i8>("op"), "txid": row.get::<_, i64>("txid"),
        "occurred_at": row.get::<_, DateTime<Utc>>("stmt_at"), "depth": row.get::<_, i32>("depth"),
        "actor": actor, "actor_source": actor_source, "origin": bounded_actor(text("origin")),
        "workspace_id": text("workspace_id"), "shape": row.get::<_, Option<i64>>("shape"),
        "old_row": text("old_row"), "new_row": text("new_row"),
    })
}

fn unzip3<A, B, C>(items: Vec<(A, B, C)>) -> (Vec<A>, Vec<B>, Vec<C>) {
    let mut a = Vec::with_capacity(items.len());
    let mut b = Vec::with_capacity(items.len());
    let mut c = Vec::with_capacity(items.len());
    for (x, y, z) in items {
        a.push(x);
        b.push(y);
        c.push(z);
    }
    (a, b, c)
}

/// The longest actor id taken as it is. Capture keeps one character more, so that a longer id
/// is known for what it is.
const MAX_ACTOR_CHARS: usize = 256;

/// The setting a staged actor came from and the actor, as capture stages them (`actor_sql()`):
/// U+001F and the one default setting's value (no source: the first configured), or U+001E, the
/// settings read (JSON, as `actor_settings` is kept, `{"role": true}` for the session's login
/// role), U+001D and a text array of what each held, of which the first that names someone wins
/// (source "role" for the login role, see [`resolve::ROLE`]).
fn staged_actor(staged: Option<String>) -> (Option<String>, Option<String>) {
    let Some(staged) = staged else {
        return (None, None);
    };
    if let Some(value) = staged.strip_prefix('\u{1f}') {
        return (None, bounded_actor(Some(value.to_string())));
    }
    let Some(staged) = staged.strip_prefix('\u{1e}') else {
        return (None, bounded_actor(Some(staged)));
    };
    let read = staged.split_once('\u{1d}').and_then(|(settings, texts)| {
        let settings: Vec<Value> = serde_json::from_str(settings).ok()?;
        Some((settings, crate::record::text_array(texts)?))
    });
    let Some((settings, texts)) = read else {
        return (None, None);
    };
    for (setting, text) in settings.iter().zip(texts) {
        let Some(text) = text else {
            continue;
        };
        let (source, actor) = match (setting["setting"].as_str(), setting["key"].as_str()) {
            (Some(name), Some(key)) => (format!("{name}.{key}"), jsonfield::field(&text, key)),
            (Some(name), None) => (name.to_string(), Some(text)),
            (None, _) if setting["role"] == Value::Bool(true) => {
                (resolve::ROLE.to_string(), Some(text))
            }
            (None, _) => continue,
        };
        if let Some(actor) = actor.filter(|a| !a.is_empty()) {
            return (Some(source), bounded_actor(Some(actor)));
        }
    }
    (None, None)
}

/// An actor id (or an origin) as the log keeps it: whole, or, past [`MAX_ACTOR_CHARS`] (no application's user
/// id or origin is that long: it is a mistake or an attack), its first 64 characters and an ellipsis, so
/// that it neither passes for a real id nor fills the log's indexes.
fn bounded_actor(actor: Option<String>) -> Option<String> {
    let actor = actor?;
    if actor.chars().count() <= MAX_ACTOR_CHARS {
        return Some(actor);
    }
    Some(actor.chars().take(64).chain(['…']).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_staged_actor_is_the_first_setting_that_names_someone() {
        let read = |s: &str| staged_actor(Some(s.to_string()));
        let some = |s: &str| Some(s.to_string());
        assert_eq!(read("\u{1f}17"), (None, some("17")));
        // A value that looks like the other form is all value.
        assert_eq!(read("\u{1f}\u{1e}[]"), (None, some("\u{1e}[]")));
        // The settings as JSON, then their texts as PostgreSQL prints a text[]: quoted where
        // needed, \" and \\ escaped, NULL bare.
        let staged = |settings: &str, texts: &str| format!("\u{1e}[{settings}]\u{1d}{{{texts}}}");
        let plain = |name: &str| format!(r#"{{"setting": "{name}"}}"#);
        let jwt = r#"{"key": "sub", "setting": "request.jwt.claims"}"#;
        let both = format!("{}, {jwt}", plain("clockwatch.actor"));
        assert_eq!(
            read(&staged(&both, r#""","{\"sub\": \"7\"}""#)),
            (some("request.jwt.claims.sub"), some("7"))
        );
        // A claim that is no JSON object, or lacks the key, names nobody: the next setting does.
        let then = format!("{jwt}, {}", plain("jwt.claims.user_id"));
        for claims in [
            r#""not json {""#,
            r#""[1]""#,
            r#""{\"role\": \"web\"}""#,
            "NULL",
        ] {
            assert_eq!(
                read(&staged(&then, &format!("{claims},9"))),
                (some("jwt.claims.user_id"), some("9")),
                "{claims}"
            );
        }
        // Numbers print as ->> prints them.
        assert_eq!(
            read(&staged(jwt, r#""{\"sub\": 12}""#)),
            (some("request.jwt.claims.sub"), some("12"))
        );
        let role = format!(r#"{}, {{"role": true}}"#, plain("clockwatch.actor"));
        assert_eq!(
            read(&staged(&role, "NULL,ann")),
            (some("role"), some("ann"))
        );
        assert_eq!(
            read(&staged(&plain("clockwatch.actor"), r#""""#)),
            (None, None)
        );
        // Fewer texts than settings, or text that is no array: nobody.
        assert_eq!(read(&staged(&both, "")), (None, None));
        assert_eq!(staged_actor(None), (None, None));
    }

    fn known(name: &str, client: Option<&str>) -> Known {
        Known {
            name: name.to_string(),
            client: client.map(str::to_string),
        }
    }

    fn names(entries: &[(&str, &str, Known)]) -> Remembered {
        entries
            .iter()
            .map(|(category, id, k)| ((category.to_string(), id.to_string()), k.clone()))
            .collect()
    }

    #[test]
    fn name_memory_passes_on_only_names_not_yet_written() {
        let mut memory = NameMemory::default();
        let first = names(&[
            ("author", "1", known("Ada", None)),
            ("projects", "7", known("Apollo", Some("3"))),
        ]);
        assert_eq!(memory.news(first.clone()), first, "nothing written yet");
        memory.learn(first.clone());
        assert!(
            memory.news(first).is_empty(),
            "unchanged names are not written again"
        );

        // A rename, a new client and a new record are all news; the unchanged author is not.
        let second = names(&[
            ("author", "1", known("Ada", None)),
            ("projects", "7", known("Apollo", Some("4"))),
            ("tags", "2", known("urgent", None)),
        ]);
        let news = memory.news(second);
        assert_eq!(
            news,
            names(&[
                ("projects", "7", known("Apollo", Some("4"))),
                ("tags", "2", known("urgent", None)),
            ])
        );
    }

    #[test]
    fn name_memory_forgets_after_its_time_to_live() {
        let mut memory = NameMemory::default();
        let seen = names(&[("author", "1", known("Ada", None))]);
        memory.learn(seen.clone());
        let expired = std::time::Instant::now().checked_sub(NameMemory::TTL);
        memory.since = Some(expired.expect("the machine has been up for over a minute"));
        assert_eq!(
            memory.news(seen.clone()),
            seen,
            "written again once the memory expired"
        );
        memory.learn(seen.clone());
        assert!(memory.news(seen).is_empty());
    }
}

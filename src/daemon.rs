//! `clockwatch run`: the long-running daemon.
//!
//! NOTIFY is only a wake-up call; the staging table is the truth. So the daemon drains right after
//! every (re)connect, drains when notified, and also polls on a timer, because notifications sent
//! while it was disconnected are gone and capture only notifies a daemon that said it is idle.
//!
//! While it is busy the daemon clears the idle flag (the `wakeup_idle` sequence) and polls at a
//! short interval instead; writers then skip NOTIFY, whose commit-time lock is cluster-wide. It
//! sets the flag again after a quiet spell and drains once more, which closes the window where a
//! writer saw the old flag value.
//!
//! Transient failures (the database restarting, the connection dropped) lead to a reconnect with
//! capped, jittered exponential backoff; anything else (authentication, Clockwatch not installed)
//! stops the daemon with the error. Shutdown is one `watch` channel; a batch in hand always
//! commits or rolls back before the daemon exits.

use std::time::Duration;

use rand::Rng;
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep, Instant};
use tokio_postgres::{Client, Notification};

use crate::config::{quote_ident, Config, DaemonConfig};
use crate::db;
use crate::drain::{BatchReport, Claim, Drainer};
use crate::error::{DbContext, Error, Result};
use crate::install::{self, require_side, Side};
use crate::retention;
use crate::systemd;

/// How long staging must stay empty before the daemon declares itself idle again (with a
/// `daemon.busy_poll_ms` above this, one empty look is enough).
const LINGER: Duration = Duration::from_millis(50);
/// How often the daemon looks at partitions and retention (pruning itself is daily).
const MAINTENANCE_EVERY: Duration = Duration::from_secs(3600);
/// Longest stretch of draining before the loop looks at its other duties.
const DRAIN_SLICE: Duration = Duration::from_secs(1);
/// How often the daemon checks that nothing waits in staging for too long.
const LAG_CHECK_EVERY: Duration = Duration::from_secs(60);
/// How far behind the host the log may fall before helper connections drain a backlog the host
/// is still adding to (see [`Daemon::drain_slice`]).
const HELP_AFTER: Duration = Duration::from_secs(10);
/// How often the daemon logs what it drained.
const SUMMARY_EVERY: Duration = Duration::from_secs(60);
/// First reconnection delay; doubles up to `daemon.max_backoff_ms`.
const MIN_BACKOFF: Duration = Duration::from_millis(100);

/// Events the daemon reports to whoever supervises it (systemd readiness, tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// Connected, listening and caught up with staging.
    Ready,
    /// Lost the database; reconnecting.
    Reconnecting,
}

pub struct Daemon {
    config: Config,
    pg: db::Target,
    helper_pg: db::Target,
    /// The log's own database, when it has one (`log_database_url`).
    log_pg: Option<db::Target>,
    /// A connection to it for the daemon's chores (partitions ahead, pruning).
    log_client: Option<Client>,
    drainer: Drainer,
    /// The extra connections of `daemon.drain_connections`, each with its own drainer; connected
    /// with the main connection and dropped with it.
    helpers: Vec<Helper>,
    shutdown: watch::Receiver<bool>,
    lifecycle: Option<mpsc::UnboundedSender<Lifecycle>>,
    /// Start of the current summary period, and what was drained in it.
    summary: (Instant, BatchReport),
    /// The newest staged id seen when the last backlog was met, and when: how fast the host
    /// is adding to staging.
    newest_staged: Option<(Instant, i64)>,
    /// Whether the last backlog was one the host was still writing (logged when it changes).
    in_burst: bool,
    /// Whether a session has been ready: a schema missing after that was removed under it.
    ready_once: bool,
}

impl Daemon {
    pub fn new(
        config: Config,
        database_url: &str,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Daemon> {
        let pg = db::parse_url(database_url, "daemon")?;
        // Helpers name themselves apart: `status` counts daemons by the main connection's name.
        let helper_pg = db::parse_url(database_url, "daemon helper")?;
        let new_drainer =
            || Drainer::new(config.clone()).with_batch_deadline(config.daemon.query_timeout());
        let drainer = new_drainer();
        let helpers = (1..config.daemon.drain_connections)
            .map(|_| {
                let mut drainer = new_drainer();
                drainer.set_claim(Claim::Together);
                Helper {
                    drainer,
                    client: None,
                }
            })
            .collect();
        let log_pg = match &config.log_database_url {
            Some(url) => Some(db::parse_url(url, "daemon log")?),
            None => None,
        };
        Ok(Daemon {
            config,
            pg,
            helper_pg,
            log_pg,
            log_client: None,
            drainer,
            helpers,
            shutdown,
            lifecycle: None,
            summary: (Instant::now(), BatchReport::default()),
            newest_staged: None,
            in_burst: false,
            ready_once: false,
        })
    }

    /// Write the log to a database of its own, at `url` (in place of the config's
    /// `log_database_url`).
    pub fn with_log_database(mut self, url: &str) -> Result<Daemon> {
        self.log_pg = Some(db::parse_url(url, "daemon log")?);
        Ok(self)
    }

    /// A connection to the log's own database, set up as every daemon connection there is:
    /// Clockwatch's schema installed, its names first, and commits waiting for the disk (the
    /// host's staged rows are deleted once a log commit returns).
    async fn connect_log(&self, settings: &str) -> Result<Option<Client>> {
        let Some(target) = &self.log_pg else {
            return Ok(None);
        };
        let (client, _notifications) = db::connect(target).await.map_err(Error::on_log_database)?;
        let schema = self.config.log_schema();
        within(self.timeout(), async {
            let source = self.config.source_id.as_deref();
            require_side(&client, &schema, Side::Log, source)
                .await
                .map_err(|e| match e {
                    Error::NotInstalled(schema) => Error::Config(format!(
                        "the log database (log_database_url) has no Clockwatch schema \"{schema}\": run `clockwatch install` with this config"
                    )),
                    e => e,
                })?;
            client
                .batch_execute(&format!(
                    "{settings}; set search_path = {}, pg_catalog; set synchronous_commit = on",
                    quote_ident(&schema)
                ))
                .await
                .context("set the log session's settings")
        })
        .await
        .map_err(Error::on_log_database)?;
        Ok(Some(client))
    }

    /// Receive [`Lifecycle`] notices.
    pub fn with_lifecycle(mut self, tx: mpsc::UnboundedSender<Lifecycle>) -> Daemon {
        self.lifecycle = Some(tx);
        self
    }

    fn announce(&self, event: Lifecycle) {
        match event {
            Lifecycle::Ready => systemd::notify("READY=1\nSTATUS=listening"),
            Lifecycle::Reconnecting => systemd::notify("STATUS=reconnecting to the database"),
        }
        if let Some(tx) = &self.lifecycle {
            let _ = tx.send(event);
        }
    }

    fn timeout(&self) -> Duration {
        self.config.daemon.query_timeout()
    }

    fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Run until shutdown is signalled (Ok) or a non-transient error happens (Err).
    pub async fn run(mut self) -> Result<()> {
        let mut failures: u32 = 0;
        while !self.stopping() {
            match self.session(&mut failures).await {
                Ok(()) => break,
                Err(e) if e.is_transient() => {
                    self.announce(Lifecycle::Reconnecting);
                    let delay = backoff(failures, self.config.daemon.max_backoff());
                    failures = failures.saturating_add(1);
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "database unavailable; reconnecting");
                    let mut shutdown = self.shutdown.clone();
                    tokio::select! {
                        _ = sleep(delay) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                Err(e) => return Err(self.explain(e).await),
            }
        }
        systemd::notify("STOPPING=1");
        tracing::info!("daemon stopped");
        Ok(())
    }

    /// A statement that worked before now names an undefined function, table or schema, or a
    /// reconnection finds no schema: most likely Clockwatch was uninstalled (`uninstall
    /// --purge`) under the running daemon. Look again on a fresh connection and, if so, say
    /// that rather than which object went missing.
    async fn explain(&self, error: Error) -> Error {
        let missing = matches!(error.code(), Some("42883" | "42P01" | "3F000"))
            || matches!(error, Error::NotInstalled(_));
        if !missing || !self.ready_once {
            return error;
        }
        let mut sides = vec![(&self.pg, self.config.schema.clone())];
        if let Some(log) = &self.log_pg {
            sides.push((log, self.config.log_schema()));
        }
        for (target, schema) in sides {
            let Ok((client, _notifications)) = db::connect(target).await else {
                return error;
            };
            if let Ok(false) = within(self.timeout(), install::is_installed(&client, &schema)).await
            {
                return Error::Schema(format!(
                    "clockwatch was uninstalled from schema \"{schema}\" while the daemon ran: the daemon stops; run `clockwatch install` before starting it again"
                ));
            }
        }
        error
    }

    /// One connection's life: connect, listen, catch up, then drain on every wake-up until the
    /// connection dies or shutdown is asked for.
    async fn session(&mut self, failures: &mut u32) -> Result<()> {
        let (mut client, mut notifications) = db::connect(&self.pg).await?;
        // The host's schema must be what the config says it is: its log apart or beside it, and
        // this host's source, so that no change is drained into another host's log.
        let side = match self.log_pg {
            Some(_) => Side::Host,
            None => Side::Together,
        };
        let source = self.config.source_id.as_deref();
        within(
            self.timeout(),
            require_side(&client, &self.config.schema, side, source),
        )
        .await?;
        // Every connection of this daemon resolves Clockwatch's names in its schema, and commits
        // without waiting for its WAL to reach disk. That loses nothing: a batch's events and the
        // deletion of its staging rows are one transaction, and PostgreSQL replays WAL in order,
        // so a crash that undoes a batch brings its staged rows back too, to be drained again
        // (the staged rows themselves were flushed by the host's own commit). What it saves is
        // the daemon waiting for a flush after every batch: 200,000 staged changes drained 11%
        // faster (bench/README.md). A commit that drops a relation (pruning) is still
        // flushed first: PostgreSQL insists.
        // Row-level security is off: a policy on a host table the daemon reads for names would
        // run its expressions with the daemon's rights (src/resolve.rs). constraint_exclusion is
        // pinned to its default: `on`, which a database's owner can make every session's
        // default, has the planner evaluate a table's own CHECK constraints, and a host function
        // in one would run with the daemon's rights (host_code_free() checks the constraints
        // that `partition` evaluates, those of a table's children).
        let settings = format!(
            "set search_path = {}, pg_catalog; set synchronous_commit = off; set row_security = off; \
             set constraint_exclusion = partition",
            quote_ident(&self.config.schema)
        );
        let listen = format!("{settings}; listen {}", quote_ident(&self.config.channel()));
        within(self.timeout(), async {
            client.batch_execute(&listen).await.context("listen")
        })
        .await?;
        self.drainer.reset();
        self.log_client = None;
        if let Some(log) = self.connect_log(&settings).await? {
            self.drainer.set_log(log);
            self.log_client = self.connect_log(&settings).await?;
        }
        let limit = self.timeout();
        for i in 0..self.helpers.len() {
            self.helpers[i].client = None;
            self.helpers[i].drainer.reset();
            let (client, _notifications) = db::connect(&self.helper_pg).await?;
            within(limit, async {
                client
                    .batch_execute(&settings)
                    .await
                    .context("set session settings")
            })
            .await?;
            if let Some(log) = self.connect_log(&settings).await? {
                self.helpers[i].drainer.set_log(log);
            }
            self.helpers[i].client = Some(client);
        }
        // Ready after one bounded slice of draining: a large backlog is caught up in the loop
        // below, where the watchdog, the chores and shutdown keep being served.
        self.report_health(&client).await?;
        // A daemon that died while busy may have left the idle flag cleared.
        within(self.timeout(), set_idle(&client, true)).await?;
        let first = self.drain_slice(&mut client).await?;
        self.progress(first);
        let mut busy = BusyMode::default();
        busy.after_drain(self, &mut client, first).await?;
        tracing::info!(
            drained = first.staged,
            events = first.events,
            "connected and listening"
        );
        *failures = 0;
        self.announce(Lifecycle::Ready);
        self.ready_once = true;

        let mut chores = tokio::time::interval(MAINTENANCE_EVERY);
        chores.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut poll = tokio::time::interval(self.config.daemon.poll_interval());
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut shutdown = self.shutdown.clone();
        let watchdog = systemd::watchdog_enabled();
        let mut lag_check = Instant::now();
        loop {
            let drain = tokio::select! {
                _ = shutdown.changed() => return Ok(()),
                notification = notifications.recv() => match notification {
                    Some(_) => {
                        drain_channel(&mut notifications);
                        true
                    }
                    None => return Err(Error::Connect("the connection to the database was lost".into())),
                },
                // While busy, writers do not notify: poll instead, the more seldom the busier.
                _ = sleep(busy.wait(&self.config.daemon)), if busy.active() => true,
                _ = chores.tick() => {
                    // Partitions ahead, and the daily prune (once across all daemons).
                    self.report_health(&client).await?;
                    let log = self.log_client.as_ref().unwrap_or(&client);
                    let removed = within(self.timeout(), retention::maintain(log)).await?;
                    if removed > 0 {
                        tracing::info!(events = removed, retention = %self.config.retention, "pruned expired events");
                    }
                    false
                }
                _ = poll.tick() => {
                    if lag_check.elapsed() >= LAG_CHECK_EVERY {
                        lag_check = Instant::now();
                        within(self.timeout(), self.warn_if_lagging(&client)).await?;
                    }
                    // Every loop iteration is bounded, so reaching here means the loop is healthy.
                    if watchdog {
                        systemd::notify("WATCHDOG=1");
                    }
                    // Also the application-level ping of an idle connection.
                    true
                }
            };
            if drain && !self.stopping() {
                let began = Instant::now();
                let drained = self.drain_slice(&mut client).await?;
                busy.observe(began, drained.staged);
                self.progress(drained);
                busy.after_drain(self, &mut client, drained).await?;
            }
            if self.stopping() {
                return Ok(());
            }
        }
    }

    /// Log, at connect and hourly, every way the host schema no longer matches the config. The
    /// daemon keeps going: changes still flow (names and details fall back to ids, a row without
    /// its workspace goes to the dead-letter table) until someone fixes the config or reinstalls.
    async fn report_health(&self, client: &Client) -> Result<()> {
        for problem in within(
            self.timeout(),
            install::health_problems(client, &self.config),
        )
        .await?
        {
            tracing::warn!(%problem, "config and host schema disagree");
        }
        Ok(())
    }

    /// Staged changes are never pruned: one that stays (locked by a stuck transaction of another
    /// daemon, or behind a failing batch) is reported until someone looks.
    async fn warn_if_lagging(&self, client: &Client) -> Result<()> {
        let row = client
            .query_opt(
                "select extract(epoch from now() - stmt_at)::float8 from staging order by id limit 1",
                &[],
            )
            .await
            .context("check staging age")?;
        let max = self.config.max_lag_secs as f64;
        if let Some(age) = row.map(|r| r.get::<_, f64>(0)).filter(|age| *age > max) {
            tracing::warn!(
                oldest_staged_secs = age.round(),
                max_lag_secs = max,
                "staged changes are waiting too long"
            );
        }
        Ok(())
    }

    /// Count drained changes and log a summary at most once per [`SUMMARY_EVERY`], so a busy
    /// log shows throughput without a line per wake-up.
    fn progress(&mut self, drained: BatchReport) {
        let (since, ref mut sum) = self.summary;
        *sum += drained;
        if since.elapsed() >= SUMMARY_EVERY && sum.staged > 0 {
            let secs = since.elapsed().as_secs_f64();
            tracing::info!(
                events = sum.events,
                unchanged = sum.unchanged,
                dead_lettered = sum.dead_lettered,
                per_sec = (sum.staged as f64 / secs).round(),
                "drained in the last {:.0}s",
                secs
            );
            self.summary = (Instant::now(), BatchReport::default());
        }
    }

    /// Drain batches until staging looks empty, for at most [`DRAIN_SLICE`] (so the loop keeps
    /// serving shutdown, chores and the watchdog under sustained load). When the first batch is
    /// full there is a backlog, and the helper connections drain alongside the main one, unless
    /// the host is still writing it (see [`Daemon::host_is_writing`]).
    async fn drain_slice(&mut self, client: &mut Client) -> Result<BatchReport> {
        let shutdown = self.shutdown.clone();
        let started = Instant::now();
        let keep_going = || !*shutdown.borrow() && started.elapsed() < DRAIN_SLICE;
        let mut total = self.drainer.drain_batch(client).await?;
        if (total.staged as i64) < self.drainer.batch_size() || !keep_going() {
            return Ok(total);
        }
        if !self.helpers.is_empty() {
            let burst = within(self.timeout(), self.host_is_writing(client)).await?;
            if burst != self.in_burst {
                self.in_burst = burst;
                if burst {
                    tracing::info!("the host is writing a burst: draining it on one connection");
                } else {
                    tracing::info!("draining the backlog on all connections");
                }
            }
        }
        if self.helpers.is_empty() || self.in_burst {
            total += self.drainer.drain_while(client, &keep_going).await?;
            return Ok(total);
        }
        let helpers = self.helpers.iter_mut().filter_map(|h| {
            let client = h.client.as_mut()?;
            Some(h.drainer.drain_while(client, &keep_going))
        });
        self.drainer.set_claim(Claim::Together);
        let (main, helped) = tokio::join!(
            self.drainer.drain_while(client, &keep_going),
            futures_util::future::join_all(helpers)
        );
        self.drainer.set_claim(Claim::Alone);
        total += main?;
        for drained in helped {
            total += drained?;
        }
        Ok(total)
    }

    /// Whether the host is adding to a backlog as it is drained: more than [`LIGHT_LOAD`]
    /// changes a second staged since the last backlog was met, and the oldest waiting less than
    /// [`HELP_AFTER`]. A burst (a bulk update, an import) is then drained by the main connection
    /// alone, leaving the host's writers the server's other cores: 500-row UPDATEs ran at
    /// 0.26-0.27x of bare with the daemon draining a burst on one connection, 0.23-0.24x on two
    /// (bench/README.md). The helpers join once the burst ends, or once the log is
    /// [`HELP_AFTER`] behind.
    async fn host_is_writing(&mut self, client: &Client) -> Result<bool> {
        let row = client
            .query_one(
                "select (select max(id) from staging), \
                        (select extract(epoch from now() - stmt_at)::float8 \
                         from staging order by id limit 1)",
                &[],
            )
            .await
            .context("look at the backlog")?;
        let (newest, oldest_secs): (Option<i64>, Option<f64>) = (row.get(0), row.get(1));
        let now = newest.map(|id| (Instant::now(), id));
        let before = std::mem::replace(&mut self.newest_staged, now);
        Ok(still_writing(before, now, oldest_secs.unwrap_or(0.0)))
    }
}

/// Whether a host that had staged up to id `before.1` at `before.0`, and up to `now.1` at
/// `now.0`, is still adding to a backlog whose oldest change waited `oldest_secs`: faster than
/// [`LIGHT_LOAD`], and not yet [`HELP_AFTER`] behind. Without an earlier look, it is not.
fn still_writing(
    before: Option<(Instant, i64)>,
    now: Option<(Instant, i64)>,
    oldest_secs: f64,
) -> bool {
    let (Some((then, before)), Some((now, newest))) = (before, now) else {
        return false;
    };
    let secs = now.duration_since(then).as_secs_f64().max(1e-3);
    (newest - before) as f64 / secs > LIGHT_LOAD && oldest_secs < HELP_AFTER.as_secs_f64()
}

/// An extra draining connection.
struct Helper {
    drainer: Drainer,
    client: Option<Client>,
}

/// Changes a second up to which a busy daemon looks at staging every `daemon.busy_poll_ms`.
/// Freshness is promised at this rate (an event in the log within 20 ms of its commit at p50,
/// bench/README.md); above it the daemon looks less often, in proportion to the rate.
const LIGHT_LOAD: f64 = 500.0;

/// How long a busy daemon waits before its next look at staging, changes arriving at `rate` a
/// second: `busy_poll` up to [`LIGHT_LOAD`], longer in proportion above it, never beyond `max`.
/// Every look costs a claim, an append and a commit whatever it finds (about 1 ms of the
/// server's CPU for a small batch), and under a heavy load that CPU is taken from the host's
/// own writers on the same server: at 2,700 writes a second, looks every 15 ms cost 77-91 us of
/// CPU per event, every 100 ms about 50 (bench/README.md). The busier the host, the longer
/// the wait and the larger the batch, and the cheaper each event: the batch grows with the
/// square of the rate, until `max` bounds how late an event may land.
fn busy_wait(rate: f64, busy_poll: Duration, max: Duration) -> Duration {
    let micros = (busy_poll.as_micros() as f64 * (rate / LIGHT_LOAD)).round();
    if micros > busy_poll.as_micros() as f64 {
        // `as` saturates: an infinite rate waits `max`.
        Duration::from_micros(micros as u64).min(max)
    } else {
        busy_poll
    }
}

/// Whether the daemon has cleared the idle flag (it is busy, writers skip NOTIFY and the
/// daemon polls, see [`busy_wait`]), when it last found work, and how fast changes arrive.
#[derive(Debug, Default)]
struct BusyMode {
    last_work: Option<Instant>,
    /// When the last drain began, and the changes a second it found since the one before
    /// (averaged with the rate before it, so one odd look does not swing the wait).
    last_look: Option<Instant>,
    rate: f64,
}

impl BusyMode {
    fn active(&self) -> bool {
        self.last_work.is_some()
    }

    fn wait(&self, daemon: &DaemonConfig) -> Duration {
        busy_wait(self.rate, daemon.busy_poll(), daemon.busy_poll_max())
    }

    /// Count a drain that began at `at` and took `staged` changes.
    fn observe(&mut self, at: Instant, staged: usize) {
        if let Some(before) = self.last_look {
            let secs = at.duration_since(before).as_secs_f64().max(1e-3);
            self.rate = (self.rate + staged as f64 / secs) / 2.0;
        }
        self.last_look = Some(at);
    }

    /// Enter busy mode when a drain found work; leave it after [`LINGER`] without work, then
    /// drain once more for writers that saw the flag cleared and so did not notify.
    async fn after_drain(
        &mut self,
        daemon: &mut Daemon,
        client: &mut Client,
        drained: BatchReport,
    ) -> Result<()> {
        let limit = daemon.timeout();
        if drained.staged > 0 {
            if self.last_work.is_none() {
                within(limit, set_idle(client, false)).await?;
            }
            self.last_work = Some(Instant::now());
            return Ok(());
        }
        if self.last_work.is_some_and(|t| t.elapsed() >= LINGER) {
            within(limit, set_idle(client, true)).await?;
            *self = BusyMode::default();
            let straggler = daemon.drain_slice(client).await?;
            daemon.progress(straggler);
            if straggler.staged > 0 {
                within(limit, set_idle(client, false)).await?;
                self.last_work = Some(Instant::now());
            }
        }
        Ok(())
    }
}

/// Give up on a query (and on the connection) when the database does not answer in time.
async fn within<T>(
    limit: Duration,
    query: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(limit, query).await {
        Ok(result) => result,
        Err(_) => Err(Error::Connect(format!(
            "no answer from the database within {limit:?}"
        ))),
    }
}

/// The flag is a sequence's value (2 idle, 1 busy): capture reads it without a query, and
/// setting it takes effect at once, outside any transaction (sql/baseline/01_tables.sql).
async fn set_idle(client: &Client, idle: bool) -> Result<()> {
    let value: i64 = if idle { 2 } else { 1 };
    client
        .execute("select setval('wakeup_idle', $1)", &[&value])
        .await
        .context("set idle flag")?;
    Ok(())
}

fn drain_channel(rx: &mut mpsc::UnboundedReceiver<Notification>) {
    while rx.try_recv().is_ok() {}
}

/// Jittered exponential backoff: a random delay between half and all of
/// min(max, 100 ms * 2^failures), so that daemons restarted together do not reconnect together.
pub fn backoff(failures: u32, max: Duration) -> Duration {
    let ceiling = MIN_BACKOFF
        .saturating_mul(2u32.saturating_pow(failures.min(16)))
        .min(max);
    let ceiling_ms = ceiling.as_millis().max(1) as u64;
    Duration::from_millis(rand::thread_rng().gen_range(ceiling_ms / 2..=ceiling_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_daemon_looks_less_often_the_busier_the_host() {
        let (poll, max) = (Duration::from_millis(15), Duration::from_millis(100));
        for light in [0.0, 100.0, 500.0, f64::NAN] {
            assert_eq!(busy_wait(light, poll, max), poll, "{light}");
        }
        assert_eq!(busy_wait(1000.0, poll, max), Duration::from_millis(30));
        assert_eq!(busy_wait(2000.0, poll, max), Duration::from_millis(60));
        for heavy in [5000.0, 1e9, f64::INFINITY] {
            assert_eq!(busy_wait(heavy, poll, max), max, "{heavy}");
        }
    }

    #[test]
    fn helpers_wait_while_the_host_writes_a_burst_but_not_past_the_lag_they_allow() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(1);
        // The first backlog met, or staging emptied meanwhile: nothing says the host writes.
        assert!(!still_writing(None, Some((t1, 5_000)), 0.5));
        assert!(!still_writing(Some((t0, 1_000)), None, 0.5));
        // 4,000 changes staged in a second: a burst.
        assert!(still_writing(Some((t0, 1_000)), Some((t1, 5_000)), 0.5));
        // ... but the log is too far behind to wait for its end.
        assert!(!still_writing(Some((t0, 1_000)), Some((t1, 5_000)), 10.0));
        // 400 a second: the backlog is what is left of a burst.
        assert!(!still_writing(Some((t0, 1_000)), Some((t1, 1_400)), 0.5));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let max = Duration::from_secs(30);
        assert!(backoff(0, max) <= Duration::from_millis(100));
        assert!(backoff(3, max) >= Duration::from_millis(400));
        for failures in [10, 20, u32::MAX] {
            let d = backoff(failures, max);
            assert!(d <= max && d >= max / 2, "{d:?}");
        }
    }
}

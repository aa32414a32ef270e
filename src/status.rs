//! `clockwatch status`: what is enabled where, what waits in staging, whether a daemon is there.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Client;

use crate::config::Config;
use crate::error::{DbContext, Result};

const WORKSPACES: &str = include_str!("../sql/queries/status.sql");
const TOTALS: &str = include_str!("../sql/queries/status_totals.sql");
const CAPTURE: &str = include_str!("../sql/queries/status_capture.sql");
/// Each workspace's newest event, read in the log's own database.
const NEWEST: &str =
    "select w.id, (select max(e.occurred_at) from events e where e.workspace_id = w.id)
                      from unnest($1::text[]) w(id)";

/// Where `status` finds the log.
pub enum LogSide<'a> {
    /// Beside capture, in the host's database.
    Here,
    /// In a database of its own, through this connection.
    Apart(&'a Client),
    /// In a database of its own that could not be reached, and why.
    Unreachable(String),
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub schema: String,
    /// The log's schema in a database of its own (`log_database_url`; `<schema>_<source_id>`
    /// for one of several hosts); None when the log is beside capture.
    pub log_schema: Option<String>,
    /// This host's name in a log database that several hosts share.
    pub source_id: Option<String>,
    pub staged: i64,
    pub oldest_staged_secs: Option<f64>,
    pub dead_letters: i64,
    /// Daemon connections seen in pg_stat_activity.
    pub daemons: i64,
    pub events_last_hour: i64,
    pub events_last_day: i64,
    /// Monthly partitions of events, oldest first.
    pub partitions: Vec<String>,
    pub retention: String,
    pub last_prune: Option<DateTime<Utc>>,
    /// When the daemon prunes next (a day after the last prune; at its next hourly check when
    /// it never has).
    pub next_prune: Option<DateTime<Utc>>,
    /// False when the log database (`log_database_url`) could not be reached: the figures read
    /// there (events, partitions, prunes, its dead letters) are then unknown, not zero.
    pub log_reachable: bool,
    /// Why the pipeline is unhealthy (no daemon, staging too old); empty when healthy.
    pub problems: Vec<String>,
    pub workspaces: Vec<WorkspaceStatus>,
}

#[derive(Debug, Serialize)]
pub struct WorkspaceStatus {
    pub workspace_id: String,
    pub categories: Vec<String>,
    pub staged: i64,
    pub oldest_staged_secs: Option<f64>,
    pub newest_event: Option<DateTime<Utc>>,
}

/// Read the status. Staged changes older than `max_lag_secs`, a missing daemon, dead letters and
/// a config the host schema no longer matches make the pipeline unhealthy.
///
/// With the log in a database of its own (`log`), staging, daemons and the host's health are
/// read on the host, and events, partitions, pruning and dead letters in the log (dead letters
/// the daemon has not moved there yet counted too).
///
/// A log database that cannot be reached is a problem of the status, not its failure: the host's
/// side, where changes wait meanwhile, is still shown.
pub async fn status(client: &Client, log: LogSide<'_>, config: &Config) -> Result<Status> {
    let (schema, max_lag_secs) = (config.schema.as_str(), config.max_lag_secs);
    let log_schema = config.log_schema();
    let (host_side, unreachable) = match &log {
        LogSide::Here => (crate::install::Side::Together, None),
        LogSide::Apart(_) => (crate::install::Side::Host, None),
        LogSide::Unreachable(why) => (crate::install::Side::Host, Some(why.clone())),
    };
    let log = match log {
        LogSide::Apart(log) => Some(log),
        _ => None,
    };
    let sides = std::iter::once((client, schema, host_side))
        .chain(log.map(|l| (l, log_schema.as_str(), crate::install::Side::Log)));
    for (side, schema, expected) in sides {
        crate::install::require_side(side, schema, expected, config.source_id.as_deref()).await?;
        side.batch_execute(&format!(
            "set search_path = {}, pg_catalog",
            crate::config::quote_ident(schema)
        ))
        .await
        .context("set search_path")?;
    }
    let host_totals = client
        .query_one(CAPTURE, &[&config.daemon_role])
        .await
        .context("read status")?;
    // Where the log is read: the log database, the host's own (together), or nowhere.
    let log = match (log, &unreachable) {
        (Some(log), _) => Some(log),
        (None, None) => Some(client),
        (None, Some(_)) => None,
    };
    let totals = match log {
        Some(log) => Some(
            log.query_one(TOTALS, &[])
                .await
                .context("read the log's status")?,
        ),
        None => None,
    };
    let mut workspaces: Vec<WorkspaceStatus> = client
        .query(WORKSPACES, &[])
        .await
        .context("read workspace status")?
        .iter()
        .map(|r| WorkspaceStatus {
            workspace_id: r.get("workspace_id"),
            categories: r.get("categories"),
            staged: r.get("staged"),
            oldest_staged_secs: r.get("oldest_staged_secs"),
            newest_event: None,
        })
        .collect();
    if let Some(log) = log {
        let ids: Vec<&str> = workspaces.iter().map(|w| w.workspace_id.as_str()).collect();
        let newest: std::collections::HashMap<String, DateTime<Utc>> = log
            .query(NEWEST, &[&ids])
            .await
            .context("read the newest events")?
            .iter()
            .filter_map(|r| Some((r.get(0), r.get::<_, Option<DateTime<Utc>>>(1)?)))
            .collect();
        for w in &mut workspaces {
            w.newest_event = newest.get(&w.workspace_id).copied();
        }
    }
    let logged = |column: &str| {
        totals
            .as_ref()
            .map(|t| t.get::<_, i64>(column))
            .unwrap_or(0)
    };
    let last_prune: Option<DateTime<Utc>> = totals.as_ref().and_then(|t| t.get("last_prune"));
    // Dead letters the claims set aside on a host whose log is apart wait there to be moved.
    let waiting_dead: i64 = if host_side == crate::install::Side::Host {
        host_totals.get("dead_letters")
    } else {
        0
    };
    let mut status = Status {
        schema: schema.to_string(),
        log_schema: (host_side == crate::install::Side::Host).then(|| log_schema.clone()),
        source_id: config.source_id.clone(),
        staged: host_totals.get("staged"),
        oldest_staged_secs: host_totals.get("oldest_staged_secs"),
        dead_letters: logged("dead_letters") + waiting_dead,
        daemons: host_totals.get("daemons"),
        events_last_hour: logged("events_last_hour"),
        events_last_day: logged("events_last_day"),
        partitions: totals
            .as_ref()
            .and_then(|t| t.get::<_, Option<Vec<String>>>("partitions"))
            .unwrap_or_default(),
        retention: totals
            .as_ref()
            .map(|t| t.get("retention"))
            .unwrap_or_else(|| config.retention.clone()),
        last_prune,
        next_prune: last_prune.map(|t| t + chrono::Duration::days(1)),
        log_reachable: unreachable.is_none(),
        problems: Vec::new(),
        workspaces,
    };
    if let Some(why) = unreachable {
        status.problems.push(format!(
            "the log database (log_database_url) cannot be reached: {why}; changes wait in staging meanwhile"
        ));
    }
    if status.daemons == 0 {
        status
            .problems
            .push("no daemon is connected: start `clockwatch run`".into());
    }
    if let Some(age) = status
        .oldest_staged_secs
        .filter(|age| *age > max_lag_secs as f64)
    {
        status.problems.push(format!(
            "the oldest staged change waits for {age:.0}s (more than {max_lag_secs}s): is the daemon keeping up?"
        ));
    }
    status
        .problems
        .extend(crate::install::health_problems(client, config).await?);
    // A host whose log was moved out keeps the tables it was logged in (empty) when its schema
    // held both: events there now were written by a daemon still running the old config while
    // the log was moved, and no report of the log database shows them.
    if host_side != crate::install::Side::Together {
        let kept: bool = client
            .query_one(
                "select case when to_regclass('events') is null then false
                             else has_table_privilege(to_regclass('events'), 'SELECT') end",
                &[],
            )
            .await
            .context("look for events left on the host")?
            .get(0);
        let left: i64 = match kept {
            true => client
                .query_one("select count(*) from events", &[])
                .await
                .context("count events left on the host")?
                .get(0),
            false => 0,
        };
        if left > 0 {
            status.problems.push(format!(
                "{left} event(s) are in the host's {schema}.events, not in the log database: a daemon with the log beside capture drained there after the log was moved out; they are kept there, out of the log's reports and chains"
            ));
        }
    }
    let early_prunes = logged("early_prunes");
    if early_prunes > 0 {
        status.problems.push(format!(
            "{early_prunes} prune(s) removed events younger than the retention: see {schema}.prune_log, and run `clockwatch verify`"
        ));
    }
    if status.dead_letters > 0 {
        status.problems.push(format!(
            "{} change(s) could not be normalised: see {log_schema}.dead_letter{}",
            status.dead_letters,
            if status.log_schema.is_some() {
                " in the log database"
            } else {
                ""
            }
        ));
    }
    Ok(status)
}

impl Status {
    /// The human-readable form.
    pub fn render(&self) -> String {
        let age = |secs: Option<f64>| {
            secs.map(|s| format!("{s:.1}s"))
                .unwrap_or_else(|| "-".into())
        };
        let mut out = String::new();
        if let Some(log_schema) = &self.log_schema {
            out.push_str(&format!(
                "log: in a database of its own (log_database_url), schema {log_schema}{}\n",
                self.source_id
                    .as_deref()
                    .map(|s| format!(", source_id {s}"))
                    .unwrap_or_default()
            ));
        }
        out.push_str(&format!(
            "schema {}: {} daemon(s) connected, {} change(s) staged (oldest {}), {} dead letter(s)\n",
            self.schema,
            self.daemons,
            self.staged,
            age(self.oldest_staged_secs),
            self.dead_letters
        ));
        if self.log_reachable {
            self.render_log(&mut out);
        } else {
            out.push_str(
                "events, partitions and prunes: unknown (the log database cannot be reached)\n",
            );
        }
        for problem in &self.problems {
            out.push_str(&format!("PROBLEM: {problem}\n"));
        }
        if self.workspaces.is_empty() {
            out.push_str(
                "no workspace has the audit log enabled: run `clockwatch enable --workspace ID`\n",
            );
            return out;
        }
        let header = [
            "WORKSPACE",
            "STAGED",
            "OLDEST",
            "NEWEST EVENT",
            "CATEGORIES",
        ];
        let rows: Vec<[String; 5]> = self
            .workspaces
            .iter()
            .map(|w| {
                [
                    w.workspace_id.clone(),
                    w.staged.to_string(),
                    age(w.oldest_staged_secs),
                    time_or_dash(w.newest_event),
                    if w.categories.is_empty() {
                        "(none)".into()
                    } else {
                        w.categories.join(",")
                    },
                ]
            })
            .collect();
        out.push_str(&crate::table::render(&header, &rows));
        out
    }

    /// The lines read in the log's database: events, retention and partitions.
    fn render_log(&self, out: &mut String) {
        out.push_str(&format!(
            "events: {} in the last hour, {} in the last day; retention {}, last prune {}, next prune {}\n",
            self.events_last_hour,
            self.events_last_day,
            self.retention,
            time_or_dash(self.last_prune),
            self.next_prune.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)).unwrap_or_else(|| "within the hour".into()),
        ));
        out.push_str(&format!(
            "partitions: {} ({})\n",
            self.partitions.len(),
            match (self.partitions.first(), self.partitions.last()) {
                (Some(first), Some(last)) => format!("{first} .. {last}"),
                _ => "none".into(),
            }
        ));
    }
}

fn time_or_dash(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| "-".into())
}

//! Clockwatch: an audit log for time-tracking applications that keep their data in PostgreSQL.
//!
//! The pipeline, and the module that owns each step:
//!
//! - [`config`]: the TOML file that maps the host's tables and columns to audit categories and
//!   Clockify's report fields. The only thing tied to a particular host schema.
//! - [`install`] and [`migrate`]: Clockwatch's own schema (from the versioned files in `sql/`) and
//!   the capture triggers on the host tables. The triggers (in `sql/baseline/02_capture.sql`) copy each
//!   change, as the record's text, into a staging table and wake the daemon with NOTIFY; [`record`]
//!   reads it back with the columns it was captured with. [`move_log`] takes a log kept beside
//!   capture out to a database of its own when `log_database_url` is set later.
//! - [`daemon`]: `clockwatch run`. Listens, polls as a fallback, reconnects, shuts down cleanly.
//! - [`drain`]: one transaction per batch moves staged changes into events, so none is lost or
//!   doubled. [`normalize`] decides what each change means (action, author or System, changed
//!   fields, details), [`links`] folds tags changed through a link table into their record's
//!   change, and [`resolve`] looks up the names details refer to; [`jsonfield`] reads who acts
//!   from a JSON claim.
//! - [`retention`]: monthly partitions created ahead, old ones dropped after `retention`.
//! - [`report`] and [`export`]: filtered reports in the terminal, and streamed CSV / JSON Lines;
//!   an export formats each event's details itself ([`detail`]), off the database server.
//! - [`chain`] and [`verify`]: each event's canonical content, hashed and chained by the daemon
//!   from the heads `chain_heads()` locks, and `clockwatch verify`, which walks each workspace's
//!   chain.
//! - [`workspace`] and [`status`]: enabling categories per workspace, and what the pipeline holds.
//! - [`serve`]: `clockwatch serve`, the Audit Log page and its JSON API, behind signed links.
//! - [`systemd`]: readiness and watchdog notifications for `Type=notify` units.
//! - [`demo`] and [`cluster`]: the whole pipeline on a throwaway PostgreSQL, for the README's
//!   first command (and for tests that restart a server of their own).
//! - [`db`], [`conninfo`] and [`tls`]: connection strings as libpq reads them (TLS settings and
//!   libpq's environment variables included) and connections on OpenSSL.
//! - [`cli`] and [`cmd`]: the command line; `main.rs` only parses arguments and sets up logging.
//!
//! Reports are SQL views (`audit_log.report`, `audit_log.report_changes`,
//! `audit_log.report_events`) created by the
//! migrations, so applications query them directly.

pub mod cause;
pub mod chain;
pub mod cli;
pub mod cluster;
pub mod cmd;
pub mod config;
pub mod conninfo;
pub mod daemon;
pub mod db;
pub mod demo;
pub mod detail;
pub mod drain;
pub mod error;
pub mod export;
pub mod filter;
pub mod image;
pub mod install;
pub mod jsonfield;
pub mod links;
pub mod migrate;
pub mod move_log;
pub mod normalize;
pub mod record;
pub mod report;
pub mod resolve;
pub mod retention;
pub mod serve;
pub mod status;
pub mod systemd;
pub mod table;
pub mod tls;
pub mod verify;
pub mod workspace;

pub use config::Config;
pub use error::{Error, Result};

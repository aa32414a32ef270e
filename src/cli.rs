//! Command-line arguments. Doc comments here are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "clockwatch",
    version,
    about = "Audit log for time-tracking applications on PostgreSQL"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand takes.
#[derive(Debug, Args)]
pub struct GlobalOpts {
    /// Config file [default: config/clockwatch.toml, then /etc/clockwatch/clockwatch.toml]
    #[arg(long, global = true, env = "CLOCKWATCH_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Database URL or key=value string [default: $CLOCKWATCH_DATABASE_URL, $DATABASE_URL, then
    /// database_url in the config]. Prefer the environment for secrets.
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Database of the audit log, when it is not the host's [env: CLOCKWATCH_LOG_DATABASE_URL;
    /// default: log_database_url in the config, else the host database].
    #[arg(long, global = true, value_name = "URL")]
    pub log_database_url: Option<String>,
    /// The host whose log to read, of several sharing the log database [default: source_id in
    /// the config].
    #[arg(long, global = true, env = "CLOCKWATCH_SOURCE_ID", value_name = "ID")]
    pub source_id: Option<String>,
    /// Log line format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// See it work: a throwaway database, the example schema, a scripted day, the report.
    ///
    /// Starts its own PostgreSQL from the server binaries on this machine unless a database
    /// is configured (--database-url, CLOCKWATCH_DATABASE_URL or DATABASE_URL), in which case
    /// it creates and then drops a database there. Needs no config file.
    Demo {
        /// Where to write the CSV export of the day.
        #[arg(
            long,
            short,
            value_name = "FILE",
            default_value = "clockwatch-demo.csv"
        )]
        output: PathBuf,
    },
    /// Create or upgrade Clockwatch's schema and attach the capture triggers (idempotent).
    Install,
    /// Remove the capture triggers from the host tables.
    Uninstall {
        /// Also drop Clockwatch's schema, with every event in it.
        #[arg(long)]
        purge: bool,
    },
    /// Run the daemon that turns captured changes into audit events.
    Run,
    /// Turn the audit log on for a workspace.
    Enable(WorkspaceArgs),
    /// Turn the audit log off for a workspace.
    Disable(WorkspaceArgs),
    /// Show the audit log of a workspace in the terminal, newest first.
    Report {
        #[command(flatten)]
        filter: FilterOpts,
        /// Most events to show.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// Show every detail field of each event.
        #[arg(long)]
        details: bool,
    },
    /// Write the audit log of a workspace as CSV or JSON Lines (streamed, no row cap).
    Export {
        #[command(flatten)]
        filter: FilterOpts,
        /// Output file [default: stdout].
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
        format: ExportFormat,
        /// Start the CSV with a byte order mark, so Excel reads accents right.
        #[arg(long)]
        excel: bool,
    },
    /// Serve the Audit Log page and its JSON API, read-only, to holders of signed links.
    ///
    /// Connect it as the reporting role. The link secret comes from CLOCKWATCH_LINK_SECRET or
    /// [serve] secret_file.
    Serve {
        /// Address and port to listen on [default: [serve] listen, 127.0.0.1:8180].
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Print a signed link to a workspace's Audit Log page (for scripts, and to check a
    /// deployment); the application mints its own the same way (README).
    Link {
        /// Workspace id, as the host stores it.
        #[arg(long)]
        workspace: String,
        /// Who the link is for (shown on the page).
        #[arg(long, default_value = "admin")]
        viewer: String,
        /// How long the link works: 90s, 15m, 2h, 1d.
        #[arg(long, default_value = "15m")]
        ttl: String,
        /// The viewer's time zone, which the page shows times in (an IANA name: Europe/Berlin).
        #[arg(long)]
        tz: Option<String>,
        /// The page's language: en, de, fr or es (else the browser's preference).
        #[arg(long)]
        lang: Option<String>,
    },
    /// Check a workspace's hash chain: exits 1 naming the first event changed, removed or inserted.
    Verify {
        /// Workspace id, as the host stores it.
        #[arg(long)]
        workspace: String,
        /// Check only from this day or RFC 3339 time (the first event in range is trusted).
        #[arg(long)]
        from: Option<String>,
        /// Check only up to this day (included) or RFC 3339 time.
        #[arg(long)]
        to: Option<String>,
    },
    /// Remove events older than the configured retention now (the daemon does it daily).
    Prune {
        /// Say what would be removed, and remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Show what is enabled, what waits in staging and whether a daemon is connected.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct WorkspaceArgs {
    /// Workspace id, as the host stores it; '*' for every workspace, those to come included.
    #[arg(long)]
    pub workspace: String,
    /// Comma-separated categories [default: all]: time_entries, projects, tasks, clients, tags,
    /// expenses, users.
    #[arg(long, value_delimiter = ',')]
    pub categories: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Csv,
    Jsonl,
}

/// Filters shared by `report` and `export`.
#[derive(Debug, Args)]
pub struct FilterOpts {
    /// Workspace id, as the host stores it.
    #[arg(long)]
    pub workspace: String,
    /// Start: a day (2026-11-01, in the configured time zone) or an RFC 3339 time
    /// [default: the range's length before --to].
    #[arg(long)]
    pub from: Option<String>,
    /// End: a day (included whole) or an RFC 3339 time [default: now].
    #[arg(long)]
    pub to: Option<String>,
    /// Only changes by this author: a user id, a user's name, or `system` (repeatable).
    #[arg(long = "author", value_name = "ID|system")]
    pub authors: Vec<String>,
    /// Only this action: a code (time_entry.deleted) or a label ("Deleted time entry") (repeatable).
    #[arg(long = "action", value_name = "ACTION")]
    pub actions: Vec<String>,
    /// Only this category: time_entries, projects, tasks, clients, tags, expenses, users (repeatable).
    #[arg(long = "category", value_name = "CATEGORY")]
    pub categories: Vec<String>,
    /// The history of one record (its id), oldest first, across its whole life unless dates are given.
    #[arg(long, value_name = "ID")]
    pub target: Option<String>,
    /// Show times, and read dates, in this time zone (an IANA name) [default: the config's timezone].
    #[arg(long, value_name = "ZONE")]
    pub timezone: Option<String>,
}

impl FilterOpts {
    pub fn to_args(&self) -> crate::report::FilterArgs {
        crate::report::FilterArgs {
            workspace: self.workspace.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            authors: self.authors.clone(),
            actions: self.actions.clone(),
            categories: self.categories.clone(),
            origins: Vec::new(),
            target: self.target.clone(),
            timezone: self.timezone.clone(),
        }
    }
}

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
    /// Show what is enabled, what waits in staging and whether a daemon is connected.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct WorkspaceArgs {
    /// Workspace id, as the host stores it.
    #[arg(long)]
    pub workspace: String,
    /// Comma-separated categories [default: all]: time_entries, projects, tasks, clients, tags,
    /// expenses, users.
    #[arg(long, value_delimiter = ',')]
    pub categories: Option<Vec<String>>,
}

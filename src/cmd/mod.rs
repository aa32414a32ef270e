//! One file per subcommand; [`dispatch`] is the single place that maps a command to its code.

mod enable;
mod export;
mod install;
mod prune;
mod report;
mod run;
mod serve;
mod status;
mod verify;

use crate::serve::link::Viewing;
use std::process::ExitCode;

use crate::cli::{Cli, Command, GlobalOpts};
use crate::config::Config;
use crate::error::Result;

pub async fn dispatch(cli: Cli) -> Result<ExitCode> {
    let Cli { global, command } = cli;
    if let Command::Demo { output } = &command {
        // The demo brings its own config and, unless one is configured, its own database.
        let server = crate::db::resolve_url(global.database_url.as_deref(), None).ok();
        crate::demo::demo(server, output).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut config = Config::load(global.config.as_deref())?;
    if let Some(source) = &global.source_id {
        config = config.for_source(source)?;
    }
    if config.source_id.is_some() && log_database_url(&global, &config).is_none() {
        return Err(crate::Error::Config(
            "source_id names this host in a log database that several hosts share: set log_database_url (or CLOCKWATCH_LOG_DATABASE_URL) too".into(),
        ));
    }
    match command {
        Command::Demo { .. } => unreachable!("handled above"),
        Command::Install => install::install(&global, &config).await,
        Command::Uninstall { purge } => install::uninstall(&global, &config, purge).await,
        Command::Run => run::run(&global, config).await,
        Command::Enable(args) => enable::enable(&global, &config, &args, true).await,
        Command::Disable(args) => enable::enable(&global, &config, &args, false).await,
        Command::Status { json } => status::status(&global, &config, json).await,
        Command::Prune { dry_run } => prune::prune(&global, &config, dry_run).await,
        Command::Serve { listen } => serve::serve(&global, config, listen).await,
        Command::Link {
            workspace,
            viewer,
            ttl,
            tz,
            lang,
        } => serve::link(&config, &workspace, &viewer, &ttl, Viewing { tz, lang }),
        Command::Verify {
            workspace,
            from,
            to,
        } => verify::verify(&global, &config, &workspace, from, to).await,
        Command::Report {
            filter,
            limit,
            details,
        } => report::report(&global, &config, &filter, limit, details).await,
        Command::Export {
            filter,
            output,
            format,
            excel,
        } => export::export(&global, &config, &filter, output.as_deref(), format, excel).await,
    }
}

/// The database URL for this invocation.
fn database_url(global: &GlobalOpts, config: &Config) -> Result<String> {
    crate::db::resolve_url(
        global.database_url.as_deref(),
        config.database_url.as_deref(),
    )
}

/// The log's own database for this invocation, when it has one.
fn log_database_url(global: &GlobalOpts, config: &Config) -> Option<String> {
    crate::db::resolve_log_url(
        global.log_database_url.as_deref(),
        config.log_database_url.as_deref(),
    )
}

/// The database the audit log is read from, the log's own or else the host's, and the config
/// as it reads there (Clockwatch's schema in the log database).
fn reading(global: &GlobalOpts, config: &Config) -> Result<(String, Config)> {
    match log_database_url(global, config) {
        Some(url) => Ok((url, config.in_log())),
        None => Ok((database_url(global, config)?, config.clone())),
    }
}

/// Connect to read the audit log (see [`reading`]), after checking that what is installed there
/// is this config's log: never a host's unused tables, nor another source's log.
async fn reading_client(
    global: &GlobalOpts,
    config: &Config,
) -> Result<(tokio_postgres::Client, Config)> {
    let apart = log_database_url(global, config).is_some();
    let (url, log) = reading(global, config)?;
    let client = crate::db::connect_once(&url, "cli")
        .await
        .map_err(|e| match apart {
            true => e.on_log_database(),
            false => e,
        })?;
    let found =
        crate::install::require_log(&client, &log.schema, apart, log.source_id.as_deref()).await;
    // A log database holding other sources' logs but not this one's: most likely a source_id
    // that does not match the one installed, which "run `clockwatch install`" would not mend.
    if let (Err(crate::Error::NotInstalled(missing)), true) = (&found, apart) {
        let others = crate::install::log_schemas(&client, &config.schema).await?;
        if !others.is_empty() {
            return Err(crate::Error::Config(format!(
                "the log database has no Clockwatch schema \"{missing}\" for this source_id, but has {}: check source_id (or --source-id), or run `clockwatch install` to start this source's log",
                others.join(", ")
            )));
        }
    }
    found?;
    Ok((client, log))
}

/// What the host's schema should be, by whether the log is apart.
fn host_side(global: &GlobalOpts, config: &Config) -> crate::install::Side {
    match log_database_url(global, config) {
        Some(_) => crate::install::Side::Host,
        None => crate::install::Side::Together,
    }
}

/// The range a command may cover: a report's `max_report_days`, or an export's `max_export_days`.
#[derive(Clone, Copy)]
enum Span {
    Report,
    Export,
}

/// The common start of `report` and `export`: open the read-only snapshot on `client`, then
/// check and resolve the filters against it.
async fn filtered<'c>(
    client: &'c mut tokio_postgres::Client,
    config: &Config,
    opts: &crate::cli::FilterOpts,
    span: Span,
) -> Result<(tokio_postgres::Transaction<'c>, crate::report::Filter)> {
    let (max_days, key) = match span {
        Span::Report => (config.max_report_days, "max_report_days"),
        Span::Export => (config.max_export_days, "max_export_days"),
    };
    let mut tx = crate::report::snapshot(client, &config.schema).await?;
    let filter =
        crate::report::build_filter(&mut tx, config, &opts.to_args(), max_days, key).await?;
    Ok((tx, filter))
}

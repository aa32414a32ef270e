//! One file per subcommand; [`dispatch`] is the single place that maps a command to its code.

mod enable;
mod install;
mod run;
mod status;

use std::process::ExitCode;

use crate::cli::{Cli, Command, GlobalOpts};
use crate::config::Config;
use crate::error::Result;

pub async fn dispatch(cli: Cli) -> Result<ExitCode> {
    let Cli { global, command } = cli;
    let config = Config::load(global.config.as_deref())?;
    match command {
        Command::Install => install::install(&global, &config).await,
        Command::Uninstall { purge } => install::uninstall(&global, &config, purge).await,
        Command::Run => run::run(&global, config).await,
        Command::Enable(args) => enable::enable(&global, &config, &args, true).await,
        Command::Disable(args) => enable::enable(&global, &config, &args, false).await,
        Command::Status { json } => status::status(&global, &config, json).await,
    }
}

/// The database URL for this invocation.
fn database_url(global: &GlobalOpts, config: &Config) -> Result<String> {
    crate::db::resolve_url(
        global.database_url.as_deref(),
        config.database_url.as_deref(),
    )
}

//! `clockwatch run`: start the daemon and stop it on SIGTERM or SIGINT.

use std::process::ExitCode;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::cli::GlobalOpts;
use crate::config::Config;
use crate::daemon::Daemon;
use crate::error::{Error, Result};

pub async fn run(global: &GlobalOpts, config: Config) -> Result<ExitCode> {
    let url = super::database_url(global, &config)?;
    let (stop, shutdown) = watch::channel(false);
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| Error::Input(format!("install SIGTERM handler: {e}")))?;
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| Error::Input(format!("install SIGINT handler: {e}")))?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received; finishing the batch in hand"),
            _ = int.recv() => tracing::info!("SIGINT received; finishing the batch in hand"),
        }
        let _ = stop.send(true);
    });
    tracing::info!(schema = %config.schema, sources = config.sources.len(), "starting daemon");
    let log = super::log_database_url(global, &config);
    let mut daemon = Daemon::new(config, &url, shutdown)?;
    if let Some(log) = log {
        daemon = daemon.with_log_database(&log)?;
    }
    daemon.run().await?;
    Ok(ExitCode::SUCCESS)
}

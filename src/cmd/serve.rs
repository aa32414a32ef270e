//! `clockwatch serve` and `clockwatch link`.

use std::process::ExitCode;

use tokio::signal::unix::{signal, SignalKind};

use crate::cli::GlobalOpts;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::serve::link::{parse_ttl, Grant, Secret, Viewing};

pub async fn serve(
    global: &GlobalOpts,
    config: Config,
    listen: Option<String>,
) -> Result<ExitCode> {
    let (url, log_config) = super::reading(global, &config)?;
    // Checked once here; the page then keeps connections of its own.
    drop(super::reading_client(global, &config).await?);
    let config = log_config;
    let listen = listen.unwrap_or_else(|| config.serve.listen.clone());
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| Error::Input(format!("install SIGTERM handler: {e}")))?;
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| Error::Input(format!("install SIGINT handler: {e}")))?;
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received; stopping"),
            _ = int.recv() => tracing::info!("SIGINT received; stopping"),
        }
    };
    crate::serve::serve(config, &url, &listen, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

pub fn link(
    config: &Config,
    workspace: &str,
    viewer: &str,
    ttl: &str,
    viewing: Viewing,
) -> Result<ExitCode> {
    if let Some(tz) = &viewing.tz {
        if tz.parse::<chrono_tz::Tz>().is_err() {
            return Err(Error::Input(format!(
                "--tz: \"{tz}\" is not a time zone (use an IANA name such as Europe/Berlin)"
            )));
        }
    }
    if let Some(lang) = &viewing.lang {
        if crate::serve::lang::Messages::for_tag(lang).is_none() {
            return Err(Error::Input(format!(
                "--lang: \"{lang}\" is not a language the page speaks (en, de, fr, es)"
            )));
        }
    }
    let secret =
        Secret::load(config.serve.secret_file.as_deref())?.for_source(config.source_id.clone());
    let grant = Grant::mint(&secret, workspace, viewer, parse_ttl(ttl)?, viewing)?;
    println!(
        "{}/audit?{}",
        config.serve.base_url(&config.serve.listen),
        grant.query()
    );
    Ok(ExitCode::SUCCESS)
}

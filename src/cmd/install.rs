//! `clockwatch install` and `clockwatch uninstall`.

use std::process::ExitCode;

use crate::cli::GlobalOpts;
use crate::config::Config;
use crate::db;
use crate::error::{Error, Result};

pub async fn install(global: &GlobalOpts, config: &Config) -> Result<ExitCode> {
    let host = super::database_url(global, config)?;
    let mut client = db::connect_once(&host, "install").await?;
    let side = super::host_side(global, config);
    // What the host would refuse, refused before the log database is touched.
    crate::install::check_host_install(&client, config, side).await?;
    // The log's own database first: the host's triggers then never stage changes that no log
    // is ready for.
    let mut log_client = None;
    if let Some(url) = super::log_database_url(global, config) {
        let mut client = db::connect_once(&url, "install")
            .await
            .map_err(Error::on_log_database)?;
        let log = config.in_log();
        let applied = crate::install::install_log(&mut client, &log)
            .await
            .map_err(Error::on_log_database)?;
        println!(
            "log database: installed in schema {}: {applied} migration(s) applied",
            log.schema
        );
        log_client = Some(client);
    }
    let report =
        crate::install::install_host(&mut client, config, side, log_client.as_mut()).await?;
    if let Some(moved) = report.moved {
        println!(
            "moved the log kept beside capture to the log database: {} event(s) of {} workspace(s)",
            moved.events, moved.workspaces
        );
    }
    println!(
        "installed in schema {}: {} migration(s) applied, triggers on {} table(s){}",
        config.schema,
        report.migrations_applied,
        report.attached.len(),
        if report.attached.is_empty() {
            String::new()
        } else {
            format!(" ({})", report.attached.join(", "))
        }
    );
    if !report.detached.is_empty() {
        println!(
            "removed triggers from tables no longer configured: {}",
            report.detached.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn uninstall(global: &GlobalOpts, config: &Config, purge: bool) -> Result<ExitCode> {
    let mut client = db::connect_once(&super::database_url(global, config)?, "install").await?;
    // Only this config's own: never another source's schema, on either side.
    let log = super::log_database_url(global, config);
    let source = config.source_id.as_deref();
    if crate::install::is_installed(&client, &config.schema).await? {
        let side = super::host_side(global, config);
        crate::install::require_side(&client, &config.schema, side, source).await?;
    }
    let log_client = match (purge, log) {
        (true, Some(url)) => {
            let client = db::connect_once(&url, "install")
                .await
                .map_err(Error::on_log_database)?;
            let schema = config.log_schema();
            if crate::install::is_installed(&client, &schema).await? {
                let side = crate::install::Side::Log;
                crate::install::require_side(&client, &schema, side, source).await?;
            }
            Some(client)
        }
        _ => None,
    };
    let detached = crate::install::uninstall(&mut client, &config.schema, purge).await?;
    println!("removed triggers from {} table(s)", detached.len());
    if purge {
        println!("dropped schema {}", config.schema);
    }
    // The log's own database holds no triggers: only a purge has anything to do there.
    if let Some(mut client) = log_client {
        let schema = config.log_schema();
        crate::install::uninstall(&mut client, &schema, true).await?;
        println!("log database: dropped schema {schema}");
    }
    Ok(ExitCode::SUCCESS)
}

//! `clockwatch install` and `clockwatch uninstall`.

use std::process::ExitCode;

use crate::cli::GlobalOpts;
use crate::config::Config;
use crate::db;
use crate::error::Result;

pub async fn install(global: &GlobalOpts, config: &Config) -> Result<ExitCode> {
    let host = super::database_url(global, config)?;
    // The log's own database first: the host's triggers then never stage changes that no log
    // is ready for.
    if let Some(url) = super::log_database_url(global, config) {
        let mut client = db::connect_once(&url, "install").await?;
        let log = config.in_log();
        let applied = crate::install::install_log(&mut client, &log).await?;
        println!(
            "log database: installed in schema {}: {applied} migration(s) applied",
            log.schema
        );
    }
    let mut client = db::connect_once(&host, "install").await?;
    let report = crate::install::install(&mut client, config).await?;
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
    let detached = crate::install::uninstall(&mut client, &config.schema, purge).await?;
    println!("removed triggers from {} table(s)", detached.len());
    if purge {
        println!("dropped schema {}", config.schema);
    }
    // The log's own database holds no triggers: only a purge has anything to do there.
    if let (true, Some(url)) = (purge, super::log_database_url(global, config)) {
        let mut client = db::connect_once(&url, "install").await?;
        let schema = config.log_schema();
        crate::install::uninstall(&mut client, &schema, true).await?;
        println!("log database: dropped schema {schema}");
    }
    Ok(ExitCode::SUCCESS)
}

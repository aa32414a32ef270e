//! `clockwatch install` and `clockwatch uninstall`.

use std::process::ExitCode;

use crate::cli::GlobalOpts;
use crate::config::Config;
use crate::db;
use crate::error::Result;

pub async fn install(global: &GlobalOpts, config: &Config) -> Result<ExitCode> {
    let mut client = db::connect_once(&super::database_url(global, config)?, "install").await?;
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
    Ok(ExitCode::SUCCESS)
}

//! `clockwatch prune`.

use std::process::ExitCode;

use crate::cli::GlobalOpts;
use crate::config::Config;
use crate::error::{DbContext, Result};

pub async fn prune(global: &GlobalOpts, config: &Config, dry_run: bool) -> Result<ExitCode> {
    let (mut client, config) = super::reading_client(global, config).await?;
    let config = &config;
    crate::install::require_installed(&client, &config.schema).await?;
    client
        .batch_execute(&format!(
            "set search_path = {}, pg_catalog",
            crate::config::quote_ident(&config.schema)
        ))
        .await
        .context("set search_path")?;
    let pruned = crate::retention::prune(&mut client, dry_run).await?;
    let verb = if dry_run { "would remove" } else { "removed" };
    let total: i64 = pruned.iter().map(|p| p.events).sum();
    for p in &pruned {
        println!("{}: {} ({} events)", p.partition, p.action, p.events);
    }
    println!(
        "{verb} {total} events older than {} ({} partition(s) touched)",
        config.retention,
        pruned.len()
    );
    Ok(ExitCode::SUCCESS)
}

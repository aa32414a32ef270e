//! `clockwatch enable` and `clockwatch disable`.

use std::process::ExitCode;

use crate::cli::{GlobalOpts, WorkspaceArgs};
use crate::config::{Category, Config};
use crate::db;
use crate::error::Result;

pub async fn enable(
    global: &GlobalOpts,
    config: &Config,
    args: &WorkspaceArgs,
    on: bool,
) -> Result<ExitCode> {
    let categories = args
        .categories
        .as_ref()
        .map(|names| {
            names
                .iter()
                .map(|n| Category::parse(n))
                .collect::<Result<Vec<_>>>()
        })
        .transpose()?
        // Without --categories, enable turns on what the config audits, not categories no
        // source captures (they would show as enabled and never fill).
        .or_else(|| {
            on.then(|| {
                let mut configured: Vec<Category> =
                    config.sources.iter().map(|s| s.category).collect();
                configured.sort();
                configured.dedup();
                configured
            })
        });
    let client = db::connect_once(&super::database_url(global, config)?, "cli").await?;
    let enabled = crate::workspace::set_enabled(
        &client,
        &config.schema,
        &args.workspace,
        categories.as_deref(),
        on,
    )
    .await?;
    if enabled.is_empty() {
        println!("workspace {}: audit log off", args.workspace);
    } else {
        println!(
            "workspace {}: auditing {}",
            args.workspace,
            enabled.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

//! `clockwatch status`.

use std::process::ExitCode;

use crate::cli::GlobalOpts;
use crate::config::Config;
use crate::db;
use crate::error::Result;
use crate::status::LogSide;

pub async fn status(global: &GlobalOpts, config: &Config, json: bool) -> Result<ExitCode> {
    let client = db::connect_once(&super::database_url(global, config)?, "cli").await?;
    let log = match super::log_database_url(global, config) {
        Some(url) => Some(db::connect_once(&url, "cli").await),
        None => None,
    };
    let side = match &log {
        None => LogSide::Here,
        Some(Ok(log)) => LogSide::Apart(log),
        Some(Err(e)) => LogSide::Unreachable(e.to_string()),
    };
    let status = crate::status::status(&client, side, config).await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&status).expect("status serialises")
        );
    } else {
        print!("{}", status.render());
    }
    // Non-zero when unhealthy, so `clockwatch status` serves as a monitoring check.
    Ok(if status.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

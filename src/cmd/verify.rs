//! `clockwatch verify`.

use std::process::ExitCode;

use crate::cli::GlobalOpts;
use crate::config::Config;
use crate::error::Result;
use crate::report::FilterArgs;
use crate::verify::Verdict;

/// No range cap: a chain is checked whole (this only bounds the date arithmetic).
const CENTURY_DAYS: i32 = 36_500;

pub async fn verify(
    global: &GlobalOpts,
    config: &Config,
    workspace: &str,
    from: Option<String>,
    to: Option<String>,
) -> Result<ExitCode> {
    let (mut client, config) = super::reading_client(global, config).await?;
    let config = &config;
    let mut tx = crate::report::snapshot(&mut client, &config.schema).await?;
    // Dates are read as reports read them (and the workspace must exist).
    let (given_from, given_to) = (from.is_some(), to.is_some());
    let args = FilterArgs {
        workspace: workspace.to_string(),
        from,
        to,
        ..Default::default()
    };
    let filter = crate::report::build_filter(&mut tx, config, &args, CENTURY_DAYS, "").await?;
    let from = filter.from.filter(|_| given_from);
    let to = filter.to.filter(|_| given_to);
    match crate::verify::verify(&tx, workspace, from, to).await? {
        Verdict::Intact {
            events,
            first,
            last,
        } => {
            let span = match (first, last) {
                (Some(a), Some(b)) => format!(", positions {a}..{b}"),
                _ => String::new(),
            };
            println!("workspace {workspace}: {events} events verified, chain intact{span}");
            Ok(ExitCode::SUCCESS)
        }
        Verdict::Broken(problem) => {
            println!("workspace {workspace}: TAMPERED: {problem}");
            Ok(ExitCode::FAILURE)
        }
    }
}

//! `clockwatch report`.

use std::io::Write;
use std::process::ExitCode;

use crate::cli::{FilterOpts, GlobalOpts};
use crate::config::Config;
use crate::error::{Error, Result};

pub async fn report(
    global: &GlobalOpts,
    config: &Config,
    opts: &FilterOpts,
    limit: i64,
    details: bool,
) -> Result<ExitCode> {
    if limit < 1 {
        return Err(Error::Input(format!("--limit: {limit} must be at least 1")));
    }
    let (mut client, config) = super::reading_client(global, config).await?;
    let config = &config;
    let (tx, filter) = super::filtered(&mut client, config, opts, super::Span::Report).await?;
    // One more than asked tells whether there is more to see.
    let mut rows = crate::report::fetch(&tx, &filter, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let display = crate::report::Display::new(config);
    // With a table of workspaces configured, the report opens with the workspace's name.
    let mut text = match crate::workspace::host_workspace(&tx, config, &filter.workspace).await? {
        Some(host) => format!(
            "{}\n",
            crate::report::printable(&crate::workspace::title(
                &filter.workspace,
                host.name.as_deref()
            ))
        ),
        None => String::new(),
    };
    if rows.is_empty() {
        text.push_str("no events match\n");
    } else {
        text.push_str(&crate::report::render(&rows, details, &display));
    }
    if more {
        text.push_str(&format!(
            "(showing the first {limit}; use --limit, narrower filters, or `clockwatch export`)\n"
        ));
    }
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe => Error::BrokenPipe,
            _ => Error::Output(e.to_string()),
        })?;
    Ok(ExitCode::SUCCESS)
}

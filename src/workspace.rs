//! Turning the audit log on and off per workspace and category (Clockify: off by default; an
//! admin ticks categories). The work is done by the `enable`/`disable` SQL functions, which
//! applications may call directly; this module is the CLI's way in.

use tokio_postgres::Client;

use crate::config::Category;
use crate::error::{DbContext, Result};

/// Enable (or with `on = false`, disable) `categories` (all when None) for a workspace.
/// Returns the categories enabled for the workspace afterwards.
pub async fn set_enabled(
    client: &Client,
    schema: &str,
    workspace: &str,
    categories: Option<&[Category]>,
    on: bool,
) -> Result<Vec<String>> {
    crate::install::require_installed(client, schema).await?;
    let names: Option<Vec<&str>> = categories.map(|c| c.iter().map(|c| c.as_str()).collect());
    let function = if on { "enable" } else { "disable" };
    let sql = format!(
        "select * from {}.{function}($1, $2)",
        crate::config::quote_ident(schema)
    );
    let rows = client
        .query(&sql, &[&workspace, &names])
        .await
        .context(format!("{function} workspace {}", shown(workspace)))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// A workspace id as an error line names it: whole, or its start when it is too long to read.
fn shown(workspace: &str) -> String {
    match workspace.char_indices().nth(40) {
        Some((end, _)) => format!("{}...", &workspace[..end]),
        None => workspace.to_string(),
    }
}

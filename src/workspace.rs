//! Workspaces: turning the audit log on and off per workspace and category (Clockify: off by
//! default; an admin ticks categories), and the names workspaces go by.
//!
//! The work of enabling is done by the `enable`/`disable` SQL functions, which applications may
//! call directly; this module is the CLI's way in. Names come from the host's own table of
//! workspaces (`[workspaces]` in the config), read when a report is made, by the role making it,
//! through `host_workspace()` (sql/baseline/05_reports.sql), which reads only a plain table and
//! answers "cannot tell" rather than fail: a report names its workspace by id when the table
//! cannot be read.

use tokio_postgres::{Client, GenericClient};

use crate::config::{Category, Config};
use crate::error::{DbContext, Result};

/// The longest workspace name shown (a host may store anything in its name column).
const LONGEST_NAME: usize = 100;

/// What the host's table of workspaces says of one workspace id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostWorkspace {
    /// Whether the table has a row with this id; None when the table could not be read (no
    /// privilege, missing, locked, not a plain table).
    pub present: Option<bool>,
    /// Its name: the first name column neither null nor empty.
    pub name: Option<String>,
}

/// Look `workspace` up in the config's `[workspaces]` table; None when there is none. Run in the
/// caller's transaction (a report's snapshot): the table's state then is the report's.
pub async fn host_workspace(
    client: &impl GenericClient,
    config: &Config,
    workspace: &str,
) -> Result<Option<HostWorkspace>> {
    let Some(workspaces) = &config.workspaces else {
        return Ok(None);
    };
    let table = workspaces.table_name()?;
    let row = client
        .query_one(
            &format!(
                "select present, name from {}.host_workspace($1, $2, $3, $4)",
                crate::config::quote_ident(&config.schema)
            ),
            &[
                &table.quoted(),
                &workspaces.id_column,
                &workspaces.name_column.columns(),
                &workspace,
            ],
        )
        .await
        .context(format!("look up workspace {} in {table}", shown(workspace)))?;
    let present: Option<bool> = row.get(0);
    let mut name: Option<String> = row.get(1);
    if present.is_none() {
        // The table cannot be read here (in the log's own database it is not): the name the
        // daemon last saw, if it wrote one.
        name = client
            .query_one(
                &format!(
                    "select {}.remembered_workspace($1)",
                    crate::config::quote_ident(&config.schema)
                ),
                &[&workspace],
            )
            .await
            .context(format!("look up workspace {}'s name", shown(workspace)))?
            .get(0);
    }
    Ok(Some(HostWorkspace {
        present,
        name: name.map(|n| crate::report::shorten(&n, LONGEST_NAME)),
    }))
}

/// The name a report shows for `workspace`, when the config's `[workspaces]` table gives one.
pub async fn workspace_name(
    client: &impl GenericClient,
    config: &Config,
    workspace: &str,
) -> Result<Option<String>> {
    Ok(host_workspace(client, config, workspace)
        .await?
        .and_then(|w| w.name))
}

/// How a report heads a workspace: `Workspace 1 (Acme Inc)`, or `Workspace 1` without a name.
pub fn title(workspace: &str, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("Workspace {workspace} ({name})"),
        None => format!("Workspace {workspace}"),
    }
}

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

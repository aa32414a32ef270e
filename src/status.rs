//! `clockwatch status`: what is enabled where, what waits in staging, whether a daemon is there.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Client;

use crate::error::{DbContext, Result};

const WORKSPACES: &str = include_str!("../sql/queries/status.sql");
const TOTALS: &str = include_str!("../sql/queries/status_totals.sql");

#[derive(Debug, Serialize)]
pub struct Status {
    pub schema: String,
    pub staged: i64,
    pub oldest_staged_secs: Option<f64>,
    pub dead_letters: i64,
    /// Daemon connections seen in pg_stat_activity.
    pub daemons: i64,
    pub workspaces: Vec<WorkspaceStatus>,
}

#[derive(Debug, Serialize)]
pub struct WorkspaceStatus {
    pub workspace_id: String,
    pub categories: Vec<String>,
    pub staged: i64,
    pub oldest_staged_secs: Option<f64>,
    pub newest_event: Option<DateTime<Utc>>,
}

pub async fn status(client: &Client, schema: &str) -> Result<Status> {
    crate::install::require_installed(client, schema).await?;
    client
        .batch_execute(&format!(
            "set search_path = {}, pg_catalog",
            crate::config::quote_ident(schema)
        ))
        .await
        .context("set search_path")?;
    let totals = client.query_one(TOTALS, &[]).await.context("read status")?;
    let workspaces = client
        .query(WORKSPACES, &[])
        .await
        .context("read workspace status")?
        .iter()
        .map(|r| WorkspaceStatus {
            workspace_id: r.get("workspace_id"),
            categories: r.get("categories"),
            staged: r.get("staged"),
            oldest_staged_secs: r.get("oldest_staged_secs"),
            newest_event: r.get("newest_event"),
        })
        .collect();
    Ok(Status {
        schema: schema.to_string(),
        staged: totals.get("staged"),
        oldest_staged_secs: totals.get("oldest_staged_secs"),
        dead_letters: totals.get("dead_letters"),
        daemons: totals.get("daemons"),
        workspaces,
    })
}

impl Status {
    /// The human-readable form.
    pub fn render(&self) -> String {
        let age = |secs: Option<f64>| {
            secs.map(|s| format!("{s:.1}s"))
                .unwrap_or_else(|| "-".into())
        };
        let mut out = format!(
            "schema {}: {} daemon(s) connected, {} change(s) staged (oldest {}), {} dead letter(s)\n",
            self.schema,
            self.daemons,
            self.staged,
            age(self.oldest_staged_secs),
            self.dead_letters
        );
        if self.workspaces.is_empty() {
            out.push_str(
                "no workspace has the audit log enabled: run `clockwatch enable --workspace ID`\n",
            );
            return out;
        }
        let header = [
            "WORKSPACE",
            "STAGED",
            "OLDEST",
            "NEWEST EVENT",
            "CATEGORIES",
        ];
        let rows: Vec<[String; 5]> = self
            .workspaces
            .iter()
            .map(|w| {
                [
                    w.workspace_id.clone(),
                    w.staged.to_string(),
                    age(w.oldest_staged_secs),
                    w.newest_event
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                        .unwrap_or_else(|| "-".into()),
                    if w.categories.is_empty() {
                        "(none)".into()
                    } else {
                        w.categories.join(",")
                    },
                ]
            })
            .collect();
        out.push_str(&crate::table::render(&header, &rows));
        out
    }
}

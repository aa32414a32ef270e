//! Retention: events older than the configured `retention` are removed by dropping whole monthly
//! partitions (see `sql/baseline/06_retention.sql`). The daemon runs [`maintain`] hourly, which creates
//! partitions ahead and prunes once a day across all daemons; `clockwatch prune` does it on demand.

use tokio_postgres::Client;

use crate::error::{DbContext, Result};

/// What pruning did (or, in a dry run, would do) to one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pruned {
    pub partition: String,
    /// "drop partition" or "delete rows".
    pub action: String,
    pub events: i64,
}

/// Remove expired events now. Returns nothing when another session is pruning at this moment.
/// `client` must have Clockwatch's schema on its search_path.
pub async fn prune(client: &mut Client, dry_run: bool) -> Result<Vec<Pruned>> {
    let tx = client.transaction().await.context("begin prune")?;
    let rows = tx
        .query(
            "select partition_name, action, events from prune(now(), $1)",
            &[&dry_run],
        )
        .await
        .context("prune")?;
    tx.commit().await.context("commit prune")?;
    Ok(rows
        .iter()
        .map(|r| Pruned {
            partition: r.get(0),
            action: r.get(1),
            events: r.get(2),
        })
        .collect())
}

/// The daemon's chores: partitions ahead, and a prune when the last is a day old.
/// Returns the events removed.
pub async fn maintain(client: &Client) -> Result<i64> {
    let row = client
        .query_one("select maintain()", &[])
        .await
        .context("maintenance")?;
    Ok(row.get(0))
}

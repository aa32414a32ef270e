//! Versioned SQL migrations for Clockwatch's own schema.
//!
//! The files in `sql/` are embedded in the binary, applied in order, and recorded in
//! `<schema>.migrations` with a SHA-256 checksum. A released migration is never edited: a
//! checksum that no longer matches means the database and the binary disagree, and install stops
//! rather than guess. Callers run this inside their own transaction, under the install advisory
//! lock, so two installs at once cannot both apply a migration.

use sha2::{Digest, Sha256};
use tokio_postgres::Transaction;

use crate::config::quote_ident;
use crate::error::{DbContext, Error, Result};

pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, oldest first. Append only.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "core",
        sql: include_str!("../sql/0001_core.sql"),
    },
    Migration {
        version: 2,
        name: "reports",
        sql: include_str!("../sql/0002_reports.sql"),
    },
    Migration {
        version: 3,
        name: "retention",
        sql: include_str!("../sql/0003_retention.sql"),
    },
    Migration {
        version: 4,
        name: "chain",
        sql: include_str!("../sql/0004_chain.sql"),
    },
    Migration {
        version: 5,
        name: "daemon_role",
        sql: include_str!("../sql/0005_daemon_role.sql"),
    },
    Migration {
        version: 6,
        name: "speed",
        sql: include_str!("../sql/0006_speed.sql"),
    },
    Migration {
        version: 7,
        name: "event_tally",
        sql: include_str!("../sql/0007_event_tally.sql"),
    },
    Migration {
        version: 8,
        name: "append_outside_lock",
        sql: include_str!("../sql/0008_append_outside_lock.sql"),
    },
    Migration {
        version: 9,
        name: "idle_flag",
        sql: include_str!("../sql/0009_idle_flag.sql"),
    },
    Migration {
        version: 10,
        name: "append_generic_plan",
        sql: include_str!("../sql/0010_append_generic_plan.sql"),
    },
];

impl Migration {
    pub fn checksum(&self) -> String {
        Sha256::digest(self.sql.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Point the transaction's search_path at Clockwatch's schema, so the migration files (and the
/// functions they create with `SET search_path FROM CURRENT`) resolve names there.
pub async fn set_search_path(tx: &Transaction<'_>, schema: &str) -> Result<()> {
    tx.batch_execute(&format!(
        "set local search_path = {}, pg_catalog, pg_temp",
        quote_ident(schema)
    ))
    .await
    .context("set search_path")
}

/// Create the schema if needed and apply every migration not yet applied. Returns how many ran.
pub async fn migrate(tx: &Transaction<'_>, schema: &str) -> Result<usize> {
    tx.batch_execute(&format!(
        "create schema if not exists {s};
         create table if not exists {s}.migrations (
             version    integer primary key,
             name       text not null,
             checksum   text not null,
             applied_at timestamptz not null default now()
         );",
        s = quote_ident(schema)
    ))
    .await
    .context(format!("create schema \"{schema}\""))?;
    set_search_path(tx, schema).await?;

    let applied = tx
        .query(
            "select version, checksum from migrations order by version",
            &[],
        )
        .await
        .context("read applied migrations")?;
    let mut ran = 0;
    for migration in MIGRATIONS {
        let recorded = applied
            .iter()
            .find(|row| row.get::<_, i32>(0) == migration.version);
        match recorded {
            Some(row) if row.get::<_, String>(1) == migration.checksum() => continue,
            Some(_) => {
                return Err(Error::MigrationChanged {
                    version: migration.version,
                    name: migration.name.into(),
                })
            }
            None => {}
        }
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "applying migration"
        );
        tx.batch_execute(migration.sql).await.context(format!(
            "migration {} ({})",
            migration.version, migration.name
        ))?;
        tx.execute(
            "insert into migrations (version, name, checksum) values ($1, $2, $3)",
            &[&migration.version, &migration.name, &migration.checksum()],
        )
        .await
        .context("record migration")?;
        ran += 1;
    }
    Ok(ran)
}

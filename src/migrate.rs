//! Versioned SQL migrations for Clockwatch's own schema.
//!
//! Versions 1 to 3 are the baseline: the files in `sql/baseline/`, one per concern (tables,
//! capture, chain, append, reports, retention, roles, claims, log), in three parts, each one
//! migration: what both sides hold, capture's, and the log's (see [`Part`]). Until a release is
//! tagged the baseline is edited in place, so each function has exactly one definition. After
//! that, a release that changes the schema appends a migration here (`sql/upgrade/NNNN_name.sql`)
//! and never edits a released one.
//!
//! Everything is embedded in the binary, applied in order, and recorded in `<schema>.migrations`
//! with a SHA-256 checksum. A checksum that no longer matches means the database and the binary
//! disagree, and install stops rather than guess. Callers run this inside their own transaction,
//! under the install advisory lock, so two installs at once cannot both apply a migration.

use sha2::{Digest, Sha256};
use tokio_postgres::Transaction;

use crate::config::quote_ident;
use crate::error::{DbContext, Error, Result};

pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    /// Which side of Clockwatch the migration belongs to.
    pub part: Part,
    /// The SQL files of this migration, run in order in one transaction.
    pub files: &'static [&'static str],
}

/// The parts of Clockwatch's schema. A database that captures and holds its log applies all
/// three; with the log in a database of its own (`log_database_url`), the host's applies the
/// common part and capture, the log database's the common part and the log, so that neither
/// holds the other's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Settings, categories, shapes, names, dead letters, roles: what both sides read.
    Common,
    /// Staging, the capture triggers and the claims.
    Capture,
    /// Events, the chain, reports and retention.
    Log,
}

/// Every migration, oldest first. Append only once released.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "baseline",
        part: Part::Common,
        files: &[
            include_str!("../sql/baseline/01_tables.sql"),
            include_str!("../sql/baseline/07_roles.sql"),
        ],
    },
    Migration {
        version: 2,
        name: "baseline capture",
        part: Part::Capture,
        files: &[
            include_str!("../sql/baseline/02_capture.sql"),
            include_str!("../sql/baseline/08_claims.sql"),
        ],
    },
    Migration {
        version: 3,
        name: "baseline log",
        part: Part::Log,
        files: &[
            include_str!("../sql/baseline/03_chain.sql"),
            include_str!("../sql/baseline/04_append.sql"),
            include_str!("../sql/baseline/05_reports.sql"),
            include_str!("../sql/baseline/06_retention.sql"),
            include_str!("../sql/baseline/09_log.sql"),
        ],
    },
];

impl Migration {
    pub fn checksum(&self) -> String {
        let mut digest = Sha256::new();
        for file in self.files {
            digest.update(file.as_bytes());
        }
        digest
            .finalize()
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

/// Create the schema if needed and apply every migration of `parts` not yet applied. Returns
/// how many ran.
pub async fn migrate(tx: &Transaction<'_>, schema: &str, parts: &[Part]) -> Result<usize> {
    // Every function here runs with this schema first on its search_path: a schema that another
    // role owns, or may create objects in, would let that role put a function of its own (a
    // pg_trigger_depth(), say) ahead of pg_catalog's, to run with the owner's rights.
    let row = tx
        .query_one(
            "select case when n.nspowner <> me.oid then n.nspowner::regrole::text end,
                    (select string_agg(distinct case when a.grantee = 0 then 'PUBLIC'
                                                     else a.grantee::regrole::text end, ', ')
                     from aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
                     where a.privilege_type = 'CREATE' and a.grantee <> n.nspowner)
             from (select oid from pg_roles where rolname = current_user) me
             left join pg_namespace n on n.nspname = $1",
            &[&schema],
        )
        .await
        .context(format!("read the owner of schema \"{schema}\""))?;
    let (owner, creators): (Option<String>, Option<String>) = (row.get(0), row.get(1));
    if let Some(owner) = owner {
        return Err(Error::Config(format!(
            "schema \"{schema}\" exists and belongs to {owner}: Clockwatch's schema must be the installing role's own (drop it, or install as {owner})"
        )));
    }
    if let Some(roles) = creators {
        return Err(Error::Config(format!(
            "schema \"{schema}\": {roles} may create objects in it: only Clockwatch's owner may (revoke create on schema {schema} from them)"
        )));
    }
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
    for migration in MIGRATIONS.iter().filter(|m| parts.contains(&m.part)) {
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
        for file in migration.files {
            tx.batch_execute(file).await.context(format!(
                "migration {} ({})",
                migration.version, migration.name
            ))?;
        }
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

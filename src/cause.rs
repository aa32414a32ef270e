//! Which change caused a foreign-key action's change.
//!
//! Capture stages a foreign-key action's rows at depth 2 (sql/baseline/02_capture.sql): rows
//! that PostgreSQL changed on its own, below the statement, because a row they refer to was
//! deleted (or its key updated). Such a change is linked only when a change Clockwatch logged
//! can have caused it: an earlier change of the same statement to the table its foreign key
//! refers to, of the kind the key acts on (a deletion for ON DELETE, an update for ON UPDATE),
//! whose key is the one the row held. The statement's time alone does not say it: every
//! statement of one multi-statement query shares it. A change with no such cause is its actor's,
//! and one with a cause points at the host's own change that set the chain off (a cascade two
//! levels down at the first deletion, through the one between).

use crate::normalize::{column_text, Op, StagedChange};

/// A foreign key between two audited tables that acts on the referring rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    /// The source of the referring table, and of the table it refers to.
    pub child: String,
    pub parent: String,
    pub child_columns: Vec<String>,
    pub parent_columns: Vec<String>,
    /// pg_constraint's action codes: c cascade, n set null, d set default (a, r: none).
    pub on_delete: char,
    pub on_update: char,
}

/// What a candidate cause did, as far as is known: an event already written says only its
/// action, and a soft deletion is an update that reads "deleted".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Did {
    Delete,
    Update,
    DeleteOrUpdate,
    Other,
}

impl Did {
    pub fn of_op(op: Op) -> Did {
        match op {
            Op::Delete => Did::Delete,
            Op::Update | Op::Links => Did::Update,
            Op::Insert | Op::Truncate => Did::Other,
        }
    }

    /// From an event's action code, for an event written by an earlier batch.
    pub fn of_action(code: &str) -> Did {
        if code.ends_with(".deleted") {
            Did::DeleteOrUpdate
        } else if code.ends_with(".created") || code.ends_with(".truncated") {
            Did::Other
        } else {
            Did::Update
        }
    }
}

/// A change of the statement that may have caused a linked one: an event of the batch, or one
/// already written.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub event_id: i64,
    pub source: String,
    pub did: Did,
    /// The row's id (its source's id column).
    pub key: Option<String>,
    /// The host's own change the candidate goes back to: itself, or what caused it.
    pub root: i64,
}

/// The host's own change that `change` (a foreign-key action's) goes back to, if one of
/// `candidates` (the statement's changes, in any order) can have caused it. `id_column` gives a
/// source's id column.
pub fn action_cause<'a>(
    change: &StagedChange,
    candidates: &[Candidate],
    keys: &[ForeignKey],
    id_column: impl Fn(&str) -> Option<&'a str>,
) -> Option<i64> {
    let old = change.old_row.as_ref()?;
    // The columns an UPDATE changed: a SET NULL or SET DEFAULT changes the key's columns only.
    let changed: Vec<&str> = match (change.op, change.new_row.as_ref()) {
        (Op::Update, Some(new)) => old
            .fields()
            .filter(|(name, value)| new.get(name).map(|v| v.json()) != Some(value.json()))
            .map(|(name, _)| name)
            .collect(),
        _ => Vec::new(),
    };
    let mut earlier: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| c.event_id < change.id)
        .collect();
    earlier.sort_by_key(|c| std::cmp::Reverse(c.event_id));
    earlier.into_iter().find_map(|cause| {
        keys.iter()
            .filter(|k| k.child == change.source && k.parent == cause.source)
            .any(|key| {
                let deleted = matches!(cause.did, Did::Delete | Did::DeleteOrUpdate);
                let updated = matches!(cause.did, Did::Update | Did::DeleteOrUpdate);
                let by_delete = deleted
                    && match change.op {
                        Op::Delete => key.on_delete == 'c',
                        Op::Update => matches!(key.on_delete, 'n' | 'd'),
                        _ => false,
                    };
                let by_update =
                    updated && change.op == Op::Update && matches!(key.on_update, 'c' | 'n' | 'd');
                if !(by_delete || by_update)
                    || !changed
                        .iter()
                        .all(|c| key.child_columns.iter().any(|k| k == c))
                {
                    return false;
                }
                // A SET NULL action leaves the key's columns null: a change that set one to a
                // value is no such action's, whatever count capture was shown.
                let sets_null = (by_delete && key.on_delete == 'n')
                    || (by_update && !by_delete && key.on_update == 'n');
                if sets_null
                    && !changed.iter().all(|c| {
                        change
                            .new_row
                            .as_ref()
                            .and_then(|new| new.get(c))
                            .map_or(true, |v| v.is_null())
                    })
                {
                    return false;
                }
                // A deletion's row was the one referred to: compared where the key is the
                // cause's id column and the cause's id is known. (An ON UPDATE action's row held
                // the old key, which the cause's event no longer names.)
                let referred = match (
                    &key.child_columns[..],
                    &key.parent_columns[..],
                    &cause.key,
                    id_column(&cause.source),
                ) {
                    ([child], [parent], Some(id), Some(id_column)) if parent == id_column => {
                        column_text(old, Some(child)).as_deref() == Some(id.as_str())
                    }
                    _ => true,
                };
                by_update || referred
            })
            .then_some(cause.root)
    })
}

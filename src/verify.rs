//! `clockwatch verify`: walk a workspace's hash chain and report the first place it breaks.
//!
//! Each event's hash is sha256(previous hash || sha256(canonical content)), hashed and chained by
//! the daemon ([`crate::chain`]) as it writes. Recomputing it
//! from the stored row shows an event changed afterwards; a
//! gap in the chain positions shows events removed; an event outside the chain, or out of its
//! place, shows one inserted. After pruning, the chain starts at the recorded anchor.

use chrono::{DateTime, SecondsFormat, Utc};
use tokio_postgres::Transaction;

use crate::error::{DbContext, Result};

const CHAIN: &str = include_str!("../sql/queries/verify.sql");
const PAGE: i32 = 5000;

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every event checked; (events, first and last chain position).
    Intact {
        events: u64,
        first: Option<i64>,
        last: Option<i64>,
    },
    /// The first problem found, as one line.
    Broken(String),
}

/// Verify the chain of `workspace`, optionally only between `from` and `to`. With `from`, the
/// first event in range is trusted as the starting point (what precedes it is not checked).
pub async fn verify(
    tx: &Transaction<'_>,
    workspace: &str,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<Verdict> {
    // The anchor is where pruning left the chain. Only events older than the retention may
    // have been pruned; an anchor that says otherwise shows the log cut short.
    let anchor = tx
        .query_opt(
            "select a.seq, a.hash, a.occurred_at, a.pruned_at,
                    a.occurred_at >= a.pruned_at - s.retention as within_retention,
                    a.recorded_at >= a.cutoff + interval '7 days' as written_after_cutoff,
                    a.recorded_at
             from chain_anchor a cross join settings s where a.workspace_id = $1",
            &[&workspace],
        )
        .await
        .context("read the chain anchor")?;
    if let Some(row) = anchor.as_ref().filter(|r| r.get::<_, bool>(4)) {
        let (seq, newest, pruned): (i64, DateTime<Utc>, DateTime<Utc>) =
            (row.get(0), row.get(2), row.get(3));
        return Ok(Verdict::Broken(format!(
            "chain positions up to {seq} were removed at {} though the newest of them ({}) was inside the retention period: events were erased",
            pruned.to_rfc3339_opts(SecondsFormat::Secs, true),
            newest.to_rfc3339_opts(SecondsFormat::Secs, true)
        )));
    }
    // The chain runs in the order events were written. An anchor written well after its prune's
    // cutoff (7 days allow for a long transaction) is an event backdated on its way in: every
    // event written before it would lie behind the anchor, unverified.
    if let Some(row) = anchor.as_ref().filter(|r| r.get::<_, bool>(5)) {
        let (seq, pruned, written): (i64, DateTime<Utc>, DateTime<Utc>) =
            (row.get(0), row.get(3), row.get(6));
        return Ok(Verdict::Broken(format!(
            "chain positions up to {seq} were removed at {} though the last of them was written to the log at {}, inside the retention period (a backdated event): events were hidden from verify",
            pruned.to_rfc3339_opts(SecondsFormat::Secs, true),
            written.to_rfc3339_opts(SecondsFormat::Secs, true)
        )));
    }
    let (anchor_seq, anchor_hash): (i64, Vec<u8>) = anchor
        .map(|r| (r.get(0), r.get(1)))
        .unwrap_or((0, Vec::new()));
    let head: Option<i64> = tx
        .query_opt(
            "select seq from chain_head where workspace_id = $1",
            &[&workspace],
        )
        .await
        .context("read the chain head")?
        .map(|r| r.get(0));

    let portal = tx
        .bind(CHAIN, &[&workspace, &from, &to])
        .await
        .context("open the chain")?;
    let mut expected: Option<(i64, Vec<u8>)> = if from.is_some() {
        None
    } else {
        Some((anchor_seq + 1, anchor_hash))
    };
    let (mut events, mut first, mut last) = (0u64, None, None);
    loop {
        let rows = tx
            .query_portal(&portal, PAGE)
            .await
            .context("read the chain")?;
        for row in &rows {
            let seq: Option<i64> = row.get("chain_seq");
            let event_id: i64 = row.get("event_id");
            let at: DateTime<Utc> = row.get("occurred_at");
            let prev: Option<Vec<u8>> = row.get("prev_hash");
            let hash: Option<Vec<u8>> = row.get("hash");
            let content_ok: Option<bool> = row.get("content_ok");
            let event = format!(
                "event {event_id} ({})",
                at.to_rfc3339_opts(SecondsFormat::Secs, true)
            );
            let Some(seq) = seq else {
                return Ok(Verdict::Broken(format!(
                    "{event} is not part of the chain: it was inserted outside Clockwatch"
                )));
            };
            if from.is_none() && seq <= anchor_seq {
                continue; // older than where the retained chain starts (left by pruning)
            }
            let (want_seq, want_prev) = expected
                .take()
                .unwrap_or((seq, prev.clone().unwrap_or_default()));
            if seq > want_seq {
                return Ok(Verdict::Broken(format!(
                    "chain positions {want_seq}..{} are missing before {event}: events were removed",
                    seq - 1
                )));
            }
            if seq < want_seq {
                return Ok(Verdict::Broken(format!(
                    "{event} repeats chain position {seq}: it was inserted out of place"
                )));
            }
            if prev.as_deref() != Some(want_prev.as_slice()) {
                return Ok(Verdict::Broken(format!(
                    "{event} does not follow the event before it in the chain (position {}): an event was inserted, reordered or replaced",
                    seq - 1
                )));
            }
            if content_ok != Some(true) {
                return Ok(Verdict::Broken(format!(
                    "{event} (chain position {seq}) was changed after it was recorded"
                )));
            }
            expected = Some((seq + 1, hash.unwrap_or_default()));
            events += 1;
            first.get_or_insert(seq);
            last = Some(seq);
        }
        if rows.len() < PAGE as usize {
            break;
        }
    }
    // Without an end date the chain must reach its head: removing the newest events shows too.
    if let (None, Some(head)) = (to, head) {
        let reached = last.unwrap_or(anchor_seq);
        if head > reached {
            return Ok(Verdict::Broken(format!(
                "chain positions {}..{head} are missing at the end: the newest events were removed",
                reached + 1
            )));
        }
    }
    Ok(Verdict::Intact {
        events,
        first,
        last,
    })
}

//! Each event's canonical content and its digest, printed by the daemon as it writes the event.
//!
//! The hash chain is `hash = sha256(previous hash || sha256(canonical content))`. The daemon
//! computes both here, chaining each batch from the heads `chain_heads()` locked, and
//! `append_events()` stores the links; `clockwatch verify` prints the content again from the
//! stored row with `event_content()` (`sql/baseline/03_chain.sql`, which defines the form). Both
//! must print the same bytes or verify reports tampering, so the form leaves nothing to
//! interpretation: each field is its length in bytes of UTF-8, a colon and its text
//! (`~` for null), and each field's text is exactly what is stored:
//! - the changed values and the details are stored as `json`, which keeps the text the daemon
//!   sent. The details are spelled as `jsonb` prints them
//!   ([`crate::detail::Details::jsonb_text`]), so a reader that casts them to `jsonb` gets the
//!   same text back.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::normalize::AuditEvent;
use crate::record::push_string;

/// sha256 of `event`'s canonical content, its details spelled `details` (from
/// [`crate::detail::Details::jsonb_text`]). The content is fed to the hash field by field, never
/// built whole.
pub fn content_digest(event: &AuditEvent, details: &str) -> [u8; 32] {
    // OpenSSL's SHA-256, as PostgreSQL's sha256() uses: 1.9 us for 500 bytes against 2.7 for the
    // sha2 crate's portable code, on this project's benchmark machine (AVX2, no SHA instructions).
    let mut hash = openssl::sha::Sha256::new();
    let mut field = |text: Option<&str>| match text {
        Some(text) => {
            hash.update(text.len().to_string().as_bytes());
            hash.update(b":");
            hash.update(text.as_bytes());
        }
        None => hash.update(b"~"),
    };
    let number = |n: i64| Some(n.to_string());
    field(number(event.event_id).as_deref());
    field(number(event.occurred_at.timestamp_micros()).as_deref());
    field(Some(&event.workspace_id));
    field(Some(event.category.as_str()));
    field(Some(&event.action_code));
    field(Some(event.action));
    field(event.origin.as_deref());
    field(event.author_id.as_deref());
    field(Some(&event.author));
    field(event.target_id.as_deref());
    field(event.target.as_deref());
    field(event.caused_by.and_then(number).as_deref());
    field(Some(if event.linked { "true" } else { "false" }));
    field(number(event.txid).as_deref());
    field(Some(&event.source));
    field(event.previous_value.as_deref());
    field(event.new_value.as_deref());
    field(event.row.as_ref().map(|r| r.image.as_str()));
    field(event.row.as_ref().and_then(|r| number(r.shape)).as_deref());
    field(Some(details));
    hash.finish()
}

/// Where a workspace's chain ends: its newest event's position and hash (`chain_head`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub seq: i64,
    pub hash: Vec<u8>,
}

/// An event's place in its workspace's chain, as `append_events()` stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub seq: i64,
    pub prev_hash: Vec<u8>,
    pub hash: [u8; 32],
}

/// `sha256(prev || digest)`: one link of the chain.
fn link_hash(prev: &[u8], digest: &[u8; 32]) -> [u8; 32] {
    let mut hash = openssl::sha::Sha256::new();
    hash.update(prev);
    hash.update(digest);
    hash.finish()
}

/// Chain a batch: each event, given as (workspace, event id, content digest), is linked after the
/// one before it in its workspace, in event id order, starting from `heads`, which are moved to
/// where the batch ends. Returns the links in the order the events were given, or the first
/// workspace that has no head.
pub fn chain_batch(
    events: &[(&str, i64, [u8; 32])],
    heads: &mut HashMap<String, Head>,
) -> Result<Vec<Link>, String> {
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_unstable_by_key(|&i| events[i].1);
    let mut links: Vec<Option<Link>> = vec![None; events.len()];
    for i in order {
        let (workspace, _, digest) = &events[i];
        let head = heads
            .get_mut(*workspace)
            .ok_or_else(|| format!("no chain head was locked for workspace {workspace}"))?;
        let hash = link_hash(&head.hash, digest);
        let link = Link {
            seq: head.seq + 1,
            prev_hash: std::mem::replace(&mut head.hash, hash.to_vec()),
            hash,
        };
        head.seq = link.seq;
        links[i] = Some(link);
    }
    Ok(links.into_iter().flatten().collect())
}

/// `value` as PostgreSQL prints it once stored as `jsonb`: object keys shortest first, then in
/// byte order; `", "` between items and `": "` after a key; strings escaped as PostgreSQL's
/// `escape_json()` escapes them (quote, backslash, `\b \f \n \r \t`, other control characters
/// as `\u00xx`, everything else as it is). Numbers print as given: `jsonb` would respell some
/// (`1e3` as `1000`), and the values printed here hold none.
pub fn jsonb_text(value: &Value) -> String {
    let mut out = String::new();
    write_jsonb(value, &mut out);
    out
}

fn write_jsonb(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => push_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_jsonb(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => write_object(map, out),
    }
}

/// The order of a `jsonb` object's keys: shortest first, then in byte order.
pub fn jsonb_key_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn write_object(map: &Map<String, Value>, out: &mut String) {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|(a, _), (b, _)| jsonb_key_order(a, b));
    out.push('{');
    for (i, (key, item)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        push_string(out, key);
        out.push_str(": ");
        write_jsonb(item, out);
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_batch_chains_each_workspace_in_event_id_order_from_its_head() {
        let d = |n: u8| [n; 32];
        let mut heads = HashMap::from([
            (
                "a".to_string(),
                Head {
                    seq: 7,
                    hash: b"h".to_vec(),
                },
            ),
            (
                "b".to_string(),
                Head {
                    seq: 0,
                    hash: Vec::new(),
                },
            ),
        ]);
        // Given out of order: a's event 5 comes before its event 9.
        let links = chain_batch(
            &[("a", 9, d(1)), ("b", 6, d(2)), ("a", 5, d(3))],
            &mut heads,
        )
        .unwrap();
        let a5 = link_hash(b"h", &d(3));
        let a9 = link_hash(&a5, &d(1));
        let b6 = link_hash(b"", &d(2));
        assert_eq!(
            links,
            vec![
                Link {
                    seq: 9,
                    prev_hash: a5.to_vec(),
                    hash: a9
                },
                Link {
                    seq: 1,
                    prev_hash: Vec::new(),
                    hash: b6
                },
                Link {
                    seq: 8,
                    prev_hash: b"h".to_vec(),
                    hash: a5
                },
            ]
        );
        assert_eq!(
            heads["a"],
            Head {
                seq: 9,
                hash: a9.to_vec()
            }
        );
        assert_eq!(
            heads["b"],
            Head {
                seq: 1,
                hash: b6.to_vec()
            }
        );
        assert!(chain_batch(&[("c", 1, d(4))], &mut heads).is_err());
    }

    #[test]
    fn keys_go_shortest_first_and_strings_escape_as_postgresql_does() {
        let value = json!({"project": "P", "tags": ["a", "b"], "user": "q\"\\\n\u{1}\u{8}\u{c}\u{1f}é", "end": ""});
        assert_eq!(
            jsonb_text(&value),
            r#"{"end": "", "tags": ["a", "b"], "user": "q\"\\\n\u0001\b\f\u001fé", "project": "P"}"#
        );
        assert_eq!(jsonb_text(&json!({})), "{}");
        assert_eq!(jsonb_text(&json!({"tags": []})), r#"{"tags": []}"#);
    }
}

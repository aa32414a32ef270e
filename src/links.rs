//! Tags kept in a link table, folded into the changes of the records they tag.
//!
//! Most trackers keep a time entry's tags in a table of their own (`timesheet_tags(timesheet_id,
//! tag_id)`), and an application that saves an entry typically updates the entry, deletes its
//! link rows and inserts the new ones: three statements, one change as a reader sees it. Capture
//! stages each link-table statement as an `L` change of the record, with its tag ids before and
//! after (02_capture.sql, link_sql()); here the `L` changes of one record in one transaction
//! become part of that record's own change in the transaction, or one "Updated" change of their
//! own when the record's columns did not change.

use std::collections::HashMap;

use crate::config::SourceConfig;
use crate::normalize::{column_text, Op, StagedChange, TagChange};

/// One record in one transaction: (txid, source, record id).
type Key = (i64, String, String);

fn key(change: &StagedChange, sources: &HashMap<String, SourceConfig>) -> Option<Key> {
    let source = sources.get(&change.source)?;
    source.link_tags()?;
    let id = column_text(change.row()?, Some(&source.id_column))?;
    Some((change.txid, change.source.clone(), id))
}

/// Fold each record's `L` changes (in staging order) into the record's own change of the same
/// transaction, if there is one: a creation shows the tags it ended with, a deletion those it
/// had, an update (the last one) what changed. Without one, the last `L` change stands for the
/// transaction's, from the tags before the first to those after the last. Returns the changes
/// left, in their order, and how many were folded away.
pub fn merge(
    changes: Vec<StagedChange>,
    sources: &HashMap<String, SourceConfig>,
) -> (Vec<StagedChange>, usize) {
    let mut groups: HashMap<Key, Vec<usize>> = HashMap::new();
    let mut records: HashMap<Key, Vec<usize>> = HashMap::new();
    for (i, change) in changes.iter().enumerate() {
        let Some(key) = key(change, sources) else {
            continue;
        };
        match change.op {
            Op::Links => groups.entry(key).or_default().push(i),
            Op::Insert | Op::Update | Op::Delete => records.entry(key).or_default().push(i),
            Op::Truncate => {}
        }
    }
    if groups.is_empty() {
        return (changes, 0);
    }
    let mut changes: Vec<Option<StagedChange>> = changes.into_iter().map(Some).collect();
    let mut folded = 0;
    for (key, links) in groups {
        let tags = |i: usize| changes[i].as_ref().and_then(|c| c.tags.clone());
        let (Some(first), Some(last)) = (tags(links[0]), tags(links[links.len() - 1])) else {
            continue;
        };
        let before = first.before.unwrap_or_default();
        let after = last.after;
        let own = records.get(&key).map(Vec::as_slice).unwrap_or_default();
        let find = |op: Op| {
            own.iter()
                .rev()
                .copied()
                .find(|i| changes[*i].as_ref().is_some_and(|c| c.op == op))
        };
        let (into, tags) = if let Some(i) = find(Op::Delete) {
            (
                i,
                TagChange {
                    before: None,
                    after: before,
                },
            )
        } else if let Some(i) = find(Op::Insert) {
            (
                i,
                TagChange {
                    before: None,
                    after,
                },
            )
        } else if let Some(i) = find(Op::Update) {
            (
                i,
                TagChange {
                    before: Some(before),
                    after,
                },
            )
        } else {
            let i = links[links.len() - 1];
            (
                i,
                TagChange {
                    before: Some(before),
                    after,
                },
            )
        };
        if let Some(change) = changes[into].as_mut() {
            change.tags = Some(tags);
        }
        for i in links.into_iter().filter(|i| *i != into) {
            changes[i] = None;
            folded += 1;
        }
    }
    (changes.into_iter().flatten().collect(), folded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::image::RowImage;
    use chrono::Utc;
    use serde_json::json;

    fn sources() -> HashMap<String, SourceConfig> {
        let config = Config::from_toml(
            r#"
            workspace = "1"
            [[source]]
            category = "time_entries"
            table = "app.entry"
            [source.fields]
            tags = "app.entry_tag.tag_id"
            "#,
        )
        .unwrap();
        config
            .sources
            .into_iter()
            .map(|s| (s.table.clone(), s))
            .collect()
    }

    fn change(id: i64, op: Op, txid: i64, tags: Option<(&[&str], &[&str])>) -> StagedChange {
        let row = RowImage::parse(json!({"id": 5, "description": "x"}).to_string()).unwrap();
        let strings = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        StagedChange {
            id,
            source: "app.entry".into(),
            category: "time_entries".into(),
            op,
            txid,
            occurred_at: Utc::now(),
            depth: 1,
            actor: Some("7".into()),
            actor_source: None,
            origin: None,
            workspace_id: Some("1".into()),
            old_row: (op == Op::Update || op == Op::Delete).then(|| row.clone()),
            new_row: (op != Op::Delete).then_some(row),
            kept: None,
            tags: tags.map(|(before, after)| TagChange {
                before: Some(strings(before)),
                after: strings(after),
            }),
        }
    }

    #[test]
    fn an_update_and_its_tag_statements_are_one_change() {
        let (left, folded) = merge(
            vec![
                change(1, Op::Update, 9, None),
                change(2, Op::Links, 9, Some((&["1", "2"], &["1"]))),
                change(3, Op::Links, 9, Some((&["1"], &["1", "3"]))),
            ],
            &sources(),
        );
        assert_eq!(folded, 2);
        assert_eq!(left.len(), 1);
        assert_eq!(
            left[0].tags,
            Some(TagChange {
                before: Some(vec!["1".into(), "2".into()]),
                after: vec!["1".into(), "3".into()],
            })
        );
    }

    #[test]
    fn tag_statements_alone_become_the_last_of_them() {
        let (left, folded) = merge(
            vec![
                change(1, Op::Links, 9, Some((&[], &["4"]))),
                change(2, Op::Update, 10, None),
                change(3, Op::Links, 9, Some((&["4"], &["4", "5"]))),
            ],
            &sources(),
        );
        assert_eq!(folded, 1);
        let ids: Vec<i64> = left.iter().map(|c| c.id).collect();
        assert_eq!(ids, [2, 3], "the other transaction's update is untouched");
        assert_eq!(left[1].tags.as_ref().unwrap().before, Some(vec![]));
        assert_eq!(left[0].tags, None);
    }

    #[test]
    fn a_creation_shows_the_tags_it_ended_with_and_a_deletion_those_it_had() {
        let (left, _) = merge(
            vec![
                change(1, Op::Insert, 9, None),
                change(2, Op::Links, 9, Some((&[], &["4", "5"]))),
            ],
            &sources(),
        );
        assert_eq!(left.len(), 1);
        assert_eq!(
            left[0].tags,
            Some(TagChange {
                before: None,
                after: vec!["4".into(), "5".into()]
            })
        );
        let (left, _) = merge(
            vec![
                change(1, Op::Links, 9, Some((&["4", "5"], &[]))),
                change(2, Op::Delete, 9, None),
            ],
            &sources(),
        );
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].op, Op::Delete);
        assert_eq!(left[0].tags.as_ref().unwrap().after, ["4", "5"]);
    }
}

//! Tamper evidence: a superuser edits, deletes and forges events; `clockwatch verify` names the
//! first place the chain breaks and exits 1. Pruning keeps the rest verifiable.

use std::process::Output;

use crate::support::*;

fn verify(db: &TestDb, extra: &[&str]) -> Output {
    cli(
        &db.url,
        &[&["verify", "--workspace", "1"][..], extra].concat(),
    )
}

fn said(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A workspace with 30 events written by the daemon's path, in three batches.
async fn chained() -> (TestDb, tokio_postgres::Client) {
    let (db, mut client, config) = installed_host().await;
    for batch in 0..3 {
        act(
            &mut client,
            Some("1"),
            &format!(
                "insert into app.tag (workspace_id, name) select 1, 'tag {batch}.' || g from generate_series(1, 10) g"
            ),
        )
        .await;
        drain(&mut client, &config).await;
    }
    (db, client)
}

#[tokio::test]
async fn an_untouched_chain_verifies() {
    let (db, _client) = chained().await;
    let out = verify(&db, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert_eq!(
        said(&out),
        "workspace 1: 30 events verified, chain intact, positions 1..30\n"
    );
}

#[tokio::test]
async fn an_edited_event_is_named() {
    let (db, client) = chained().await;
    client
        .batch_execute("update audit_log.events set author = 'Someone Else' where event_id = 12")
        .await
        .unwrap();
    let out = verify(&db, &[]);
    assert_eq!(out.status.code(), Some(1));
    let text = said(&out);
    assert!(
        text.contains("TAMPERED: event 12 (")
            && text.contains("(chain position 12) was changed after it was recorded"),
        "{text}"
    );
    // Editing the hash too does not help: the next event no longer follows it.
    client
        .batch_execute(
            "update audit_log.events e set hash = sha256(e.prev_hash || sha256(convert_to(audit_log.event_content(e), 'UTF8')))
             where event_id = 12",
        )
        .await
        .unwrap();
    let text = said(&verify(&db, &[]));
    assert!(
        text.contains("event 13 (") && text.contains("does not follow the event before it"),
        "{text}"
    );
}

#[tokio::test]
async fn a_deleted_event_is_named() {
    let (db, client) = chained().await;
    client
        .batch_execute("delete from audit_log.events where event_id in (20, 21)")
        .await
        .unwrap();
    let text = said(&verify(&db, &[]));
    assert!(
        text.contains("TAMPERED: chain positions 20..21 are missing before event 22"),
        "{text}"
    );
    // Removing the newest events shows too.
    let (db, client) = chained().await;
    client
        .batch_execute("delete from audit_log.events where event_id = 30")
        .await
        .unwrap();
    let text = said(&verify(&db, &[]));
    assert!(
        text.contains("chain positions 30..30 are missing at the end"),
        "{text}"
    );
}

#[tokio::test]
async fn a_forged_event_is_named() {
    let (db, client) = chained().await;
    // Outside the chain.
    client
        .batch_execute(
            "insert into audit_log.events (event_id, occurred_at, workspace_id, category, action_code, action,
                                           author, txid, source)
             values (999, now(), '1', 'tags', 'tag.deleted', 'Deleted tag', 'Ann Admin', 1, 'app.tag')",
        )
        .await
        .unwrap();
    let text = said(&verify(&db, &[]));
    assert!(
        text.contains("TAMPERED: event 999 (") && text.contains("is not part of the chain"),
        "{text}"
    );
    // Dressed up with a chain position of its own.
    client
        .batch_execute(
            "update audit_log.events set chain_seq = 15, prev_hash = (select hash from audit_log.events where event_id = 14),
                                         hash = '\\x00' where event_id = 999",
        )
        .await
        .unwrap();
    let text = said(&verify(&db, &[]));
    assert!(
        text.contains("TAMPERED:") && text.contains("chain position 15"),
        "{text}"
    );
}

#[tokio::test]
async fn a_batch_that_does_not_continue_the_chain_from_its_head_is_refused_whole() {
    let (db, mut client) = chained().await;
    // Two events of workspace 1 at the positions given, the first chained from the hash given,
    // as the daemon appends them after locking the head (h).
    let append = |seqs: &str, prev: &str| {
        format!(
            "select audit_log.append_events(
                 array[998, 999]::bigint[], array[now(), now()], array['1', '1'], array['tags', 'tags'],
                 array['tag.deleted', 'tag.deleted'], array['Deleted tag', 'Deleted tag'],
                 array[null, null]::text[], array[null, null]::text[], array['System', 'System'],
                 array['7', '8'], array['t', 'u'], array[null, null]::bigint[], array[false, false],
                 array[1, 1]::bigint[], array['app.tag', 'app.tag'], array[null, null]::json[],
                 array[null, null]::json[], array[null, null]::text[], array[null, null]::bigint[],
                 array['{{}}', '{{}}']::json[], array[{seqs}]::bigint[],
                 array[{prev}, sha256(h.hash || '\\x01')], array[sha256(h.hash || '\\x01'), '\\x02'])
             from audit_log.chain_heads(array['1']) h"
        )
    };
    let refused = [
        ("h.seq, h.seq + 1", "h.hash"),      // over the head's own position
        ("h.seq + 2, h.seq + 3", "h.hash"),  // leaving a gap after it
        ("h.seq + 1, h.seq + 3", "h.hash"),  // leaving a gap inside the batch
        ("h.seq + 1, h.seq + 2", "'\\x00'"), // from another hash than the head's
    ];
    for (seqs, prev) in refused {
        let tx = client.transaction().await.unwrap();
        let err = tx.query(&append(seqs, prev), &[]).await.unwrap_err();
        assert!(
            err.as_db_error()
                .unwrap()
                .message()
                .contains("1 of 1 chain heads are not where the batch was chained from"),
            "{seqs} / {prev}: {err}"
        );
        tx.rollback().await.unwrap();
    }
    assert_eq!(
        count(&client, "select count(*) from audit_log.events").await,
        30
    );
    let out = verify(&db, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));

    // Continuing from the head, it is taken, and the head moves to its last event.
    let tx = client.transaction().await.unwrap();
    tx.query(&append("h.seq + 1, h.seq + 2", "h.hash"), &[])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let head = client
        .query_one(
            "select seq, hash from audit_log.chain_head where workspace_id = '1'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(head.get::<_, i64>(0), 32);
    assert_eq!(head.get::<_, Vec<u8>>(1), vec![2u8]);
}

#[tokio::test]
async fn pruning_keeps_the_rest_of_the_chain_verifiable() {
    let (db, client) = chained().await;
    // Age the first ten events past retention, then prune them.
    client
        .batch_execute(
            "select audit_log.ensure_partition(now() - interval '400 days');
             update audit_log.events set occurred_at = now() - interval '400 days',
                                         recorded_at = now() - interval '400 days' where event_id <= 10;",
        )
        .await
        .unwrap();
    // The aged events were rewritten: recompute their hashes as a legitimate writer would have.
    client
        .batch_execute(
            "do $$ declare e audit_log.events; prev bytea := '\\x'; begin
               for e in select * from audit_log.events order by chain_seq loop
                 update audit_log.events x set prev_hash = prev,
                        hash = sha256(prev || sha256(convert_to(audit_log.event_content(e), 'UTF8')))
                 where x.event_id = e.event_id returning x.hash into prev;
               end loop;
               update audit_log.chain_head set hash = prev where workspace_id = '1';
             end $$;",
        )
        .await
        .unwrap();
    assert_eq!(
        verify(&db, &[]).status.code(),
        Some(0),
        "{}",
        said(&verify(&db, &[]))
    );
    let out = cli(&db.url, &["prune"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("removed 10 events"),
        "{out:?}"
    );
    let out = verify(&db, &[]);
    assert_eq!(
        said(&out),
        "workspace 1: 20 events verified, chain intact, positions 11..30\n"
    );
    // New events keep extending the chain after a prune.
    assert_eq!(
        count(
            &client,
            "select seq from audit_log.chain_anchor where workspace_id = '1'"
        )
        .await,
        10
    );
}

/// The canonical content as README.md and 03_chain.sql state it, for one event with every kind
/// of field: lengths in bytes of UTF-8, `~` for null, the time in microseconds since 1970, the
/// changed values and the details as stored (json keeps the text).
#[tokio::test]
async fn the_canonical_content_is_as_documented() {
    let (_db, client, _config) = installed_host().await;
    client
        .batch_execute(
            r#"select audit_log.ensure_partition('1970-01-01');
            insert into audit_log.events (event_id, occurred_at, workspace_id, category, action_code,
                action, origin, author_id, author, target_id, target, caused_by, linked, txid, source,
                previous_value, new_value, row_image, row_shape, details)
            values (7, '1970-01-01 00:00:01.5+00', 'w', 'tags', 'tag.updated', 'Updated tag', null,
                    'é', 'Zoë', null, '', null, true, 42, 'app.tag', '{"a":1}', null, '(1,"x y")', 3,
                    '{"k":"v"}');"#,
        )
        .await
        .unwrap();
    let content: Vec<String> = column(
        &client,
        "select audit_log.event_content(e) from audit_log.events e",
    )
    .await;
    assert_eq!(
        content,
        [concat!(
            "1:7",
            "7:1500000",
            "1:w",
            "4:tags",
            "11:tag.updated",
            "11:Updated tag",
            "~",
            "2:é",
            "4:Zoë",
            "~",
            "0:",
            "~",
            "4:true",
            "2:42",
            "7:app.tag",
            r#"7:{"a":1}"#,
            "~",
            r#"9:(1,"x y")"#,
            "1:3",
            r#"9:{"k":"v"}"#
        )]
    );
}

/// The daemon prints and hashes each event's content (src/chain.rs) and `verify` prints it again
/// from the stored row: awkward host values, names and details must come out the same on both
/// sides, or an untouched log would read as tampered.
#[tokio::test]
async fn the_daemon_hashes_what_verify_recomputes_for_awkward_values() {
    let (db, mut client, config) = installed_host().await;
    act(
        &mut client,
        Some("1"),
        r#"insert into app.project (workspace_id, name)
           values (1, E'Q "quoted" \\ back\nline\ttab \x01 é 日本 😀');
           insert into app.tag (workspace_id, name) values (1, 'tag, with comma'), (1, '');
           insert into app.time_entry (workspace_id, user_id, project_id, description, start_at,
                                       end_at, cost_rate, tag_ids, type)
           select 1, 1, p.id, E'{"not": "json"} \u00e9 \\u0000 ''q''', 'infinity', now(), 'NaN',
                  array(select t.id from app.tag t where t.workspace_id = 1 order by t.id desc limit 2),
                  E'caf\u00e9 \x1f'
           from app.project p where p.name like 'Q %';
           update app.time_entry set hourly_rate = 9999999999.99, description = ''
           where description like '{%';"#,
    )
    .await;
    drain(&mut client, &config).await;
    let drained: Vec<String> = column(
        &client,
        "select action_code from audit_log.events where workspace_id = '1' order by event_id",
    )
    .await;
    assert_eq!(
        drained,
        [
            "project.created",
            "tag.created",
            "tag.created",
            "time_entry.created",
            "time_entry.updated"
        ],
        "every awkward change was drained"
    );
    let out = verify(&db, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert!(said(&out).contains("chain intact"), "{}", said(&out));
}

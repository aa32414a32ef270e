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
            "update audit_log.events e set hash = sha256(e.prev_hash || convert_to(audit_log.event_content(e), 'UTF8'))
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
async fn pruning_keeps_the_rest_of_the_chain_verifiable() {
    let (db, client) = chained().await;
    // Age the first ten events past retention, then prune them.
    client
        .batch_execute(
            "select audit_log.ensure_partition(now() - interval '400 days');
             update audit_log.events set occurred_at = now() - interval '400 days' where event_id <= 10;",
        )
        .await
        .unwrap();
    // The aged events were rewritten: recompute their hashes as a legitimate writer would have.
    client
        .batch_execute(
            "do $$ declare e audit_log.events; prev bytea := '\\x'; begin
               for e in select * from audit_log.events order by chain_seq loop
                 update audit_log.events x set prev_hash = prev,
                        hash = sha256(prev || convert_to(audit_log.event_content(e), 'UTF8'))
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

/// event_content() prints an event's canonical content field by field instead of through a jsonb array;
/// every hash already written depends on the two giving the same text, awkward values included.
#[tokio::test]
async fn the_canonical_content_is_the_jsonb_array_text_for_awkward_values() {
    let (_db, client, _config) = installed_host().await;
    client
        .batch_execute(
            r#"select audit_log.ensure_partition(now());
            insert into audit_log.events (event_id, occurred_at, workspace_id, category, action_code,
                action, origin, author_id, author, target_id, target, caused_by, linked, txid, source,
                previous_value, new_value, row_image, row_shape, details)
            values
              (9223372036854775807, now(), 'w "1"', 'tags', 'tag.updated', 'Updated tag', null, null,
               'System', null, null, null, false, 0, 'app.tag', null, null, null, null, '{}'),
              (-5, '2026-11-26 01:02:03.000456+00', E'tab\there', 'time_entries', 'time_entry.updated',
               'Updated time entry', E'back\\slash', E'line\nbreak', 'Zoë 日本 😀', E'\u0001ctl', '/', 42,
               true, 123456789012, 'app.time_entry',
               '{"n": 1.50, "big": 12345678901234567890, "e": 1e3, "neg": -0.0, "s": "a\"b"}',
               '{"n": 1.5, "nested": {"b": [1, "x", null, true], "a": {}}, "u": "\u00e9\u001fx"}',
               E'(1,"a ""b"" \\\\c",,t,"{1,2}")', 3, '{"": "", "longer key": [], "k": false}');"#,
        )
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let differing = count(
        &client,
        r#"select count(*) from audit_log.events e
           where audit_log.event_content(e) is distinct from jsonb_build_array(
               e.event_id, to_char(e.occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
               e.workspace_id, e.category, e.action_code, e.action, e.origin, e.author_id, e.author,
               e.target_id, e.target, e.caused_by, e.linked, e.txid, e.source, e.previous_value,
               e.new_value, e.row_image, e.row_shape, e.details)::text"#,
    )
    .await;
    assert_eq!(differing, 0);
    assert_eq!(
        count(&client, "select count(*) from audit_log.events").await,
        2
    );
}

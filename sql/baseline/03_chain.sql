-- Clockwatch baseline, part 3 of 9: the hash chain.
--
-- Every event carries a SHA-256 hash chained to the previous event of its workspace, so editing,
-- removing or inserting an event afterwards breaks the chain where it happened:
--
--     hash = sha256(previous hash || sha256(canonical content))
--
-- The daemon prints each event's canonical content, hashes it and chains it (src/chain.rs) from
-- the heads chain_heads() locks, and append_events() (04_append.sql) stores the links.
-- `clockwatch verify` recomputes every link from the stored row with event_content() below, so a
-- stored value that no longer matches what was hashed shows. sha256() is built into PostgreSQL
-- 11+: no extension.
--
-- The content is printed by the daemon rather than here because printing it was the largest
-- part of an append that was not writing rows (8.5 us an event, bench/README.md). That is safe
-- by construction: every field is stored exactly as the daemon printed it (the JSON values as
-- json, which keeps their text), and the form below has no escaping to get wrong.

-- The canonical content of an event: its fields in a fixed order, each as its length in bytes of
-- UTF-8, a colon and its text, or `~` for SQL null, with nothing between them:
--
--   event_id, occurred_at (microseconds since 1970-01-01 00:00 UTC), workspace_id, category,
--   action_code, action, origin, author_id, author, target_id, target, caused_by,
--   linked (true or false), txid, source, previous_value, new_value, row_image, row_shape,
--   details
--
-- integers in decimal, JSON values as stored. `3:abc2:de~` is abc, de and a null. The hash is
-- over its UTF-8 bytes. (Bytes of UTF-8, not characters: the daemon's text is UTF-8 whatever the
-- server's encoding, and length() counts bytes, not characters, in a SQL_ASCII database.)
-- README.md, "Tamper evidence", states the same for other tools.
--
-- STABLE (as extract() from a timestamptz is), with no SET search_path and no FROM: anything
-- else stops PostgreSQL from inlining this SQL function, which `clockwatch verify` runs for every
-- event. It names only pg_catalog functions, and every caller runs with Clockwatch's schema and
-- pg_catalog on the search_path.
create function event_content(e events) returns text
language sql stable
as $$
    select concat(
        octet_length(e.event_id::text) || ':' || e.event_id,
        -- (Exact: extract() returns numeric, the microseconds its fraction.)
        octet_length(((extract(epoch from e.occurred_at) * 1000000)::bigint)::text) || ':'
            || (extract(epoch from e.occurred_at) * 1000000)::bigint,
        coalesce(octet_length(convert_to(e.workspace_id, 'UTF8')) || ':' || e.workspace_id, '~'),
        coalesce(octet_length(convert_to(e.category, 'UTF8')) || ':' || e.category, '~'),
        coalesce(octet_length(convert_to(e.action_code, 'UTF8')) || ':' || e.action_code, '~'),
        coalesce(octet_length(convert_to(e.action, 'UTF8')) || ':' || e.action, '~'),
        coalesce(octet_length(convert_to(e.origin, 'UTF8')) || ':' || e.origin, '~'),
        coalesce(octet_length(convert_to(e.author_id, 'UTF8')) || ':' || e.author_id, '~'),
        coalesce(octet_length(convert_to(e.author, 'UTF8')) || ':' || e.author, '~'),
        coalesce(octet_length(convert_to(e.target_id, 'UTF8')) || ':' || e.target_id, '~'),
        coalesce(octet_length(convert_to(e.target, 'UTF8')) || ':' || e.target, '~'),
        coalesce(octet_length(e.caused_by::text) || ':' || e.caused_by, '~'),
        coalesce(octet_length(e.linked::text) || ':' || e.linked, '~'),
        coalesce(octet_length(e.txid::text) || ':' || e.txid, '~'),
        coalesce(octet_length(convert_to(e.source, 'UTF8')) || ':' || e.source, '~'),
        coalesce(octet_length(convert_to(e.previous_value::text, 'UTF8')) || ':' || e.previous_value, '~'),
        coalesce(octet_length(convert_to(e.new_value::text, 'UTF8')) || ':' || e.new_value, '~'),
        coalesce(octet_length(convert_to(e.row_image, 'UTF8')) || ':' || e.row_image, '~'),
        coalesce(octet_length(e.row_shape::text) || ':' || e.row_shape, '~'),
        coalesce(octet_length(convert_to(e.details::text, 'UTF8')) || ':' || e.details, '~'))
$$;

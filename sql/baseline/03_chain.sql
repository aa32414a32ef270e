-- Clockwatch baseline, part 3 of 7: the hash chain.
--
-- Every event carries a SHA-256 hash chained to the previous event of its workspace, so editing,
-- removing or inserting an event afterwards breaks the chain where it happened:
--
--     hash = sha256(previous hash || sha256(canonical content))
--
-- The daemon prints each event's canonical content and hashes it (src/chain.rs) as it writes the
-- event; append_events() (04_append.sql) chains those digests. `clockwatch verify` recomputes
-- the content from the stored row with event_content() below, so a stored value that no longer
-- matches what was hashed shows. sha256() is built into PostgreSQL 11+: no extension.
--
-- The content is printed by the daemon rather than here because printing it was the largest
-- part of an append that was not writing rows (8.5 us an event, bench/README.md). That is safe
-- by construction: every field is stored exactly as the daemon printed it (the JSON values as
-- json, which keeps their text), and the form below has no escaping to get wrong.

-- The canonical content of an event: its fields in a fixed order, each as its length in
-- characters, a colon and its text, or `~` for SQL null, with nothing between them:
--
--   event_id, occurred_at (microseconds since 1970-01-01 00:00 UTC), workspace_id, category,
--   action_code, action, origin, author_id, author, target_id, target, caused_by,
--   linked (true or false), txid, source, previous_value, new_value, row_image, row_shape,
--   details
--
-- integers in decimal, JSON values as stored. `3:abc2:de~` is abc, de and a null. The hash is
-- over its UTF-8 bytes. (README.md, "Tamper evidence", states the same for other tools.)
--
-- STABLE (as extract() from a timestamptz is), with no SET search_path and no FROM: anything
-- else stops PostgreSQL from inlining this SQL function, which `clockwatch verify` runs for every
-- event. It names only pg_catalog functions, and every caller runs with Clockwatch's schema and
-- pg_catalog on the search_path.
create function event_content(e events) returns text
language sql stable
as $$
    select concat(
        length(e.event_id::text) || ':' || e.event_id,
        -- (Exact: extract() returns numeric, the microseconds its fraction.)
        length(((extract(epoch from e.occurred_at) * 1000000)::bigint)::text) || ':'
            || (extract(epoch from e.occurred_at) * 1000000)::bigint,
        coalesce(length(e.workspace_id) || ':' || e.workspace_id, '~'),
        coalesce(length(e.category) || ':' || e.category, '~'),
        coalesce(length(e.action_code) || ':' || e.action_code, '~'),
        coalesce(length(e.action) || ':' || e.action, '~'),
        coalesce(length(e.origin) || ':' || e.origin, '~'),
        coalesce(length(e.author_id) || ':' || e.author_id, '~'),
        coalesce(length(e.author) || ':' || e.author, '~'),
        coalesce(length(e.target_id) || ':' || e.target_id, '~'),
        coalesce(length(e.target) || ':' || e.target, '~'),
        coalesce(length(e.caused_by::text) || ':' || e.caused_by, '~'),
        coalesce(length(e.linked::text) || ':' || e.linked, '~'),
        coalesce(length(e.txid::text) || ':' || e.txid, '~'),
        coalesce(length(e.source) || ':' || e.source, '~'),
        coalesce(length(e.previous_value::text) || ':' || e.previous_value, '~'),
        coalesce(length(e.new_value::text) || ':' || e.new_value, '~'),
        coalesce(length(e.row_image) || ':' || e.row_image, '~'),
        coalesce(length(e.row_shape::text) || ':' || e.row_shape, '~'),
        coalesce(length(e.details::text) || ':' || e.details, '~'))
$$;

-- chain_hash(head, digest) over (partition by workspace order by event_id): the running hash of
-- a workspace's events from their content digests, starting from that workspace's head hash.
-- (PL/pgSQL, not SQL: an aggregate calls its step function through the function manager, where a
-- SQL function starts an executor per call and PL/pgSQL evaluates a simple expression.)
create function chain_step(p_state bytea, p_head bytea, p_digest bytea) returns bytea
language plpgsql immutable parallel safe
as $$ begin return sha256(coalesce(p_state, p_head) || p_digest); end $$;

create aggregate chain_hash(bytea, bytea) (sfunc = chain_step, stype = bytea);

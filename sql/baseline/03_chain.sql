-- Clockwatch baseline, part 3 of 7: the hash chain.
--
-- Every event carries the SHA-256 of its canonical content chained to the previous event of its
-- workspace, so editing, removing or inserting an event afterwards breaks the chain where it
-- happened. This file defines what is hashed (event_content) and the running hash
-- (chain_hash); append_events() (04_append.sql) writes the chain and `clockwatch verify`
-- recomputes it with these same functions. sha256() is built into PostgreSQL 11+: no extension.

-- The canonical content of an event: its fields in a fixed order, printed as the elements of a
-- jsonb array print: strings quoted and escaped by to_json() (the same escaping jsonb uses),
-- integers and booleans bare, SQL null as null, jsonb values in jsonb's own canonical text (sorted
-- keys, normalised numbers and spacing), all joined with ", ". Printing each field, rather than
-- building a jsonb array and printing it, skips copying every jsonb value into the array (about
-- 9 -> 6.7 us per event); tests/it/chain.rs checks awkward values.
--
-- No SET search_path and STABLE, as to_char() is: either would stop PostgreSQL from inlining this
-- SQL function, which then ran as a separate call costing 15 us per event. It names only
-- pg_catalog functions, and every caller runs with Clockwatch's schema and pg_catalog on the
-- search_path.
create function event_content(e events) returns text
language sql stable
as $$
    select '[' || e.event_id
        || ', ' || to_json(to_char(e.occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
        || ', ' || to_json(e.workspace_id)
        || ', ' || to_json(e.category)
        || ', ' || to_json(e.action_code)
        || ', ' || to_json(e.action)
        || ', ' || coalesce(to_json(e.origin)::text, 'null')
        || ', ' || coalesce(to_json(e.author_id)::text, 'null')
        || ', ' || to_json(e.author)
        || ', ' || coalesce(to_json(e.target_id)::text, 'null')
        || ', ' || coalesce(to_json(e.target)::text, 'null')
        || ', ' || coalesce(e.caused_by::text, 'null')
        || ', ' || e.linked
        || ', ' || e.txid
        || ', ' || to_json(e.source)
        || ', ' || coalesce(e.previous_value::text, 'null')
        || ', ' || coalesce(e.new_value::text, 'null')
        || ', ' || coalesce(to_json(e.row_image)::text, 'null')
        || ', ' || coalesce(e.row_shape::text, 'null')
        || ', ' || coalesce(e.details::text, 'null')
        || ']'
$$;

-- chain_hash(head, content) over (partition by workspace order by event_id): the running hash of
-- a workspace's events, starting from that workspace's head hash.
-- (PL/pgSQL, not SQL: an aggregate calls its step function through the function manager, where a
-- SQL function starts an executor per call and PL/pgSQL evaluates a simple expression.)
create function chain_step(p_state bytea, p_head bytea, p_content bytea) returns bytea
language plpgsql immutable parallel safe
as $$ begin return sha256(coalesce(p_state, p_head) || p_content); end $$;

create aggregate chain_hash(bytea, bytea) (sfunc = chain_step, stype = bytea);

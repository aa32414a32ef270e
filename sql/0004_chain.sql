-- Clockwatch 0004: tamper evidence. Every event carries the SHA-256 of its canonical content
-- chained to the previous event of its workspace, so editing, removing or inserting an event
-- afterwards breaks the chain where it happened (`clockwatch verify` finds it).
--
-- Runs with `search_path = <clockwatch schema>, pg_catalog, pg_temp`, like every migration.
-- sha256() is built into PostgreSQL 11+: no extension.

alter table events
    add column chain_seq bigint,   -- position in the workspace's chain, from 1
    add column prev_hash bytea,    -- hash of the event before it (or of the anchor)
    add column hash      bytea;    -- sha256(prev_hash || canonical content)

create index events_chain on events (workspace_id, chain_seq);

-- The newest link of each workspace's chain: row-locked while a batch appends, so daemons
-- append to one workspace's chain one at a time.
create table chain_head (
    workspace_id text primary key,
    seq          bigint not null,
    hash         bytea not null
);

-- Where the retained chain starts after pruning: the last pruned event's position and hash.
create table chain_anchor (
    workspace_id text primary key,
    seq          bigint not null,
    hash         bytea not null
);

-- The canonical content of an event: a JSON array of its fields in a fixed order, as
-- PostgreSQL's jsonb prints it (deterministic: sorted keys, normalised numbers and spacing).
-- Computed the same way when writing and when verifying.
create function event_content(e events) returns text
language sql immutable
set search_path from current
as $$
    select jsonb_build_array(
        e.event_id, to_char(e.occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        e.workspace_id, e.category, e.action_code, e.action, e.origin, e.author_id, e.author,
        e.target_id, e.target, e.caused_by, e.linked, e.txid, e.source, e.previous_value,
        e.new_value, e.row_data, e.details)::text
$$;

-- Write a batch of events, chaining each to its workspace's previous event. Workspaces are
-- locked in sorted order (no deadlock between daemons); events chain in event_id order.
create function append_events(
    p_event_id bigint[], p_occurred_at timestamptz[], p_workspace_id text[], p_category text[],
    p_action_code text[], p_action text[], p_origin text[], p_author_id text[], p_author text[],
    p_target_id text[], p_target text[], p_caused_by bigint[], p_linked boolean[], p_txid bigint[],
    p_source text[], p_previous_value jsonb[], p_new_value jsonb[], p_row_data jsonb[],
    p_details jsonb[])
returns integer
language plpgsql
set search_path from current
as $$
declare
    v_workspace text;
    v_seq       bigint;
    v_hash      bytea;
    v_event     events;
    v_rows      events[] := '{}';
begin
    for v_workspace in select distinct w from unnest(p_workspace_id) w order by 1 loop
        insert into chain_head (workspace_id, seq, hash)
        select v_workspace, coalesce(a.seq, 0), coalesce(a.hash, '\x'::bytea)
        from (select 1) one left join chain_anchor a on a.workspace_id = v_workspace
        on conflict (workspace_id) do nothing;
        select h.seq, h.hash into v_seq, v_hash from chain_head h
        where h.workspace_id = v_workspace for update;

        for v_event in
            select u.event_id, u.occurred_at, now(), u.workspace_id, u.category, u.action_code,
                   u.action, u.origin, u.author_id, u.author, u.target_id, u.target, u.caused_by,
                   u.linked, u.txid, u.source, u.previous_value, u.new_value, u.row_data, u.details,
                   null::bigint, null::bytea, null::bytea
            from unnest(p_event_id, p_occurred_at, p_workspace_id, p_category, p_action_code,
                        p_action, p_origin, p_author_id, p_author, p_target_id, p_target,
                        p_caused_by, p_linked, p_txid, p_source, p_previous_value, p_new_value,
                        p_row_data, p_details)
                 as u(event_id, occurred_at, workspace_id, category, action_code, action, origin,
                      author_id, author, target_id, target, caused_by, linked, txid, source,
                      previous_value, new_value, row_data, details)
            where u.workspace_id = v_workspace
            order by u.event_id
        loop
            v_seq := v_seq + 1;
            v_event.chain_seq := v_seq;
            v_event.prev_hash := v_hash;
            v_hash := sha256(v_hash || convert_to(event_content(v_event), 'UTF8'));
            v_event.hash := v_hash;
            v_rows := v_rows || v_event;  -- plpgsql appends to an expanded array in place
        end loop;
        update chain_head set seq = v_seq, hash = v_hash where workspace_id = v_workspace;
    end loop;
    insert into events select * from unnest(v_rows);
    return cardinality(v_rows);
end
$$;

-- Before pruning removes the start of a chain, remember where the retained part begins: the
-- last removed event's position and hash, per workspace.
create or replace function before_prune(p_partition text, p_cutoff timestamptz) returns void
language plpgsql
set search_path from current
as $$
begin
    execute format(
        'insert into chain_anchor (workspace_id, seq, hash)
         select distinct on (workspace_id) workspace_id, chain_seq, hash
         from %I where occurred_at < $1 and chain_seq is not null
         order by workspace_id, chain_seq desc
         on conflict (workspace_id) do update set seq = excluded.seq, hash = excluded.hash
         where chain_anchor.seq < excluded.seq', p_partition)
    using p_cutoff;
end
$$;

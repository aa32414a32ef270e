-- Clockwatch baseline, part 4 of 9: appending drained events.
--
-- The daemon claims staged changes (claim_*(), 08_claims.sql), normalises them, and writes the
-- batch's events with append_events() in the same transaction that deletes the batch from
-- staging, so a change is never lost or doubled. chain_heads() and append_events() are SECURITY
-- DEFINER: the daemon role may add events through them, chained, but has no INSERT, UPDATE or
-- DELETE on events itself.

-- The chain heads of the given workspaces, row-locked until the transaction ends, for the daemon
-- to chain a batch's events from. A workspace's first event chains from its anchor (left by
-- pruning) or from nothing. The locks are taken in sorted order: daemons append to one
-- workspace's chain one at a time, and two batches never wait on each other in a cycle.
create function chain_heads(p_workspace_id text[])
returns table (workspace_id text, seq bigint, hash bytea)
language plpgsql
security definer
set search_path from current
set plan_cache_mode = force_generic_plan
as $$
begin
    -- Looked for before inserting: an INSERT ... ON CONFLICT on every batch cost 45 us of a
    -- steady-state batch's server time (pg_stat_statements, bench/steady), for heads that
    -- almost always exist.
    if exists (select from unnest(p_workspace_id) u(workspace_id)
               where not exists (select from chain_head h where h.workspace_id = u.workspace_id)) then
        insert into chain_head (workspace_id, seq, hash)
        select w.workspace_id, coalesce(a.seq, 0), coalesce(a.hash, '\x'::bytea)
        from (select distinct u.workspace_id from unnest(p_workspace_id) u(workspace_id)) w
        left join chain_anchor a on a.workspace_id = w.workspace_id
        on conflict on constraint chain_head_pkey do nothing;
    end if;
    return query
        select h.workspace_id, h.seq, h.hash
        from chain_head h
        where h.workspace_id = any (p_workspace_id)
        order by h.workspace_id
        for update;
end
$$;
revoke execute on function chain_heads(text[]) from public;

-- Write a batch of events (one array per column, in the same order), chained by the daemon from
-- the heads chain_heads() locked in the same transaction, and move each workspace's head to the
-- batch's last event there. Returns how many events were written.
--
-- * The daemon prints and hashes each event's content and chains it (src/chain.rs): printing
--   the content here cost 8.5 us an event of the server's CPU, and chaining it with a window
--   aggregate (a PL/pgSQL step per event, a sort and a second window for the predecessor's hash)
--   about 8 us more. The daemon could chain something other than what it stores, but it could as
--   well append a false event outright; what the chain guards is that no event changes once
--   written, and `clockwatch verify` recomputes every link from the stored rows.
-- * A batch that does not continue each chain from its head, position for position, is refused
--   whole: one chained from a stale head would fork the chain, and one that skipped positions or
--   moved a head elsewhere would hide events from `clockwatch verify`.
-- * plan_cache_mode = force_generic_plan: the arguments are arrays whose contents the planner
--   cannot see into, so a custom plan comes out the same as the generic one but costs a full plan
--   of every statement per call; for a one-event batch the plan cache kept choosing custom plans
--   (500-530 us per call against 230 with the generic plan).
create function append_events(
    p_event_id bigint[], p_occurred_at timestamptz[], p_workspace_id text[], p_category text[],
    p_action_code text[], p_action text[], p_origin text[], p_author_id text[], p_author text[],
    p_target_id text[], p_target text[], p_caused_by bigint[], p_linked boolean[], p_txid bigint[],
    p_source text[], p_previous_value json[], p_new_value json[], p_row_image text[],
    p_row_shape bigint[], p_details json[], p_chain_seq bigint[], p_prev_hash bytea[],
    p_hash bytea[])
returns integer
language plpgsql
security definer
set search_path from current
set plan_cache_mode = force_generic_plan
as $$
declare
    v_heads integer;
    v_moved integer;
    v_count integer;
begin
    -- The changed values must read as jsonb too, as report_changes reads them: json keeps a
    -- \u0000 escape or a lone surrogate that `->>` cannot turn into text, and one such event
    -- would fail every query of report_changes over it. Such a batch is refused, and the
    -- daemon sets the change aside (dead_letter) with the reason.
    perform p_previous_value::jsonb[], p_new_value::jsonb[];
    -- An event older than the retention would be pruned at once, and the only thing its
    -- append could do is move the chain's anchor when it goes (see chain_anchor): refused, but
    -- to the schema's owner (who may write events directly anyway: a backfill, a benchmark). A
    -- long transaction's events are hours old, never this old, and are taken in any order.
    if exists (select from unnest(p_occurred_at) t(at) where t.at < now() - (select retention from settings))
       and not pg_has_role(session_user, (select n.nspowner from pg_namespace n
                                          where n.nspname = current_schema()), 'MEMBER') then
        raise exception 'append_events: an event of % is older than the retention (%): it would be pruned at once',
            (select min(t.at) from unnest(p_occurred_at) t(at)), (select retention from settings)
            using errcode = '22023';
    end if;
    -- Each workspace's head moves to the batch's last event there, and only from just before its
    -- first: the batch's events of a workspace must take the positions after the head, without
    -- a gap, the first chained from the head's hash.
    with batch as (
        select u.workspace_id, min(u.chain_seq) as first_seq, max(u.chain_seq) as last_seq,
               count(*) as events,
               (array_agg(u.prev_hash order by u.chain_seq))[1] as first_prev,
               (array_agg(u.hash order by u.chain_seq desc))[1] as last_hash
        from unnest(p_workspace_id, p_chain_seq, p_prev_hash, p_hash)
             as u(workspace_id, chain_seq, prev_hash, hash)
        group by u.workspace_id
    ), moved as (
        update chain_head h set seq = b.last_seq, hash = b.last_hash
        from batch b
        where h.workspace_id = b.workspace_id and h.seq = b.first_seq - 1
          and h.hash = b.first_prev and b.events = b.last_seq - b.first_seq + 1
        returning 1
    )
    select (select count(*) from batch), (select count(*) from moved) into v_heads, v_moved;
    if v_moved <> v_heads then
        raise exception 'append_events: % of % chain heads are not where the batch was chained from',
            v_heads - v_moved, v_heads
            using hint = 'lock the heads with chain_heads() in the same transaction and chain from them';
    end if;
    insert into events (event_id, occurred_at, recorded_at, workspace_id, category, action_code,
                        action, origin, author_id, author, target_id, target, caused_by, linked,
                        txid, source, previous_value, new_value, row_image, row_shape, details,
                        chain_seq, prev_hash, hash)
    select u.event_id, u.occurred_at, now(), u.workspace_id, u.category, u.action_code, u.action,
           u.origin, u.author_id, u.author, u.target_id, u.target, u.caused_by, u.linked, u.txid,
           u.source, u.previous_value, u.new_value, u.row_image, u.row_shape, u.details,
           u.chain_seq, u.prev_hash, u.hash
    from unnest(p_event_id, p_occurred_at, p_workspace_id, p_category, p_action_code, p_action,
                p_origin, p_author_id, p_author, p_target_id, p_target, p_caused_by, p_linked,
                p_txid, p_source, p_previous_value, p_new_value, p_row_image, p_row_shape,
                p_details, p_chain_seq, p_prev_hash, p_hash)
         as u(event_id, occurred_at, workspace_id, category, action_code, action, origin,
              author_id, author, target_id, target, caused_by, linked, txid, source,
              previous_value, new_value, row_image, row_shape, details, chain_seq, prev_hash,
              hash);
    get diagnostics v_count = row_count;
    return v_count;
end
$$;
revoke execute on function append_events(bigint[], timestamptz[], text[], text[], text[], text[],
    text[], text[], text[], text[], text[], bigint[], boolean[], bigint[], text[], json[], json[],
    text[], bigint[], json[], bigint[], bytea[], bytea[]) from public;

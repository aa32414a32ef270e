-- Clockwatch baseline, part 4 of 7: appending drained events.
--
-- The daemon claims staged changes (sql/queries/claim.sql), normalises them, and writes the
-- batch's events with append_events() in the same transaction that deletes the batch from
-- staging, so a change is never lost or doubled. append_events() is SECURITY DEFINER: the daemon
-- role may add events through it, chained, but has no INSERT, UPDATE or DELETE on events itself.

-- Write a batch of events (one array per column, in the same order), chaining each to its
-- workspace's previous event. p_digest holds each event's content digest, sha256 of its
-- canonical content as the daemon printed it (03_chain.sql). Returns how many were written.
--
-- * Set-based: the chain is computed by the chain_hash window aggregate inside one INSERT ...
--   SELECT (a row-by-row PL/pgSQL loop cost 28 ms per 1,000 events, where inserting them costs 10).
-- * The content is hashed by the daemon, not here: printing it cost 8.5 us an event of the
--   server's CPU. The daemon could hash something other than what it stores, but it could as
--   well append a false event outright; what the chain guards is that no event changes once
--   written, and `clockwatch verify` recomputes every digest from the stored row.
-- * plan_cache_mode = force_generic_plan: the arguments are arrays whose contents the planner
--   cannot see into, so a custom plan comes out the same as the generic one but costs a full plan
--   of every statement per call; for a one-event batch the plan cache kept choosing custom plans
--   (500-530 us per call against 230 with the generic plan).
create function append_events(
    p_event_id bigint[], p_occurred_at timestamptz[], p_workspace_id text[], p_category text[],
    p_action_code text[], p_action text[], p_origin text[], p_author_id text[], p_author text[],
    p_target_id text[], p_target text[], p_caused_by bigint[], p_linked boolean[], p_txid bigint[],
    p_source text[], p_previous_value json[], p_new_value json[], p_row_image text[],
    p_row_shape bigint[], p_details jsonb[], p_digest bytea[])
returns integer
language plpgsql
security definer
set search_path from current
set plan_cache_mode = force_generic_plan
as $$
declare
    v_count integer;
begin
    -- The changed values must read as jsonb too, as report_changes reads them: json keeps a
    -- \u0000 escape or a lone surrogate that `->>` cannot turn into text, and one such event
    -- would fail every query of report_changes over it. Such a batch is refused, and the
    -- daemon sets the change aside (dead_letter) with the reason.
    perform p_previous_value::jsonb[], p_new_value::jsonb[];
    -- A workspace's first event chains from its anchor (left by pruning) or from nothing.
    insert into chain_head (workspace_id, seq, hash)
    select w.workspace_id, coalesce(a.seq, 0), coalesce(a.hash, '\x'::bytea)
    from (select distinct workspace_id from unnest(p_workspace_id) workspace_id) w
    left join chain_anchor a on a.workspace_id = w.workspace_id
    on conflict (workspace_id) do nothing;
    -- Row locks on the heads, taken in sorted order: daemons append to one workspace's chain one
    -- at a time, and two batches never wait on each other in a cycle.
    perform 1 from chain_head h
    where h.workspace_id = any (p_workspace_id)
    order by h.workspace_id
    for update;

    with batch as (
        select u.*, now() as recorded_at
        from unnest(p_event_id, p_occurred_at, p_workspace_id, p_category, p_action_code,
                    p_action, p_origin, p_author_id, p_author, p_target_id, p_target,
                    p_caused_by, p_linked, p_txid, p_source, p_previous_value, p_new_value,
                    p_row_image, p_row_shape, p_details, p_digest)
             as u(event_id, occurred_at, workspace_id, category, action_code, action, origin,
                  author_id, author, target_id, target, caused_by, linked, txid, source,
                  previous_value, new_value, row_image, row_shape, details, digest)
    ), chained as (
        select b.*, h.hash as head_hash,
               h.seq + row_number() over w as chain_seq,
               chain_hash(h.hash, b.digest) over w as hash
        from batch b
        join chain_head h on h.workspace_id = b.workspace_id
        window w as (partition by b.workspace_id order by b.event_id)
    ), inserted as (
        insert into events (event_id, occurred_at, recorded_at, workspace_id, category,
                            action_code, action, origin, author_id, author, target_id, target,
                            caused_by, linked, txid, source, previous_value, new_value, row_image,
                            row_shape, details, chain_seq, prev_hash, hash)
        select c.event_id, c.occurred_at, c.recorded_at, c.workspace_id, c.category,
               c.action_code, c.action, c.origin, c.author_id, c.author, c.target_id, c.target,
               c.caused_by, c.linked, c.txid, c.source, c.previous_value, c.new_value, c.row_image,
               c.row_shape, c.details, c.chain_seq,
               coalesce(lag(c.hash) over (partition by c.workspace_id order by c.event_id),
                        c.head_hash),
               c.hash
        from chained c
        returning workspace_id, chain_seq, hash
    ), heads as (
        update chain_head h set seq = l.chain_seq, hash = l.hash
        from (select distinct on (i.workspace_id) i.workspace_id, i.chain_seq, i.hash
              from inserted i
              order by i.workspace_id, i.chain_seq desc) l
        where h.workspace_id = l.workspace_id
    )
    select count(*) into v_count from inserted;
    return v_count;
end
$$;
revoke execute on function append_events(bigint[], timestamptz[], text[], text[], text[], text[],
    text[], text[], text[], text[], text[], bigint[], boolean[], bigint[], text[], json[], json[],
    text[], bigint[], jsonb[], bytea[]) from public;

-- Clockwatch 0006: speed (issue 6). Capture, chaining, pruning and reports do the same work
-- for less; staged rows, events, hashes and report rows are unchanged. Each section says what it
-- fixes and what was measured (bench/README.md has the runs).
--
-- Capture, measured per statement inside the server:
--
-- * A multi-row UPDATE went quadratic in a session that had run a few single-row updates first:
--   0001 paired old and new images with a join on row_number(), PL/pgSQL cached a generic plan
--   made for a 1-row transition table, and that plan is a nested loop recomputing to_jsonb() for
--   every pair: 1 s for a 500-row UPDATE instead of 10 ms, and worse for a cascade. Images are now
--   paired with a two-array unnest(), which pairs by position with no join and no plan to go wrong.
-- * The planner pulled the to_jsonb() subquery up into the filter, so every row was converted to
--   jsonb two or three times. OFFSET 0 keeps the subquery whole: one conversion per row image.
-- * mark_linked() ran (a PL/pgSQL call) before every host UPDATE and DELETE, though it only has
--   work inside a foreign-key cascade or a host trigger. A WHEN clause now skips the call at the
--   top level; PostgreSQL evaluates it without entering PL/pgSQL.
--
-- Runs with `search_path = <clockwatch schema>, pg_catalog, pg_temp`, like every migration.

create or replace function capture() returns trigger
language plpgsql
security definer
set search_path from current
as $$
declare
    v_source    text   := TG_ARGV[0];
    v_category  text   := TG_ARGV[1];
    v_ws_column text   := TG_ARGV[2];
    v_excluded  text[] := TG_ARGV[3]::text[];
    v_ignored   text[] := TG_ARGV[4]::text[];
    v_actor     text   := nullif(current_setting('clockwatch.actor', true), '');
    v_origin    text   := nullif(current_setting('clockwatch.origin', true), '');
    v_depth     integer := pg_trigger_depth();
    v_mark      text;
    v_staged    bigint;
begin
    if TG_OP in ('UPDATE', 'DELETE') then
        v_mark := 'clockwatch.linked_' || TG_RELID;
        -- Only a mark left by mark_linked() in this transaction counts (see linked_mark()).
        if coalesce(current_setting(v_mark, true), '') <> ''
           and current_setting(v_mark, true) = linked_mark() then
            v_depth := greatest(v_depth, 2);
            perform set_config(v_mark, '', true);
        end if;
    end if;

    if TG_OP = 'INSERT' then
        insert into staging (source, category, op, txid, stmt_at, depth, actor, origin,
                             workspace_id, old_row, new_row)
        select v_source, v_category, 'I', pg_current_xact_id()::text::bigint, statement_timestamp(),
               v_depth, v_actor, v_origin, r.ws, null, r.new_row
        from (select n.new_row, n.new_row ->> v_ws_column as ws
              from (select to_jsonb(t) - v_excluded as new_row from clockwatch_new t offset 0) n
              offset 0) r
        where r.ws is null
           or exists (select 1 from workspace_category e
                      where e.category = v_category and e.workspace_id = r.ws);
    elsif TG_OP = 'UPDATE' then
        -- PostgreSQL appends the before and after image of each updated row to the two transition
        -- tables together, so the n-th old row and the n-th new row are the same row. Pairing by
        -- position (not by key) also pairs rows whose key was updated.
        insert into staging (source, category, op, txid, stmt_at, depth, actor, origin,
                             workspace_id, old_row, new_row)
        select v_source, v_category, 'U', pg_current_xact_id()::text::bigint, statement_timestamp(),
               v_depth, v_actor, v_origin, p.ws, p.old_row, p.new_row
        from (select u.old_row, u.new_row,
                     coalesce(u.new_row ->> v_ws_column, u.old_row ->> v_ws_column) as ws
              from unnest(array(select to_jsonb(t) - v_excluded from clockwatch_old t),
                          array(select to_jsonb(t) - v_excluded from clockwatch_new t))
                   as u(old_row, new_row)
              -- An update that changes nothing, or only ignored columns, is not a change.
              where (u.old_row - v_ignored) is distinct from (u.new_row - v_ignored)
              offset 0) p
        where p.ws is null
           or exists (select 1 from workspace_category e
                      where e.category = v_category
                        and e.workspace_id in (p.new_row ->> v_ws_column, p.old_row ->> v_ws_column));
    elsif TG_OP = 'TRUNCATE' then
        -- Every row of every workspace goes at once: one change, recorded for all workspaces
        -- ('*') when any workspace audits the category, rather than silence.
        insert into staging (source, category, op, txid, stmt_at, depth, actor, origin,
                             workspace_id, old_row, new_row)
        select v_source, v_category, 'T', pg_current_xact_id()::text::bigint, statement_timestamp(),
               v_depth, v_actor, v_origin, '*', null, null
        where exists (select 1 from workspace_category e where e.category = v_category);
    else
        insert into staging (source, category, op, txid, stmt_at, depth, actor, origin,
                             workspace_id, old_row, new_row)
        select v_source, v_category, 'D', pg_current_xact_id()::text::bigint, statement_timestamp(),
               v_depth, v_actor, v_origin, r.ws, r.old_row, null
        from (select o.old_row, o.old_row ->> v_ws_column as ws
              from (select to_jsonb(t) - v_excluded as old_row from clockwatch_old t offset 0) o
              offset 0) r
        where r.ws is null
           or exists (select 1 from workspace_category e
                      where e.category = v_category and e.workspace_id = r.ws);
    end if;

    get diagnostics v_staged = row_count;
    if v_staged > 0 and exists (select 1 from wakeup where daemon_idle) then
        perform pg_notify(TG_ARGV[5], '');
    end if;
    return null;
end
$$;

-- Same triggers as 0001's attach(), except that the linked-change mark is taken only below the
-- top level: pg_trigger_depth() is 0 for the host's own statement (the WHEN clause is evaluated
-- before the trigger is entered) and at least 1 inside a cascade or a host trigger.
create or replace function attach(p_table regclass, p_source text, p_category text,
                                  p_workspace_column text, p_excluded text[], p_ignored text[],
                                  p_channel text) returns void
language plpgsql
set search_path from current
as $$
declare
    v_prefix text := 'clockwatch_' || current_schema();
    v_args   text := format('%L, %L, %L, %L, %L, %L', p_source, p_category, p_workspace_column,
                            p_excluded::text, p_ignored::text, p_channel);
begin
    if not exists (select 1 from category where category = p_category) then
        raise exception 'unknown category "%"', p_category using errcode = '22023';
    end if;
    perform detach(p_table);
    execute format('create trigger %I before update or delete on %s for each statement '
                   'when (pg_trigger_depth() > 0) execute function %I.mark_linked()',
                   v_prefix || '_mark', p_table, current_schema());
    execute format('create trigger %I after insert on %s referencing new table as clockwatch_new '
                   'for each statement execute function %I.capture(%s)',
                   v_prefix || '_insert', p_table, current_schema(), v_args);
    execute format('create trigger %I after update on %s '
                   'referencing old table as clockwatch_old new table as clockwatch_new '
                   'for each statement execute function %I.capture(%s)',
                   v_prefix || '_update', p_table, current_schema(), v_args);
    execute format('create trigger %I after delete on %s referencing old table as clockwatch_old '
                   'for each statement execute function %I.capture(%s)',
                   v_prefix || '_delete', p_table, current_schema(), v_args);
    execute format('create trigger %I after truncate on %s '
                   'for each statement execute function %I.capture(%s)',
                   v_prefix || '_truncate', p_table, current_schema(), v_args);
end
$$;

-- Chaining, set-based. 0004's append_events() walked the batch row by row in PL/pgSQL, building
-- a composite row per event and appending it to an array: 28 ms of PostgreSQL time per 1,000
-- events, where inserting them costs 10. The same chain (each event's hash is
-- sha256(previous hash || canonical content), so `clockwatch verify` and existing chains are
-- unchanged) is now computed by a window aggregate inside one INSERT ... SELECT.
--
-- event_content() is unchanged in what it returns; it loses 0004's SET search_path (which stops
-- PostgreSQL from inlining a SQL function: it ran as a separate function call, 15 us per event)
-- and is declared STABLE, as to_char() is, for the same reason. It names only pg_catalog
-- functions, and every caller (append_events() and `clockwatch verify`) runs with Clockwatch's
-- schema and pg_catalog on the search_path.
create or replace function event_content(e events) returns text
language sql stable
as $$
    select jsonb_build_array(
        e.event_id, to_char(e.occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        e.workspace_id, e.category, e.action_code, e.action, e.origin, e.author_id, e.author,
        e.target_id, e.target, e.caused_by, e.linked, e.txid, e.source, e.previous_value,
        e.new_value, e.row_data, e.details)::text
$$;

-- chain_hash(head, content) over (partition by workspace order by event_id): the running hash of
-- a workspace's events, starting from that workspace's head hash.
-- (PL/pgSQL, not SQL: an aggregate calls its step function through the function manager, where a
-- SQL function starts an executor per call and PL/pgSQL evaluates a simple expression.)
create function chain_step(p_state bytea, p_head bytea, p_content bytea) returns bytea
language plpgsql immutable parallel safe
as $$ begin return sha256(coalesce(p_state, p_head) || p_content); end $$;

create aggregate chain_hash(bytea, bytea) (sfunc = chain_step, stype = bytea);

create or replace function append_events(
    p_event_id bigint[], p_occurred_at timestamptz[], p_workspace_id text[], p_category text[],
    p_action_code text[], p_action text[], p_origin text[], p_author_id text[], p_author text[],
    p_target_id text[], p_target text[], p_caused_by bigint[], p_linked boolean[], p_txid bigint[],
    p_source text[], p_previous_value jsonb[], p_new_value jsonb[], p_row_data jsonb[],
    p_details jsonb[])
returns integer
language plpgsql
security definer
set search_path from current
as $$
declare
    v_count integer;
begin
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
                    p_row_data, p_details)
             as u(event_id, occurred_at, workspace_id, category, action_code, action, origin,
                  author_id, author, target_id, target, caused_by, linked, txid, source,
                  previous_value, new_value, row_data, details)
    ), chained as (
        select b.*, h.hash as head_hash,
               h.seq + row_number() over w as chain_seq,
               chain_hash(h.hash, convert_to(event_content(
                   row(b.event_id, b.occurred_at, b.recorded_at, b.workspace_id, b.category,
                       b.action_code, b.action, b.origin, b.author_id, b.author, b.target_id,
                       b.target, b.caused_by, b.linked, b.txid, b.source, b.previous_value,
                       b.new_value, b.row_data, b.details, null, null, null)::events), 'UTF8'))
                   over w as hash
        from batch b
        join chain_head h on h.workspace_id = b.workspace_id
        window w as (partition by b.workspace_id order by b.event_id)
    ), inserted as (
        insert into events (event_id, occurred_at, recorded_at, workspace_id, category,
                            action_code, action, origin, author_id, author, target_id, target,
                            caused_by, linked, txid, source, previous_value, new_value, row_data,
                            details, chain_seq, prev_hash, hash)
        select c.event_id, c.occurred_at, c.recorded_at, c.workspace_id, c.category,
               c.action_code, c.action, c.origin, c.author_id, c.author, c.target_id, c.target,
               c.caused_by, c.linked, c.txid, c.source, c.previous_value, c.new_value, c.row_data,
               c.details, c.chain_seq,
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
    text[], text[], text[], text[], text[], bigint[], boolean[], bigint[], text[], jsonb[], jsonb[],
    jsonb[], jsonb[]) from public;

-- Pruning an expired month drops its partition, which costs the same whatever the month holds;
-- but 0004's before_prune() first found each workspace's last chained event with DISTINCT ON over
-- the whole partition: a sort of every row, 1.66 s of the 1.64-1.7 s it took to prune a month
-- of 1,000,000 events (against 0.02 s for 1,000). The same anchors now come from the
-- partition's (workspace_id, chain_seq) index: a skip scan for the workspaces, then one backward
-- index probe per workspace. Same rows, same result.
create or replace function before_prune(p_partition text, p_cutoff timestamptz) returns void
language plpgsql
security definer
set search_path from current
as $$
begin
    execute format(
        'with recursive workspaces as (
             (select workspace_id from %1$I where chain_seq is not null
              order by workspace_id limit 1)
             union all
             select (select p.workspace_id from %1$I p
                     where p.chain_seq is not null and p.workspace_id > w.workspace_id
                     order by p.workspace_id limit 1)
             from workspaces w
             where w.workspace_id is not null
         )
         insert into chain_anchor (workspace_id, seq, hash)
         select w.workspace_id, last.chain_seq, last.hash
         from workspaces w
         cross join lateral (
             select p.chain_seq, p.hash from %1$I p
             where p.workspace_id = w.workspace_id and p.chain_seq is not null
               and p.occurred_at < $1
             order by p.chain_seq desc
             limit 1) last
         where w.workspace_id is not null
         on conflict (workspace_id) do update set seq = excluded.seq, hash = excluded.hash
         where chain_anchor.seq < excluded.seq', p_partition)
    using p_cutoff;
end
$$;

-- Reports: the first page of a 30-day report took 570-800 ms at 10,000,000 events. A report
-- covers its workspace and '*' (a TRUNCATE of a whole table), and `workspace_id in ($1, '*')`
-- cannot walk the (workspace_id, occurred_at, event_id) index in order, so PostgreSQL read and
-- sorted the whole range (410,000 rows) to return 50. Each workspace value is now asked for on
-- its own, ordered and limited (an index walk that stops after the page), and only those rows are
-- merged and sorted (sql/queries/report.sql for the CLI; events_between() below for SQL).
--
-- The report view, unchanged but for OFFSET 0 in the lateral subquery that parses the entry's
-- start and end: without it PostgreSQL inlines the subquery and parses each timestamp once per
-- column that uses it (four times for the start). 100,000 rows of a year's report: 591 -> 535 ms
-- (EXPLAIN ANALYZE, best of 3), and the first page still walks the index.
create or replace view report as
select e.event_id,
       e.workspace_id,
       e.occurred_at,
       e.author_id,
       e.author,
       e.action,
       e.action_code,
       e.category,
       e.origin,
       e.target_id,
       e.target,
       e.caused_by,
       e.previous_value,
       e.new_value,
       e.details ->> 'user'          as "user",
       e.details ->> 'description'   as description,
       e.details ->> 'project'       as project,
       e.details ->> 'task'          as task,
       e.details ->> 'client'        as client,
       e.details ->> 'kiosk'         as kiosk,
       e.details ->> 'type'          as type,
       to_char(t.start_at at time zone s.timezone, 'YYYY-MM-DD') as start_date,
       to_char(t.start_at at time zone s.timezone, 'HH24:MI:SS') as start_time,
       to_char(t.end_at at time zone s.timezone, 'YYYY-MM-DD')   as end_date,
       to_char(t.end_at at time zone s.timezone, 'HH24:MI:SS')   as end_time,
       to_char(t.end_at - t.start_at, 'HH24:MI:SS')              as duration,
       e.details ->> 'billable'      as billable,
       e.details ->> 'billable_rate' as billable_rate,
       e.details ->> 'cost_rate'     as cost_rate,
       e.details ->> 'approved'      as approved,
       e.details ->> 'invoiced'      as invoiced,
       (select string_agg(tag, ', ') from jsonb_array_elements_text(e.details -> 'tags') tag) as tags,
       e.row_data
from events e
cross join settings s
cross join lateral (select (e.details ->> 'start')::timestamptz as start_at,
                           (e.details ->> 'end')::timestamptz   as end_at offset 0) t;

-- events_between(): 0002's rules, with the workspace and '*' asked for separately. JIT is off:
-- compiling the report query costs seconds and returns nothing for row-at-a-time formatting (a
-- year's report of 100,000 events ran 2.1 s with it, 0.78 s without).
create or replace function events_between(p_workspace text, p_from timestamptz, p_to timestamptz,
                                          p_authors text[] default null,
                                          p_actions text[] default null,
                                          p_limit integer default null)
returns setof report
language plpgsql stable
set search_path from current
set jit = off
as $$
declare
    v_max   integer := (select max_report_days from settings);
    v_codes text[]  := action_codes(p_actions);
begin
    if p_from is null or p_to is null or p_from >= p_to then
        raise exception 'the range must run forward: from % to %', p_from, p_to using errcode = '22023';
    end if;
    if p_to - p_from > make_interval(days => v_max) then
        raise exception 'the range covers % days; a report covers at most % days: split it',
            ceil(extract(epoch from p_to - p_from) / 86400), v_max using errcode = '22023';
    end if;
    return query
        with filtered as not materialized (
            select * from report r
            where r.occurred_at >= p_from and r.occurred_at < p_to
              and (p_authors is null or coalesce(r.author_id, 'system') = any (p_authors))
              and (v_codes is null or r.action_code = any (v_codes))
        )
        select r.* from (
            (select * from filtered w where w.workspace_id = p_workspace
             order by w.occurred_at desc, w.event_id desc limit p_limit)
            union all
            (select * from filtered a where a.workspace_id = '*' and p_workspace <> '*'
             order by a.occurred_at desc, a.event_id desc limit p_limit)
        ) r
        order by r.occurred_at desc, r.event_id desc
        limit p_limit;
end
$$;

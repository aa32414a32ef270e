-- Clockwatch 0009: the idle flag is a sequence (issue 6).
--
-- Capture sends NOTIFY only while a daemon is idle (see 0001's wakeup table), and it asked the
-- wakeup table after every captured statement: a query of its own, 5 to 6 us per host statement
-- (of about 45 that capture adds). The flag is now the value of a sequence, which a trigger reads
-- with pg_sequence_last_value() (the function behind the pg_sequences view, in PostgreSQL since
-- 10), a function call with no query behind it: INSERT 51 -> 47 us, UPDATE 67 -> 61 us per
-- statement (5,000-statement loops inside the server, bench/README.md).
-- Setting a sequence's value is not transactional, which suits a flag that says what the daemon
-- is doing now; its meaning is unchanged: 2 idle (writers notify), 1 busy (writers do not, the
-- daemon polls). The wakeup table is left in place, unused.
--
-- Runs with `search_path = <clockwatch schema>, pg_catalog, pg_temp`, like every migration.

create sequence wakeup_idle minvalue 1 maxvalue 2 no cycle;
select setval('wakeup_idle', case when (select daemon_idle from wakeup) then 2 else 1 end);

-- 0006's capture(), but for the wake-up check.
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
    -- A plain function call, which PL/pgSQL evaluates without starting a query.
    if v_staged > 0 and pg_sequence_last_value('wakeup_idle'::regclass) = 2 then
        perform pg_notify(TG_ARGV[5], '');
    end if;
    return null;
end
$$;

-- 0005's grant_daemon(), plus the flag: the daemon sets it.
-- Give a role what the daemon needs, and nothing more. Idempotent.
create or replace function grant_daemon(p_role name) returns void
language plpgsql
set search_path from current
as $$
declare
    s text := quote_ident(current_schema());
begin
    execute format('grant usage on schema %s to %I', s, p_role);
    execute format('grant select, update, delete on %s.staging to %I', s, p_role);
    execute format('grant select on %s.events, %s.settings, %s.category, %s.action, %s.workspace_category, '
                   '%s.migrations, %s.maintenance, %s.chain_head, %s.chain_anchor to %I',
                   s, s, s, s, s, s, s, s, s, p_role);
    execute format('grant select, insert, update on %s.known_name to %I', s, p_role);
    execute format('grant select, insert on %s.dead_letter to %I', s, p_role);
    execute format('grant select, update on %s.wakeup to %I', s, p_role);
    execute format('grant select, update on sequence %s.wakeup_idle to %I', s, p_role);
    execute format('grant execute on function %s.ensure_partition(timestamptz), '
                   '%s.ensure_partitions_ahead(timestamptz, integer), %s.prune(timestamptz, boolean), '
                   '%s.maintain(timestamptz), %s.event_partitions(), %s.append_events(bigint[], '
                   'timestamptz[], text[], text[], text[], text[], text[], text[], text[], text[], '
                   'text[], bigint[], boolean[], bigint[], text[], jsonb[], jsonb[], jsonb[], jsonb[]) to %I',
                   s, s, s, s, s, s, p_role);
end
$$;

-- Clockwatch baseline, part 2 of 7: capture.
--
-- The triggers Clockwatch attaches to each audited host table, and the switches that say which
-- workspaces and categories they record. capture() is the only Clockwatch code that runs inside
-- the host application's transactions: one call per statement copies each changed row into
-- staging with one INSERT ... SELECT and wakes an idle daemon. mark_linked() tells a linked change
-- (a foreign-key cascade, a host trigger) from the host's own. attach() and detach() put the
-- triggers on a table and take them off; enable() and disable() choose workspaces and categories.

-- The mark that says "this statement runs inside a cascade or a host trigger".
--
-- A foreign-key cascade runs its UPDATE/DELETE inside the referential-integrity trigger (depth 2
-- here), but PostgreSQL fires that statement's AFTER triggers later from the outer level, at
-- depth 1, where they look like the host's own change. So a BEFORE STATEMENT trigger, which does
-- run at the true depth, leaves a transaction-local mark that the AFTER trigger on the same
-- table reads and clears.
--
-- Any session can set any custom setting, so a plain flag would let the application pass its own
-- change off as a linked one (authored by System). The mark is therefore a keyed digest of the
-- transaction id, keyed with a secret only Clockwatch's owner can read (mark_key).
create function linked_mark() returns text
language sql stable
security definer
set search_path from current
as $$
    select md5(secret || pg_current_xact_id()::text) from mark_key
$$;
revoke execute on function linked_mark() from public;

create function mark_linked() returns trigger
language plpgsql
security definer
set search_path from current
as $$
begin
    if pg_trigger_depth() > 1 then
        perform set_config('clockwatch.linked_' || TG_RELID, linked_mark(), true);
    end if;
    return null;
end
$$;
-- Trigger functions are not called directly, and EXECUTE is checked only when a trigger is
-- created: revoked from PUBLIC, no role but the owner can attach this one (or capture()) to a
-- table of its own and so write staging as the owner.
revoke execute on function mark_linked() from public;

-- AFTER STATEMENT trigger with transition tables: one call per statement, however many rows.
-- Rows are stored as jsonb, so a column added, dropped, renamed or retyped in the host table never
-- makes the host's write fail; the daemon does all interpretation later, off the host's path.
-- Arguments (set by attach()): source, category, workspace column, excluded columns,
-- ignored columns, NOTIFY channel.
--
-- SECURITY DEFINER: it runs with the rights of Clockwatch's owner, so the host application's
-- role needs no privilege on this schema at all: it can neither write staging except through
-- this trigger, nor read or alter the log. The pinned search_path (pg_temp last) keeps a caller
-- from substituting objects.
--
-- How each statement is shaped, and why (bench/README.md has the measurements):
-- * Each row image is converted to jsonb once: OFFSET 0 keeps the converting subquery whole,
--   where the planner would otherwise pull to_jsonb() up into the filter and run it two or three
--   times per row.
-- * An UPDATE's old and new images are paired with a two-array unnest(), which pairs by position
--   with no join. A join on row_number() left PL/pgSQL caching a generic plan made for a 1-row
--   transition table, a nested loop recomputing to_jsonb() for every pair: 1 s for a 500-row
--   UPDATE instead of 10 ms.
-- * Whether to NOTIFY is read from the wakeup_idle sequence, a function call and not a query.
create function capture() returns trigger
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
revoke execute on function capture() from public;

-- Attach the capture triggers to one host table (idempotent: replaces them). The linked-change
-- mark is taken only below the top level: pg_trigger_depth() is 0 for the host's own statement
-- (the WHEN clause is evaluated before the trigger is entered, without entering PL/pgSQL) and at
-- least 1 inside a cascade or a host trigger.
create function attach(p_table regclass, p_source text, p_category text, p_workspace_column text,
                       p_excluded text[], p_ignored text[], p_channel text) returns void
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

-- Remove Clockwatch's triggers from one host table.
create function detach(p_table regclass) returns void
language plpgsql
set search_path from current
as $$
declare
    v_trigger name;
begin
    for v_trigger in
        select t.tgname from pg_trigger t
        where t.tgrelid = p_table
          and t.tgfoid in ('capture'::regproc, 'mark_linked'::regproc)
    loop
        execute format('drop trigger %I on %s', v_trigger, p_table);
    end loop;
end
$$;

-- Host tables that currently carry Clockwatch's triggers.
create function attached_tables() returns setof regclass
language sql stable
set search_path from current
as $$
    select distinct t.tgrelid::regclass from pg_trigger t
    where t.tgfoid in ('capture'::regproc, 'mark_linked'::regproc)
$$;

-- Raise, listing the valid categories, if p_categories names one that does not exist.
create function check_categories(p_categories text[]) returns void
language plpgsql stable
set search_path from current
as $$
declare
    v_unknown text;
begin
    select c into v_unknown from unnest(p_categories) c
    where c not in (select category from category) limit 1;
    if v_unknown is not null then
        raise exception 'unknown category "%" (expected one of: %)', v_unknown,
            (select string_agg(category, ', ' order by category) from category)
            using errcode = '22023';
    end if;
end
$$;

-- Turn auditing on for a workspace: the given categories, or all of them when null.
-- Returns the categories now enabled for the workspace.
create function enable(p_workspace text, p_categories text[] default null) returns setof text
language plpgsql
set search_path from current
as $$
begin
    perform check_categories(p_categories);
    insert into workspace_category (workspace_id, category)
    select p_workspace, c.category from category c
    where p_categories is null or c.category = any (p_categories)
    on conflict do nothing;
    return query select w.category from workspace_category w
                 where w.workspace_id = p_workspace order by w.category;
end
$$;

-- Turn auditing off for a workspace: the given categories, or all of them when null.
-- Returns the categories still enabled for the workspace.
create function disable(p_workspace text, p_categories text[] default null) returns setof text
language plpgsql
set search_path from current
as $$
begin
    perform check_categories(p_categories);
    delete from workspace_category w
    where w.workspace_id = p_workspace and (p_categories is null or w.category = any (p_categories));
    return query select w.category from workspace_category w
                 where w.workspace_id = p_workspace order by w.category;
end
$$;

-- Clockwatch 0006: cheaper capture (issue 6), same staged rows.
--
-- Measured per statement inside the server (bench/README.md, "Capture, statement by statement"):
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

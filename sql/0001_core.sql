-- Clockwatch 0001: the capture -> staging -> events spine.
--
-- Runs with `search_path = <clockwatch schema>, pg_catalog, pg_temp` (set by `clockwatch install`),
-- so every name below lives in Clockwatch's own schema, whatever it is called. Functions pin that
-- search_path with `SET search_path FROM CURRENT`, so they never resolve a name through the
-- caller's search_path.
--
-- PostgreSQL 13+ SQL only: no extension, no superuser, nothing that a managed service refuses.

-- One row of installation-wide settings that the report views need.
create table settings (
    singleton boolean primary key default true check (singleton),
    -- Detail dates and times (start_date, start_time...) are shown in this zone.
    timezone  text not null default 'UTC'
);
insert into settings default values;

-- The audited categories, as Clockify names them in its Audit Log settings.
create table category (
    category text primary key,
    entity   text not null unique  -- prefix of action codes: time_entry.created ...
);
insert into category (category, entity) values
    ('time_entries', 'time_entry'),
    ('projects',     'project'),
    ('tasks',        'task'),
    ('clients',      'client'),
    ('tags',         'tag'),
    ('expenses',     'expense'),
    ('users',        'user');

-- Which categories are audited in which workspace. Off unless listed (Clockify: an admin ticks
-- categories). Workspace ids are text because hosts use integers, uuids or strings.
create table workspace_category (
    workspace_id text not null,
    category     text not null references category,
    enabled_at   timestamptz not null default now(),
    primary key (category, workspace_id)
);

-- Changes copied by the capture triggers, waiting for the daemon. This is a queue: rows live for
-- milliseconds, so autovacuum must visit it often rather than by the default 20% rule.
create table staging (
    id           bigint generated always as identity primary key,
    source       text not null,        -- the [[source]] table as written in the config
    category     text not null,
    op           "char" not null check (op in ('I', 'U', 'D', 'T')), -- T: TRUNCATE
    txid         bigint not null,      -- pg_current_xact_id() of the host transaction
    stmt_at      timestamptz not null, -- statement_timestamp(): when the change happened
    depth        integer not null,     -- 1 for a change the host made, >1 for a linked change
    actor        text,                 -- clockwatch.actor, null when unset (System)
    origin       text,                 -- clockwatch.origin, null when unset
    workspace_id text,                 -- null when the workspace column is missing; '*' for TRUNCATE
    old_row      jsonb,
    new_row      jsonb
) with (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
        autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 1000);

-- A staged change the daemon could not turn into an event. Kept with the reason, never dropped,
-- so that one bad row neither blocks the rows behind it nor disappears.
create table dead_letter (
    staging_id bigint primary key,
    failed_at  timestamptz not null default now(),
    reason     text not null,
    change     jsonb not null
);

-- Whether a daemon is waiting for work. Capture sends NOTIFY only while this is true: a NOTIFY
-- takes a cluster-wide lock at commit, which at 16 clients cut insert throughput to 0.36x when
-- every transaction sent one. A daemon that is busy draining does not need waking.
create table wakeup (
    singleton   boolean primary key default true check (singleton),
    daemon_idle boolean not null default true
);
insert into wakeup default values;

-- The audit log. Monthly range partitions on occurred_at, so retention drops whole partitions
-- instead of deleting rows. event_id is the staging id of the change: it is unique, it orders
-- changes to one record as they happened, and it is known before the event is written, which lets
-- a linked change point at its primary event whichever daemon writes which first.
create table events (
    event_id       bigint not null,
    occurred_at    timestamptz not null,
    recorded_at    timestamptz not null default now(),
    workspace_id   text not null,      -- '*': every workspace (a TRUNCATE of the whole table)
    category       text not null,
    action_code    text not null,
    action         text not null,
    origin         text,
    author_id      text,               -- null for System
    author         text not null,      -- the author's name when the change was recorded, or 'System'
    target_id      text,
    target         text,
    caused_by      bigint,             -- event_id of the primary event of a linked change
    linked         boolean not null default false, -- caused by another change (cascade, host trigger)
    txid           bigint not null,
    source         text not null,
    previous_value jsonb,              -- changed columns only: before
    new_value      jsonb,              -- changed columns only: after
    row_data       jsonb,              -- the whole row (after; before for a delete)
    details        jsonb not null default '{}',
    primary key (event_id, occurred_at)
) partition by range (occurred_at);

create index events_workspace_time on events (workspace_id, occurred_at desc, event_id desc);
create index events_target on events (workspace_id, target_id, event_id);
create index events_txid on events (txid);

-- Names the log has seen, so a detail can still be named after its row is deleted from the host
-- (a deleted project's name and client, a removed user's name). category is a category, or
-- 'author' for actor ids.
create table known_name (
    category  text not null,
    id        text not null,
    name      text not null,
    client_id text,                    -- projects: the project's client
    seen_at   timestamptz not null default now(),
    primary key (category, id)
);

-- Create the monthly partition holding p_at if it does not exist; returns its name.
create function ensure_partition(p_at timestamptz) returns text
language plpgsql
set search_path from current
as $$
declare
    v_from date := date_trunc('month', p_at at time zone 'UTC')::date;
    v_to   date := (v_from + interval '1 month')::date;
    v_name text := 'events_' || to_char(v_from, 'YYYY_MM');
begin
    -- Several daemons may reach a new month at once; only one must create it.
    perform pg_advisory_xact_lock(hashtext('clockwatch partition ' || current_schema()));
    if to_regclass(format('%I.%I', current_schema(), v_name)) is null then
        execute format('create table %I.%I partition of events for values from (%L) to (%L)',
                       current_schema(), v_name,
                       v_from::timestamp at time zone 'UTC', v_to::timestamp at time zone 'UTC');
    end if;
    return v_name;
end
$$;

select ensure_partition(now());
select ensure_partition(now() + interval '1 month');

-- BEFORE STATEMENT trigger on UPDATE and DELETE. A foreign-key cascade runs its UPDATE/DELETE inside
-- the referential-integrity trigger (depth 2 here), but PostgreSQL fires that statement's AFTER
-- triggers later from the outer level, at depth 1, where they look like the host's own change.
-- So the BEFORE trigger, which does run at the true depth, leaves a transaction-local mark that
-- the AFTER trigger on the same table reads and clears.
--
-- Any session can set any custom setting, so a plain flag would let the application pass its own
-- change off as a linked one (authored by System). The mark is therefore a keyed digest of the
-- transaction id, keyed with a secret only Clockwatch's owner can read.
create table mark_key (
    singleton boolean primary key default true check (singleton),
    secret    text not null default gen_random_uuid()::text || gen_random_uuid()::text
);
insert into mark_key default values;

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
              from (select to_jsonb(t) - v_excluded as new_row from clockwatch_new t) n) r
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
               v_depth, v_actor, v_origin, coalesce(n.new_row ->> v_ws_column, o.old_row ->> v_ws_column),
               o.old_row, n.new_row
        from (select to_jsonb(t) - v_excluded as old_row, row_number() over () as pos
              from clockwatch_old t) o
        join (select to_jsonb(t) - v_excluded as new_row, row_number() over () as pos
              from clockwatch_new t) n using (pos)
        -- An update that changes nothing, or only ignored columns, is not a change.
        where (o.old_row - v_ignored) is distinct from (n.new_row - v_ignored)
          and (coalesce(n.new_row ->> v_ws_column, o.old_row ->> v_ws_column) is null
               or exists (select 1 from workspace_category e
                          where e.category = v_category
                            and e.workspace_id in (n.new_row ->> v_ws_column, o.old_row ->> v_ws_column)));
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
              from (select to_jsonb(t) - v_excluded as old_row from clockwatch_old t) o) r
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

-- Attach the capture triggers to one host table (idempotent: replaces them).
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
                   'execute function %I.mark_linked()', v_prefix || '_mark', p_table, current_schema());
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

-- Turn auditing on for a workspace: the given categories, or all of them when null.
-- Returns the categories now enabled for the workspace.
create function enable(p_workspace text, p_categories text[] default null) returns setof text
language plpgsql
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
    delete from workspace_category w
    where w.workspace_id = p_workspace and (p_categories is null or w.category = any (p_categories));
    return query select w.category from workspace_category w
                 where w.workspace_id = p_workspace order by w.category;
end
$$;

-- One row per event, with Clockify's detail fields. Dates and times of the detail fields are in
-- settings.timezone; occurred_at is a timestamptz (shown in the session's TimeZone).
create view report as
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
                           (e.details ->> 'end')::timestamptz   as end_at) t;

-- One row per changed field: Clockify's side-by-side "Previous value / New value".
create view report_changes as
select e.event_id,
       e.workspace_id,
       e.occurred_at,
       e.author,
       e.action,
       f.field,
       e.previous_value ->> f.field as previous_value,
       e.new_value ->> f.field      as new_value
from events e
cross join lateral (select distinct k as field
                    from jsonb_object_keys(e.previous_value || e.new_value) k) f
where e.previous_value is not null and e.new_value is not null;

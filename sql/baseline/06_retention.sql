-- Clockwatch baseline, part 6 of 9: retention.
--
-- Events older than settings.retention are removed by dropping whole monthly partitions; only the
-- partition that straddles the cutoff has rows deleted, so pruning a year of a large log costs
-- about what pruning a small one does. This file owns the partitions (created ahead, so no insert
-- waits on one), the per-month event counts that pruning reports without counting a month, the
-- chain anchors pruning leaves behind, prune() itself and the daemon's daily maintain().
--
-- The functions that create and drop partitions are SECURITY DEFINER so the daemon role can run
-- them without owning events; EXECUTE is revoked from PUBLIC and granted in 07_roles.sql.

-- Create the monthly partition holding p_at if it does not exist; returns its name.
create function ensure_partition(p_at timestamptz) returns text
language plpgsql
security definer
set search_path from current
as $$
declare
    v_from date := date_trunc('month', p_at at time zone 'UTC')::date;
    v_to   date := (v_from + interval '1 month')::date;
    v_name text := 'events_' || to_char(v_from, 'YYYY_MM');
begin
    -- Bounded to the months the daemon writes in (the retention behind, a year ahead), so that
    -- the daemon role cannot fill the catalog with partitions: thousands of them leave every
    -- query of events out of shared memory. The schema's owner may create any month.
    if p_at not between now() - (select retention from settings) - interval '2 months'
                    and now() + interval '13 months'
       and not pg_has_role(session_user, (select n.nspowner from pg_namespace n
                                          where n.nspname = current_schema()), 'MEMBER') then
        raise exception 'partition for %: events are kept for % and written up to a year ahead', p_at,
            (select retention from settings)
            using errcode = '22023';
    end if;
    -- Several daemons may reach a new month at once; only one must create it.
    perform from job_lock where job = 'partition' for update;
    if to_regclass(format('%I.%I', current_schema(), v_name)) is null then
        execute format('create table %I.%I partition of events for values from (%L) to (%L)',
                       current_schema(), v_name,
                       v_from::timestamp at time zone 'UTC', v_to::timestamp at time zone 'UTC');
    end if;
    return v_name;
end
$$;
revoke execute on function ensure_partition(timestamptz) from public;

-- The monthly partitions of events with their bounds, oldest first.
create function event_partitions()
returns table (partition_name text, starts timestamptz, ends timestamptz, events bigint)
language sql stable
set search_path from current
as $$
    select c.relname::text,
           to_date(substr(c.relname, 8), 'YYYY_MM')::timestamp at time zone 'UTC',
           (to_date(substr(c.relname, 8), 'YYYY_MM') + interval '1 month')::timestamp at time zone 'UTC',
           c.reltuples::bigint
    from pg_inherits i
    join pg_class c on c.oid = i.inhrelid
    where i.inhparent = 'events'::regclass and c.relname ~ '^events_[0-9]{4}_[0-9]{2}$'
    order by 2
$$;

-- Create the partitions of the current month and the next p_months, so no insert ever waits
-- on creating one. Returns how many were created.
create function ensure_partitions_ahead(p_now timestamptz default now(), p_months integer default 2)
returns integer
language plpgsql
security definer
set search_path from current
as $$
declare
    v_before integer := (select count(*) from event_partitions());
begin
    -- Bounded, so that a role allowed to run this cannot fill the catalog with partitions.
    if p_months not between 0 and 12 or p_now not between now() - interval '1 year' and now() + interval '1 year' then
        raise exception 'partitions ahead: % months from % is out of range', p_months, p_now
            using errcode = '22023';
    end if;
    perform ensure_partition(p_now + m * interval '1 month') from generate_series(0, p_months) m;
    return (select count(*) from event_partitions()) - v_before;
end
$$;
revoke execute on function ensure_partitions_ahead(timestamptz, integer) from public;

-- The counts in event_tally and author_tally, kept by statement triggers on events rather than
-- in append_events(), so that every writer is counted (an admin's backfill, a test ageing events);
-- per workspace, so two daemons appending to different workspaces never update the same row (a
-- daemon already holds its workspace's chain_head lock while it appends, so the count row adds no
-- waiting). About 1.3 us per event written for event_tally, and 0.9 us more for author_tally
-- (0.2-2.3 us in three alternated inserts of 200,000 events, 2026-12-07), against about 30 us
-- to append one. Statement triggers on the partitioned table see every row written through it;
-- statements aimed at one partition directly bypass them, which is why prune() deletes through
-- events.
create function tally_events() returns trigger
language plpgsql
set search_path from current
as $$
begin
    if TG_OP = 'TRUNCATE' then
        delete from event_tally;
        delete from author_tally;
        return null;
    end if;
    -- An update can move an event to another month or workspace (nothing in Clockwatch does, but
    -- an admin may): its new rows are counted in and its old rows taken off.
    if TG_OP in ('INSERT', 'UPDATE') then
        insert into event_tally (workspace_id, month, events)
        select n.workspace_id, date_trunc('month', n.occurred_at at time zone 'UTC')::date, count(*)
        from tally_new n
        group by 1, 2
        -- Sorted, so that two writers never take the same rows' locks in opposite orders.
        order by 2, 1
        on conflict (month, workspace_id) do update set events = event_tally.events + excluded.events;
        insert into author_tally (workspace_id, month, author_id, events)
        select n.workspace_id, date_trunc('month', n.occurred_at at time zone 'UTC')::date,
               coalesce(n.author_id, 'system'), count(*)
        from tally_new n
        group by 1, 2, 3
        order by 1, 2, 3
        on conflict (workspace_id, month, author_id)
            do update set events = author_tally.events + excluded.events;
    end if;
    if TG_OP in ('DELETE', 'UPDATE') then
        update event_tally t set events = t.events - d.events
        from (select o.workspace_id, date_trunc('month', o.occurred_at at time zone 'UTC')::date as month,
                     count(*) as events
              from tally_old o
              group by 1, 2) d
        where t.workspace_id = d.workspace_id and t.month = d.month;
        update author_tally t set events = t.events - d.events
        from (select o.workspace_id, date_trunc('month', o.occurred_at at time zone 'UTC')::date as month,
                     coalesce(o.author_id, 'system') as author_id, count(*) as events
              from tally_old o
              group by 1, 2, 3) d
        where t.workspace_id = d.workspace_id and t.month = d.month and t.author_id = d.author_id;
    end if;
    return null;
end
$$;

create trigger tally_insert after insert on events referencing new table as tally_new
    for each statement execute function tally_events();
create trigger tally_delete after delete on events referencing old table as tally_old
    for each statement execute function tally_events();
create trigger tally_update after update on events
    referencing old table as tally_old new table as tally_new
    for each statement execute function tally_events();
create trigger tally_truncate after truncate on events
    for each statement execute function tally_events();

-- Before pruning removes the start of a chain, remember where the retained part begins: the
-- last removed event's position and hash, per workspace. The anchors come from the partition's
-- (workspace_id, chain_seq) index: a skip scan for the workspaces, then one backward index probe
-- per workspace (DISTINCT ON over the whole partition sorted every row: 1.66 s for a month of
-- 1,000,000 events).
create function before_prune(p_partition text, p_cutoff timestamptz) returns void
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
         insert into chain_anchor (workspace_id, seq, hash, occurred_at, recorded_at, cutoff, pruned_at)
         select w.workspace_id, last.chain_seq, last.hash, last.occurred_at, last.recorded_at, $1, now()
         from workspaces w
         cross join lateral (
             select p.chain_seq, p.hash, p.occurred_at, p.recorded_at from %1$I p
             where p.workspace_id = w.workspace_id and p.chain_seq is not null
               and p.occurred_at < $1
             order by p.chain_seq desc
             limit 1) last
         where w.workspace_id is not null
         on conflict (workspace_id) do update
             set seq = excluded.seq, hash = excluded.hash, occurred_at = excluded.occurred_at,
                 recorded_at = excluded.recorded_at, cutoff = excluded.cutoff, pruned_at = excluded.pruned_at
         where chain_anchor.seq < excluded.seq', p_partition)
    using p_cutoff;
end
$$;
revoke execute on function before_prune(text, timestamptz) from public;

-- Remove events older than settings.retention. Whole partitions before the cutoff are
-- detached and dropped (their counts read from event_tally); the partition holding the cutoff
-- has its older rows deleted, through events so the tally triggers see them. With p_dry_run
-- nothing changes and the rows say what would. Returns nothing when another session is already
-- pruning (one instance at a time, by job_lock's row).
--
-- The daemon role may run this, and must not be able to erase the log with it: p_now (a clock
-- for tests and dry runs) is bounded by the server's clock, so the cutoff is never later than
-- now() - retention, and only the owner can change the retention. Every removal is recorded in
-- prune_log with the role that asked for it.
create function prune(p_now timestamptz default now(), p_dry_run boolean default false)
returns table (partition_name text, action text, events bigint)
language plpgsql
security definer
set search_path from current
as $$
declare
    v_cutoff timestamptz := least(p_now, now()) - (select retention from settings);
    v_part   record;
    v_month  date;
    v_count  bigint;
    v_action text;
begin
    perform from job_lock where job = 'prune' for update skip locked;
    if not found then
        return;
    end if;
    -- Dropping a partition needs a brief exclusive lock on events; never queue behind a long
    -- report for it (and block the reports queued behind us): give up and retry next time.
    set local lock_timeout = '5s';
    for v_part in select * from event_partitions() p where p.starts < v_cutoff loop
        v_month := (v_part.starts at time zone 'UTC')::date;
        if not p_dry_run then
            perform before_prune(v_part.partition_name, v_cutoff);
        end if;
        if v_part.ends <= v_cutoff then
            v_count := coalesce((select sum(t.events) from event_tally t where t.month = v_month), 0);
            if not p_dry_run then
                execute format('alter table events detach partition %I', v_part.partition_name);
                execute format('drop table %I', v_part.partition_name);
                delete from event_tally t where t.month = v_month;
                delete from author_tally t where t.month = v_month;
            end if;
            v_action := 'drop partition';
        else
            if p_dry_run then
                execute format('select count(*) from %I where occurred_at < $1', v_part.partition_name)
                    into v_count using v_cutoff;
            else
                delete from events e
                where e.occurred_at >= v_part.starts and e.occurred_at < v_cutoff;
                get diagnostics v_count = row_count;
            end if;
            v_action := 'delete rows';
        end if;
        if not p_dry_run then
            insert into prune_log (cutoff, partition_name, action, events, pruned_by)
            values (v_cutoff, v_part.partition_name, v_action, v_count, session_user);
        end if;
        return query select v_part.partition_name, v_action, v_count;
    end loop;
    if not p_dry_run then
        insert into maintenance (job, last_run) values ('prune', least(p_now, now()))
        on conflict (job) do update set last_run = excluded.last_run;
    end if;
end
$$;
revoke execute on function prune(timestamptz, boolean) from public;

-- The daemon's daily chores: partitions ahead always, prune when the last one is a day old.
-- Returns the events removed (0 when pruning was not due or another daemon holds it).
create function maintain(p_now timestamptz default now())
returns bigint
language plpgsql
security definer
set search_path from current
as $$
declare
    v_last timestamptz := (select last_run from maintenance where job = 'prune');
begin
    perform ensure_partitions_ahead(least(p_now, now()));
    if v_last is not null and v_last > p_now - interval '1 day' then
        return 0;
    end if;
    return coalesce((select sum(p.events) from prune(p_now) p), 0);
end
$$;
revoke execute on function maintain(timestamptz) from public;

-- Clockwatch 0007: pruning a month costs the same whatever the month holds (issue 6).
--
-- Dropping an expired partition is constant-time, but prune() also counted the partition's rows
-- for its "removed N events": one pass over an index, 0.2 s for a month of 1,000,000 events
-- against nothing for a month of 1,000. The counts are now kept as events are written, per
-- workspace and month, by statement triggers on events, so prune() reads a few rows instead.
--
-- Triggers rather than counting in append_events(), so that every writer is counted (an admin's
-- backfill, a test ageing events), and per workspace so that two daemons appending to different
-- workspaces never update the same row: a daemon already holds its workspace's chain_head lock
-- while it appends, so the count row of that workspace adds no waiting. The trigger costs about
-- 1.3 us per event written (a 5,000-event insert into events with and without it, 3 runs each:
-- 82 and 75 ms), against about 30 us to append one.
--
-- Runs with `search_path = <clockwatch schema>, pg_catalog, pg_temp`, like every migration.

-- Events per workspace and month (the month of occurred_at in UTC, as partitions are cut).
create table event_tally (
    workspace_id text not null,
    month        date not null,
    events       bigint not null,
    primary key (month, workspace_id)
);

create function tally_inserted() returns trigger
language plpgsql
set search_path from current
as $$
begin
    insert into event_tally (workspace_id, month, events)
    select n.workspace_id, date_trunc('month', n.occurred_at at time zone 'UTC')::date, count(*)
    from tally_new n
    group by 1, 2
    -- Sorted, so that two writers never take the same rows' locks in opposite orders.
    order by 2, 1
    on conflict (month, workspace_id) do update set events = event_tally.events + excluded.events;
    return null;
end
$$;

create function tally_deleted() returns trigger
language plpgsql
set search_path from current
as $$
begin
    update event_tally t set events = t.events - d.events
    from (select o.workspace_id, date_trunc('month', o.occurred_at at time zone 'UTC')::date as month,
                 count(*) as events
          from tally_old o
          group by 1, 2) d
    where t.workspace_id = d.workspace_id and t.month = d.month;
    return null;
end
$$;

-- An update can move an event to another month or workspace (nothing in Clockwatch does, but an
-- admin may): take the old rows off and count the new ones in.
create function tally_updated() returns trigger
language plpgsql
set search_path from current
as $$
begin
    insert into event_tally (workspace_id, month, events)
    select c.workspace_id, c.month, sum(c.delta)
    from (select n.workspace_id, date_trunc('month', n.occurred_at at time zone 'UTC')::date as month,
                 1 as delta
          from tally_new n
          union all
          select o.workspace_id, date_trunc('month', o.occurred_at at time zone 'UTC')::date, -1
          from tally_old o) c
    group by 1, 2
    having sum(c.delta) <> 0
    order by 2, 1
    on conflict (month, workspace_id) do update set events = event_tally.events + excluded.events;
    return null;
end
$$;

create function tally_truncated() returns trigger
language plpgsql
set search_path from current
as $$
begin
    delete from event_tally;
    return null;
end
$$;

-- Triggers first, then the backfill: creating a trigger locks events against writes until this
-- migration commits, so an event is either in the backfill or counted by its trigger, never both.
-- Statement triggers on the partitioned table see every row written through it; statements
-- aimed at one partition directly bypass them, which is why prune() below deletes through
-- events.
create trigger tally_insert after insert on events referencing new table as tally_new
    for each statement execute function tally_inserted();
create trigger tally_delete after delete on events referencing old table as tally_old
    for each statement execute function tally_deleted();
create trigger tally_update after update on events
    referencing old table as tally_old new table as tally_new
    for each statement execute function tally_updated();
create trigger tally_truncate after truncate on events
    for each statement execute function tally_truncated();

-- One pass over the existing log, once: about 0.8 s per 1,000,000 events on the benchmark machine
-- (warm cache). The daemon's appends wait for it behind the trigger's lock; reports do not.
insert into event_tally (workspace_id, month, events)
select workspace_id, date_trunc('month', occurred_at at time zone 'UTC')::date, count(*)
from events
group by 1, 2;

-- 0003's prune(), counting from event_tally. The partition that straddles the cutoff still has
-- its expired rows deleted (and counted by the delete), now through events so the tally
-- triggers see them; a dropped partition's count rows go with it.
create or replace function prune(p_now timestamptz default now(), p_dry_run boolean default false)
returns table (partition_name text, action text, events bigint)
language plpgsql
security definer
set search_path from current
as $$
declare
    v_cutoff timestamptz := p_now - (select retention from settings);
    v_part   record;
    v_month  date;
    v_count  bigint;
begin
    if not pg_try_advisory_xact_lock(hashtext('clockwatch prune ' || current_schema())) then
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
            end if;
            return query select v_part.partition_name, 'drop partition'::text, v_count;
        else
            if p_dry_run then
                execute format('select count(*) from %I where occurred_at < $1', v_part.partition_name)
                    into v_count using v_cutoff;
            else
                delete from events e
                where e.occurred_at >= v_part.starts and e.occurred_at < v_cutoff;
                get diagnostics v_count = row_count;
            end if;
            return query select v_part.partition_name, 'delete rows'::text, v_count;
        end if;
    end loop;
    if not p_dry_run then
        insert into maintenance (job, last_run) values ('prune', p_now)
        on conflict (job) do update set last_run = excluded.last_run;
    end if;
end
$$;

-- Clockwatch 0003: retention. Events older than settings.retention are removed by dropping whole
-- monthly partitions; only the partition that straddles the cutoff has rows deleted. So pruning a
-- year of a large log costs about what pruning a small one does.
--
-- Runs with `search_path = <clockwatch schema>, pg_catalog, pg_temp`, like every migration.

alter table settings add column retention interval not null default '365 days'
    check (retention >= interval '1 day');

-- When maintenance last ran, so several daemons do it once a day between them.
create table maintenance (
    job      text primary key,
    last_run timestamptz not null
);

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
set search_path from current
as $$
declare
    v_before integer := (select count(*) from event_partitions());
begin
    perform ensure_partition(p_now + m * interval '1 month') from generate_series(0, p_months) m;
    return (select count(*) from event_partitions()) - v_before;
end
$$;

-- Called with each partition before prune() removes its events older than p_cutoff. Nothing to do
-- here; a later migration (0004, the hash chain) gives it a body.
create function before_prune(p_partition text, p_cutoff timestamptz) returns void
language sql
set search_path from current
as $$ select $$;

-- Remove events older than p_now - settings.retention. Whole partitions before the cutoff are
-- detached and dropped; the partition holding the cutoff has its older rows deleted. With
-- p_dry_run nothing changes and the rows say what would. Returns nothing when another session
-- is already pruning (one instance at a time, by advisory lock).
create function prune(p_now timestamptz default now(), p_dry_run boolean default false)
returns table (partition_name text, action text, events bigint)
language plpgsql
set search_path from current
as $$
declare
    v_cutoff timestamptz := p_now - (select retention from settings);
    v_part   record;
    v_count  bigint;
begin
    if not pg_try_advisory_xact_lock(hashtext('clockwatch prune ' || current_schema())) then
        return;
    end if;
    -- Dropping a partition needs a brief exclusive lock on events; never queue behind a long
    -- report for it (and block the reports queued behind us): give up and retry next time.
    set local lock_timeout = '5s';
    for v_part in select * from event_partitions() p where p.starts < v_cutoff loop
        if not p_dry_run then
            perform before_prune(v_part.partition_name, v_cutoff);
        end if;
        if v_part.ends <= v_cutoff then
            execute format('select count(*) from %I', v_part.partition_name) into v_count;
            if not p_dry_run then
                execute format('alter table events detach partition %I', v_part.partition_name);
                execute format('drop table %I', v_part.partition_name);
            end if;
            return query select v_part.partition_name, 'drop partition'::text, v_count;
        else
            if p_dry_run then
                execute format('select count(*) from %I where occurred_at < $1', v_part.partition_name)
                    into v_count using v_cutoff;
            else
                execute format('delete from %I where occurred_at < $1', v_part.partition_name)
                    using v_cutoff;
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

-- The daemon's daily chores: partitions ahead always, prune when the last one is a day old.
-- Returns the events removed (0 when pruning was not due or another daemon holds it).
create function maintain(p_now timestamptz default now())
returns bigint
language plpgsql
set search_path from current
as $$
declare
    v_last timestamptz := (select last_run from maintenance where job = 'prune');
begin
    perform ensure_partitions_ahead(p_now);
    if v_last is not null and v_last > p_now - interval '1 day' then
        return 0;
    end if;
    return coalesce((select sum(p.events) from prune(p_now) p), 0);
end
$$;

-- Installation-wide figures: staging depth and age, dead letters, connected daemons, recent
-- events, partitions and retention. $1: the daemon's role (null: it runs as the schema's owner).
-- A daemon counts only when it is logged in as that role: any session may call itself
-- 'clockwatch daemon', but only the daemon's own role (or the owner's) can log in as it.
select (select count(*) from staging) as staged,
       (select extract(epoch from now() - min(stmt_at))::float8 from staging) as oldest_staged_secs,
       (select count(*) from dead_letter) as dead_letters,
       (select count(*) from pg_stat_activity a
        where a.datname = current_database() and a.application_name = 'clockwatch daemon'
          and pg_has_role(a.usesysid,
                          coalesce((select r.oid from pg_roles r where r.rolname = $1::text),
                                   (select n.nspowner from pg_namespace n where n.nspname = current_schema())),
                          'MEMBER')) as daemons,
       (select count(*) from events where occurred_at > now() - interval '1 hour') as events_last_hour,
       (select count(*) from events where occurred_at > now() - interval '1 day') as events_last_day,
       (select array_agg(partition_name order by starts) from event_partitions()) as partitions,
       (select retention::text from settings) as retention,
       (select last_run from maintenance where job = 'prune') as last_prune,
       -- Pruning that reached inside the retention period: a prune whose cutoff did, or a chain
       -- anchored at an event that was not yet expired when it was removed, or at one written to
       -- the log after the cutoff (backdated: see chain_anchor; 7 days for long transactions).
       (select count(*) from prune_log p cross join settings s
        where p.cutoff > p.ran_at - s.retention)
       + (select count(*) from chain_anchor a cross join settings s
          where a.occurred_at >= a.pruned_at - s.retention
             or a.recorded_at >= a.cutoff + interval '7 days') as early_prunes

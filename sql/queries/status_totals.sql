-- Installation-wide figures: staging depth and age, dead letters, connected daemons, recent
-- events, partitions and retention.
select (select count(*) from staging) as staged,
       (select extract(epoch from now() - min(stmt_at))::float8 from staging) as oldest_staged_secs,
       (select count(*) from dead_letter) as dead_letters,
       (select count(*) from pg_stat_activity
        where datname = current_database() and application_name = 'clockwatch daemon') as daemons,
       (select count(*) from events where occurred_at > now() - interval '1 hour') as events_last_hour,
       (select count(*) from events where occurred_at > now() - interval '1 day') as events_last_day,
       (select array_agg(partition_name order by starts) from event_partitions()) as partitions,
       (select retention::text from settings) as retention,
       (select last_run from maintenance where job = 'prune') as last_prune

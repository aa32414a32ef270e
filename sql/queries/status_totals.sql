-- Installation-wide figures: staging depth and age, dead letters, connected daemons.
select (select count(*) from staging) as staged,
       (select extract(epoch from now() - min(stmt_at))::float8 from staging) as oldest_staged_secs,
       (select count(*) from dead_letter) as dead_letters,
       (select count(*) from pg_stat_activity
        where datname = current_database() and application_name = 'clockwatch daemon') as daemons

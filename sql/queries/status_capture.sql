-- Capture's figures, read where the host's tables are: staging depth and age, dead letters not
-- yet moved to a log database of its own, connected daemons. $1: the daemon's role (null: it
-- runs as the schema's owner). A daemon counts only when it is logged in as that role: any
-- session may call itself 'clockwatch daemon', but only the daemon's own role (or the owner's)
-- can log in as it.
select (select count(*) from staging) as staged,
       (select extract(epoch from now() - min(stmt_at))::float8 from staging) as oldest_staged_secs,
       (select count(*) from dead_letter) as dead_letters,
       (select count(*) from pg_stat_activity a
        where a.datname = current_database() and a.application_name = 'clockwatch daemon'
          and pg_has_role(a.usesysid,
                          coalesce((select r.oid from pg_roles r where r.rolname = $1::text),
                                   (select n.nspowner from pg_namespace n where n.nspname = current_schema())),
                          'MEMBER')) as daemons

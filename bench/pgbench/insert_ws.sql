-- Single-row INSERT of a time entry into workspace :ws (bench/wal: 1 is audited, 2 is not).
begin;
select set_config('clockwatch.actor', '1', true);
insert into app.time_entry (workspace_id, user_id, description, start_at, source) values (:ws, 1, 'bench', now(), 'timer');
commit;

-- Single-row INSERT of a time entry, as a timer start would.
begin;
select set_config('clockwatch.actor', '1', true);
insert into app.time_entry (workspace_id, user_id, description, start_at, source) values (1, 1, 'bench', now(), 'timer');
commit;

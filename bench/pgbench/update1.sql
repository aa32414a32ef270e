-- Single-row UPDATE of a time entry.
\set id random(:lo, :hi)
begin;
select set_config('clockwatch.actor', '1', true);
update app.time_entry set approved = not approved where id = :id;
commit;

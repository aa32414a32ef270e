-- One UPDATE touching 500 time entries (a bulk approval).
\set first random(:lo, :hi - 500)
begin;
select set_config('clockwatch.actor', '1', true);
update app.time_entry set approved = not approved where id between :first and :first + 499;
commit;

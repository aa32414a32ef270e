-- Take the oldest staged changes out of staging for this transaction. SKIP LOCKED lets several
-- daemons drain at once without waiting on, or taking, each other's rows. Deleting while claiming
-- touches each staged row once instead of locking it and deleting it later; the deletion commits
-- with the events written from these rows, or rolls back with them.
-- (`= any(array(...))`, not `in (...)`: the planner may answer IN with a hash join over the whole
-- of staging, which is a full scan per batch during a backlog.)
delete from staging
where id = any (array(select id from staging order by id limit $1 for update skip locked))
returning id, source, category, op, txid, stmt_at, depth, actor, origin, workspace_id, shape, old_row, new_row

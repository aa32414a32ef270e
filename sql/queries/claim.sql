-- Claim the oldest staged changes for this transaction. SKIP LOCKED lets several daemons drain
-- at once without waiting on, or taking, each other's rows; the rows stay locked until the
-- transaction that writes their events also deletes them.
select id, source, category, op, txid, stmt_at, depth, actor, origin, workspace_id, old_row, new_row
from staging
order by id
limit $1
for update skip locked

-- Changes the host made itself (depth 1) in the given transactions, still waiting in staging.
-- Rows claimed by another daemon are locked but still visible to this plain read.
select txid, stmt_at, id
from staging
where txid = any($1) and depth = 1

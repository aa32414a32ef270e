-- Changes the host made itself (depth 1) in the given transactions, still waiting in staging:
-- the first change not yet taken of each such row (any change of the statement will do).
-- Rows claimed by another daemon are locked but still visible to this plain read.
select txid, stmt_at, coalesce(ids[skip + 1], id)
from staging
where txid = any($1) and depth = 1

-- Changes the host made itself (not linked) in the given statements (transaction $1[i], at
-- $2[i]), already written as events. A primary event happened in the same statement as its linked
-- changes, so it is looked up by its time through the primary key, and by transaction among the
-- few events of that instant.
select txid, occurred_at, event_id
from events
where occurred_at = any($2) and txid = any($1) and not linked

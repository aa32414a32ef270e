-- Changes the host made itself (not linked) in the given transactions, already written as events.
select txid, occurred_at, event_id
from events
where txid = any($1) and not linked

-- The chain of one workspace in order, with whether each event's stored hash still matches its
-- content and stored predecessor hash. Events outside the chain (chain_seq null) come first.
select e.chain_seq, e.event_id, e.occurred_at, e.prev_hash, e.hash,
       e.hash = sha256(coalesce(e.prev_hash, '\x'::bytea) || sha256(convert_to(event_content(e), 'UTF8'))) as content_ok
from events e
where e.workspace_id = $1
  and ($2::timestamptz is null or e.occurred_at >= $2)
  and ($3::timestamptz is null or e.occurred_at < $3)
order by e.chain_seq nulls first, e.event_id

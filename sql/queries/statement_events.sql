-- Every event already written of the given statements (transaction $1[i], at $2[i]): what a
-- foreign-key action's change may have been caused by (src/cause.rs). Looked up as the primary
-- events are (primary_events.sql): by time through the primary key, in each workspace that has
-- a chain, and by transaction among the few events of that instant.
select e.txid, e.occurred_at, e.event_id, e.source, e.action_code, e.target_id, e.linked, e.caused_by
from events e
where e.workspace_id = any (array(select h.workspace_id from chain_head h))
  and e.occurred_at = any ($2) and e.txid = any ($1)

-- Changes the host made itself (not linked) in the given statements (transaction $1[i], at
-- $2[i]), already written as events. A primary event happened in the same statement as its linked
-- changes, so it is looked up by time through the primary key, in each workspace that has a
-- chain (a cascade may cross workspaces), and by transaction among the few events of that
-- instant.
select e.txid, e.occurred_at, e.event_id
from events e
where e.workspace_id = any (array(select h.workspace_id from chain_head h))
  and e.occurred_at = any ($2) and e.txid = any ($1) and not e.linked

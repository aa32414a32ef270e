-- The events that caused a page's linked changes, to summarise each cause beside its change
-- ("Deleted project Ares, by Ann Admin"). A linked change and its cause happened in the same
-- statement, so they share occurred_at: the primary key finds the cause by its time, with no
-- index on event_id alone. $1 workspace, $2 the linked changes' times, $3 their causes' ids.
select e.event_id, e.occurred_at, e.action, e.action_code, e.origin, e.target, e.target_id, e.author
from report_events e
where e.workspace_id in ($1, '*') and e.occurred_at = any ($2) and e.event_id = any ($3)

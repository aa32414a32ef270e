-- The linked changes a page's events caused (a deleted project's relinked entries), listed
-- under each cause. They share their cause's occurred_at (one statement), which the primary key
-- walks. $1 workspace, $2 the events' times, $3 their ids.
select e.caused_by, e.event_id, e.occurred_at, e.action, e.action_code, e.origin, e.target, e.target_id
from report_events e
where e.workspace_id = $1 and e.occurred_at = any ($2) and e.caused_by = any ($3)
order by e.caused_by, e.event_id

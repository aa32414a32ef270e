-- Which of a batch's events (workspace $1[i], time $2[i], staging id $3[i]) the log already
-- holds, through the primary key: a batch claimed again after its host commit was lost.
select e.event_id
from events e
join unnest($1::text[], $2::timestamptz[], $3::bigint[]) b(workspace_id, occurred_at, event_id)
  on e.workspace_id = b.workspace_id and e.occurred_at = b.occurred_at and e.event_id = b.event_id

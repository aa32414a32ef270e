-- The authors and origins of one workspace's events in a range: what the Audit Log page's author
-- picker and origin filter offer. Only this workspace's own events are read, so the list tells a
-- link holder nothing about the people of other workspaces (known_name spans them all). An
-- author shows by the latest name the log knows for them (known_name), else as their events
-- name them; System is 'system'. The range is the report's (at most max_report_days), which the
-- primary key walks; a workspace's whole history would be a scan of every partition.
-- $1 workspace, $2 from, $3 to.
with in_range as (
    select coalesce(e.author_id, 'system') as author_id, e.author, e.origin
    from report_events e
    where e.workspace_id = $1 and e.occurred_at >= $2 and e.occurred_at < $3
)
select 'author' as kind,
       r.author_id as id,
       coalesce((select k.name from known_name k
                 where k.category = 'author' and k.id = r.author_id and k.name <> ''
                 order by k.seen_at desc limit 1),
                max(r.author)) as name
from in_range r
group by r.author_id
union all
select 'origin', null, r.origin
from in_range r
where r.origin is not null
group by r.origin

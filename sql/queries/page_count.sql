-- How many events a page's filters match, and how many of them come before a page's first row
-- (newer, in the report's order): "Events 51-100 of 261". The same filters as report.sql, over
-- report_events, for the same events: the workspace's own, and every workspace's ('*') that a
-- report shows. The range is at most max_report_days, walked by the primary key.
-- $1 workspace, $2 from, $3 to, $4 author ids, $5 action codes, $6 categories, $7 origins (lower
-- case), $8 one event, $9 and $10 the page's first row (occurred_at, event_id).
select count(*) as total,
       count(*) filter (where (r.occurred_at, r.event_id) > ($9::timestamptz, $10::bigint)) as newer
from report_events r
where (r.workspace_id = $1
       or (r.workspace_id = '*' and $1 <> '*'
           and (r.action_code like '%.truncated'
                or r.source = any ((select s.shared_sources from settings s)::text[]))))
  and ($2::timestamptz is null or r.occurred_at >= $2)
  and ($3::timestamptz is null or r.occurred_at < $3)
  and ($4::text[] is null or coalesce(r.author_id, 'system') = any ($4))
  and ($5::text[] is null or r.action_code = any ($5))
  and ($6::text[] is null or r.category = any ($6))
  and ($7::text[] is null or lower(r.origin) = any ($7))
  and ($8::bigint is null or r.event_id = $8)

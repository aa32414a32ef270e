-- How many events a page's filters match, and how many of them come before a page's first row
-- (newer, in the report's order): "Events 51-100 of 261". The same filters and the same two
-- branches as report.sql, each walked newest first down the primary key and stopped after $11
-- rows: a count costs at most that many rows read, whatever the range holds (a 30-day count at
-- 10,000,000 events would read 410,000), and the page says "more than" beyond it.
-- $1 workspace, $2 from, $3 to, $4 author ids, $5 action codes, $6 categories, $7 origins (lower
-- case), $8 one event, $9 and $10 the page's first row (occurred_at, event_id), $11 the most
-- rows counted.
with filtered as not materialized (
    select r.workspace_id, r.occurred_at, r.event_id, r.action_code, r.source
    from report_events r
    where ($2::timestamptz is null or r.occurred_at >= $2)
      and ($3::timestamptz is null or r.occurred_at < $3)
      and ($4::text[] is null or coalesce(r.author_id, 'system') = any ($4))
      and ($5::text[] is null or r.action_code = any ($5))
      and ($6::text[] is null or r.category = any ($6))
      and ($7::text[] is null or lower(r.origin) = any ($7))
      and ($8::bigint is null or r.event_id = $8)
)
select count(*) as total,
       count(*) filter (where (c.occurred_at, c.event_id) > ($9::timestamptz, $10::bigint)) as newer
from (
    (select w.occurred_at, w.event_id from filtered w where w.workspace_id = $1
     order by w.occurred_at desc, w.event_id desc limit $11)
    union all
    (select a.occurred_at, a.event_id from filtered a
     where a.workspace_id = '*' and $1 <> '*'
       and (a.action_code like '%.truncated' or a.source = any ((select s.shared_sources from settings s)::text[]))
     order by a.occurred_at desc, a.event_id desc limit $11)
) c

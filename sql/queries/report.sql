-- Events of one workspace (and those of every workspace: '*' and a truncated action, or a
-- source whose rows with no workspace are shared; a host row whose workspace is the text '*' has
-- its own events too) matching the report
-- filters. Null filters match everything. Ordered by the caller ({order} is "desc" for a report,
-- "asc" for one record's history; {after} is "<" or ">" to match). {rows} is the report view,
-- whose {columns} a report shows, or report_events, the stored columns an export formats
-- itself (src/detail.rs): the filters name columns both have. A page after the first starts
-- past the last row shown ($9, $10: its occurred_at and event_id), a keyset that the index walks
-- straight to, where an OFFSET would read and drop every row before it. $11 picks one event;
-- $12 holds origins, lower case.
--
-- The workspace and '*' are asked for in two branches, each ordered and limited on its own, not
-- with `workspace_id in ($1, '*')`: only a single workspace value lets PostgreSQL walk the
-- (workspace_id, occurred_at, event_id) index in order and stop after the page. With IN, a first
-- page at 10,000,000 events sorted the whole 30-day range (410,000 rows, 570-800 ms).
with filtered as not materialized (
    select {columns} from {rows} r
    where ($2::timestamptz is null or r.occurred_at >= $2)
      and ($3::timestamptz is null or r.occurred_at < $3)
      and ($4::text[] is null or coalesce(r.author_id, 'system') = any ($4))
      and ($5::text[] is null or r.action_code = any ($5))
      and ($6::text[] is null or r.category = any ($6))
      and ($7::text is null or r.target_id = $7)
      and ($9::timestamptz is null or (r.occurred_at, r.event_id) {after} ($9, $10::bigint))
      and ($11::bigint is null or r.event_id = $11)
      and ($12::text[] is null or lower(r.origin) = any ($12))
)
select r.*
from (
    (select * from filtered w where w.workspace_id = $1
     order by w.occurred_at {order}, w.event_id {order} limit $8)
    union all
    (select * from filtered a
     where a.workspace_id = '*' and $1 <> '*'
       and (a.action_code like '%.truncated' or a.source = any ((select s.shared_sources from settings s)::text[]))
     order by a.occurred_at {order}, a.event_id {order} limit $8)
) r
order by r.occurred_at {order}, r.event_id {order}
limit $8

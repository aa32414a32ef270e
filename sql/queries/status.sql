-- One row per workspace that has anything enabled or staged: what is enabled, what waits in
-- staging, and the newest event.
with workspaces as (
    select workspace_id from workspace_category
    union
    select w.id from staging s cross join lateral unnest(s.workspace_ids) w(id) where w.id is not null
)
select w.workspace_id,
       coalesce((select array_agg(c.category order by c.category)
                 from workspace_category c where c.workspace_id = w.workspace_id), '{}') as categories,
       (select count(*) from staging s cross join lateral unnest(s.workspace_ids) with ordinality u(id, n)
        where u.id = w.workspace_id and u.n > s.skip) as staged,
       (select extract(epoch from now() - min(s.stmt_at))::float8
        from staging s where w.workspace_id = any (s.workspace_ids[s.skip + 1:])) as oldest_staged_secs,
       (select max(e.occurred_at) from events e where e.workspace_id = w.workspace_id) as newest_event
from workspaces w
order by w.workspace_id

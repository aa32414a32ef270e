-- One row per workspace that has anything enabled or staged: what is enabled and what waits in
-- staging (its newest event is read where the log is).
with workspaces as (
    select workspace_id from workspace_category
    union
    select workspace_id from staging where workspace_id is not null
)
select w.workspace_id,
       coalesce((select array_agg(c.category order by c.category)
                 from workspace_category c where c.workspace_id = w.workspace_id), '{}') as categories,
       (select count(*) from staging s where s.workspace_id = w.workspace_id) as staged,
       (select extract(epoch from now() - min(s.stmt_at))::float8
        from staging s where s.workspace_id = w.workspace_id) as oldest_staged_secs
from workspaces w
order by w.workspace_id

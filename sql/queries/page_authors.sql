-- Every author the log knows for one workspace, for the Audit Log page's author picker: those of
-- its events and of the events every workspace shares ('*'), from author_tally (a few rows per
-- month, where the events would be a scan of the workspace's history). Only this workspace's
-- authors are read, so the list tells a link holder nothing about the people of other workspaces
-- (known_name spans them all). Each shows by the latest name the log knows for them, else by
-- their id as '#4'; System is 'system'. $1 workspace.
select a.author_id,
       case when a.author_id = 'system' then null
            else coalesce((select k.name from known_name k
                           where k.category = 'author' and k.id = a.author_id and k.name <> ''
                           order by k.seen_at desc limit 1),
                          '#' || a.author_id)
       end as name
from (select distinct t.author_id
      from author_tally t
      where t.workspace_id in ($1, '*') and t.events > 0) a

-- Set the oldest claimable staged change above id $2 (where the refused batch's claim started)
-- aside in dead_letter, images and all, with the reason ($1) a batch holding it alone was
-- refused. Used when splitting a refused batch has narrowed it to this one change, so that it
-- neither blocks the changes behind it nor disappears.
with taken as (
    delete from staging
    where id = (select id from staging where id > $2::bigint order by id limit 1 for update skip locked)
    returning *
)
insert into dead_letter (staging_id, reason, change, old_row, new_row)
select t.id, $1,
       jsonb_build_object('id', t.id, 'source', s.source, 'category', s.category, 'op', t.op,
                          'txid', t.txid, 'stmt_at', t.stmt_at, 'actor', t.actor,
                          'workspace_id', t.workspace_id, 'shape', t.shape),
       t.old_row, t.new_row
from taken t
left join shape s on s.id = t.shape
on conflict (staging_id) do nothing

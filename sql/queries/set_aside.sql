-- Set the oldest claimable staged change aside in dead_letter, images and all, with the reason
-- ($1) a batch holding it alone was refused. Used when splitting a refused batch has narrowed it
-- to this one change, so that it neither blocks the changes behind it nor disappears. It is the
-- first change of the oldest staged row not yet taken: the row is deleted if that was its last,
-- and otherwise advanced past it (claim.sql).
with oldest as (
    select s.id, s.skip, s.changes from staging s order by s.id limit 1 for update skip locked
), deleted as (
    delete from staging s using oldest o
    where s.id = o.id and s.skip = o.skip and o.changes = o.skip + 1
    returning s.*
), advanced as (
    update staging s set skip = o.skip + 1 from oldest o
    where s.id = o.id and s.skip = o.skip and o.changes > o.skip + 1
    returning s.*
), taken as (
    -- The change's position: after the deleted row's skip, or at the advanced row's new one.
    select d.*, d.skip + 1 as n from deleted d
    union all
    select a.*, a.skip as n from advanced a
)
insert into dead_letter (staging_id, reason, change, old_row, new_row)
select coalesce(t.ids[t.n], t.id), $1,
       jsonb_build_object('id', coalesce(t.ids[t.n], t.id), 'source', s.source, 'category', s.category, 'op', t.op,
                          'txid', t.txid, 'stmt_at', t.stmt_at, 'actor', t.actor,
                          'workspace_id', t.workspace_ids[t.n], 'shape', t.shape),
       t.old_rows[t.n], t.new_rows[t.n]
from taken t
left join shape s on s.id = t.shape
on conflict (staging_id) do nothing

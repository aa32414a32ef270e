-- The rest of some transactions' changes, when a batch ended in the middle of them: the staged
-- changes of the transactions $2 to the sources $3 with ids past the batch's last, $1, and at
-- most $4 of them. A record's tags changed through a link table are merged with the record's
-- own change in the same transaction into one event, which needs both in one batch. Staging has
-- no index on txid (it would slow every host write), so the look is bounded to a range of the
-- primary key; a transaction spread wider than that is logged as two events.
--
-- The batch's last row may still hold changes (the batch took part of it). Its id, its first
-- change's, is at most $1, and every row before it that the batch reached is gone from this
-- transaction's view: it is the newest row left with an id up to $1. Rows are taken whole, from
-- the changes no batch has taken (`skip` as the deleted row has it).
with rest as (
    select r.id, sum(r.changes - r.skip) over (order by r.id) as through
    from (select s.id, s.changes, s.skip
          from staging s
          where (s.id > $1::bigint and s.id <= $1::bigint + $4::bigint
                 or s.id = (select max(x.id) from staging x where x.id <= $1::bigint))
            and s.txid = any ($2::bigint[])
            and s.shape = any (array(select h.id from shape h where h.source = any ($3::text[])))
          order by s.id
          for update skip locked) r
), claimed as (
    delete from staging
    where id = any (array(select r.id from rest r where r.through <= $4::bigint))
    returning *
)
select coalesce(u.change_id, c.id) as id, coalesce(h.source, format('(shape %s is missing)', c.shape)) as source,
       coalesce(h.category, '') as category, c.op, c.txid, c.stmt_at, c.depth, c.actor, c.origin,
       u.workspace_id, c.shape, c.old_tags, c.new_tags, u.old_row, u.new_row,
       false as oversize, false as more
from claimed c
cross join lateral unnest(c.workspace_ids, c.old_rows, c.new_rows, c.ids)
    with ordinality as u(workspace_id, old_row, new_row, change_id, n)
left join shape h on h.id = c.shape
where u.n > c.skip

-- The rest of some transactions' changes, when a batch ended in the middle of them: the staged
-- changes of the transactions $2 to the sources $3 with ids past the batch's last, $1, and at
-- most $4 ids past it. A record's tags changed through a link table are merged with the
-- record's own change in the same transaction into one event, which needs both in one batch.
-- Staging has no index on txid (it would slow every host write), so the look is bounded to a
-- range of the primary key; a transaction spread wider than that is logged as two events.
with claimed as (
    delete from staging
    where id = any (array(select s.id from staging s
                          where s.id > $1::bigint and s.id <= $1::bigint + $4::bigint
                            and s.txid = any ($2::bigint[])
                            and s.shape = any (array(select h.id from shape h where h.source = any ($3::text[])))
                          order by s.id
                          for update skip locked))
    returning *
)
select c.id, coalesce(h.source, format('(shape %s is missing)', c.shape)) as source,
       coalesce(h.category, '') as category, c.op, c.txid, c.stmt_at, c.depth, c.actor, c.origin,
       c.workspace_id, c.shape, c.old_tags, c.new_tags, c.old_row, c.new_row,
       false as oversize, false as more
from claimed c
left join shape h on h.id = c.shape

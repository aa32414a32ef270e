-- The primary change of each linked change: a change the host made itself (depth 1) in the same
-- transaction and statement. A foreign-key cascade's rows are captured after the statement that
-- caused them, a host trigger's before, so the nearest earlier primary is preferred, then the
-- nearest later one. Primaries may still be staged (this batch or a later one) or already be
-- events: event ids are staging ids, so either answers with the right event id.
select l.id,
       coalesce(
           (select max(p.id) from (
                select s.id from staging s
                where s.txid = l.txid and s.stmt_at = l.stmt_at and s.depth = 1 and s.id < l.id
                union all
                select e.event_id from events e
                where e.txid = l.txid and e.occurred_at = l.stmt_at and not e.linked and e.event_id < l.id
            ) p),
           (select min(p.id) from (
                select s.id from staging s
                where s.txid = l.txid and s.stmt_at = l.stmt_at and s.depth = 1 and s.id > l.id
                union all
                select e.event_id from events e
                where e.txid = l.txid and e.occurred_at = l.stmt_at and not e.linked and e.event_id > l.id
            ) p)
       ) as caused_by
from unnest($1::bigint[], $2::bigint[], $3::timestamptz[]) as l(id, txid, stmt_at)

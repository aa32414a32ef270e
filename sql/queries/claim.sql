-- Take the oldest staged changes out of staging for this transaction: at most $1 of them, and no
-- more image bytes than $2 (though always the first, however large). A staged row holds one host
-- statement's changes (up to 256); the batch takes whole rows while they fit and the first
-- changes of the row where it ends, leaving the rest there (`skip`). So a batch is as large as
-- the daemon asks whatever the host's statements were, and a refused batch halves down to one
-- change (drain.rs). A row taken whole is deleted; taking part of one rewrites it, which happens
-- once per batch at most.
-- The claim commits with the events written from these changes, or rolls back with them.
--
-- While several connections drain a backlog together, each locks the rows it reads with SKIP
-- LOCKED and so never waits on, or takes, the others' rows. A connection draining alone (the
-- steady state: one batch per wake-up) runs this statement without the locking clause (drain.rs,
-- `Claim`): the row lock wrote a 54-byte WAL record per staged row before the deletion wrote its
-- own (bench/wal). A change is still taken once: a row is deleted or advanced only if nobody
-- advanced it since it was read (`s.skip = r.skip`, checked again on the row's newest version
-- when a concurrent claim changed it first), and only the changes of rows this statement deleted
-- or advanced are returned. No role but the daemon may write staging's rows.
--
-- A change whose images together exceed $3 bytes (daemon.max_change_bytes) is not handed to the
-- daemon: it is set aside in dead_letter with its images, whole, in the same transaction, so no
-- batch can grow past what PostgreSQL accepts in one message or one jsonb value (1 GB, 256 MB).
-- Its bytes do not count against the batch's.
--
-- `more` says whether staging held more than this batch took.
-- (`= any(array(...))`, not `in (...)`: the planner may answer IN with a hash join over the whole
-- of staging, which is a full scan per batch during a backlog.)
with scanned as (
    -- The oldest rows, as many as could hold $1 changes (each holds one at least), with how many
    -- changes the rows before each hold.
    select s.id, sum(s.changes - s.skip) over (order by s.id) - (s.changes - s.skip) as before
    from (select id, changes, skip from staging order by id limit $1::bigint) s
), staged as (
    select s.*
    from staging s
    where s.id = any (array(select c.id from scanned c where c.before < $1::bigint))
    order by s.id
    for update skip locked
), changes as (
    select s.id, s.skip, s.changes, s.op, s.txid, s.stmt_at, s.depth, s.actor, s.origin, s.shape,
           s.old_tags, s.new_tags, u.n, coalesce(u.change_id, s.id) as change_id,
           u.workspace_id, u.old_row, u.new_row,
           coalesce(octet_length(u.old_row), 0)::bigint + coalesce(octet_length(u.new_row), 0) as bytes
    from staged s
    cross join lateral unnest(s.workspace_ids, s.old_rows, s.new_rows, s.ids)
        with ordinality as u(workspace_id, old_row, new_row, change_id, n)
    where u.n > s.skip
), numbered as (
    select c.*, row_number() over w as k,
           sum(case when c.bytes > $3::bigint then 0 else c.bytes end) over w as running
    from changes c
    window w as (order by c.id, c.n)
), taken as (
    select * from numbered t where t.k <= $1::bigint and (t.k = 1 or t.running <= $2::bigint)
), reach as (
    -- How far into each of its rows the batch reaches.
    select t.id, t.skip, t.changes, max(t.n) as upto from taken t group by t.id, t.skip, t.changes
), deleted as (
    delete from staging s using reach r
    where s.id = r.id and s.skip = r.skip and r.upto = r.changes
    returning s.id
), advanced as (
    update staging s set skip = r.upto from reach r
    where s.id = r.id and s.skip = r.skip and r.upto < r.changes
    returning s.id
), claimed as (
    -- Source and category are the shape's (staging does not repeat them per row). Shapes are
    -- never deleted; were one missing, its changes would still be claimed, and set aside.
    select t.*,
           coalesce(h.source, format('(shape %s is missing)', t.shape)) as source,
           coalesce(h.category, '') as category
    from taken t
    left join shape h on h.id = t.shape
    where t.id = any (array(select d.id from deleted d union all select a.id from advanced a))
), oversize as (
    insert into dead_letter (staging_id, reason, change, old_row, new_row)
    select c.change_id,
           format('the row images are %s bytes, more than daemon.max_change_bytes (%s): kept here whole, not logged as an event',
                  c.bytes, $3::bigint),
           jsonb_build_object('id', c.change_id, 'source', c.source, 'category', c.category, 'op', c.op,
                              'txid', c.txid, 'stmt_at', c.stmt_at, 'actor', c.actor,
                              'workspace_id', c.workspace_id, 'shape', c.shape, 'bytes', c.bytes),
           c.old_row, c.new_row
    from claimed c
    where c.bytes > $3
    on conflict (staging_id) do nothing
)
select c.change_id as id, c.source, c.category, c.op, c.txid, c.stmt_at, c.depth, c.actor, c.origin,
       c.workspace_id, c.shape, c.old_tags, c.new_tags,
       case when c.bytes > $3 then null else c.old_row end as old_row,
       case when c.bytes > $3 then null else c.new_row end as new_row,
       c.bytes > $3 as oversize,
       (select count(*) from scanned) >= $1
           or (select count(*) from scanned) > (select count(*) from staged)
           or (select count(*) from numbered) > (select count(*) from claimed) as more
from claimed c

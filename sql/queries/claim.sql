-- Take the oldest staged changes out of staging for this transaction: at most $1 of them, and no
-- more image bytes than $2 (though always the first, however large). Deleting while claiming
-- touches each staged row once; the deletion commits with the events written from these rows,
-- or rolls back with them.
--
-- While several connections drain a backlog together, each claims with SKIP LOCKED and so never
-- waits on, or takes, the others' rows. A connection draining alone (the steady state: one batch
-- per wake-up) runs this statement without the locking clause (drain.rs, `Claim`): the row lock
-- wrote a 54-byte WAL record per staged row before the deletion wrote its own, about 3% of what
-- an audited insert writes (bench/wal). Without it a second daemon's DELETE waits for the
-- first's transaction and skips the rows it removed, so a change is still taken once. No role but
-- the daemon may delete from staging, so no other session can hold its rows.
--
-- A change whose images together exceed $3 bytes (daemon.max_change_bytes) is not handed to the
-- daemon: it is set aside in dead_letter with its images, whole, in the same transaction, so no
-- batch can grow past what PostgreSQL accepts in one message or one jsonb value (1 GB, 256 MB).
-- (`octet_length` reads a stored value's size without decompressing it.)
--
-- Only ids above $4 are looked at (0: all). Drained rows leave their entries in staging's primary
-- key until vacuum comes by, and a look from the lowest id walks every one; during a backlog the
-- daemon starts each claim after the last one's highest id, and from the start now and then
-- (drain.rs, `ClaimFrom`).
--
-- `more` says whether staging held more than this batch took (past $4).
-- (`= any(array(...))`, not `in (...)`: the planner may answer IN with a hash join over the whole
-- of staging, which is a full scan per batch during a backlog.)
with candidates as (
    select s.id,
           row_number() over (order by s.id) as n,
           sum(coalesce(octet_length(s.old_row), 0) + coalesce(octet_length(s.new_row), 0))
               over (order by s.id) as running
    from (select id, old_row, new_row from staging where id > $4::bigint
          order by id limit $1::bigint for update skip locked) s
), claimed as (
    delete from staging
    where id = any (array(select c.id from candidates c where c.n = 1 or c.running <= $2::bigint))
    returning *, coalesce(octet_length(old_row), 0)::bigint + coalesce(octet_length(new_row), 0) as bytes
), with_shape as (
    -- Source and category are the shape's (staging does not repeat them per row). Shapes are
    -- never deleted; were one missing, its changes would still be claimed, and set aside.
    select c.*, coalesce(s.source, format('(shape %s is missing)', c.shape)) as source,
           coalesce(s.category, '') as category
    from claimed c left join shape s on s.id = c.shape
), oversize as (
    insert into dead_letter (staging_id, reason, change, old_row, new_row)
    select c.id,
           format('the row images are %s bytes, more than daemon.max_change_bytes (%s): kept here whole, not logged as an event',
                  c.bytes, $3::bigint),
           jsonb_build_object('id', c.id, 'source', c.source, 'category', c.category, 'op', c.op,
                              'txid', c.txid, 'stmt_at', c.stmt_at, 'actor', c.actor,
                              'workspace_id', c.workspace_id, 'shape', c.shape, 'bytes', c.bytes),
           c.old_row, c.new_row
    from with_shape c
    where c.bytes > $3
    on conflict (staging_id) do nothing
)
select c.id, c.source, c.category, c.op, c.txid, c.stmt_at, c.depth, c.actor, c.origin,
       c.workspace_id, c.shape, c.old_tags, c.new_tags,
       case when c.bytes > $3 then null else c.old_row end as old_row,
       case when c.bytes > $3 then null else c.new_row end as new_row,
       c.bytes > $3 as oversize,
       (select count(*) from candidates) > (select count(*) from claimed)
           or (select count(*) from candidates) >= $1 as more
from with_shape c

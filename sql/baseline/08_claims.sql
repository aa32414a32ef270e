-- Clockwatch baseline, part 8 of 9: claiming staged changes.
--
-- The daemon takes staged changes out of staging through these SECURITY DEFINER functions and
-- has no UPDATE or DELETE on the table itself: with either, it could lock staging (LOCK TABLE
-- takes ACCESS EXCLUSIVE for a role holding UPDATE or DELETE) and stall every audited host write.
-- With SELECT alone it can take no lock that a host's INSERT waits on.
--
-- Each claim is defined twice from one text: with `for update skip locked`, for connections
-- draining a backlog together, and without, for a connection draining alone (the row lock wrote a
-- WAL record per staged row that the deletion then repeats). SQL functions, planned per call: a
-- batch's claim is one call.

-- A staged change's actor as actor_sql() prints it whole (02_capture.sql): a compiled function's
-- own statements stage the settings' texts apart, in actor_values, and they are joined here.
-- A body of SQL standard form, its names bound when it is created: inlined into each claim.
create function joined_actor(p_actor text, p_values text[]) returns text
language sql immutable
return p_actor || coalesce(chr(29) || p_values::text, '');

do $define$
declare
    v_claim text := $claim$
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
                              'txid', c.txid, 'stmt_at', c.stmt_at, 'actor', joined_actor(c.actor, c.actor_values),
                              'workspace_id', c.workspace_id, 'shape', c.shape, 'bytes', c.bytes),
           c.old_row, c.new_row
    from with_shape c
    where c.bytes > $3
    on conflict (staging_id) do nothing
)
select c.id, c.source, c.category, c.op, c.txid, c.stmt_at, c.depth, joined_actor(c.actor, c.actor_values) as actor, c.origin,
       c.workspace_id, c.shape, c.old_tags, c.new_tags,
       case when c.bytes > $3 then null else c.old_row end as old_row,
       case when c.bytes > $3 then null else c.new_row end as new_row,
       c.bytes > $3 as oversize,
       (select count(*) from candidates) > (select count(*) from claimed)
           or (select count(*) from candidates) >= $1 as more
from with_shape c
$claim$;
    v_rest text := $rest$
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
       coalesce(h.category, '') as category, c.op, c.txid, c.stmt_at, c.depth, joined_actor(c.actor, c.actor_values) as actor, c.origin,
       c.workspace_id, c.shape, c.old_tags, c.new_tags, c.old_row, c.new_row,
       false as oversize, false as more
from claimed c
left join shape h on h.id = c.shape
$rest$;
    v_rows text := 'returns table (id bigint, source text, category text, op "char", txid bigint, stmt_at timestamptz,
                depth integer, actor text, origin text, workspace_id text, shape bigint,
                old_tags text[], new_tags text[], old_row text, new_row text, oversize boolean,
                more boolean)';
begin
    execute format('create function claim_together(bigint, bigint, bigint, bigint) %s language sql '
                   'security definer set search_path from current as %L', v_rows, v_claim);
    execute format('create function claim_alone(bigint, bigint, bigint, bigint) %s language sql '
                   'security definer set search_path from current as %L', v_rows,
                   replace(v_claim, 'for update skip locked', ''));
    execute format('create function claim_rest_together(bigint, bigint[], text[], bigint) %s language sql '
                   'security definer set search_path from current as %L', v_rows, v_rest);
    execute format('create function claim_rest_alone(bigint, bigint[], text[], bigint) %s language sql '
                   'security definer set search_path from current as %L', v_rows,
                   replace(v_rest, 'for update skip locked', ''));
end
$define$;

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
comment on function claim_together(bigint, bigint, bigint, bigint) is
    'claim a batch of staged changes: at most $1, $2 image bytes, set aside past $3 bytes, ids past $4';
-- The rest of some transactions' changes, when a batch ended in the middle of them: the staged
-- changes of the transactions $2 to the sources $3 with ids past the batch's last, $1, and at
-- most $4 ids past it. A record's tags changed through a link table are merged with the
-- record's own change in the same transaction into one event, which needs both in one batch.
-- Staging has no index on txid (it would slow every host write), so the look is bounded to a
-- range of the primary key; a transaction spread wider than that is logged as two events.
comment on function claim_rest_together(bigint, bigint[], text[], bigint) is
    'claim the rest of the transactions $2 (sources $3) past id $1, at most $4 ids past it';

-- Set the oldest claimable staged change above id $2 (where the refused batch's claim started)
-- aside in dead_letter, images and all, with the reason ($1) a batch holding it alone was
-- refused. Used when splitting a refused batch has narrowed it to this one change, so that it
-- neither blocks the changes behind it nor disappears.
create function set_aside_first(p_reason text, p_after bigint) returns bigint
language sql
security definer
set search_path from current
as $$
with taken as (
    delete from staging
    where id = (select id from staging where id > p_after order by id limit 1 for update skip locked)
    returning *
), kept as (
    insert into dead_letter (staging_id, reason, change, old_row, new_row)
    select t.id, p_reason,
           jsonb_build_object('id', t.id, 'source', s.source, 'category', s.category, 'op', t.op,
                              'txid', t.txid, 'stmt_at', t.stmt_at, 'actor', joined_actor(t.actor, t.actor_values),
                              'workspace_id', t.workspace_id, 'shape', t.shape),
           t.old_row, t.new_row
    from taken t
    left join shape s on s.id = t.shape
    on conflict (staging_id) do nothing
    returning 1
)
select count(*) from taken
$$;

revoke execute on function claim_together(bigint, bigint, bigint, bigint),
    claim_alone(bigint, bigint, bigint, bigint),
    claim_rest_together(bigint, bigint[], text[], bigint),
    claim_rest_alone(bigint, bigint[], text[], bigint),
    set_aside_first(text, bigint) from public;

-- With the log in a database of its own: take the dead letters the claims set aside (a change too large to log, one whose
-- batch PostgreSQL refused), for the daemon to write into the log's dead_letter in the same
-- pair of transactions as a batch. The host's dead_letter is then a queue like staging, and the
-- log's the one an admin reads. SECURITY DEFINER: the daemon may take them but not delete
-- anything else; SKIP LOCKED, so that drain connections never take the same ones.
create function take_dead_letters(p_limit integer)
returns setof dead_letter
language plpgsql
security definer
set search_path from current
as $$
begin
    -- Only where dead_letter is a queue: elsewhere (the log's, or capture and the log together)
    -- it is what an admin reads, never emptied.
    if (select s.layout from settings s) is distinct from 'host' then
        raise exception 'take_dead_letters: this schema keeps the log''s dead letters, not a host''s queue of them'
            using errcode = '42501';
    end if;
    return query
        delete from dead_letter d
        where d.staging_id in (select l.staging_id from dead_letter l order by l.staging_id
                               limit p_limit for update skip locked)
        returning d.*;
end
$$;
revoke execute on function take_dead_letters(integer) from public;

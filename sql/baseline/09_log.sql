-- Clockwatch baseline, part 9 of 9: the log in a database of its own.
--
-- With `log_database_url` set, Clockwatch's schema is installed in two databases: the host's,
-- where capture stages changes, and the log's, where the daemon writes events. Both run the
-- same migrations (each database records its own), and each uses its part: the host staging,
-- shapes and claims; the log events, the chain, names, reports and retention. The daemon moves
-- a batch in two transactions, the host's left open until the log's has committed
-- (src/drain.rs says why that is exactly once). What else crosses from one database to the
-- other goes through the two functions below.

-- Host side: take the dead letters the claims set aside (a change too large to log, one whose
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

-- Log side: the shapes of the images a batch writes (events.row_shape names them), as the host
-- recorded them, under the host's ids and without the table (relid null: it is the host's). A
-- shape never changes once written, so a shape already copied is left as it is. The daemon
-- copies a shape in the transaction that writes the first events naming it, before them, so
-- no event in the log names a shape the log does not hold (one it could then choose).
create function copy_shapes(p_shapes jsonb) returns void
language plpgsql
security definer
set search_path from current
as $$
begin
    -- Only in a log database: where capture runs, shape ids are capture's own, and one planted
    -- ahead of them would fail the host's write that takes it.
    if (select s.layout from settings s) is distinct from 'log' then
        raise exception 'copy_shapes: this schema is not a log database''s'
            using errcode = '42501';
    end if;
    insert into shape (id, relid, source, category, columns, types, excluded, signature)
    overriding system value
    select s.id, null, s.source, s.category, s.columns, s.types, s.excluded, s.signature
    from jsonb_to_recordset(p_shapes)
         as s(id bigint, source text, category text, columns text[], types text[],
              excluded text[], signature text)
    on conflict (id) do nothing;
end
$$;
revoke execute on function copy_shapes(jsonb) from public;

-- Log side: the name a workspace bore when the daemon last wrote its events, for reports made
-- where the host's table of workspaces is not (the log's own database), which the daemon
-- remembers as category 'workspace' of known_name. SECURITY DEFINER: a reporting role reads the
-- report views, not known_name itself; what it learns here is what the report views show it.
create function remembered_workspace(p_workspace text) returns text
language sql
stable
security definer
set search_path from current
as $$
    select k.name from known_name k
    where k.category = 'workspace' and k.id = p_workspace and k.name is not null
    order by k.seen_at desc
    limit 1
$$;

-- Clockwatch baseline, part 9 of 9: the log in a database of its own.
--
-- With `log_database_url` set, Clockwatch's schema is installed in two databases: the host's,
-- where capture stages changes, and the log's, where the daemon writes events. Each applies the
-- parts of the baseline it holds (src/migrate.rs): the common part (01, 07) both; capture (02,
-- 08) the host; the log (03 to 06 and this file) the log database. Together, in one database,
-- all three. The daemon moves a batch in two transactions, the host's left open until the
-- log's has committed (src/drain.rs says why that is exactly once). What else crosses from one
-- database to the other goes through copy_shapes() below, take_dead_letters() (08) and
-- remembered_workspace() (01).

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

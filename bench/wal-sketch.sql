-- What an audited insert would write if each change were written once: bench/wal's sketches
-- (CLOCKWATCH_BENCH_WAL_SKETCH=1), for measuring a layout before building it.
--
-- The capture trigger (as Clockwatch's: a statement trigger over the transition table, SECURITY
-- DEFINER with a pinned search_path) writes the change straight into the table reports would
-- read, with what capture knows: the record text, its shape, who, when, which transaction, the
-- record's id; and the two indexes reports need (a workspace's events in time order, one
-- record's history). Nothing else is written per change, so action, changed values and names
-- would be derived when read, and the chain sealed once per batch. With the setting
-- `sketch.seal` on, each change also gets the narrowest row a daemon could add per event (a
-- name and a 32-byte hash, keyed by the event), for what a per-event row costs on top.
--
-- Only workspace 3's inserts are journalled, so bench/wal's bare runs (workspace 2) and
-- Clockwatch's own (workspace 1) are untouched.
insert into app.workspace (id, name) values (3, 'Sketch');
create schema sketch;
create table sketch.journal (
    event_id     bigint generated always as identity,
    workspace_id text not null,
    occurred_at  timestamptz not null,
    txid         bigint not null,
    op           "char" not null,
    depth        integer not null,
    actor        text,
    origin       text,
    shape        bigint not null,
    target_id    text,
    old_row      text,
    new_row      text,
    primary key (workspace_id, occurred_at, event_id)
);
create index on sketch.journal (workspace_id, target_id, event_id);
create table sketch.seal (
    event_id bigint primary key,
    names    text,
    hash     bytea not null
);
create function sketch.capture() returns trigger
language plpgsql
security definer
set search_path = sketch, pg_catalog
as $$
begin
    insert into journal (workspace_id, occurred_at, txid, op, depth, actor, origin, shape,
                         target_id, new_row)
    select n.workspace_id::text, statement_timestamp(), pg_current_xact_id()::text::bigint, 'I',
           pg_trigger_depth(), current_setting('clockwatch.actor', true),
           current_setting('clockwatch.origin', true), 1, n.id::text, n::text
    from new_rows n
    where n.workspace_id = 3;
    if current_setting('sketch.seal', true) = 'on' then
        insert into seal (event_id, names, hash)
        select currval('sketch.journal_event_id_seq'), 'Ann Admin', sha256(n::text::bytea)
        from new_rows n
        where n.workspace_id = 3;
    end if;
    return null;
end
$$;
create trigger sketch_insert after insert on app.time_entry
    referencing new table as new_rows for each statement execute function sketch.capture();

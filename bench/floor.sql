-- The floor under any trigger-based capture (bench/floor): the cheapest triggers that could
-- record a change at all, attached to the example host's time_entry table the way Clockwatch's
-- are (AFTER ... FOR EACH STATEMENT with transition tables), so that what they cost can be set
-- beside what Clockwatch's own capture costs.

create schema floor;

-- Where the triggers that write something write it: a logged table, like Clockwatch's staging.
create table floor.stage (
    id      bigserial primary key,
    op      text not null,
    old_row jsonb,
    new_row jsonb
);

-- noop: the statement trigger and its transition tables, and nothing done with them.
create function floor.noop() returns trigger language plpgsql as $$
begin
    return null;
end $$;

-- one_row: one row of constants per statement, whatever the statement changed. Less than any
-- audit log can record, since it keeps no image of the rows.
create function floor.one_row() returns trigger language plpgsql as $$
begin
    insert into floor.stage (op) values (TG_OP);
    return null;
end $$;

-- images: each changed row's image(s) as jsonb, one staged row per changed row, with none of
-- Clockwatch's filters (enabled workspaces, excluded and ignored columns), actor or origin.
create function floor.images() returns trigger language plpgsql as $$
begin
    if TG_OP = 'INSERT' then
        insert into floor.stage (op, new_row) select 'I', to_jsonb(n) from floor_new n;
    else
        insert into floor.stage (op, old_row, new_row)
        select 'U', u.old_row, u.new_row
        from unnest(array(select to_jsonb(t) from floor_old t),
                    array(select to_jsonb(t) from floor_new t)) as u(old_row, new_row);
    end if;
    return null;
end $$;

-- images_row: the same images from a row-level trigger, the classic audit trigger's shape.
create function floor.images_row() returns trigger language plpgsql as $$
begin
    if TG_OP = 'INSERT' then
        insert into floor.stage (op, new_row) values ('I', to_jsonb(NEW));
    else
        insert into floor.stage (op, old_row, new_row) values ('U', to_jsonb(OLD), to_jsonb(NEW));
    end if;
    return null;
end $$;

-- typed: each changed row's image(s) kept as the host table's own row type, with no
-- serialisation at all: the cheapest way to keep images. Not a design Clockwatch could ship: a
-- column of the host's row type makes PostgreSQL refuse the host's ALTER COLUMN ... TYPE on that
-- table ("cannot alter table ... because column ... uses its row type").
create table floor.typed (
    id      bigserial primary key,
    op      text not null,
    old_row app.time_entry,
    new_row app.time_entry
);

create function floor.typed() returns trigger language plpgsql as $$
begin
    if TG_OP = 'INSERT' then
        insert into floor.typed (op, new_row) select 'I', row(n.*)::app.time_entry from floor_new n;
    else
        insert into floor.typed (op, old_row, new_row)
        select 'U', x.o[i], x.n[i]
        from (select array(select row(t.*)::app.time_entry from floor_old t) as o,
                     array(select row(t.*)::app.time_entry from floor_new t) as n) x,
             generate_subscripts(x.o, 1) i;
    end if;
    return null;
end $$;

-- text: each changed row's image(s) as the record's text (record_out), one staged row per
-- changed row, no filters: what Clockwatch's capture serialises, without its workspace check,
-- actor, origin, depth, shape or no-op test.
create table floor.stage_text (
    id      bigserial primary key,
    op      text not null,
    actor   text,
    old_row text,
    new_row text
);

create function floor.text() returns trigger language plpgsql as $$
begin
    if TG_OP = 'INSERT' then
        insert into floor.stage_text (op, new_row) select 'I', record_out(n)::text from floor_new n;
    else
        insert into floor.stage_text (op, old_row, new_row)
        select 'U', u.old_row, u.new_row
        from unnest(array(select record_out(t)::text from floor_old t),
                    array(select record_out(t)::text from floor_new t)) as u(old_row, new_row);
    end if;
    return null;
end $$;

-- text_ws: text, plus what any audit log must do on top: the actor read from the session, the
-- row's workspace checked against an enabled-workspace table with an index probe, and an UPDATE
-- that changed nothing left out.
create table floor.ws (workspace_id text primary key);
insert into floor.ws values ('1');

create function floor.text_ws() returns trigger language plpgsql as $$
declare
    v_actor text := nullif(current_setting('clockwatch.actor', true), '');
begin
    if TG_OP = 'INSERT' then
        insert into floor.stage_text (op, actor, new_row)
        select 'I', v_actor, record_out(n)::text from floor_new n
        where exists (select 1 from floor.ws w where w.workspace_id = n.workspace_id::text);
    else
        insert into floor.stage_text (op, actor, old_row, new_row)
        select 'U', v_actor, u.old_row, u.new_row
        from unnest(array(select record_out(t)::text from floor_old t),
                    array(select record_out(t)::text from floor_new t),
                    array(select t.workspace_id::text from floor_new t)) as u(old_row, new_row, ws)
        where u.old_row <> u.new_row
          and exists (select 1 from floor.ws w where w.workspace_id = u.ws);
    end if;
    return null;
end $$;

-- text_definer: text_ws as a host role must run it when it may not write the stage itself:
-- SECURITY DEFINER with a pinned search_path.
do $$
begin
    execute replace(replace(pg_get_functiondef('floor.text_ws()'::regprocedure),
                            'floor.text_ws()', 'floor.text_definer()'),
                    'LANGUAGE plpgsql',
                    'LANGUAGE plpgsql SECURITY DEFINER SET search_path = floor, pg_catalog, pg_temp');
end $$;

-- text_batch: one staged row per statement, holding its images as arrays of record text.
create table floor.stage_batch (
    id       bigserial primary key,
    op       text not null,
    old_rows text[],
    new_rows text[]
);

create function floor.text_batch() returns trigger language plpgsql as $$
begin
    if TG_OP = 'INSERT' then
        insert into floor.stage_batch (op, new_rows)
        values ('I', array(select record_out(n)::text from floor_new n));
    else
        insert into floor.stage_batch (op, old_rows, new_rows)
        values ('U', array(select record_out(t)::text from floor_old t),
                array(select record_out(t)::text from floor_new t));
    end if;
    return null;
end $$;

-- batch_definer: text_definer's filters and rights, its images as arrays in one staged row per
-- statement, each row's workspace beside it.
create table floor.stage_batch_ws (
    id       bigserial primary key,
    op       text not null,
    actor    text,
    ws       text[],
    old_rows text[],
    new_rows text[]
);

create function floor.batch_definer() returns trigger language plpgsql
security definer set search_path = floor, pg_catalog, pg_temp as $$
declare
    v_actor text := nullif(current_setting('clockwatch.actor', true), '');
begin
    if TG_OP = 'INSERT' then
        insert into floor.stage_batch_ws (op, actor, ws, new_rows)
        select 'I', v_actor, b.ws, b.new_rows
        from (select array_agg(n.workspace_id::text) as ws, array_agg(record_out(n)::text) as new_rows
              from floor_new n
              where exists (select 1 from floor.ws w where w.workspace_id = n.workspace_id::text)) b
        where b.ws is not null;
    else
        insert into floor.stage_batch_ws (op, actor, ws, old_rows, new_rows)
        select 'U', v_actor, b.ws, b.old_rows, b.new_rows
        from (select array_agg(u.ws) as ws, array_agg(u.old_row) as old_rows, array_agg(u.new_row) as new_rows
              from unnest(array(select record_out(t)::text from floor_old t),
                          array(select record_out(t)::text from floor_new t),
                          array(select t.workspace_id::text from floor_new t)) as u(old_row, new_row, ws)
              where u.old_row <> u.new_row
                and exists (select 1 from floor.ws w where w.workspace_id = u.ws)) b
        where b.ws is not null;
    end if;
    return null;
end $$;

-- journal_definer: text_definer's filters and rights, each change written once as the row a
-- report would read (bench/wal-sketch.sql's layout): the workspace, time and record id it is
-- found by, with the two indexes reports need, rather than a queue row a daemon moves.
create table floor.journal (
    id        bigint generated always as identity,
    ws        text not null,
    at        timestamptz not null,
    txid      bigint not null,
    op        "char" not null,
    actor     text,
    target_id text,
    old_row   text,
    new_row   text,
    primary key (ws, at, id)
);
create index on floor.journal (ws, target_id, id);

create function floor.journal_definer() returns trigger language plpgsql
security definer set search_path = floor, pg_catalog, pg_temp as $$
declare
    v_actor text := nullif(current_setting('clockwatch.actor', true), '');
begin
    if TG_OP = 'INSERT' then
        insert into floor.journal (ws, at, txid, op, actor, target_id, new_row)
        select n.workspace_id::text, statement_timestamp(), pg_current_xact_id()::text::bigint,
               'I', v_actor, n.id::text, record_out(n)::text
        from floor_new n
        where exists (select 1 from floor.ws w where w.workspace_id = n.workspace_id::text);
    else
        insert into floor.journal (ws, at, txid, op, actor, target_id, old_row, new_row)
        select u.ws, statement_timestamp(), pg_current_xact_id()::text::bigint, 'U', v_actor,
               u.id, u.old_row, u.new_row
        from unnest(array(select record_out(t)::text from floor_old t),
                    array(select record_out(t)::text from floor_new t),
                    array(select t.workspace_id::text from floor_new t),
                    array(select t.id::text from floor_new t)) as u(old_row, new_row, ws, id)
        where u.old_row <> u.new_row
          and exists (select 1 from floor.ws w where w.workspace_id = u.ws);
    end if;
    return null;
end $$;

-- attach(variant): that variant's triggers on app.time_entry, replacing any other variant's,
-- with an empty stage. detach(): none.
create procedure floor.detach() language plpgsql as $$
begin
    drop trigger if exists floor_insert on app.time_entry;
    drop trigger if exists floor_update on app.time_entry;
    truncate floor.stage, floor.typed, floor.stage_text, floor.stage_batch, floor.stage_batch_ws,
             floor.journal;
end $$;

create procedure floor.attach(p_variant text) language plpgsql as $$
begin
    call floor.detach();
    if p_variant = 'images_row' then
        create trigger floor_insert after insert on app.time_entry
            for each row execute function floor.images_row();
        create trigger floor_update after update on app.time_entry
            for each row execute function floor.images_row();
    else
        execute format('create trigger floor_insert after insert on app.time_entry '
                       'referencing new table as floor_new for each statement execute function floor.%I()',
                       p_variant);
        execute format('create trigger floor_update after update on app.time_entry '
                       'referencing old table as floor_old new table as floor_new '
                       'for each statement execute function floor.%I()', p_variant);
    end if;
end $$;

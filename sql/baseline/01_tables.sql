-- Clockwatch baseline, part 1 of 9: tables and settings.
--
-- The tables every Clockwatch schema holds, with what each holds and why it is shaped so: the
-- settings and the names both sides read. Capture's own tables open 02_capture.sql, and the
-- log's open 03_chain.sql: with the log in a database of its own, each database holds only its
-- side's (src/migrate.rs). The functions live in the files that follow, one concern each:
--   02_capture.sql    the capture triggers on host tables, and enabling workspaces
--   03_chain.sql      the hash chain's canonical content and running hash
--   04_append.sql     appending a drained batch of events, chained
--   05_reports.sql    the report views and events_between()
--   06_retention.sql  partitions, event counts, pruning
--   07_roles.sql      what the daemon role is granted
--   08_claims.sql     the daemon's claims of staged changes
--   09_log.sql        the log in a database of its own: what crosses from the host to it
--
-- The baseline runs as migrations 1 to 3 (common, capture, log) with `search_path = <clockwatch schema>, pg_catalog, pg_temp`
-- (set by `clockwatch install`), so every name below lives in Clockwatch's own schema, whatever
-- it is called. Functions pin that search_path with `SET search_path FROM CURRENT`, so they never
-- resolve a name through the caller's search_path.
--
-- PostgreSQL 13+ SQL only: no extension, no superuser, nothing that a managed service refuses.

-- One row of installation-wide settings, written by `clockwatch install` from the config.
create table settings (
    singleton       boolean primary key default true check (singleton),
    -- Detail dates and times (start_date, start_time...) are shown in this zone.
    timezone        text not null default 'UTC',
    -- Longest date range one report may cover (Clockify: 30 days). Exports may cover more.
    max_report_days integer not null default 30 check (max_report_days between 1 and 3660),
    -- Events older than this are pruned (Clockify keeps a year).
    retention       interval not null default '365 days' check (retention >= interval '1 day'),
    -- Sources whose rows with no workspace belong to every workspace (workspace_if_null = "*"):
    -- their events are in workspace '*', and every workspace's report shows them.
    shared_sources  text[] not null default '{}',
    -- Where capture reads the actor, in order, the first non-empty winning (config
    -- actor_settings): [{"setting": "clockwatch.actor"}, {"setting": "request.jwt.claims",
    -- "key": "sub"}, ...]; compiled into each capture function.
    actor_settings  jsonb not null default '[{"setting": "clockwatch.actor"}]',
    -- When none of them names an actor, capture stages the session's login role (session_user),
    -- which the daemon maps to a user ([authors] db_role_column).
    actor_role      boolean not null default false,
    -- With the log in a database of its own (log_database_url), what this schema is: 'host', the
    -- application's database, which keeps capture and staging only; 'log', one host's log in
    -- the log database. Null: capture and the log together, here. Set by `clockwatch install`;
    -- the daemon and every command check it, so that none reads or writes the wrong side.
    layout          text check (layout in ('host', 'log')),
    -- The host's source_id in a log database that several hosts share, on both sides: a host
    -- never drains into another host's log.
    source_id       text
);
insert into settings default values;

-- The audited categories, as Clockify names them in its Audit Log settings.
create table category (
    category text primary key,
    entity   text not null unique  -- prefix of action codes: time_entry.created ...
);
insert into category (category, entity) values
    ('time_entries', 'time_entry'),
    ('projects',     'project'),
    ('tasks',        'task'),
    ('clients',      'client'),
    ('tags',         'tag'),
    ('expenses',     'expense'),
    ('users',        'user');

-- Every action code with its label. Filled by `clockwatch install` from the list the daemon
-- labels events with, so a filter may name an action by either.
create table action (
    code     text primary key,
    label    text not null unique,
    category text not null references category
);

-- Which categories are audited in which workspace. Off unless listed (Clockify: an admin ticks
-- categories). Workspace ids are text because hosts use integers, uuids or strings. The
-- workspace '*' stands for every workspace, those to come included. The capture functions are
-- compiled with what this table says (see workspace_test()): enable() and disable() are the way
-- to change it.
create table workspace_category (
    workspace_id text not null,
    category     text not null references category,
    enabled_at   timestamptz not null default now(),
    primary key (category, workspace_id)
);

-- The columns of captured row images, as the table had them when the images were captured. A
-- staged image is a record's text, its fields in column order and without names; its shape names
-- them, so a column added, dropped, renamed or retyped before the daemon drains the change never
-- shifts or mislabels a value. Written when a table is attached, and by capture itself the first
-- time it meets a table whose columns changed since (02_capture.sql). A shape also says which
-- source and category its staged changes belong to, so staging need not repeat them per row.
create table shape (
    id       bigint generated always as identity primary key,
    -- regclass, not oid: a dump restores it by name. Null in a log database of its own
    -- (09_log.sql, copy_shapes()), which holds the host's shapes without its tables.
    relid    regclass,
    source   text not null,            -- the [[source]] table as written in the config
    category text not null,
    columns  text[] not null,          -- column names, in field order, excluded columns left out
    types    text[] not null,          -- each column's type (domains as their base type), format_type
    excluded text[] not null,          -- exclude_columns of the source, never in an image
    -- md5 of the three above (shape_signature()): arrays of a wide table would not fit a btree.
    signature text not null
);
-- Not unique: a shape is recorded by the host transaction that first writes with it (after a
-- column change), and a unique index would make every other writer of the table wait for that
-- transaction to end. Two transactions may so record the same shape twice; the lowest id is the
-- one looked up, and either reads the same.
create index shape_signature on shape (relid, signature, source, category, id);

-- A staged change the daemon could not turn into an event. Kept with the reason, never dropped,
-- so that one bad row neither blocks the rows behind it nor disappears.
create table dead_letter (
    staging_id bigint primary key,
    failed_at  timestamptz not null default now(),
    reason     text not null,
    change     jsonb not null,
    old_row    text,                   -- the staged images, as staged, when change cannot hold
    new_row    text                    -- them (too large to write, or a batch that failed)
);

-- Names the log has seen, so a detail can still be named after its row is deleted from the host
-- (a deleted project's name and client, a removed user's name). category is a category, or
-- 'author' for actor ids. Every author id the log has recorded is here, with no name when none
-- was found, so that a report can be filtered by any of them.
--
-- Each name an id has borne is a row of its own, stamped with the time of the transaction that
-- wrote it (seen_at, set by the trigger below whatever the writer gives): a report shows an id in
-- an event's changes by the name it had when the event was written (events.recorded_at, stamped
-- by append_events() the same way). The daemon may add rows but neither change nor remove one,
-- so no role below the owner can change how an event already in the log reads.
create table known_name (
    category  text not null,
    id        text not null,
    name      text,
    client_id text,                    -- projects: the project's client
    seen_at   timestamptz not null default now(),
    primary key (category, id, seen_at)
);

create function stamp_known_name() returns trigger
language plpgsql
set search_path from current
as $$
begin
    new.seen_at := now();
    return new;
end
$$;
create trigger stamp before insert on known_name for each row execute function stamp_known_name();

-- The name a workspace bore when the daemon last wrote its events, for reports made where the
-- host's table of workspaces is not (a log database of its own), which the daemon remembers as
-- category 'workspace' of known_name. SECURITY DEFINER: a reporting role reads the report
-- views, not known_name itself; what it learns here is what the report views show it.
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

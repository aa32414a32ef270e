-- Clockwatch baseline, part 1 of 9: tables and settings.
--
-- Every table of Clockwatch's schema, with what it holds and why it is shaped so. The functions
-- that write them live in the files that follow, one concern each:
--   02_capture.sql    the capture triggers on host tables, and enabling workspaces
--   03_chain.sql      the hash chain's canonical content and running hash
--   04_append.sql     appending a drained batch of events, chained
--   05_reports.sql    the report views and events_between()
--   06_retention.sql  partitions, event counts, pruning
--   07_roles.sql      what the daemon role is granted
--   08_claims.sql     the daemon's claims of staged changes
--   09_log.sql        the log in a database of its own: what crosses from the host to it
--
-- The baseline runs as migration 1 with `search_path = <clockwatch schema>, pg_catalog, pg_temp`
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

-- Changes copied by the capture triggers, waiting for the daemon. This is a queue: rows live for
-- milliseconds, so autovacuum must visit it often rather than by the default 20% rule.
--
-- A staged row is as narrow as capture can make it: every byte is written by the host's own
-- statement, once to the table and once to the WAL. Its source and category are its shape's.
create table staging (
    -- The columns are in this order so that none is padded for the next one's alignment: the
    -- eight-byte ones first, then the four-byte, then the rest (13 bytes a row less than with
    -- op second, of a staged single-row insert's 228 bytes of WAL).
    id           bigint generated always as identity primary key,
    txid         bigint not null,      -- txid_current() of the host transaction (as pg_current_xact_id())
    stmt_at      timestamptz not null, -- statement_timestamp(): when the change happened
    shape        bigint not null,      -- the images' columns, source and category (shape.id)
    depth        integer not null,     -- 1: the host's own change; 2: a foreign-key action's; 3+: a host trigger's
    -- I, U, D; T: TRUNCATE; L: rows of a link table changed a record's tags (new_row is the
    -- record). No CHECK: only capture functions write staging, and a CHECK is prepared afresh
    -- for every statement that inserts (43,000-47,000 instructions of a single-row INSERT's or
    -- UPDATE's capture, bench/README.md); the daemon sets aside a change with any other op.
    op           "char" not null,
    -- Who acts: the first actor setting set, as its name (empty: the one default setting),
    -- U+001F and its value ('role' and the login role for [authors] db_role_column); null
    -- when none is (System). See actor_sql().
    actor        text,
    -- With several settings, staged by a compiled function's own statement: their texts, which
    -- actor then holds only the settings of (the claim joins the two as actor_sql() prints them).
    actor_values text[],
    origin       text,                 -- clockwatch.origin, null when unset
    workspace_id text,                 -- null when the workspace column is missing; '*' for TRUNCATE
    old_row      text,                 -- the row before, as PostgreSQL prints a record: (1,"a b",,t)
    new_row      text,                 -- the row after
    old_tags     text[],               -- L: the record's tag ids before the statement
    new_tags     text[]                -- L: and after it
) with (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
        autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 1000);

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

-- The host tables carrying capture triggers, with the shape their capture function was
-- generated for (02_capture.sql, attach()).
create table captured_table (
    relid            regclass primary key,
    source           text not null,
    function         text not null,    -- the table's capture function, in this schema
    shape            bigint not null references shape,
    -- What attach() was given, kept so that enable() and disable() can compile the function again.
    category         text not null references category,
    workspace_column text,             -- null: every row belongs to workspace
    workspace        text,             -- (a single-workspace application)
    excluded         text[] not null,
    -- The excluded columns themselves (their attnums when attached): a column renamed since
    -- stays excluded, and `clockwatch status` reports that the config names it no more.
    excluded_attnums smallint[] not null default '{}',
    channel          text not null,
    -- The source's filter over a row `t`, as src/filter.rs prints it (null: every row), and the
    -- columns it reads with their types when it was attached (filter_current()).
    filter           text,
    filter_columns   text[],
    filter_types     oid[],
    -- A link table holding the tags of another captured table's records: its changes are
    -- staged as changes of those records (op L). source, category, workspace and excluded
    -- are then the record table's.
    link_parent      regclass,         -- the record table
    parent_column    text,             -- the link table's column holding the record's id
    tag_column       text,             -- the link table's column holding the tag's id
    parent_id_column text              -- the record table's id column
);

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

-- Whether a daemon is waiting for work: 2 idle (capture sends NOTIFY), 1 busy (it does not; the
-- daemon polls). A NOTIFY takes a cluster-wide lock at commit, which at 16 clients cut insert
-- throughput to 0.36x when every transaction sent one, and a daemon that is busy draining does
-- not need waking. A sequence rather than a table row: capture reads it with
-- pg_sequence_last_value(), a function call with no query behind it (5-6 us less per host
-- statement than asking a table), and setting it is not transactional, which suits a flag that
-- says what the daemon is doing now.
create sequence wakeup_idle minvalue 1 maxvalue 2 no cycle;
select setval('wakeup_idle', 2);

-- The secret that makes the linked-row count unforgeable (02_capture.sql, linked_count()).
-- Only Clockwatch's owner can read it.
create table mark_key (
    singleton boolean primary key default true check (singleton),
    secret    text not null default gen_random_uuid()::text || gen_random_uuid()::text
);
insert into mark_key default values;

-- The audit log. Monthly range partitions on occurred_at, so retention drops whole partitions
-- instead of deleting rows (06_retention.sql creates them ahead). event_id is the staging id of
-- the change: it is unique, it orders changes to one record as they happened, and it is known
-- before the event is written, which lets a linked change point at its primary event whichever
-- daemon writes which first.
create table events (
    event_id       bigint not null,
    occurred_at    timestamptz not null,
    recorded_at    timestamptz not null default now(),
    workspace_id   text not null,      -- '*': every workspace (a TRUNCATE of the whole table)
    category       text not null,
    action_code    text not null,
    action         text not null,
    origin         text,
    author_id      text,               -- null for System
    author         text not null,      -- the author's name when the change was recorded, or 'System'
    target_id      text,
    target         text,
    caused_by      bigint,             -- event_id of the primary event of a linked change
    linked         boolean not null default false, -- caused by another change (cascade, host trigger)
    txid           bigint not null,
    source         text not null,
    -- The changed values are json, not jsonb: json keeps the text exactly as the daemon wrote it,
    -- which is the text the daemon hashed for the chain (03_chain.sql), where jsonb would respell
    -- a host's values (numbers, escapes, a json column's own spacing and key order).
    previous_value json,               -- changed columns only: before
    new_value      json,               -- changed columns only: after
    -- The whole row (after; before for a delete) as captured: the record's text, read with
    -- the columns of its shape (shape.id). Stored as staged, at a quarter of the bytes the row
    -- takes as jsonb; the report view shows it as JSON (row_data, 05_reports.sql).
    row_image      text,
    row_shape      bigint,
    -- Names and times as strings, and tags as an array of strings, printed by the daemon as jsonb
    -- prints them (src/chain.rs). Stored as json, the daemon's text kept as sent: as jsonb, each
    -- event's document would be parsed into jsonb's binary form as it is written, 7.3 us of the
    -- server's CPU for 300 bytes against 1.8 us to check it as json (bench/README.md), and
    -- events are written once and seldom read. The report view reads each event's document
    -- once, with json_to_record() (5.1 us a row against 2.7 for jsonb_to_record()).
    details        json not null default '{}',
    chain_seq      bigint,             -- position in the workspace's hash chain, from 1
    prev_hash      bytea,              -- hash of the event before it (or of the anchor)
    hash           bytea,              -- sha256(prev_hash || sha256(canonical content)), 03_chain.sql
    -- The key is also the report's index: a workspace's events in time order, walked either way
    -- (a page of the newest, one record's history oldest first). A linked change finds its
    -- primary event, which happened in the same statement, by workspace and time through it too
    -- (sql/queries/primary_events.sql), so no index on txid is written for that. Every index
    -- costs each event about 64 bytes of WAL and an insert's CPU.
    primary key (workspace_id, occurred_at, event_id)
) partition by range (occurred_at);

-- One record's history, and the chain walked in order (verify, and the anchors pruning leaves).
create index events_target on events (workspace_id, target_id, event_id);
create index events_chain on events (workspace_id, chain_seq);

-- The newest link of each workspace's chain: row-locked while a batch appends, so daemons
-- append to one workspace's chain one at a time.
create table chain_head (
    workspace_id text primary key,
    seq          bigint not null,
    hash         bytea not null
);

-- Where the retained chain starts after pruning: the last pruned event's position, hash and
-- time, when it was written to the log, when it was pruned and the cutoff of that prune.
-- `clockwatch verify` checks that the pruned events were older than the retention when they were
-- removed, and that the anchor is an event written before the cutoff (give or take a long
-- transaction): the chain is ordered by when events were written, so an anchor written later
-- (an event backdated on its way in) would put every event written before it out of `verify`'s
-- reach.
create table chain_anchor (
    workspace_id text primary key,
    seq          bigint not null,
    hash         bytea not null,
    occurred_at  timestamptz not null,
    recorded_at  timestamptz not null,
    cutoff       timestamptz not null,
    pruned_at    timestamptz not null
);

-- What each prune removed, and who asked (`clockwatch status` shows the last one, and reports a
-- cutoff later than the retention allows, which only the schema's owner could cause).
create table prune_log (
    id             bigint generated always as identity primary key,
    ran_at         timestamptz not null default now(),
    cutoff         timestamptz not null,
    partition_name text not null,
    action         text not null,
    events         bigint not null,
    pruned_by      name not null
);

-- Events per workspace and month (the month of occurred_at in UTC, as partitions are cut), kept
-- by statement triggers on events (06_retention.sql) so that pruning a month reads a few rows
-- instead of counting the month.
create table event_tally (
    workspace_id text not null,
    month        date not null,
    events       bigint not null,
    primary key (month, workspace_id)
);

-- Who authored each workspace's events, per month (as event_tally counts them; 'system' for
-- System), kept by the same statement triggers: the Audit Log page lists every author the log
-- knows for a workspace from a few rows of it, where reading them from the events scans the
-- workspace's whole history (54 ms for the 41,000 events of one 30-day range, and growing with
-- the log).
create table author_tally (
    workspace_id text not null,
    month        date not null,
    author_id    text not null,
    events       bigint not null,
    primary key (workspace_id, month, author_id)
);

-- When maintenance last ran, so several daemons do it once a day between them.
create table maintenance (
    job      text primary key,
    last_run timestamptz not null
);

-- One row per job that must run in one session at a time (creating a partition, pruning),
-- locked FOR UPDATE by the SECURITY DEFINER functions that run it. Row locks, not advisory
-- locks: any role may take an advisory lock of any key and keep the daemon waiting on it for as
-- long as it likes, while locking these rows takes UPDATE on the table, which only the owner has.
create table job_lock (job text primary key);
insert into job_lock (job) values ('partition'), ('prune');

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

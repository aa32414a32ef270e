-- Clockwatch baseline, part 3 of 9: the hash chain.
--
-- Every event carries a SHA-256 hash chained to the previous event of its workspace, so editing,
-- removing or inserting an event afterwards breaks the chain where it happened:
--
--     hash = sha256(previous hash || sha256(canonical content))
--
-- The daemon prints each event's canonical content, hashes it and chains it (src/chain.rs) from
-- the heads chain_heads() locks, and append_events() (04_append.sql) stores the links.
-- `clockwatch verify` recomputes every link from the stored row with event_content() below, so a
-- stored value that no longer matches what was hashed shows. sha256() is built into PostgreSQL
-- 11+: no extension.
--
-- The content is printed by the daemon rather than here because printing it was the largest
-- part of an append that was not writing rows (8.5 us an event, bench/README.md). That is safe
-- by construction: every field is stored exactly as the daemon printed it (the JSON values as
-- json, which keeps their text), and the form below has no escaping to get wrong.

-- The log's tables: only in a database that holds the log (03 to 06 and 09 make the log
-- migration, applied where the log is).

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

-- The canonical content of an event: its fields in a fixed order, each as its length in bytes of
-- UTF-8, a colon and its text, or `~` for SQL null, with nothing between them:
--
--   event_id, occurred_at (microseconds since 1970-01-01 00:00 UTC), workspace_id, category,
--   action_code, action, origin, author_id, author, target_id, target, caused_by,
--   linked (true or false), txid, source, previous_value, new_value, row_image, row_shape,
--   details
--
-- integers in decimal, JSON values as stored. `3:abc2:de~` is abc, de and a null. The hash is
-- over its UTF-8 bytes. (Bytes of UTF-8, not characters: the daemon's text is UTF-8 whatever the
-- server's encoding, and length() counts bytes, not characters, in a SQL_ASCII database.)
-- README.md, "Tamper evidence", states the same for other tools.
--
-- STABLE (as extract() from a timestamptz is), with no SET search_path and no FROM: anything
-- else stops PostgreSQL from inlining this SQL function, which `clockwatch verify` runs for every
-- event. It names only pg_catalog functions, and every caller runs with Clockwatch's schema and
-- pg_catalog on the search_path.
create function event_content(e events) returns text
language sql stable
as $$
    select concat(
        octet_length(e.event_id::text) || ':' || e.event_id,
        -- (Exact: extract() returns numeric, the microseconds its fraction.)
        octet_length(((extract(epoch from e.occurred_at) * 1000000)::bigint)::text) || ':'
            || (extract(epoch from e.occurred_at) * 1000000)::bigint,
        coalesce(octet_length(convert_to(e.workspace_id, 'UTF8')) || ':' || e.workspace_id, '~'),
        coalesce(octet_length(convert_to(e.category, 'UTF8')) || ':' || e.category, '~'),
        coalesce(octet_length(convert_to(e.action_code, 'UTF8')) || ':' || e.action_code, '~'),
        coalesce(octet_length(convert_to(e.action, 'UTF8')) || ':' || e.action, '~'),
        coalesce(octet_length(convert_to(e.origin, 'UTF8')) || ':' || e.origin, '~'),
        coalesce(octet_length(convert_to(e.author_id, 'UTF8')) || ':' || e.author_id, '~'),
        coalesce(octet_length(convert_to(e.author, 'UTF8')) || ':' || e.author, '~'),
        coalesce(octet_length(convert_to(e.target_id, 'UTF8')) || ':' || e.target_id, '~'),
        coalesce(octet_length(convert_to(e.target, 'UTF8')) || ':' || e.target, '~'),
        coalesce(octet_length(e.caused_by::text) || ':' || e.caused_by, '~'),
        coalesce(octet_length(e.linked::text) || ':' || e.linked, '~'),
        coalesce(octet_length(e.txid::text) || ':' || e.txid, '~'),
        coalesce(octet_length(convert_to(e.source, 'UTF8')) || ':' || e.source, '~'),
        coalesce(octet_length(convert_to(e.previous_value::text, 'UTF8')) || ':' || e.previous_value, '~'),
        coalesce(octet_length(convert_to(e.new_value::text, 'UTF8')) || ':' || e.new_value, '~'),
        coalesce(octet_length(convert_to(e.row_image, 'UTF8')) || ':' || e.row_image, '~'),
        coalesce(octet_length(e.row_shape::text) || ':' || e.row_shape, '~'),
        coalesce(octet_length(convert_to(e.details::text, 'UTF8')) || ':' || e.details, '~'))
$$;

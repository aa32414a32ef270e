-- Clockwatch 0010: append_events() always runs its statements with their generic plan (issue 6).
--
-- PL/pgSQL caches a plan for each statement of a function, and PostgreSQL's plan cache chooses,
-- call by call, between re-planning with the call's arguments (a custom plan) and the one plan
-- made without them (the generic plan). The arguments here are arrays, whose contents the planner
-- cannot see into: a custom plan comes out the same as the generic one, but costs a full plan of
-- the append's statements every time. For a one-event batch (an idle daemon draining one change)
-- the cache kept choosing custom plans: 500-530 us per call against 230 with the generic plan;
-- forcing custom plans costs 1,030 us for one event and 1,470 for 24 (procedure loops committing
-- after every call, on the benchmark database, bench/README.md).
--
-- A later `create or replace function append_events` must repeat this setting: replacing a
-- function replaces its settings.
--
-- Runs with `search_path = <clockwatch schema>, pg_catalog, pg_temp`, like every migration.

alter function append_events(bigint[], timestamptz[], text[], text[], text[], text[], text[],
                             text[], text[], text[], text[], bigint[], boolean[], bigint[],
                             text[], jsonb[], jsonb[], jsonb[], jsonb[])
    set plan_cache_mode = force_generic_plan;

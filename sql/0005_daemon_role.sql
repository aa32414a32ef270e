-- Clockwatch 0005: a daemon role with only what draining needs.
--
-- The owner of this schema runs `clockwatch install`; the daemon may run as a separate role that
-- can move changes from staging into events but cannot edit or delete events, drop the schema or
-- change settings. What it must do beyond that (create and drop partitions, append to the hash
-- chain) goes through SECURITY DEFINER functions it is allowed to execute.
--
-- Runs with `search_path = <clockwatch schema>, pg_catalog, pg_temp`, like every migration.

alter function ensure_partition(timestamptz) security definer;
alter function ensure_partitions_ahead(timestamptz, integer) security definer;
alter function prune(timestamptz, boolean) security definer;
alter function maintain(timestamptz) security definer;
alter function before_prune(text, timestamptz) security definer;
alter function append_events(bigint[], timestamptz[], text[], text[], text[], text[], text[],
                             text[], text[], text[], text[], bigint[], boolean[], bigint[], text[],
                             jsonb[], jsonb[], jsonb[], jsonb[]) security definer;

-- Security definer functions are executable by PUBLIC unless revoked: keep them to the owner
-- and the roles granted below.
revoke execute on function ensure_partition(timestamptz), ensure_partitions_ahead(timestamptz, integer),
    prune(timestamptz, boolean), maintain(timestamptz), before_prune(text, timestamptz),
    append_events(bigint[], timestamptz[], text[], text[], text[], text[], text[], text[], text[],
                  text[], text[], bigint[], boolean[], bigint[], text[], jsonb[], jsonb[], jsonb[],
                  jsonb[])
    from public;

-- Give a role what the daemon needs, and nothing more. Idempotent.
create function grant_daemon(p_role name) returns void
language plpgsql
set search_path from current
as $$
declare
    s text := quote_ident(current_schema());
begin
    execute format('grant usage on schema %s to %I', s, p_role);
    execute format('grant select, update, delete on %s.staging to %I', s, p_role);
    execute format('grant select on %s.events, %s.settings, %s.category, %s.action, %s.workspace_category, '
                   '%s.migrations, %s.maintenance, %s.chain_head, %s.chain_anchor to %I',
                   s, s, s, s, s, s, s, s, s, p_role);
    execute format('grant select, insert, update on %s.known_name to %I', s, p_role);
    execute format('grant select, insert on %s.dead_letter to %I', s, p_role);
    execute format('grant select, update on %s.wakeup to %I', s, p_role);
    execute format('grant execute on function %s.ensure_partition(timestamptz), '
                   '%s.ensure_partitions_ahead(timestamptz, integer), %s.prune(timestamptz, boolean), '
                   '%s.maintain(timestamptz), %s.event_partitions(), %s.append_events(bigint[], '
                   'timestamptz[], text[], text[], text[], text[], text[], text[], text[], text[], '
                   'text[], bigint[], boolean[], bigint[], text[], jsonb[], jsonb[], jsonb[], jsonb[]) to %I',
                   s, s, s, s, s, s, p_role);
end
$$;

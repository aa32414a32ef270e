-- Clockwatch baseline, part 7 of 7: roles.
--
-- Who may do what. The owner of this schema runs `clockwatch install` and owns everything here.
-- The daemon may run as a separate role (`daemon_role` in the config) that moves changes from
-- staging into events but cannot edit or delete events, drop the schema or change settings; what
-- it must do beyond that (create and drop partitions, append to the hash chain) goes through
-- SECURITY DEFINER functions it is allowed to execute. The host application's role needs nothing
-- here: capture runs with the owner's rights. The README's Roles section says what each role can
-- do, as tests/it/privileges.rs checks.

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
                   '%s.migrations, %s.maintenance, %s.chain_head, %s.chain_anchor, %s.shape, %s.captured_table to %I',
                   s, s, s, s, s, s, s, s, s, s, s, p_role);
    execute format('grant select, insert, update on %s.known_name to %I', s, p_role);
    execute format('grant select, insert on %s.dead_letter to %I', s, p_role);
    execute format('grant select, update on sequence %s.wakeup_idle to %I', s, p_role);
    execute format('grant execute on function %s.ensure_partition(timestamptz), '
                   '%s.ensure_partitions_ahead(timestamptz, integer), %s.prune(timestamptz, boolean), '
                   '%s.maintain(timestamptz), %s.event_partitions(), %s.chain_heads(text[]), '
                   '%s.append_events(bigint[], timestamptz[], text[], text[], text[], text[], text[], '
                   'text[], text[], text[], text[], bigint[], boolean[], bigint[], text[], json[], '
                   'json[], text[], bigint[], json[], bigint[], bytea[], bytea[]) to %I',
                   s, s, s, s, s, s, s, p_role);
end
$$;

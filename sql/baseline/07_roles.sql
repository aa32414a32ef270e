-- Clockwatch baseline, part 7 of 9: roles.
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
    -- SELECT only: the daemon claims staged changes through claim_*() and set_aside_first(), so
    -- it can take no lock on staging that a host's write would wait on (08_claims.sql).
    execute format('grant select on %s.staging to %I', s, p_role);
    execute format('revoke insert, update, delete, truncate on %s.staging from %I', s, p_role);
    execute format('grant select on %s.events, %s.settings, %s.category, %s.action, %s.workspace_category, '
                   '%s.migrations, %s.maintenance, %s.chain_head, %s.chain_anchor, %s.shape, %s.captured_table to %I',
                   s, s, s, s, s, s, s, s, s, s, s, p_role);
    execute format('grant select, insert on %s.known_name to %I', s, p_role);
    execute format('grant select, insert on %s.dead_letter to %I', s, p_role);
    execute format('grant select, update on sequence %s.wakeup_idle to %I', s, p_role);
    execute format('grant execute on function %s.ensure_partition(timestamptz), '
                   '%s.ensure_partitions_ahead(timestamptz, integer), %s.prune(timestamptz, boolean), '
                   '%s.maintain(timestamptz), %s.event_partitions(), %s.chain_heads(text[]), '
                   '%s.append_events(bigint[], timestamptz[], text[], text[], text[], text[], text[], '
                   'text[], text[], text[], text[], bigint[], boolean[], bigint[], text[], json[], '
                   'json[], text[], bigint[], json[], bigint[], bytea[], bytea[]), %s.lookup_table(text), '
                   '%s.claim_together(bigint, bigint, bigint, bigint), %s.claim_alone(bigint, bigint, bigint, bigint), '
                   '%s.claim_rest_together(bigint, bigint[], text[], bigint), '
                   '%s.claim_rest_alone(bigint, bigint[], text[], bigint), %s.set_aside_first(text, bigint), '
                   '%s.take_dead_letters(integer), %s.copy_shapes(jsonb) to %I',
                   s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, p_role);
end
$$;

-- Called by the daemon before it reads names from a host table (p_table, its quoted name), in the
-- savepoint of that lookup: lock the table against being swapped, then refuse anything but a
-- plain or partitioned table whose partitions and children are plain tables too.
--
-- A lookup runs with the daemon's rights, and the host's roles own the tables it reads: a view
-- (or a table made a view, or a foreign table) in a table's place would run their functions as
-- the daemon, at planning as well as at execution, so the check must come before the lookup
-- statement is even planned, and hold until it has run. The lock (ACCESS SHARE, what the
-- lookup takes anyway, held to the end of the daemon's transaction) keeps the name on this
-- relation until then: replacing a table takes ACCESS EXCLUSIVE. A host that holds a lock on the
-- table does not stall the daemon: past lock_timeout the lookup fails, the names of that batch
-- come from what the log remembers (or ids), and the next batch tries again.
create function lookup_table(p_table text) returns void
language plpgsql
set search_path from current
set lock_timeout = '500ms'
as $$
declare
    v_table regclass := to_regclass(p_table);
    v_odd   record;
begin
    if v_table is null then
        raise exception 'relation % does not exist', p_table using errcode = '42P01';
    end if;
    execute format('lock table %s in access share mode', v_table);
    if to_regclass(p_table) is distinct from v_table then
        raise exception '% was replaced while the daemon read it', p_table using errcode = '40001';
    end if;
    with recursive tree(relid) as (
        select v_table::oid
        union
        select i.inhrelid from pg_inherits i join tree t on i.inhparent = t.relid
    )
    select c.oid::regclass as relation, c.relkind into v_odd
    from tree t join pg_class c on c.oid = t.relid
    where c.relkind not in ('r', 'p')
    limit 1;
    if not found and not host_code_free(v_table) then
        raise exception '% has an index, constraint, policy or statistics object calling a function of its own: names are not read from it', v_table
            using errcode = '42809',
                  hint = 'the daemon never plans a query that would run the host''s code with its rights';
    end if;
    if found then
        raise exception '% is not a plain table (relkind %): names are not read from it', v_odd.relation, v_odd.relkind
            using errcode = '42809',
                  hint = 'point the config at the table itself; the daemon never reads views or foreign tables';
    end if;
end
$$;
revoke execute on function lookup_table(text) from public;

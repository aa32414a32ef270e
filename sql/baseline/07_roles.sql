-- Clockwatch baseline, part 7 of 9: roles.
--
-- Who may do what. The owner of this schema runs `clockwatch install` and owns everything here.
-- The daemon may run as a separate role (`daemon_role` in the config) that moves changes from
-- staging into events but cannot edit or delete events, drop the schema or change settings; what
-- it must do beyond that (create and drop partitions, append to the hash chain) goes through
-- SECURITY DEFINER functions it is allowed to execute. The host application's role needs nothing
-- here: capture runs with the owner's rights. The README's Roles section says what each role can
-- do, as tests/it/privileges.rs checks.

-- Give a role what the daemon needs, and nothing more, of what this schema holds (capture's
-- side, the log's, or both: src/migrate.rs). Idempotent.
create function grant_daemon(p_role name) returns void
language plpgsql
set search_path from current
as $$
declare
    s text := quote_ident(current_schema());
    v_name text;
begin
    execute format('grant usage on schema %s to %I', s, p_role);
    -- SELECT only: the daemon claims staged changes through claim_*() and set_aside_first(), so
    -- it can take no lock on staging that a host's write would wait on (08_claims.sql).
    if to_regclass(s || '.staging') is not null then
        execute format('grant select on %s.staging to %I', s, p_role);
        execute format('revoke insert, update, delete, truncate on %s.staging from %I', s, p_role);
        execute format('grant select, update on sequence %s.wakeup_idle to %I', s, p_role);
    end if;
    foreach v_name in array array['events', 'settings', 'category', 'action', 'workspace_category',
                                  'migrations', 'maintenance', 'chain_head', 'chain_anchor', 'shape',
                                  'captured_table'] loop
        if to_regclass(s || '.' || v_name) is not null then
            execute format('grant select on %s.%I to %I', s, v_name, p_role);
        end if;
    end loop;
    execute format('grant select, insert on %s.known_name to %I', s, p_role);
    execute format('grant select, insert on %s.dead_letter to %I', s, p_role);
    foreach v_name in array array[
        'ensure_partition(timestamptz)', 'ensure_partitions_ahead(timestamptz, integer)',
        'prune(timestamptz, boolean)', 'maintain(timestamptz)', 'event_partitions()',
        'chain_heads(text[])',
        'append_events(bigint[], timestamptz[], text[], text[], text[], text[], text[], text[], '
            'text[], text[], text[], bigint[], boolean[], bigint[], text[], json[], json[], text[], '
            'bigint[], json[], bigint[], bytea[], bytea[])',
        'lookup_table(text)', 'claim_together(bigint, bigint, bigint, bigint)',
        'claim_alone(bigint, bigint, bigint, bigint)', 'claim_rest_together(bigint, bigint[], text[], bigint)',
        'claim_rest_alone(bigint, bigint[], text[], bigint)', 'set_aside_first(text, bigint)',
        'take_dead_letters(integer)', 'copy_shapes(jsonb)'] loop
        if to_regprocedure(s || '.' || v_name) is not null then
            execute format('grant execute on function %s.%s to %I', s, v_name, p_role);
        end if;
    end loop;
end
$$;

-- Whether reading p_table runs no code that a role below the owner wrote. Planning a query of a
-- table evaluates its indexes' expressions and partial-index predicates, the CHECK constraints
-- of its inheritance children and its statistics objects' expressions where they are constant:
-- an IMMUTABLE function of the table owner's in any of them would run with the reader's rights
-- (the owner's, in a link table's capture; the daemon's, in a name lookup). So each of those
-- objects of the table, its partitions and its children may call built-in functions and
-- operators only, and cast to no domain of the host's. A policy runs for each row, and may call
-- a built-in function that runs any SQL: a table with row-level security enabled, or any
-- policy, is refused outright.
--
-- Declared IMMUTABLE, which it is not, for the reason shape_is_current() is: called with a
-- constant, it is answered once per plan, and creating an index, a policy, a child or a
-- statistics object on the table invalidates the plan, so the next call asks again.
create function host_code_free(p_table regclass) returns boolean
language plpgsql immutable
set search_path from current
as $$
begin
    return not exists (
        with recursive tree(relid, depth) as (
            select p_table::oid, 0
            union
            select i.inhrelid, t.depth + 1 from pg_inherits i join tree t on i.inhparent = t.relid
        ), objects(classid, objid) as (
            select 'pg_class'::regclass::oid, x.indexrelid from pg_index x join tree t on x.indrelid = t.relid
            union all
            select 'pg_constraint'::regclass::oid, c.oid from pg_constraint c
            join tree t on c.conrelid = t.relid and t.depth > 0
            union all
            select 'pg_statistic_ext'::regclass::oid, s.oid from pg_statistic_ext s join tree t on s.stxrelid = t.relid
        )
        select from objects o
        join pg_depend d on d.classid = o.classid and d.objid = o.objid
        where d.refobjid >= 16384
          and (d.refclassid in ('pg_proc'::regclass, 'pg_operator'::regclass)
               or (d.refclassid = 'pg_type'::regclass
                   and exists (select from pg_type y where y.oid = d.refobjid and y.typtype = 'd'))))
        -- A policy runs for every row read, and a built-in function can run any SQL
        -- (query_to_xml), as can a view its expression reads: a table with row-level security
        -- is not read at all.
        and not exists (
            with recursive tree(relid) as (
                select p_table::oid
                union
                select i.inhrelid from pg_inherits i join tree t on i.inhparent = t.relid
            )
            select from tree t join pg_class c on c.oid = t.relid
            where c.relrowsecurity or exists (select from pg_policy p where p.polrelid = t.relid));
end
$$;

-- A workspace as the host's own table of workspaces has it (the config's [workspaces], whose
-- table, id column and name columns the caller passes): `present`, whether a row's id reads as
-- p_workspace, and `name`, the first of p_name_columns that is neither null nor empty. `present` is
-- null when the table cannot be read: not there, no privilege, locked past lock_timeout, or not
-- a plain table. Reports show the name and fall back to the id; none fails over it.
--
-- It runs with the caller's rights (the reporting role, which needs SELECT on the table), and
-- the host's roles own that table: a view or foreign table in its place, or an index, policy or
-- child constraint calling a function of theirs, would run their code as the caller when the
-- query is planned. So, as lookup_table() does for the daemon, the table is locked first (ACCESS
-- SHARE, what reading takes anyway; replacing it takes ACCESS EXCLUSIVE), then read only if it
-- is still the same plain or partitioned table, its partitions and children plain too, calling
-- no host code (host_code_free()). Ids and names are printed by their type's output function
-- (format('%s'), which no CREATE CAST can replace), never cast, and compared as text: an id
-- that is no number names no row of a bigint column rather than raising. Comparing the printed
-- id reads the whole table, which a table of workspaces (one row per tenant) affords once per
-- report.
create function host_workspace(p_table text, p_id_column text, p_name_columns text[],
                               p_workspace text, out present boolean, out name text)
language plpgsql
set search_path from current
set lock_timeout = '500ms'
-- As the daemon's sessions do: `on` (a database owner can make it the default) evaluates the
-- table's own CHECK constraints when the query is planned; a policy would run for each row.
set constraint_exclusion = partition
set row_security = off
set datestyle = 'ISO, YMD'
set intervalstyle = 'postgres'
set extra_float_digits = 1
set bytea_output = 'hex'
as $$
declare
    v_table regclass;
    v_names text;
begin
    -- (Inside the block: a schema the caller may not use is an error its handler catches.)
    v_table := to_regclass(p_table);
    if v_table is null or cardinality(p_name_columns) is not distinct from 0 then
        return;
    end if;
    execute format('lock table %s in access share mode', v_table);
    if to_regclass(p_table) is distinct from v_table
       or exists (with recursive tree(relid) as (
                      select v_table::oid
                      union
                      select i.inhrelid from pg_inherits i join tree t on i.inhparent = t.relid)
                  select from tree t join pg_class c on c.oid = t.relid
                  where c.relkind not in ('r', 'p'))
       or not host_code_free(v_table) then
        return;
    end if;
    select string_agg(format('nullif(format(%L, %I), %L)', '%s', u.col, ''), ', ' order by u.n)
    into v_names
    from unnest(p_name_columns) with ordinality u(col, n);
    -- (A name is for a heading: its first 200 characters are plenty.)
    execute format('select true, left(coalesce(%s), 200) from %s where format(%L, %I) = $1 limit 1',
                   v_names, v_table, '%s', p_id_column)
        into present, name
        using p_workspace;
    present := coalesce(present, false);
exception when others then
    -- Whatever the host did to its table costs the name, never the report.
    present := null;
    name := null;
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

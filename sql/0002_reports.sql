-- Clockwatch 0002: report filters, as the CLI and applications use them.
--
-- Runs with `search_path = <clockwatch schema>, pg_catalog, pg_temp`, like every migration.

-- Longest date range one report may cover (Clockify: 30 days). Exports may cover more.
alter table settings add column max_report_days integer not null default 30
    check (max_report_days between 1 and 3660);

-- Every action code with its label. Filled by `clockwatch install` from the list the daemon
-- labels events with, so a filter may name an action by either.
create table action (
    code     text primary key,
    label    text not null unique,
    category text not null references category
);

-- The action codes a filter names, by code or by label, case-insensitively. Raises on a name
-- that is neither, listing the valid ones.
create function action_codes(p_actions text[]) returns text[]
language plpgsql stable
set search_path from current
as $$
declare
    v_codes   text[];
    v_unknown text;
begin
    if p_actions is null then
        return null;
    end if;
    select a into v_unknown from unnest(p_actions) a
    where not exists (select 1 from action c where lower(c.code) = lower(trim(a)) or lower(c.label) = lower(trim(a)))
    limit 1;
    if v_unknown is not null then
        raise exception 'unknown action "%" (expected one of: %)', v_unknown,
            (select string_agg(code || ' (' || label || ')', ', ' order by code) from action)
            using errcode = '22023';
    end if;
    select array_agg(c.code) into v_codes from action c, unnest(p_actions) a
    where lower(c.code) = lower(trim(a)) or lower(c.label) = lower(trim(a));
    return v_codes;
end
$$;

-- The report for one workspace and date range, newest first, with the same rules as
-- `clockwatch report`: the range must be forward and at most settings.max_report_days long.
-- p_authors holds author ids, or 'system' for System; p_actions codes or labels. p_limit caps
-- the rows (a first page), null for all.
create function events_between(p_workspace text, p_from timestamptz, p_to timestamptz,
                               p_authors text[] default null, p_actions text[] default null,
                               p_limit integer default null)
returns setof report
language plpgsql stable
set search_path from current
as $$
declare
    v_max   integer := (select max_report_days from settings);
    v_codes text[]  := action_codes(p_actions);
begin
    if p_from is null or p_to is null or p_from >= p_to then
        raise exception 'the range must run forward: from % to %', p_from, p_to using errcode = '22023';
    end if;
    if p_to - p_from > make_interval(days => v_max) then
        raise exception 'the range covers % days; a report covers at most % days: split it',
            ceil(extract(epoch from p_to - p_from) / 86400), v_max using errcode = '22023';
    end if;
    return query
        select r.* from report r
        where r.workspace_id in (p_workspace, '*')
          and r.occurred_at >= p_from and r.occurred_at < p_to
          and (p_authors is null or coalesce(r.author_id, 'system') = any (p_authors))
          and (v_codes is null or r.action_code = any (v_codes))
        order by r.occurred_at desc, r.event_id desc
        limit p_limit;
end
$$;

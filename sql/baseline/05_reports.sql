-- Clockwatch baseline, part 5 of 7: reports.
--
-- What applications and admins query: the report view (one row per event, with Clockify's detail
-- fields), report_changes (one row per changed field, previous and new value side by side), and
-- events_between(), the report with the same rules as `clockwatch report`.

-- One row per event, with Clockify's detail fields. Dates and times of the detail fields are in
-- settings.timezone; occurred_at is a timestamptz (shown in the session's TimeZone). OFFSET 0 in
-- the lateral subquery keeps PostgreSQL from inlining it and parsing each timestamp once per
-- column that uses it (four times for the start): 100,000 rows of a year's report 591 -> 535 ms.
create view report as
select e.event_id,
       e.workspace_id,
       e.occurred_at,
       e.author_id,
       e.author,
       e.action,
       e.action_code,
       e.category,
       e.origin,
       e.target_id,
       e.target,
       e.caused_by,
       e.previous_value,
       e.new_value,
       e.details ->> 'user'          as "user",
       e.details ->> 'description'   as description,
       e.details ->> 'project'       as project,
       e.details ->> 'task'          as task,
       e.details ->> 'client'        as client,
       e.details ->> 'kiosk'         as kiosk,
       e.details ->> 'type'          as type,
       to_char(t.start_at at time zone s.timezone, 'YYYY-MM-DD') as start_date,
       to_char(t.start_at at time zone s.timezone, 'HH24:MI:SS') as start_time,
       to_char(t.end_at at time zone s.timezone, 'YYYY-MM-DD')   as end_date,
       to_char(t.end_at at time zone s.timezone, 'HH24:MI:SS')   as end_time,
       -- A host can store infinite or extreme times: no duration then, rather than an error
       -- that would fail every report covering the event.
       case when isfinite(t.start_at) and isfinite(t.end_at)
                 and abs(extract(epoch from t.end_at) - extract(epoch from t.start_at)) < 1e12
            then to_char(t.end_at - t.start_at, 'HH24:MI:SS') end    as duration,
       e.details ->> 'billable'      as billable,
       e.details ->> 'billable_rate' as billable_rate,
       e.details ->> 'cost_rate'     as cost_rate,
       e.details ->> 'approved'      as approved,
       e.details ->> 'invoiced'      as invoiced,
       (select string_agg(tag, ', ') from jsonb_array_elements_text(e.details -> 'tags') tag) as tags,
       e.row_data
from events e
cross join settings s
cross join lateral (select (e.details ->> 'start')::timestamptz as start_at,
                           (e.details ->> 'end')::timestamptz   as end_at offset 0) t;

-- One row per changed field: Clockify's side-by-side "Previous value / New value".
create view report_changes as
select e.event_id,
       e.workspace_id,
       e.occurred_at,
       e.author,
       e.action,
       f.field,
       e.previous_value ->> f.field as previous_value,
       e.new_value ->> f.field      as new_value
from events e
cross join lateral (select distinct k as field
                    from jsonb_object_keys(e.previous_value || e.new_value) k) f
where e.previous_value is not null and e.new_value is not null;

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
--
-- A report covers its workspace and '*' (a TRUNCATE of a whole table), and
-- `workspace_id in ($1, '*')` cannot walk the (workspace_id, occurred_at, event_id) index in
-- order: PostgreSQL read and sorted a whole 30-day range (410,000 rows of 10,000,000) to return a
-- page of 50. Each workspace value is asked for on its own, ordered and limited (an index walk
-- that stops after the page), and only those rows are merged. JIT is off: compiling the report
-- query costs seconds and returns nothing for row-at-a-time formatting.
create function events_between(p_workspace text, p_from timestamptz, p_to timestamptz,
                               p_authors text[] default null, p_actions text[] default null,
                               p_limit integer default null)
returns setof report
language plpgsql stable
set search_path from current
set jit = off
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
        with filtered as not materialized (
            select * from report r
            where r.occurred_at >= p_from and r.occurred_at < p_to
              and (p_authors is null or coalesce(r.author_id, 'system') = any (p_authors))
              and (v_codes is null or r.action_code = any (v_codes))
        )
        select r.* from (
            (select * from filtered w where w.workspace_id = p_workspace
             order by w.occurred_at desc, w.event_id desc limit p_limit)
            union all
            (select * from filtered a where a.workspace_id = '*' and p_workspace <> '*'
             order by a.occurred_at desc, a.event_id desc limit p_limit)
        ) r
        order by r.occurred_at desc, r.event_id desc
        limit p_limit;
end
$$;

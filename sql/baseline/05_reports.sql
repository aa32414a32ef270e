-- Clockwatch baseline, part 5 of 9: reports.
--
-- What applications and admins query: the report view (one row per event, with Clockify's detail
-- fields), report_changes (one row per changed field, previous and new value side by side), and
-- events_between(), the report with the same rules as `clockwatch report`.

-- The time zone reports show times in: the session's `clockwatch.timezone` when set (the CLI
-- sets it from the config or --timezone; events_between() from p_timezone), else the one
-- `clockwatch install` saved from the config.
create function report_timezone() returns text
language sql stable
set search_path from current
as $$
    select coalesce(nullif(current_setting('clockwatch.timezone', true), ''), s.timezone) from settings s
$$;

-- A json or jsonb column's value (or an array of them) as jsonb, or as a string when jsonb cannot
-- hold it (a json value may keep a \u0000 escape or a lone surrogate that jsonb refuses): one
-- such value must not fail every report that reads row_data.
create function json_field(p_value text, p_array boolean) returns jsonb
language plpgsql immutable
as $$
begin
    if p_array then
        return to_jsonb(p_value::jsonb[]);
    end if;
    return p_value::jsonb;
exception when others then
    return to_jsonb(p_value);
end
$$;

-- One field of a row image (its text as the column's type printed it; null for SQL null) as
-- JSON, by the column's type as its shape names it (format_type): numbers and booleans bare,
-- json as itself, arrays as arrays, times in ISO 8601 with a `T` and the offset as captured,
-- anything else as a string. The daemon reads images the same way (src/record.rs), but for json
-- that jsonb refuses (json_field()).
-- (STABLE: a time with zone in an array prints in the session's TimeZone.)
create function field_json(p_type text, p_value text) returns jsonb
language sql stable
as $$
    select case
        when p_value is null then 'null'::jsonb
        when p_type like '%[]' then
            case when p_type = 'boolean[]' then to_jsonb(p_value::boolean[])
                 -- ('numeric' is numeric(p,s)[] with its typmod split off)
                 when split_part(p_type, '(', 1) in ('smallint[]', 'integer[]', 'bigint[]', 'real[]',
                                                     'double precision[]', 'numeric[]', 'numeric')
                     then to_jsonb(p_value::numeric[])
                 when p_type in ('json[]', 'jsonb[]') then json_field(p_value, true)
                 when p_type like 'time%with time zone[]' then to_jsonb(p_value::timestamptz[])
                 when p_type like 'timestamp%' then to_jsonb(p_value::timestamp[])
                 else to_jsonb(p_value::text[]) end
        when p_type = 'boolean' then to_jsonb(p_value::boolean)
        when split_part(p_type, '(', 1) in ('smallint', 'integer', 'bigint', 'real',
                                            'double precision', 'numeric')
            then to_jsonb(p_value::numeric)
        when p_type in ('json', 'jsonb') then json_field(p_value, false)
        when p_type like 'time%with time zone'
            then to_jsonb(regexp_replace(regexp_replace(p_value, ' ', 'T'), '([+-][0-9][0-9])$', '\1:00'))
        when p_type like 'timestamp%' then to_jsonb(regexp_replace(p_value, ' ', 'T'))
        else to_jsonb(p_value)
    end
$$;

-- An event's row image (events.row_image, the record's text as captured) as a JSON object keyed
-- by the columns of its shape. Fields are split as record_out prints them: comma-separated, a
-- field holding a comma, quote, backslash, parenthesis or space quoted, with quotes doubled and
-- backslashes escaped inside; an empty unquoted field is null. Runs only where a query reads
-- row_data, never on the daemon's path: about 140 us for a row of the fixture's time_entry
-- (20 columns), where storing the text instead of jsonb took 330 of the 880 bytes an event row
-- held (bench/README.md). The fields are zipped with the shape's columns by position (a join on
-- ordinality cost 20% more).
create function row_json(p_shape bigint, p_image text) returns jsonb
language sql stable
set search_path from current
as $$
    select jsonb_object_agg(c.name, field_json(c.type,
               case when c.value = '' then null
                    when left(c.value, 1) = '"'
                        then regexp_replace(substr(c.value, 2, length(c.value) - 2), '"(")|\\(.)', '\1\2', 'g')
                    else c.value end))
    from shape s
    cross join lateral unnest(s.columns, s.types,
                              array(select m[1] from regexp_matches(substr(p_image, 2, length(p_image) - 2),
                                                                    '(?:^|,)("(?:[^"\\]|""|\\.)*"|[^,]*)', 'g') m))
               as c(name, type, value)
    where s.id = p_shape and p_image is not null and c.name is not null
$$;

-- One row per event, with Clockify's detail fields. Every date and time is shown in
-- report_timezone(), named in time_zone; occurred_at is a timestamptz (shown in the session's
-- TimeZone).
--
-- The details are read with one json_to_record() per event, which walks the document once and
-- converts each field as it goes (tags to text[]; start and end are cast once, below), where
-- twelve `->>` lookups, two casts and a subquery over the tags cost more (500,000 rows of the
-- view with the duration below: 6.4-7.0 s of the server's time against 8.0-9.5 s,
-- bench/README.md). A text column of the record gets a string's text and any other value's JSON
-- text, as `->>` does.
-- A duration counts whole hours past a day (25:00:00) and is negative when the end comes before
-- the start (-01:30:00), as changed durations read (src/report.rs). It is the one the daemon
-- wrote from a mapped duration column when there is one, else the time from start to end. A
-- start or end that is a date (a timesheet's day, `2026-11-24`) shows as that date, with no time
-- and no duration of its own.
create view report as
select e.event_id,
       e.workspace_id,
       e.occurred_at,
       to_char(e.occurred_at at time zone s.timezone, 'YYYY-MM-DD HH24:MI:SS') as local_time,
       s.timezone as time_zone,
       e.source,
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
       d."user",
       d.description,
       d.project,
       d.task,
       d.client,
       d.kiosk,
       d.type,
       coalesce(t.start_day, to_char(t.start_at at time zone s.timezone, 'YYYY-MM-DD')) as start_date,
       to_char(t.start_at at time zone s.timezone, 'HH24:MI:SS') as start_time,
       coalesce(t.end_day, to_char(t.end_at at time zone s.timezone, 'YYYY-MM-DD')) as end_date,
       to_char(t.end_at at time zone s.timezone, 'HH24:MI:SS') as end_time,
       -- A host can store infinite or extreme times: no duration then, rather than an error
       -- that would fail every report covering the event. Under a day, the usual case, the
       -- interval prints as it is (0.25 s for 500,000 rows against 0.76 s for the general
       -- case); the general case subtracts the epochs, as the interval between two extreme
       -- times is out of range.
       case when d.duration is not null then d.duration
            when not (isfinite(t.start_at) and isfinite(t.end_at)) then null
            when t.end_at >= t.start_at and t.start_at > '0001-01-01' and t.end_at < '10000-01-01'
                 and t.end_at - t.start_at < interval '24 hours'
                then to_char(t.end_at - t.start_at, 'HH24:MI:SS')
            when abs(extract(epoch from t.end_at) - extract(epoch from t.start_at)) < 1e12
                then case when t.end_at < t.start_at then '-' else '' end
                     || to_char(make_interval(secs => trunc(abs(extract(epoch from t.end_at)
                                                                 - extract(epoch from t.start_at)))),
                                'HH24:MI:SS')
       end as duration,
       d.billable,
       d.billable_rate,
       d.cost_rate,
       d.approved,
       d.invoiced,
       -- Null tags are left out; no tag at all is null, as a tag list that was never set.
       case when cardinality(array_remove(d.tags, null)) > 0
            then array_to_string(d.tags, ', ') end as tags,
       row_json(e.row_shape, e.row_image) as row_data,
       -- The names the ids in previous_value and new_value bore when the event was written
       -- (`{"project_id": {"1": "Apollo"}}`), kept in its details.
       e.details -> 'names' as change_names,
       -- When the event was written to the log.
       e.recorded_at,
       -- Where its author came from: the setting that named them (`request.jwt.claims.sub`),
       -- `column` (actor_column); null for System.
       d.actor_source
from events e
-- OFFSET 0: the zone is looked up once per query. Flattened into the row expressions, it was
-- looked up five times per row (a year's export of 50,000 rows: 3.8 s, against 0.3 s).
cross join (select report_timezone() as timezone offset 0) s
cross join lateral json_to_record(e.details)
    as d("user" text, description text, project text, task text, client text, kiosk text,
         type text, start text, "end" text, billable text, billable_rate text,
         cost_rate text, approved text, invoiced text, duration text, tags text[], actor_source text)
-- Start and end as instants, or as the days they are when they are dates.
cross join lateral (
    select case when length(d.start) = 10 then d.start end as start_day,
           case when length(d.start) <> 10 then d.start::timestamptz end as start_at,
           case when length(d."end") = 10 then d."end" end as end_day,
           case when length(d."end") <> 10 then d."end"::timestamptz end as end_at) t;

-- The events a report reads, as stored: what `clockwatch export` reads, formatting the details
-- document itself (src/detail.rs) rather than asking the server to. 500,000 rows took the server
-- 2.6-2.7 s from here, 6.4-7.0 s as the report view's formatted columns, and 4.8-4.9 s as the
-- view's stored columns, whose lateral json_to_record() runs even when no detail is read
-- (bench/README.md). Without the row image and the chain, which a report does not show.
create view report_events as
select e.event_id, e.workspace_id, e.occurred_at, e.source, e.author_id, e.author, e.action,
       e.action_code, e.category, e.origin, e.target_id, e.target, e.caused_by, e.previous_value,
       e.new_value, e.details
from events e;

-- One row per changed field: Clockify's side-by-side "Previous value / New value". local_time is
-- occurred_at in report_timezone(), as the report view shows it.
create view report_changes as
select e.event_id,
       e.workspace_id,
       e.occurred_at,
       to_char(e.occurred_at at time zone s.timezone, 'YYYY-MM-DD HH24:MI:SS') as local_time,
       e.author,
       e.action,
       f.field,
       e.previous_value ->> f.field as previous_value,
       e.new_value ->> f.field      as new_value
from events e
-- OFFSET 0: the zone is looked up once per query, as in the report view.
cross join (select report_timezone() as timezone offset 0) s
cross join lateral (select k as field from json_object_keys(e.previous_value) k
                    union
                    select k from json_object_keys(e.new_value) k) f
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

-- The author ids a filter names, as `clockwatch report --author` reads them: an id the log has
-- recorded (as "4" or "#4", the way an author with no name is shown), a name it knows
-- (case-insensitively; every id that bore it), or 'system' for System. Raises on anything else,
-- rather than match nothing.
create function author_ids(p_authors text[]) returns text[]
language plpgsql stable
set search_path from current
as $$
declare
    v_ids   text[] := '{}';
    v_token text;
    v_found text[];
begin
    if p_authors is null then
        return null;
    end if;
    foreach v_token in array p_authors loop
        v_token := trim(v_token);
        if lower(v_token) = 'system' then
            v_ids := v_ids || 'system'::text;
            continue;
        end if;
        -- Ids and names alike: an actor id that reads like someone's name (any application can
        -- set one) adds its own events, never hides theirs.
        v_found := array(select k.id from known_name k
                         where k.category = 'author'
                           and (k.id = v_token or k.id = substr(v_token, 2) and left(v_token, 1) = '#'
                                or lower(k.name) = lower(v_token)));
        if cardinality(v_found) = 0 then
            raise exception 'unknown author "%": not a user id or name the log knows (use the id the application stores, a name, or system)',
                v_token using errcode = '22023';
        end if;
        v_ids := v_ids || v_found;
    end loop;
    return array(select distinct i from unnest(v_ids) i order by i);
end
$$;

-- A report's bound, as `clockwatch report --from/--to` reads it: a date (a whole day in p_zone;
-- p_end: the bound is the end of the day, so from and to the same day is that day), or a time
-- with its offset (2026-11-02T09:00:00+01:00). A time without one is refused: it would be read
-- in whatever zone the session happens to use.
create function report_bound(p_text text, p_zone text, p_end boolean) returns timestamptz
language plpgsql stable
set search_path from current
as $$
begin
    if p_text ~ '^\s*\d{4}-\d{2}-\d{2}\s*$' then
        return ((p_text::date + case when p_end then 1 else 0 end)::timestamp at time zone p_zone);
    end if;
    if p_text !~ '^\s*\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}' then
        raise exception '"%" is not a date or time (use 2026-11-01 or 2026-11-01T09:00:00Z)', p_text
            using errcode = '22023';
    end if;
    if p_text !~ '(Z|z|[+-]\d{2}(:?\d{2})?)\s*$' then
        raise exception '"%" is a time without its offset: add one (2026-11-01T09:00:00+01:00) or give a date', p_text
            using errcode = '22023';
    end if;
    return p_text::timestamptz;
exception when invalid_datetime_format or datetime_field_overflow then
    raise exception '"%" is not a date or time (use 2026-11-01 or 2026-11-01T09:00:00Z)', p_text
        using errcode = '22023';
end
$$;

-- The report for one workspace and range, newest first, with the same rules as `clockwatch
-- report`: the range must be forward and at most settings.max_report_days long. p_from and p_to
-- are what `--from`/`--to` take (see report_bound()): dates, whole days in the report's time
-- zone, so `events_between('42', '2026-11-02', '2026-11-02')` is the 2nd; or times with their
-- offset; or timestamptz values (now() - interval '7 days'), taken as the instants they are.
-- p_authors holds author ids, names or 'system' (see author_ids()); p_actions codes or labels.
-- p_limit caps the rows (a first page), null for all. p_timezone is the zone to read days in
-- and show times in (default: report_timezone()).
--
-- A report covers its workspace and the TRUNCATEs of whole tables (workspace '*'; a host row
-- whose workspace is the text '*' stays in the report of '*' alone), and
-- `workspace_id in ($1, '*')` cannot walk the (workspace_id, occurred_at, event_id) index in
-- order: PostgreSQL read and sorted a whole 30-day range (410,000 rows of 10,000,000) to return a
-- page of 50. Each workspace value is asked for on its own, ordered and limited (an index walk
-- that stops after the page), and only those rows are merged. JIT is off: compiling the report
-- query costs seconds and returns nothing for row-at-a-time formatting.
create function events_between(p_workspace text, p_from anycompatible, p_to anycompatible,
                               p_authors text[] default null, p_actions text[] default null,
                               p_limit integer default null, p_timezone text default null)
returns setof report
language plpgsql stable
set search_path from current
set jit = off
as $$
declare
    v_max     integer := (select max_report_days from settings);
    v_codes   text[]  := action_codes(p_actions);
    v_authors text[]  := author_ids(p_authors);
    v_was     text    := current_setting('clockwatch.timezone', true);
    v_zone    text    := coalesce(p_timezone, report_timezone());
    v_from    timestamptz;
    v_to      timestamptz;
begin
    -- Using the zone is the cheap check (pg_timezone_names reads every zone file: 60 ms).
    if p_timezone is not null then
        begin
            perform now() at time zone p_timezone;
        exception when invalid_parameter_value then
            raise exception 'unknown time zone "%" (use an IANA name such as Europe/Berlin)', p_timezone
                using errcode = '22023';
        end;
    end if;
    -- Quoted literals arrive as text; typed times are instants already (their text, read back
    -- in the same session, is the same instant).
    if pg_typeof(p_from) = 'timestamptz'::regtype then
        v_from := p_from::text::timestamptz;
        v_to := p_to::text::timestamptz;
    else
        v_from := report_bound(p_from::text, v_zone, false);
        v_to := report_bound(p_to::text, v_zone, true);
    end if;
    if v_from is null or v_to is null or v_from >= v_to then
        raise exception 'the range must run forward: from % to %', p_from, p_to using errcode = '22023';
    end if;
    if v_to - v_from > make_interval(days => v_max) then
        raise exception 'the range covers % days; a report covers at most % days: split it',
            ceil(extract(epoch from v_to - v_from) / 86400), v_max using errcode = '22023';
    end if;
    -- Read by the report view while this query runs; put back after.
    perform set_config('clockwatch.timezone', v_zone, true);
    return query
        with filtered as not materialized (
            select * from report r
            where r.occurred_at >= v_from and r.occurred_at < v_to
              and (v_authors is null or coalesce(r.author_id, 'system') = any (v_authors))
              and (v_codes is null or r.action_code = any (v_codes))
        )
        select r.* from (
            (select * from filtered w where w.workspace_id = p_workspace
             order by w.occurred_at desc, w.event_id desc limit p_limit)
            union all
            (select * from filtered a
             where a.workspace_id = '*' and p_workspace <> '*'
               and (a.action_code like '%.truncated' or a.source = any ((select s.shared_sources from settings s)::text[]))
             order by a.occurred_at desc, a.event_id desc limit p_limit)
        ) r
        order by r.occurred_at desc, r.event_id desc
        limit p_limit;
    perform set_config('clockwatch.timezone', coalesce(v_was, ''), true);
end
$$;

-- Write a batch of events in one statement (one array per column).
insert into events (event_id, occurred_at, workspace_id, category, action_code, action, origin,
                    author_id, author, target_id, target, caused_by, linked, txid, source,
                    previous_value, new_value, row_data, details)
select *
from unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::bigint[],
            $13::boolean[], $14::bigint[], $15::text[], $16::jsonb[], $17::jsonb[], $18::jsonb[],
            $19::jsonb[])

-- Write a batch of events (one array per column), chained by the daemon from the heads it locked
-- with chain_heads.sql; each workspace's head moves to the batch's last event there.
select append_events($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[],
                     $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],
                     $12::bigint[], $13::boolean[], $14::bigint[], $15::text[], $16::json[],
                     $17::json[], $18::text[], $19::bigint[], $20::json[], $21::bigint[],
                     $22::bytea[], $23::bytea[])

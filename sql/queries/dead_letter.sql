-- Set aside staged changes that cannot be normalised, with the reason. Kept, never dropped.
insert into dead_letter (staging_id, reason, change)
select * from unnest($1::bigint[], $2::text[], $3::jsonb[])
on conflict (staging_id) do nothing

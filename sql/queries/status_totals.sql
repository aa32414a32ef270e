-- The log's figures, read where the log is: dead letters, recent events, partitions and
-- retention, and pruning.
select (select count(*) from dead_letter) as dead_letters,
       (select count(*) from events where occurred_at > now() - interval '1 hour') as events_last_hour,
       (select count(*) from events where occurred_at > now() - interval '1 day') as events_last_day,
       (select array_agg(partition_name order by starts) from event_partitions()) as partitions,
       (select retention::text from settings) as retention,
       (select last_run from maintenance where job = 'prune') as last_prune,
       -- Pruning that reached inside the retention period: a prune whose cutoff did, or a chain
       -- anchored at an event that was not yet expired when it was removed, or at one written to
       -- the log after the cutoff (backdated: see chain_anchor; 7 days for long transactions).
       (select count(*) from prune_log p cross join settings s
        where p.cutoff > p.ran_at - s.retention)
       + (select count(*) from chain_anchor a cross join settings s
          where a.occurred_at >= a.pruned_at - s.retention
             or a.recorded_at >= a.cutoff + interval '7 days') as early_prunes

-- The foreign keys between audited tables that act on their rows (CASCADE, SET NULL, SET
-- DEFAULT): what can make a foreign-key action's change (src/cause.rs). Each as the sources the
-- two tables belong to, with their columns in key order; a partition's copies of its root's key
-- are left out.
select distinct child.source, parent.source,
       array(select a.attname::text from unnest(c.conkey) with ordinality k(n, i)
             join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.n order by k.i),
       array(select a.attname::text from unnest(c.confkey) with ordinality k(n, i)
             join pg_attribute a on a.attrelid = c.confrelid and a.attnum = k.n order by k.i),
       c.confdeltype::text, c.confupdtype::text
from pg_constraint c
join captured_table child on child.relid = c.conrelid
join captured_table parent on parent.relid = c.confrelid
where c.contype = 'f' and c.conparentid = 0
  and (c.confdeltype in ('c', 'n', 'd') or c.confupdtype in ('c', 'n', 'd'))

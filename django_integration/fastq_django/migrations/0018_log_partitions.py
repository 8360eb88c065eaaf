"""The finished log's partitions sized to the retention (PostgreSQL; docs/job-store.md).

Migration 0017 partitions ``fastq_finished`` by day, so with succeeded jobs kept less
than a day (a minute, an hour) retention had to delete them row by row: a DELETE, then
a VACUUM, for every job, which at tens of thousands of jobs a second cost a fifth of the
throughput (docs/benchmarks.md, "Retention at scale"). Here the partitions take the width
the scheduler's leader asks for (``fastq.log_partitions()`` in the core, retention.hpp):
a day when successes are kept a day or more, as before; shorter, the largest of a fixed
list of widths that divide a day and fit ten times in the retention (6 s for a minute,
5 min for an hour), so that a partition holds at most a tenth of the window and dropping
it is how every success goes.

``fastq_finished_upkeep(width, ahead, cutoffs)`` (seconds, seconds, the cutoffs as before):

1. partitions of another shape that still take rows (a retention changed since they
   were made) are detached, so the new ones can cover their time, and their rows go back
   in after 2;
2. partitions of ``width`` seconds, aligned to the epoch (day ones at midnight UTC), are
   made from the current one to ``ahead`` seconds on, under the names of 0017 for days
   (``fastq_finished_pYYYYMMDD``) and ``fastq_finished_pYYYYMMDD_HHMMSS`` for shorter;
3. every partition, whatever its width, that ends by the succeeded jobs' cutoff is
   dropped, the jobs in it that must stay copied out first, as 0017 did for days.

Its locks (DETACH takes the log's ACCESS EXCLUSIVE lock, so completions wait for the
rest of the call) wait at most 200 ms for a reader: an upkeep that cannot have them
fails, is logged, and runs again at the next turn, rather than queueing every completion
behind a long query of the log. ``fastq_finished_upkeep(ahead_days, cutoffs)`` of 0017
stays as day partitions ``ahead_days`` ahead. SQLite has no partitions: nothing changes.
"""

import importlib

from django.db import migrations

PARTITIONS = r"""
-- The finished log's partitions (not the default one) and their bounds, as PostgreSQL
-- prints them back (pg_get_expr of the bound: FOR VALUES FROM ('...') TO ('...')).
CREATE OR REPLACE FUNCTION fastq_finished_partitions()
RETURNS TABLE (name text, lo timestamptz, hi timestamptz) LANGUAGE sql STABLE AS $$
  SELECT c.relname::text,
    substring(e.b FROM 'FROM \(''([^'']+)''\)')::timestamptz,
    substring(e.b FROM 'TO \(''([^'']+)''\)')::timestamptz
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
  CROSS JOIN LATERAL pg_get_expr(c.relpartbound, c.oid) AS e(b)
  WHERE i.inhparent = 'fastq_finished'::regclass AND e.b <> 'DEFAULT'
$$;

CREATE OR REPLACE FUNCTION fastq_finished_upkeep(width int, ahead int, cutoffs jsonb)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
  w interval;
  p record;
  slot timestamptz;
  name text;
  retired text[] := '{}';
  t text;
  is_named boolean;
  drop_before timestamptz := to_timestamp((cutoffs ->> 'succeeded')::bigint / 1e6);
  going text[] := '{}';
  named boolean[] := '{}';
  k int;
  keep text;
  dropped int := 0;
BEGIN
  width := greatest(width, 1);
  w := make_interval(secs => width);
  -- The partitions to drop, and whether a schedule run or a poller mark names one of
  -- their successes, found before anything below takes the log's exclusive lock, so that
  -- completions do not wait for a scan of hundreds of thousands of rows: no other
  -- success in them can be kept (they are all past their cutoff), and no run or mark is
  -- ever made for a job that has finished.
  IF drop_before IS NOT NULL THEN
    FOR p IN SELECT * FROM fastq_finished_partitions() f WHERE f.hi <= drop_before
        ORDER BY f.hi LOOP
      going := going || p.name;
      EXECUTE format($q$SELECT EXISTS (SELECT 1 FROM %I j WHERE j.state = 'succeeded'
        AND (EXISTS (SELECT 1 FROM fastq_schedule_run r WHERE r.job_id = j.id)
          OR EXISTS (SELECT 1 FROM fastq_poller_mark m WHERE m.job_id = j.id)))$q$, p.name)
        INTO is_named;
      named := named || is_named;
    END LOOP;
  END IF;
  PERFORM set_config('lock_timeout', '200ms', true);
  FOR p IN SELECT * FROM fastq_finished_partitions() f WHERE f.hi > now()
      AND NOT f.name = ANY (going) AND NOT (extract(epoch FROM f.hi - f.lo) = width
        AND extract(epoch FROM f.lo)::bigint % width = 0) LOOP
    EXECUTE format('ALTER TABLE fastq_finished DETACH PARTITION %I', p.name);
    -- Out of the way of a partition of the new width made under the same name.
    t := 'fastq_finished_retired_' || (cardinality(retired) + 1);
    EXECUTE format('ALTER TABLE %I RENAME TO %I', p.name, t);
    retired := retired || t;
  END LOOP;
  slot := to_timestamp(floor(extract(epoch FROM now()) / width) * width);
  WHILE slot < now() + make_interval(secs => greatest(ahead, 0)) LOOP
    name := 'fastq_finished_p' || to_char(slot AT TIME ZONE 'UTC',
      CASE WHEN width = 86400 THEN 'YYYYMMDD' ELSE 'YYYYMMDD_HH24MISS' END);
    IF to_regclass(name) IS NULL AND NOT EXISTS (SELECT 1 FROM fastq_finished_partitions() f
        WHERE f.lo < slot + w AND f.hi > slot) THEN
      BEGIN
        EXECUTE format('CREATE TABLE %I PARTITION OF fastq_finished FOR VALUES FROM (%L) TO (%L)',
          name, slot, slot + w);
      EXCEPTION WHEN check_violation THEN
        -- Rows of that time are in the default partition already (the leader was away
        -- when it began): they stay there, and retention deletes them row by row.
        NULL;
      END;
    END IF;
    slot := slot + w;
  END LOOP;
  FOREACH t IN ARRAY retired LOOP
    EXECUTE format('INSERT INTO fastq_finished SELECT * FROM %I', t);
    EXECUTE format('DROP TABLE %I', t);
  END LOOP;
  -- From here on the partitions' own indexes, not a scan of every row, whatever the
  -- statistics of a partition made seconds ago say (this transaction only).
  PERFORM set_config('enable_seqscan', 'off', true);
  FOR k IN 1..cardinality(going) LOOP
    EXECUTE format('ALTER TABLE fastq_finished DETACH PARTITION %I', going[k]);
    -- The jobs that stay go to the default partition: those whose state keeps them
    -- longer (or for ever: no key) and those something depends on. Without a named
    -- success only the other states and the workflow steps are read, through the
    -- partition's partial indexes (fastq_finished_failures, fastq_finished_workflow).
    keep := $k$(NOT (j.finished_at < to_timestamp(($1 ->> j.state)::bigint / 1e6))
        OR ($1 ->> j.state) IS NULL
        OR EXISTS (SELECT 1 FROM fastq_schedule_run r WHERE r.job_id = j.id)
        OR EXISTS (SELECT 1 FROM fastq_poller_mark m WHERE m.job_id = j.id)
        OR (j.workflow_id IS NOT NULL AND EXISTS (SELECT 1 FROM fastq_active w
          WHERE w.workflow_id = j.workflow_id)))$k$;
    IF named[k] THEN
      EXECUTE format('INSERT INTO fastq_finished SELECT * FROM %I j WHERE %s', going[k], keep)
        USING cutoffs;
    ELSE
      EXECUTE format($q$INSERT INTO fastq_finished SELECT * FROM %I j
        WHERE j.state <> 'succeeded' AND %s$q$, going[k], keep) USING cutoffs;
      EXECUTE format($q$INSERT INTO fastq_finished SELECT * FROM %I j
        WHERE j.state = 'succeeded' AND j.workflow_id IS NOT NULL AND %s$q$, going[k], keep)
        USING cutoffs;
    END IF;
    EXECUTE format($q$DELETE FROM fastq_dependency e USING %I j
      WHERE j.workflow_id IS NOT NULL AND (e.parent_id = j.id OR e.child_id = j.id)
        AND NOT EXISTS (SELECT 1 FROM fastq_finished k WHERE k.id = j.id)$q$, going[k]);
    EXECUTE format($q$DELETE FROM fastq_workflow f
      WHERE f.root_id IN (SELECT workflow_id FROM %I WHERE workflow_id IS NOT NULL)
        AND NOT EXISTS (SELECT 1 FROM fastq_active a WHERE a.workflow_id = f.root_id)
        AND NOT EXISTS (SELECT 1 FROM fastq_finished k WHERE k.workflow_id = f.root_id)$q$,
      going[k]);
    EXECUTE format('DROP TABLE %I', going[k]);
    dropped := dropped + 1;
  END LOOP;
  RETURN dropped;
END $$;

-- 0017's call: day partitions, `ahead` days ahead of today.
CREATE OR REPLACE FUNCTION fastq_finished_upkeep(ahead int, cutoffs jsonb)
RETURNS int LANGUAGE sql AS $$
  SELECT fastq_finished_upkeep(86400, greatest(ahead, 0) * 86400, cutoffs)
$$;
"""

POSTGRES_REVERSE = r"""
DROP FUNCTION fastq_finished_upkeep(int, int, jsonb);
DROP FUNCTION fastq_finished_partitions();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PARTITIONS, None)  # no % interpolation


def reverse(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_REVERSE, None)
        job_store = importlib.import_module("fastq_django.migrations.0017_job_store")
        schema_editor.execute(job_store.UPKEEP_FUNCTION, None)


class Migration(migrations.Migration):
    dependencies = [
        ("fastq_django", "0017_job_store"),
    ]

    operations = [migrations.RunPython(forward, reverse)]

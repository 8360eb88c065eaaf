"""The job store (issue 17, docs/job-store.md): on PostgreSQL, jobs live in two tables.

- ``fastq_active``: queued, running and waiting jobs only, whatever the history. It is
  today's ``fastq_job`` table renamed, with fillfactor 50 and three indexes that name no
  column a claim changes (claim order not filtered on state, keyed jobs' unique index,
  workflow steps), so a claim is a HOT update: a new tuple version on the same page and no
  index entry. Rescue and the running list scan this small table.
- ``fastq_finished``: succeeded, failed, dead, cancelled and expired jobs, append-only,
  partitioned by day of ``finished_at`` (``fastq_finished_pYYYYMMDD``, made ahead by the
  scheduler's leader through ``fastq_finished_upkeep``; a default partition takes
  anything outside them). Retention drops a day's partition instead of deleting rows.

``fastq_job`` becomes a view over both (``UNION ALL``), so the Django model ``Job``, the
admin, ``AsyncResult`` and every ORM read keep working unchanged. ORM writes through the
view go through an INSTEAD OF trigger that writes only the columns the statement changed
(a task's ``update(attempt_log=...)`` does not write back the snapshot of a row a worker
is changing at the same moment) and moves a row between the tables when its state
crosses from active to finished or back. The core's statements (src/sql/postgres.sql)
write the two tables directly; a completion deletes the active row and inserts the
finished one in one statement. Any UPDATE that gives an active row a final state (cancel,
rescue, a workflow's settle) has it moved to the log at the end of that statement by the
row trigger ``fastq_active_finish`` (its WHEN clause keeps the claim free of it).

The rows move in this migration's transaction and are counted before and after; the
reverse migration puts them back in one ``fastq_job`` table with the indexes of 0016.

SQLite keeps the one table (``fastq_job``); ``fastq_active`` and ``fastq_finished`` are
views over it there, so both names read the same logical layout on both databases. The
models ``ActiveJob`` and ``FinishedJob`` name the two relations (for Django's flush and
for reads); read and write jobs through ``Job``.
"""

from django.db import migrations, models

import fastq_django.models

ACTIVE = "('queued', 'running', 'waiting')"

# The upkeep function as this migration made it (0018_log_partitions replaces it and puts
# it back when reversed).
UPKEEP_FUNCTION = r"""
-- Day partitions of the log from today on, and retention's partition drop. Run by the
-- scheduler's leader (Driver::upkeep) at start and every hour: `ahead` days made, and
-- with `cutoffs` (a JSON object: each final state with a retention -> the time before
-- which its jobs go, in microseconds since the epoch) every day partition that ends by
-- the succeeded jobs' cutoff (most jobs end succeeded) is dropped. The jobs in it that
-- must stay are first copied to the default partition: those whose state keeps them longer (or
-- for ever: no key), and those something still depends on (a schedule slot or poller
-- mark naming them, a workflow with an unfinished step), as the row-wise prune keeps
-- them; the dropped steps' edges and their workflows' records go with them. The other
-- states are rare: copying out those kept longer costs little, and those kept shorter
-- are pruned row by row before (Driver::prune_jobs). Succeeded jobs kept for ever (no
-- key): no day is dropped.
CREATE OR REPLACE FUNCTION fastq_finished_upkeep(ahead int, cutoffs jsonb)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
  d date;
  name text;
  p record;
  drop_before timestamptz;
  dropped int := 0;
BEGIN
  FOR k IN 0..greatest(ahead, 0) LOOP
    d := (now() AT TIME ZONE 'UTC')::date + k;
    name := 'fastq_finished_p' || to_char(d, 'YYYYMMDD');
    IF to_regclass(name) IS NULL THEN
      BEGIN
        EXECUTE format('CREATE TABLE %I PARTITION OF fastq_finished FOR VALUES FROM (%L) TO (%L)',
          name, d::timestamp AT TIME ZONE 'UTC', (d + 1)::timestamp AT TIME ZONE 'UTC');
      EXCEPTION WHEN check_violation THEN
        -- Rows of that day are in the default partition already (the leader was away
        -- when the day began): they stay there, and retention deletes them row by row.
        NULL;
      END;
    END IF;
  END LOOP;
  drop_before := to_timestamp((cutoffs ->> 'succeeded')::bigint / 1e6);
  IF drop_before IS NULL THEN
    RETURN 0;
  END IF;
  FOR p IN SELECT c.relname::text AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'fastq_finished'::regclass AND c.relname ~ '^fastq_finished_p[0-9]{8}$'
    ORDER BY c.relname LOOP
    EXIT WHEN (to_date(substr(p.name, 17), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC'
      > drop_before;
    EXECUTE format('ALTER TABLE fastq_finished DETACH PARTITION %I', p.name);
    EXECUTE format($q$INSERT INTO fastq_finished SELECT * FROM %I j
      WHERE NOT (j.finished_at < to_timestamp(($1 ->> j.state)::bigint / 1e6))
        OR ($1 ->> j.state) IS NULL
        OR EXISTS (SELECT 1 FROM fastq_schedule_run r WHERE r.job_id = j.id)
        OR EXISTS (SELECT 1 FROM fastq_poller_mark m WHERE m.job_id = j.id)
        OR (j.workflow_id IS NOT NULL AND EXISTS (SELECT 1 FROM fastq_active w
          WHERE w.workflow_id = j.workflow_id))$q$, p.name) USING cutoffs;
    EXECUTE format($q$DELETE FROM fastq_dependency e USING %I j
      WHERE j.workflow_id IS NOT NULL AND (e.parent_id = j.id OR e.child_id = j.id)
        AND NOT EXISTS (SELECT 1 FROM fastq_finished k WHERE k.id = j.id)$q$, p.name);
    EXECUTE format($q$DELETE FROM fastq_workflow f
      WHERE f.root_id IN (SELECT workflow_id FROM %I WHERE workflow_id IS NOT NULL)
        AND NOT EXISTS (SELECT 1 FROM fastq_active a WHERE a.workflow_id = f.root_id)
        AND NOT EXISTS (SELECT 1 FROM fastq_finished k WHERE k.workflow_id = f.root_id)$q$,
      p.name);
    EXECUTE format('DROP TABLE %I', p.name);
    dropped := dropped + 1;
  END LOOP;
  RETURN dropped;
END $$;
"""

POSTGRES_FORWARD = rf"""
DO $$
DECLARE
  i record;
BEGIN
  -- Today's table becomes the active table.
  ALTER TABLE fastq_job RENAME TO fastq_active;
  ALTER INDEX fastq_job_pkey RENAME TO fastq_active_pkey;
  ALTER TRIGGER fastq_job_notify ON fastq_active RENAME TO fastq_active_notify;
  FOR i IN SELECT indexrelid::regclass::text AS name FROM pg_index
    WHERE indrelid = 'fastq_active'::regclass AND NOT indisprimary LOOP
    EXECUTE format('DROP INDEX %s', i.name);
  END LOOP;
  ALTER TABLE fastq_active SET (fillfactor = 50);

  -- The finished log: the same columns in the same order (the move statements and the
  -- triggers below copy whole rows), the same CHECK constraints.
  CREATE TABLE fastq_finished (LIKE fastq_active INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
    PARTITION BY RANGE (finished_at);
  -- Only finished jobs: a query of the view for active states (state = 'running', say)
  -- never reads the log (constraint exclusion of UNION ALL branches).
  ALTER TABLE fastq_finished ADD CONSTRAINT fastq_finished_state
    CHECK (state NOT IN {ACTIVE});
  CREATE TABLE fastq_finished_default PARTITION OF fastq_finished DEFAULT;
  -- Lookups by id and the admin's list, newest first by id (UUIDv7: time-ordered);
  -- recent outcomes and the row-wise prune's oldest-first walk by finished_at (a B-tree:
  -- a BRIN saves ~65 WAL bytes a job but makes every prune batch sort the whole backlog,
  -- which fell behind at 40,000 jobs a second with a short retention); the admin's lists
  -- of failures (failed, dead, expired, cancelled: rare, so the partial index costs a
  -- success nothing).
  CREATE INDEX fastq_finished_id ON fastq_finished (id);
  CREATE INDEX fastq_finished_at ON fastq_finished (finished_at);
  CREATE INDEX fastq_finished_failures ON fastq_finished (state, id)
    WHERE state <> 'succeeded';
  CREATE INDEX fastq_finished_workflow ON fastq_finished (workflow_id)
    WHERE workflow_id IS NOT NULL;
  CREATE INDEX fastq_finished_group ON fastq_finished (group_label)
    WHERE group_label IS NOT NULL;
END $$;

{UPKEEP_FUNCTION.lstrip()}
DO $$
DECLARE
  before bigint;
  moved bigint;
BEGIN
  SELECT count(*) INTO before FROM fastq_active;
  PERFORM fastq_finished_upkeep(7, NULL);
  UPDATE fastq_active SET finished_at = COALESCE(finished_at, created_at)
    WHERE state NOT IN {ACTIVE} AND finished_at IS NULL;
  INSERT INTO fastq_finished SELECT * FROM fastq_active WHERE state NOT IN {ACTIVE};
  GET DIAGNOSTICS moved = ROW_COUNT;
  DELETE FROM fastq_active WHERE state NOT IN {ACTIVE};
  IF (SELECT count(*) FROM fastq_active) + (SELECT count(*) FROM fastq_finished) <> before
    OR (SELECT count(*) FROM fastq_finished) <> moved THEN
    RAISE EXCEPTION 'fastq: the job store migration lost or duplicated jobs';
  END IF;
END $$;

-- The active table's indexes, once only active jobs are left in it: no index names a
-- column the claim changes (state, attempts, lease_token, lease_expires_at, worker,
-- started_at), in its key or its predicate.
CREATE INDEX fastq_active_claim ON fastq_active (queue, priority DESC, run_at, id);
CREATE UNIQUE INDEX fastq_active_unique ON fastq_active (unique_key)
  WHERE unique_key IS NOT NULL;
CREATE INDEX fastq_active_workflow ON fastq_active (workflow_id) WHERE workflow_id IS NOT NULL;
CREATE INDEX fastq_active_group ON fastq_active (group_label) WHERE group_label IS NOT NULL;

-- A row given a final state in fastq_active (cancel, rescue, interrupt, settle, an ORM
-- update) moves to the log at the end of its statement. The WHEN clause is evaluated
-- without calling the function: a claim or a renewal never runs it.
CREATE OR REPLACE FUNCTION fastq_active_finish() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM fastq_active WHERE id = NEW.id;
  NEW.finished_at := COALESCE(NEW.finished_at, now());
  INSERT INTO fastq_finished SELECT (NEW).*;
  RETURN NULL;
END $$;
CREATE TRIGGER fastq_active_finish AFTER INSERT OR UPDATE ON fastq_active FOR EACH ROW
  WHEN (NEW.state NOT IN {ACTIVE}) EXECUTE FUNCTION fastq_active_finish();

CREATE VIEW fastq_job AS
  SELECT * FROM fastq_active UNION ALL SELECT * FROM fastq_finished;

DO $$
DECLARE
  c record;
BEGIN
  -- Django inserts DEFAULT for db_default columns: the view gives the table's default.
  FOR c IN SELECT a.attname, pg_get_expr(d.adbin, d.adrelid) AS def
    FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
    WHERE d.adrelid = 'fastq_active'::regclass LOOP
    EXECUTE format('ALTER VIEW fastq_job ALTER COLUMN %I SET DEFAULT %s', c.attname, c.def);
  END LOOP;
END $$;

-- Writes through the view (the ORM, the admin): an INSERT goes to the table its state
-- belongs to; an UPDATE writes only the columns it changed (to the current row, not to
-- the statement's snapshot of it), moving the row when its state crosses between active
-- and finished; a DELETE deletes from the table the row is in.
CREATE OR REPLACE FUNCTION fastq_job_write() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  changed jsonb;
  sets text;
  n bigint;
  r fastq_active;
  was_active boolean;
  is_active boolean;
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.state IN {ACTIVE} THEN
      INSERT INTO fastq_active SELECT (NEW).*;
    ELSE
      NEW.finished_at := COALESCE(NEW.finished_at, now());
      INSERT INTO fastq_finished SELECT (NEW).*;
    END IF;
    RETURN NEW;
  END IF;
  was_active := OLD.state IN {ACTIVE};
  IF TG_OP = 'DELETE' THEN
    IF was_active THEN
      DELETE FROM fastq_active WHERE id = OLD.id;
    ELSE
      DELETE FROM fastq_finished WHERE id = OLD.id;
    END IF;
    IF FOUND THEN
      RETURN OLD;
    END IF;
    RETURN NULL;
  END IF;
  SELECT jsonb_object_agg(e.key, e.value) INTO changed
  FROM jsonb_each(to_jsonb(NEW)) AS e
  WHERE e.value IS DISTINCT FROM to_jsonb(OLD) -> e.key;
  IF changed IS NULL THEN
    RETURN NEW;
  END IF;
  is_active := NEW.state IN {ACTIVE};
  IF was_active = is_active THEN
    SELECT string_agg(format('%I = ($1).%I', k, k), ', ') INTO sets
    FROM jsonb_object_keys(changed) AS k;
    EXECUTE format('UPDATE %I SET %s WHERE id = $2',
      CASE WHEN was_active THEN 'fastq_active' ELSE 'fastq_finished' END, sets)
      USING NEW, OLD.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
      RETURN NULL;
    END IF;
    RETURN NEW;
  END IF;
  IF was_active THEN
    DELETE FROM fastq_active WHERE id = OLD.id RETURNING * INTO r;
  ELSE
    DELETE FROM fastq_finished WHERE id = OLD.id RETURNING * INTO r;
  END IF;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  r := jsonb_populate_record(r, changed);
  IF is_active THEN
    INSERT INTO fastq_active SELECT (r).*;
  ELSE
    r.finished_at := COALESCE(r.finished_at, now());
    INSERT INTO fastq_finished SELECT (r).*;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER fastq_job_write INSTEAD OF INSERT OR UPDATE OR DELETE ON fastq_job
  FOR EACH ROW EXECUTE FUNCTION fastq_job_write();
"""

# Back to one table with migration 0016's indexes.
POSTGRES_REVERSE = r"""
DROP VIEW fastq_job;
DROP FUNCTION fastq_job_write();
DROP TRIGGER fastq_active_finish ON fastq_active;
DROP FUNCTION fastq_active_finish();
DROP INDEX fastq_active_claim, fastq_active_unique, fastq_active_workflow, fastq_active_group;
INSERT INTO fastq_active SELECT * FROM fastq_finished;
DROP TABLE fastq_finished;
DROP FUNCTION fastq_finished_upkeep(int, jsonb);
ALTER TABLE fastq_active RESET (fillfactor);
ALTER TABLE fastq_active RENAME TO fastq_job;
ALTER INDEX fastq_active_pkey RENAME TO fastq_job_pkey;
ALTER TRIGGER fastq_active_notify ON fastq_job RENAME TO fastq_job_notify;
CREATE INDEX fastq_job_claim ON fastq_job (queue, priority DESC, run_at, id)
  WHERE state = 'queued';
CREATE INDEX fastq_job_lease ON fastq_job (lease_expires_at) WHERE state = 'running';
CREATE INDEX fastq_job_state_created ON fastq_job (state, created_at DESC);
CREATE INDEX fastq_job_finished ON fastq_job (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX fastq_job_prune ON fastq_job (state, finished_at, id)
  WHERE finished_at IS NOT NULL;
CREATE INDEX fastq_job_group_label ON fastq_job (group_label) WHERE group_label IS NOT NULL;
CREATE INDEX fastq_job_workflow ON fastq_job (workflow_id) WHERE workflow_id IS NOT NULL;
CREATE UNIQUE INDEX fastq_job_unique_active ON fastq_job (unique_key)
  WHERE state IN ('queued', 'running');
"""

SQLITE_FORWARD = [
    f"CREATE VIEW fastq_active AS SELECT * FROM fastq_job WHERE state IN {ACTIVE}",
    f"CREATE VIEW fastq_finished AS SELECT * FROM fastq_job WHERE state NOT IN {ACTIVE}",
]
SQLITE_REVERSE = ["DROP VIEW fastq_active", "DROP VIEW fastq_finished"]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_FORWARD, None)  # no % interpolation
    else:
        for sql in SQLITE_FORWARD:
            schema_editor.execute(sql)


def reverse(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_REVERSE, None)
    else:
        for sql in SQLITE_REVERSE:
            schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [
        ("fastq_django", "0016_retention"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                # Jobs created through the ORM get the core's time-ordered ids too.
                migrations.AlterField(
                    model_name="job",
                    name="id",
                    field=models.UUIDField(
                        default=fastq_django.models.new_job_uuid,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                migrations.CreateModel(
                    name="ActiveJob",
                    fields=[
                        ("id", models.UUIDField(editable=False, primary_key=True, serialize=False)),
                    ],
                    options={"db_table": "fastq_active", "default_permissions": ()},
                ),
                migrations.CreateModel(
                    name="FinishedJob",
                    fields=[
                        ("id", models.UUIDField(editable=False, primary_key=True, serialize=False)),
                    ],
                    options={"db_table": "fastq_finished", "default_permissions": ()},
                ),
            ],
            database_operations=[migrations.RunPython(forward, reverse)],
        ),
    ]

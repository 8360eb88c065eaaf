// The job table as the Django migration (fastq_django/migrations) creates it, for tests
// that run the drivers without Django. The Django suite checks the drivers against the
// real migration, so a drift between the two fails there.
#pragma once

namespace fastq::testing {

inline constexpr const char* kSqliteSchema = R"sql(
DROP TABLE IF EXISTS fastq_job;
CREATE TABLE fastq_job (
  id char(32) NOT NULL PRIMARY KEY,
  task varchar(255) NOT NULL,
  queue varchar(100) NOT NULL DEFAULT 'default',
  priority smallint NOT NULL DEFAULT 0,
  state varchar(16) NOT NULL DEFAULT 'queued',
  args text NOT NULL DEFAULT '[]',
  kwargs text NOT NULL DEFAULT '{}',
  run_at datetime NOT NULL,
  attempts integer NOT NULL DEFAULT 0,
  max_attempts integer NOT NULL DEFAULT 4,
  lease_token bigint NULL,
  lease_expires_at datetime NULL,
  expires_at datetime NULL,
  cancel_requested bool NOT NULL DEFAULT 0,
  unique_key varchar(255) NULL,
  worker varchar(255) NOT NULL DEFAULT '',
  result text NULL,
  error_type varchar(255) NOT NULL DEFAULT '',
  error text NOT NULL DEFAULT '',
  traceback text NOT NULL DEFAULT '',
  created_at datetime NOT NULL,
  started_at datetime NULL,
  finished_at datetime NULL,
  envelope smallint NOT NULL DEFAULT 1,
  time_limit real NULL,
  soft_time_limit real NULL,
  rate_key varchar(255) NULL,
  interrupted integer NOT NULL DEFAULT 0 CHECK (interrupted >= 0),
  group_label varchar(100) NULL,
  attempt_log text NULL,
  custom_state text NULL,
  workflow_id char(32) NULL,
  parents_pending integer NOT NULL DEFAULT 0,
  pass_results smallint NOT NULL DEFAULT 0,
  on_failure smallint NOT NULL DEFAULT 0
);
CREATE INDEX fastq_job_workflow ON fastq_job (workflow_id) WHERE workflow_id IS NOT NULL;
DROP TABLE IF EXISTS fastq_dependency;
CREATE TABLE fastq_dependency (
  id integer NOT NULL PRIMARY KEY AUTOINCREMENT,
  workflow_id char(32) NOT NULL,
  parent_id char(32) NOT NULL,
  child_id char(32) NOT NULL,
  position integer NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX fastq_dependency_edge ON fastq_dependency (parent_id, child_id);
CREATE INDEX fastq_dependency_child ON fastq_dependency (child_id, position);
DROP TABLE IF EXISTS fastq_rate_limit;
CREATE TABLE fastq_rate_limit (key varchar(255) NOT NULL PRIMARY KEY, tat bigint NOT NULL);
DROP TABLE IF EXISTS fastq_queue;
CREATE TABLE fastq_queue (
  name varchar(100) NOT NULL PRIMARY KEY,
  paused bool NOT NULL DEFAULT 0,
  concurrency integer NULL CHECK (concurrency >= 1 AND concurrency <= 1000000),
  settings_concurrency integer NULL,
  changed_by varchar(150) NOT NULL DEFAULT '',
  updated_at datetime NULL
);
CREATE INDEX fastq_job_claim ON fastq_job (queue, priority DESC, run_at, id) WHERE state = 'queued';
CREATE INDEX fastq_job_lease ON fastq_job (lease_expires_at) WHERE state = 'running';
CREATE INDEX fastq_job_finished ON fastq_job (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX fastq_job_prune ON fastq_job (state, finished_at, id) WHERE finished_at IS NOT NULL;
CREATE UNIQUE INDEX fastq_job_unique_active ON fastq_job (unique_key)
  WHERE state IN ('queued', 'running');
DROP TABLE IF EXISTS fastq_schedule;
CREATE TABLE fastq_schedule (
  id integer NOT NULL PRIMARY KEY AUTOINCREMENT,
  name varchar(200) NOT NULL UNIQUE,
  task varchar(255) NOT NULL,
  args text NOT NULL DEFAULT '[]',
  kwargs text NOT NULL DEFAULT '{}',
  queue varchar(100) NOT NULL DEFAULT '',
  priority smallint NOT NULL DEFAULT 0,
  cron varchar(255) NOT NULL DEFAULT '',
  timezone varchar(64) NOT NULL DEFAULT 'UTC',
  every real NULL,
  enabled bool NOT NULL DEFAULT 1,
  catch_up varchar(8) NOT NULL DEFAULT 'latest',
  max_instances integer NOT NULL DEFAULT 1,
  source varchar(8) NOT NULL DEFAULT 'admin',
  next_run_at datetime NULL,
  last_run_at datetime NULL,
  last_job_id char(32) NULL,
  last_outcome varchar(64) NOT NULL DEFAULT '',
  created_at datetime NULL,
  updated_at datetime NULL
);
DROP TABLE IF EXISTS fastq_schedule_run;
CREATE TABLE fastq_schedule_run (
  id integer NOT NULL PRIMARY KEY AUTOINCREMENT,
  schedule varchar(200) NOT NULL,
  slot datetime NOT NULL,
  job_id char(32) NULL,
  created_at datetime NOT NULL
);
CREATE UNIQUE INDEX fastq_schedule_run_slot ON fastq_schedule_run (schedule, slot);
CREATE INDEX fastq_schedule_run_job ON fastq_schedule_run (job_id) WHERE job_id IS NOT NULL;
DROP TABLE IF EXISTS fastq_leader;
CREATE TABLE fastq_leader (
  name varchar(100) NOT NULL PRIMARY KEY,
  holder varchar(255) NOT NULL,
  lease_expires_at datetime NOT NULL
);
DROP TABLE IF EXISTS fastq_poller_mark;
CREATE TABLE fastq_poller_mark (
  id integer NOT NULL PRIMARY KEY AUTOINCREMENT,
  poller varchar(200) NOT NULL,
  key varchar(255) NOT NULL,
  created_at datetime NOT NULL,
  job_id char(32) NULL
);
CREATE UNIQUE INDEX fastq_poller_mark_key ON fastq_poller_mark (poller, key);
CREATE INDEX fastq_poller_mark_job ON fastq_poller_mark (job_id) WHERE job_id IS NOT NULL;
DROP TABLE IF EXISTS fastq_workflow;
CREATE TABLE fastq_workflow (
  id char(32) NOT NULL PRIMARY KEY,
  root_id char(32) NOT NULL,
  kind varchar(16) NOT NULL,
  name varchar(255) NOT NULL DEFAULT '',
  members text NOT NULL DEFAULT '[]',
  created_at datetime NOT NULL
);
CREATE INDEX fastq_workflow_root ON fastq_workflow (root_id);
DROP TABLE IF EXISTS fastq_worker;
CREATE TABLE fastq_worker (
  id varchar(200) NOT NULL PRIMARY KEY,
  kind varchar(16) NOT NULL,
  supervisor varchar(200) NOT NULL DEFAULT '',
  host varchar(255) NOT NULL,
  pid bigint NOT NULL,
  version varchar(64) NOT NULL DEFAULT '',
  queues text NOT NULL DEFAULT '[]',
  tasks text NOT NULL DEFAULT '[]',
  concurrency integer NOT NULL DEFAULT 0,
  processes integer NOT NULL DEFAULT 0,
  state varchar(16) NOT NULL,
  started_at datetime NOT NULL,
  last_heartbeat datetime NOT NULL,
  expires_at datetime NOT NULL,
  stopped_at datetime NULL,
  processed bigint NOT NULL DEFAULT 0,
  failed bigint NOT NULL DEFAULT 0,
  rss_bytes bigint NOT NULL DEFAULT 0
);
CREATE INDEX fastq_worker_state ON fastq_worker (state, expires_at);
)sql";

inline constexpr const char* kPostgresSchema = R"sql(
DO $$ BEGIN
  IF EXISTS (SELECT 1 FROM pg_class WHERE oid = to_regclass('fastq_job') AND relkind = 'v')
  THEN DROP VIEW fastq_job; END IF;
END $$;
DROP TABLE IF EXISTS fastq_job;
DROP TABLE IF EXISTS fastq_active;
DROP TABLE IF EXISTS fastq_finished;
CREATE TABLE fastq_job (
  id uuid NOT NULL PRIMARY KEY,
  task varchar(255) NOT NULL,
  queue varchar(100) NOT NULL DEFAULT 'default',
  priority smallint NOT NULL DEFAULT 0,
  state varchar(16) NOT NULL DEFAULT 'queued',
  args text NOT NULL DEFAULT '[]',
  kwargs text NOT NULL DEFAULT '{}',
  run_at timestamptz NOT NULL DEFAULT statement_timestamp(),
  attempts integer NOT NULL DEFAULT 0,
  max_attempts integer NOT NULL DEFAULT 4,
  lease_token bigint NULL,
  lease_expires_at timestamptz NULL,
  expires_at timestamptz NULL,
  cancel_requested boolean NOT NULL DEFAULT false,
  unique_key varchar(255) NULL,
  worker varchar(255) NOT NULL DEFAULT '',
  result text NULL,
  error_type varchar(255) NOT NULL DEFAULT '',
  error text NOT NULL DEFAULT '',
  traceback text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT statement_timestamp(),
  started_at timestamptz NULL,
  finished_at timestamptz NULL,
  envelope smallint NOT NULL DEFAULT 1,
  time_limit double precision NULL,
  soft_time_limit double precision NULL,
  rate_key varchar(255) NULL,
  interrupted integer NOT NULL DEFAULT 0 CHECK (interrupted >= 0),
  group_label varchar(100) NULL,
  attempt_log text NULL,
  custom_state text NULL,
  workflow_id uuid NULL,
  parents_pending integer NOT NULL DEFAULT 0,
  pass_results smallint NOT NULL DEFAULT 0,
  on_failure smallint NOT NULL DEFAULT 0
);
CREATE INDEX fastq_job_workflow ON fastq_job (workflow_id) WHERE workflow_id IS NOT NULL;
DROP TABLE IF EXISTS fastq_dependency;
CREATE TABLE fastq_dependency (
  id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  workflow_id uuid NOT NULL,
  parent_id uuid NOT NULL,
  child_id uuid NOT NULL,
  position integer NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX fastq_dependency_edge ON fastq_dependency (parent_id, child_id);
CREATE INDEX fastq_dependency_child ON fastq_dependency (child_id, position);
DROP TABLE IF EXISTS fastq_rate_limit;
CREATE TABLE fastq_rate_limit (key varchar(255) NOT NULL PRIMARY KEY, tat bigint NOT NULL);
DROP TABLE IF EXISTS fastq_queue;
CREATE TABLE fastq_queue (
  name varchar(100) NOT NULL PRIMARY KEY,
  paused boolean NOT NULL DEFAULT false,
  concurrency integer NULL CHECK (concurrency >= 1 AND concurrency <= 1000000),
  settings_concurrency integer NULL,
  changed_by varchar(150) NOT NULL DEFAULT '',
  updated_at timestamptz NULL
);
CREATE INDEX fastq_job_claim ON fastq_job (queue, priority DESC, run_at, id) WHERE state = 'queued';
CREATE INDEX fastq_job_lease ON fastq_job (lease_expires_at) WHERE state = 'running';
CREATE INDEX fastq_job_finished ON fastq_job (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX fastq_job_prune ON fastq_job (state, finished_at, id) WHERE finished_at IS NOT NULL;
CREATE UNIQUE INDEX fastq_job_unique_active ON fastq_job (unique_key)
  WHERE state IN ('queued', 'running');
CREATE OR REPLACE FUNCTION fastq_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('fastq', ''); RETURN NULL; END $$;
CREATE TRIGGER fastq_job_notify AFTER INSERT ON fastq_job
  FOR EACH STATEMENT EXECUTE FUNCTION fastq_notify();
DROP TABLE IF EXISTS fastq_schedule;
CREATE TABLE fastq_schedule (
  id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  name varchar(200) NOT NULL UNIQUE,
  task varchar(255) NOT NULL,
  args text NOT NULL DEFAULT '[]',
  kwargs text NOT NULL DEFAULT '{}',
  queue varchar(100) NOT NULL DEFAULT '',
  priority smallint NOT NULL DEFAULT 0,
  cron varchar(255) NOT NULL DEFAULT '',
  timezone varchar(64) NOT NULL DEFAULT 'UTC',
  every double precision NULL,
  enabled boolean NOT NULL DEFAULT true,
  catch_up varchar(8) NOT NULL DEFAULT 'latest',
  max_instances integer NOT NULL DEFAULT 1,
  source varchar(8) NOT NULL DEFAULT 'admin',
  next_run_at timestamptz NULL,
  last_run_at timestamptz NULL,
  last_job_id uuid NULL,
  last_outcome varchar(64) NOT NULL DEFAULT '',
  created_at timestamptz NULL,
  updated_at timestamptz NULL
);
DROP TABLE IF EXISTS fastq_schedule_run;
CREATE TABLE fastq_schedule_run (
  id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  schedule varchar(200) NOT NULL,
  slot timestamptz NOT NULL,
  job_id uuid NULL,
  created_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX fastq_schedule_run_slot ON fastq_schedule_run (schedule, slot);
CREATE INDEX fastq_schedule_run_job ON fastq_schedule_run (job_id) WHERE job_id IS NOT NULL;
DROP TABLE IF EXISTS fastq_leader;
CREATE TABLE fastq_leader (
  name varchar(100) NOT NULL PRIMARY KEY,
  holder varchar(255) NOT NULL,
  lease_expires_at timestamptz NOT NULL
);
DROP TABLE IF EXISTS fastq_poller_mark;
CREATE TABLE fastq_poller_mark (
  id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  poller varchar(200) NOT NULL,
  key varchar(255) NOT NULL,
  created_at timestamptz NOT NULL,
  job_id uuid NULL
);
CREATE UNIQUE INDEX fastq_poller_mark_key ON fastq_poller_mark (poller, key);
CREATE INDEX fastq_poller_mark_job ON fastq_poller_mark (job_id) WHERE job_id IS NOT NULL;
DROP TABLE IF EXISTS fastq_workflow;
CREATE TABLE fastq_workflow (
  id uuid NOT NULL PRIMARY KEY,
  root_id uuid NOT NULL,
  kind varchar(16) NOT NULL,
  name varchar(255) NOT NULL DEFAULT '',
  members text NOT NULL DEFAULT '[]',
  created_at timestamptz NOT NULL DEFAULT statement_timestamp()
);
CREATE INDEX fastq_workflow_root ON fastq_workflow (root_id);
DROP TABLE IF EXISTS fastq_worker;
CREATE TABLE fastq_worker (
  id varchar(200) NOT NULL PRIMARY KEY,
  kind varchar(16) NOT NULL,
  supervisor varchar(200) NOT NULL DEFAULT '',
  host varchar(255) NOT NULL,
  pid bigint NOT NULL,
  version varchar(64) NOT NULL DEFAULT '',
  queues text NOT NULL DEFAULT '[]',
  tasks text NOT NULL DEFAULT '[]',
  concurrency integer NOT NULL DEFAULT 0,
  processes integer NOT NULL DEFAULT 0,
  state varchar(16) NOT NULL,
  started_at timestamptz NOT NULL,
  last_heartbeat timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  stopped_at timestamptz NULL,
  processed bigint NOT NULL DEFAULT 0,
  failed bigint NOT NULL DEFAULT 0,
  rss_bytes bigint NOT NULL DEFAULT 0
);
CREATE INDEX fastq_worker_state ON fastq_worker (state, expires_at);
-- Migration 0017 (the job store): fastq_job becomes fastq_active + fastq_finished and a
-- view over both. A copy of its SQL; the Django suites run the real migration.
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
    CHECK (state NOT IN ('queued', 'running', 'waiting'));
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

DO $$
DECLARE
  before bigint;
  moved bigint;
BEGIN
  SELECT count(*) INTO before FROM fastq_active;
  PERFORM fastq_finished_upkeep(7, NULL);
  UPDATE fastq_active SET finished_at = COALESCE(finished_at, created_at)
    WHERE state NOT IN ('queued', 'running', 'waiting') AND finished_at IS NULL;
  INSERT INTO fastq_finished SELECT * FROM fastq_active WHERE state NOT IN ('queued', 'running', 'waiting');
  GET DIAGNOSTICS moved = ROW_COUNT;
  DELETE FROM fastq_active WHERE state NOT IN ('queued', 'running', 'waiting');
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
  WHEN (NEW.state NOT IN ('queued', 'running', 'waiting')) EXECUTE FUNCTION fastq_active_finish();

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
    IF NEW.state IN ('queued', 'running', 'waiting') THEN
      INSERT INTO fastq_active SELECT (NEW).*;
    ELSE
      NEW.finished_at := COALESCE(NEW.finished_at, now());
      INSERT INTO fastq_finished SELECT (NEW).*;
    END IF;
    RETURN NEW;
  END IF;
  was_active := OLD.state IN ('queued', 'running', 'waiting');
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
  is_active := NEW.state IN ('queued', 'running', 'waiting');
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
-- Migration 0018 (the log's partitions sized to the retention). A copy of its SQL.
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
)sql";

}  // namespace fastq::testing

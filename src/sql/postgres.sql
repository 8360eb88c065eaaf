-- fastq's statements for PostgreSQL, one per name. Compiled into the core at build time
-- (cmake/embed_sql.cmake) and looked up with fastq::sql::statement(Dialect::kPostgres,
-- "name"). A block runs from its "-- name:" line to the next one; comment lines are
-- dropped. Parameters are $1, $2, ... (libpq, unnamed or prepared).

-- name: enqueue_jobs
-- New jobs, one JSON array parameter ($1) expanded by json_to_recordset: one statement
-- for any batch size. Jobs holding a unique key that a queued-or-running job already
-- holds are skipped; the ids written come back. $2 is the envelope version.
INSERT INTO fastq_job (id, task, queue, priority, state, args, kwargs, run_at, attempts,
  max_attempts, expires_at, cancel_requested, unique_key, worker, error_type, error,
  traceback, created_at, envelope, time_limit, soft_time_limit, rate_key)
SELECT id, task, queue, priority, 'queued', args, kwargs,
  COALESCE(to_timestamp(run_at_us / 1e6), now()), 0, max_attempts,
  to_timestamp(expires_at_us / 1e6), false, unique_key, '', '', '', '', now(), $2::int,
  time_limit, soft_time_limit, rate_key
FROM json_to_recordset($1::json) AS x(id uuid, task text, queue text, priority int,
  args text, kwargs text, run_at_us bigint, max_attempts int, expires_at_us bigint,
  unique_key text, time_limit float8, soft_time_limit float8, rate_key text)
ON CONFLICT (unique_key) WHERE state IN ('queued', 'running') DO NOTHING
RETURNING id

-- name: unique_holders
-- The queued-or-running job holding each of the unique keys in $1 (a text array).
SELECT unique_key, id FROM fastq_job
WHERE unique_key = ANY($1::text[]) AND state IN ('queued', 'running')

-- name: cancel_job
-- Cancels job $1 unless it is a workflow step: queued or waiting, at once ($2, $3: error
-- type and message); running, asked to stop. Counts: cancelled, asked, rows with that
-- id, queued or waiting workflow steps with that id (left alone here: cancel_step).
WITH q AS (UPDATE fastq_job SET state = 'cancelled', finished_at = now(),
    error_type = $2, error = $3
  WHERE id = $1 AND state IN ('queued', 'waiting') AND workflow_id IS NULL RETURNING 1),
r AS (UPDATE fastq_job SET cancel_requested = true
  WHERE id = $1 AND state = 'running' RETURNING 1)
SELECT (SELECT count(*) FROM q), (SELECT count(*) FROM r),
  (SELECT count(*) FROM fastq_job WHERE id = $1),
  (SELECT count(*) FROM fastq_job WHERE id = $1 AND state IN ('queued', 'waiting')
    AND workflow_id IS NOT NULL)

-- name: cancel_step
-- Cancels workflow step $1 if it is queued or waiting ($2, $3: error type and message);
-- the driver settles its dependents in the same transaction (workflow.hpp).
UPDATE fastq_job SET state = 'cancelled', finished_at = now(), error_type = $2, error = $3
WHERE id = $1 AND state IN ('queued', 'waiting') AND workflow_id IS NOT NULL
RETURNING id

-- name: cancel_workflow
-- Cancels every unfinished step of workflow $1: queued or waiting ones at once ($2, $3:
-- error type and message), running ones asked to stop. One count: both.
WITH q AS (UPDATE fastq_job SET state = 'cancelled', finished_at = now(),
    error_type = $2, error = $3
  WHERE workflow_id = $1 AND state IN ('queued', 'waiting') RETURNING 1),
r AS (UPDATE fastq_job SET cancel_requested = true
  WHERE workflow_id = $1 AND state = 'running' RETURNING 1)
SELECT (SELECT count(*) FROM q) + (SELECT count(*) FROM r)

-- name: get_job
-- One job as read back for its status and result (AsyncResult, tests).
SELECT id, task, queue, state, priority, attempts, args, kwargs, result, error_type,
  error, traceback, max_attempts, cancel_requested,
  (extract(epoch FROM started_at) * 1000000)::bigint, interrupted, workflow_id,
  parents_pending
FROM fastq_job WHERE id = $1

-- workflow operations

-- name: enqueue_workflow_jobs
-- A workflow's steps, one JSON array parameter ($1) as for enqueue_jobs plus each step's
-- workflow_id, pending (its number of parents: a step with parents starts waiting), pass
-- and on_failure (workflow.hpp). Steps hold no unique key. $2 is the envelope version.
INSERT INTO fastq_job (id, task, queue, priority, state, args, kwargs, run_at, attempts,
  max_attempts, expires_at, cancel_requested, unique_key, worker, error_type, error,
  traceback, created_at, envelope, time_limit, soft_time_limit, rate_key, workflow_id,
  parents_pending, pass_results, on_failure)
SELECT id, task, queue, priority, CASE WHEN pending > 0 THEN 'waiting' ELSE 'queued' END,
  args, kwargs, COALESCE(to_timestamp(run_at_us / 1e6), now()), 0, max_attempts,
  to_timestamp(expires_at_us / 1e6), false, NULL, '', '', '', '', now(), $2::int,
  time_limit, soft_time_limit, rate_key, workflow_id, pending, pass, on_failure
FROM json_to_recordset($1::json) AS x(id uuid, task text, queue text, priority int,
  args text, kwargs text, run_at_us bigint, max_attempts int, expires_at_us bigint,
  time_limit float8, soft_time_limit float8, rate_key text, workflow_id uuid, pending int,
  pass smallint, on_failure smallint)

-- name: enqueue_workflow_dependencies
-- A workflow's edges, one JSON array ($1) of {w: workflow, p: parent, c: child, n:
-- position}.
INSERT INTO fastq_dependency (workflow_id, parent_id, child_id, position)
SELECT w, p, c, n FROM json_to_recordset($1::json) AS x(w uuid, p uuid, c uuid, n int)

-- name: enqueue_workflow_records
-- A workflow's records (GroupResult.restore(), the admin), one JSON array ($1) of {id,
-- root_id, kind, name, members: JSON text of the member job ids}.
INSERT INTO fastq_workflow (id, root_id, kind, name, members, created_at)
SELECT id, root_id, kind, name, members, now()
FROM json_to_recordset($1::json) AS x(id uuid, root_id uuid, kind text, name text,
  members text)

-- name: retry_jobs
-- Queues again those of the jobs $1 (a uuid array) that ended unsuccessfully (failed,
-- dead, expired, cancelled): attempts, result, error, lease, expiry and cancel cleared,
-- run_at now. Wakes workers when it queued any (no trigger fires on UPDATE). One count.
WITH r AS (UPDATE fastq_job SET state = 'queued', attempts = 0, result = NULL,
    error_type = '', error = '', traceback = '', run_at = now(), started_at = NULL,
    finished_at = NULL, lease_token = NULL, lease_expires_at = NULL, expires_at = NULL,
    cancel_requested = false, worker = ''
  WHERE id = ANY($1::uuid[]) AND state IN ('failed', 'dead', 'expired', 'cancelled')
  RETURNING 1)
SELECT n, CASE WHEN n > 0 THEN pg_notify('fastq', 'retry') END
FROM (SELECT count(*) AS n FROM r) AS c

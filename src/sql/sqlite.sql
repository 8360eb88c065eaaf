-- fastq's statements for SQLite, one per name. Compiled into the core at build time
-- (cmake/embed_sql.cmake) and looked up with fastq::sql::statement(Dialect::kSqlite,
-- "name"). A block runs from its "-- name:" line to the next one; comment lines are
-- dropped. Parameters are ?1, ?2, ... (the sqlite3 C API and Python's sqlite3 module
-- both bind them by position). Ids are stored as 32 hex digits and times as
-- 'YYYY-MM-DD HH:MM:SS.ffffff' UTC text, as Django stores them.

-- name: enqueue_job
-- One new job; a job holding a unique key that a queued-or-running job already holds
-- is skipped (no row comes back). ?15 is the envelope version.
INSERT INTO fastq_job (id, task, queue, priority, state, args, kwargs, run_at, attempts,
  max_attempts, expires_at, cancel_requested, unique_key, worker, error_type, error,
  traceback, created_at, envelope, time_limit, soft_time_limit, rate_key)
VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?6, ?7, 0, ?8, ?9, 0, ?10, '', '', '', '', ?11, ?15,
  ?12, ?13, ?14)
ON CONFLICT (unique_key) WHERE state IN ('queued', 'running') DO NOTHING
RETURNING id

-- name: enqueue_batch
-- The jobs of task.map() (no unique keys), one JSON array parameter (?1) expanded by
-- json_each: one statement for any batch size. ?2 is now (created_at, and run_at for a
-- job without one), ?3 the envelope version.
INSERT INTO fastq_job (id, task, queue, priority, state, args, kwargs, run_at, attempts,
  max_attempts, expires_at, cancel_requested, unique_key, worker, error_type, error,
  traceback, created_at, envelope, time_limit, soft_time_limit, rate_key)
SELECT json_extract(value, '$.id'), json_extract(value, '$.task'),
  json_extract(value, '$.queue'), json_extract(value, '$.priority'), 'queued',
  json_extract(value, '$.args'), json_extract(value, '$.kwargs'),
  COALESCE(json_extract(value, '$.run_at'), ?2), 0, json_extract(value, '$.max_attempts'),
  json_extract(value, '$.expires_at'), 0, json_extract(value, '$.unique_key'), '', '', '',
  '', ?2, ?3, json_extract(value, '$.time_limit'), json_extract(value, '$.soft_time_limit'),
  json_extract(value, '$.rate_key')
FROM json_each(?1)

-- name: unique_holders
-- The queued-or-running job holding each of the unique keys in ?1 (a JSON array).
SELECT unique_key, id FROM fastq_job
WHERE state IN ('queued', 'running') AND unique_key IN (SELECT value FROM json_each(?1))

-- name: cancel_job
-- Cancels job ?1 if it is queued or waiting and not a workflow step (?2: now, ?3, ?4:
-- error type and message); returns its id if it did.
UPDATE fastq_job SET state = 'cancelled', finished_at = ?2, error_type = ?3, error = ?4
WHERE id = ?1 AND state IN ('queued', 'waiting') AND workflow_id IS NULL
RETURNING id

-- name: cancel_running
-- Asks running job ?1 to stop; returns its id if it was running.
UPDATE fastq_job SET cancel_requested = 1 WHERE id = ?1 AND state = 'running'
RETURNING id

-- name: job_is_step
-- For job ?1 (no row: no such job): whether it is a queued or waiting workflow step.
SELECT state IN ('queued', 'waiting') AND workflow_id IS NOT NULL FROM fastq_job
WHERE id = ?1

-- name: cancel_step
-- Cancels workflow step ?1 if it is queued or waiting (?2: now, ?3, ?4: error type and
-- message); the row comes back as a finished step (id, state, is a step, error_type,
-- error) for the driver to settle its dependents in the same transaction.
UPDATE fastq_job SET state = 'cancelled', finished_at = ?2, error_type = ?3, error = ?4
WHERE id = ?1 AND state IN ('queued', 'waiting') AND workflow_id IS NOT NULL
RETURNING fastq_job.id, fastq_job.state, fastq_job.workflow_id IS NOT NULL,
  fastq_job.error_type, fastq_job.error

-- name: cancel_workflow_queued
-- Cancels the queued and waiting steps of workflow ?1 (?2: now, ?3, ?4: error type and
-- message); a row per step cancelled.
UPDATE fastq_job SET state = 'cancelled', finished_at = ?2, error_type = ?3, error = ?4
WHERE workflow_id = ?1 AND state IN ('queued', 'waiting')
RETURNING id

-- name: cancel_workflow_running
-- Asks the running steps of workflow ?1 to stop; a row per step asked.
UPDATE fastq_job SET cancel_requested = 1 WHERE workflow_id = ?1 AND state = 'running'
RETURNING id

-- name: get_job
-- One job as read back for its status and result (AsyncResult, tests).
SELECT id, task, queue, state, priority, attempts, args, kwargs, result, error_type,
  error, traceback, max_attempts, cancel_requested, started_at, interrupted, workflow_id,
  parents_pending
FROM fastq_job WHERE id = ?1

-- workflow operations

-- name: enqueue_workflow_jobs
-- A workflow's steps, one JSON array parameter (?1) as for enqueue_batch plus each step's
-- workflow_id, pending (its number of parents: a step with parents starts waiting), pass
-- and on_failure (workflow.hpp). Steps hold no unique key. ?2 is now (created_at, and
-- run_at for a step without one), ?3 the envelope version.
INSERT INTO fastq_job (id, task, queue, priority, state, args, kwargs, run_at, attempts,
  max_attempts, expires_at, cancel_requested, unique_key, worker, error_type, error,
  traceback, created_at, envelope, time_limit, soft_time_limit, rate_key, workflow_id,
  parents_pending, pass_results, on_failure)
SELECT json_extract(value, '$.id'), json_extract(value, '$.task'),
  json_extract(value, '$.queue'), json_extract(value, '$.priority'),
  CASE WHEN json_extract(value, '$.pending') > 0 THEN 'waiting' ELSE 'queued' END,
  json_extract(value, '$.args'), json_extract(value, '$.kwargs'),
  COALESCE(json_extract(value, '$.run_at'), ?2), 0, json_extract(value, '$.max_attempts'),
  json_extract(value, '$.expires_at'), 0, NULL, '', '', '', '', ?2, ?3,
  json_extract(value, '$.time_limit'), json_extract(value, '$.soft_time_limit'),
  json_extract(value, '$.rate_key'), json_extract(value, '$.workflow_id'),
  json_extract(value, '$.pending'), json_extract(value, '$.pass'),
  json_extract(value, '$.on_failure')
FROM json_each(?1)

-- name: enqueue_workflow_dependencies
-- A workflow's edges, one JSON array (?1) of {w: workflow, p: parent, c: child, n:
-- position}, ids as 32 hex digits.
INSERT INTO fastq_dependency (workflow_id, parent_id, child_id, position)
SELECT json_extract(value, '$.w'), json_extract(value, '$.p'), json_extract(value, '$.c'),
  json_extract(value, '$.n')
FROM json_each(?1)

-- name: enqueue_workflow_records
-- A workflow's records (GroupResult.restore(), the admin), one JSON array (?1) of {id,
-- root_id, kind, name, members: JSON text of the member job ids}; ?2 is now.
INSERT INTO fastq_workflow (id, root_id, kind, name, members, created_at)
SELECT json_extract(value, '$.id'), json_extract(value, '$.root_id'),
  json_extract(value, '$.kind'), json_extract(value, '$.name'),
  json_extract(value, '$.members'), ?2
FROM json_each(?1)

-- name: retry_jobs
-- Queues again those of the jobs ?1 (a JSON array of ids) that ended unsuccessfully
-- (failed, dead, expired, cancelled): attempts, result, error, lease, expiry and cancel
-- cleared, run_at now (?2). A row per job queued.
UPDATE fastq_job SET state = 'queued', attempts = 0, result = NULL, error_type = '',
  error = '', traceback = '', run_at = ?2, started_at = NULL, finished_at = NULL,
  lease_token = NULL, lease_expires_at = NULL, expires_at = NULL, cancel_requested = 0,
  worker = ''
WHERE id IN (SELECT value FROM json_each(?1))
  AND state IN ('failed', 'dead', 'expired', 'cancelled')
RETURNING id

-- fastq's statements for SQLite, one per name. Compiled into the core at build time
-- (cmake/embed_sql.cmake) and looked up with fastq::sql::statement(Dialect::kSqlite,
-- "name"). A block runs from its "-- name:" line to the next one; comment lines are
-- dropped. Parameters are ?1, ?2, ... (the sqlite3 C API and Python's sqlite3 module
-- both bind them by position). Ids are stored as 32 hex digits and times as
-- 'YYYY-MM-DD HH:MM:SS.ffffff' UTC text, as Django stores them.

-- name: enqueue_job
-- One new job; a job holding a unique key that a queued-or-running job already holds
-- is skipped (no row comes back). ?15 is the envelope version, ?16 the group label.
INSERT INTO fastq_job (id, task, queue, priority, state, args, kwargs, run_at, attempts,
  max_attempts, expires_at, cancel_requested, unique_key, worker, error_type, error,
  traceback, created_at, envelope, time_limit, soft_time_limit, rate_key, group_label)
VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?6, ?7, 0, ?8, ?9, 0, ?10, '', '', '', '', ?11, ?15,
  ?12, ?13, ?14, ?16)
ON CONFLICT (unique_key) WHERE state IN ('queued', 'running') DO NOTHING
RETURNING id

-- name: enqueue_batch
-- The jobs of task.map() (no unique keys), one JSON array parameter (?1) expanded by
-- json_each: one statement for any batch size. ?2 is now (created_at, and run_at for a
-- job without one), ?3 the envelope version.
INSERT INTO fastq_job (id, task, queue, priority, state, args, kwargs, run_at, attempts,
  max_attempts, expires_at, cancel_requested, unique_key, worker, error_type, error,
  traceback, created_at, envelope, time_limit, soft_time_limit, rate_key, group_label)
SELECT json_extract(value, '$.id'), json_extract(value, '$.task'),
  json_extract(value, '$.queue'), json_extract(value, '$.priority'), 'queued',
  json_extract(value, '$.args'), json_extract(value, '$.kwargs'),
  COALESCE(json_extract(value, '$.run_at'), ?2), 0, json_extract(value, '$.max_attempts'),
  json_extract(value, '$.expires_at'), 0, json_extract(value, '$.unique_key'), '', '', '',
  '', ?2, ?3, json_extract(value, '$.time_limit'), json_extract(value, '$.soft_time_limit'),
  json_extract(value, '$.rate_key'), json_extract(value, '$.group_label')
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

-- name: renew
-- Extends the leases of the jobs in ?1 (JSON array of {id, token}) to ?2; the ids
-- renewed and whether each was asked to stop.
UPDATE fastq_job
SET lease_expires_at = ?2
FROM (SELECT value->>'id' AS id, value->>'token' AS token FROM json_each(?1)) AS v
WHERE fastq_job.id = v.id AND fastq_job.lease_token = v.token
RETURNING fastq_job.id, fastq_job.cancel_requested

-- name: release
-- Hands the jobs in ?1 (JSON array of {id, token}) back to the queue unspent (an attempt
-- returned).
UPDATE fastq_job
SET state = 'queued', attempts = max(attempts - 1, 0), lease_token = NULL,
  lease_expires_at = NULL, started_at = NULL, worker = ''
FROM (SELECT value->>'id' AS id, value->>'token' AS token FROM json_each(?1)) AS v
WHERE fastq_job.id = v.id AND fastq_job.lease_token = v.token

-- name: mark_started
-- Records when the running jobs in ?1 (JSON array of {id, token, at}) started, never
-- later than now (?2); only where not recorded yet.
UPDATE fastq_job
SET started_at = min(v.at, ?2)
FROM (SELECT value->>'id' AS id, value->>'token' AS token, value->>'at' AS at FROM
  json_each(?1)) AS v
WHERE fastq_job.id = v.id AND fastq_job.lease_token = v.token AND fastq_job.state =
  'running' AND fastq_job.started_at IS NULL

-- name: release_claim
-- Hands every running job claimed with lease token ?1 back to the queue unspent.
UPDATE fastq_job
SET state = 'queued', attempts = max(attempts - 1, 0), lease_token = NULL,
  lease_expires_at = NULL, started_at = NULL, worker = ''
WHERE state = 'running' AND lease_token = ?1

-- name: defer
-- Sends the jobs in ?1 (JSON array of {id, token, run_at}) back to the queue to run at
-- run_at, the attempt returned.
UPDATE fastq_job
SET state = 'queued', attempts = max(attempts - 1, 0), run_at = v.run_at, lease_token =
  NULL, lease_expires_at = NULL, started_at = NULL, worker = ''
FROM (SELECT value->>'id' AS id, value->>'token' AS token, value->>'run_at' AS run_at
  FROM json_each(?1)) AS v
WHERE fastq_job.id = v.id AND fastq_job.lease_token = v.token

-- name: poller_mark
-- Poller scope ?1 records the keys in ?2 (a JSON array) at ?3 with their alert jobs ?4
-- (a JSON array, same order); the keys newly recorded.
INSERT INTO fastq_poller_mark (poller, key, created_at, job_id)
SELECT ?1, k.value, ?3, j.value
FROM json_each(?2) AS k JOIN json_each(?4) AS j ON j.key = k.key
WHERE true
ON CONFLICT (poller, key) DO NOTHING
RETURNING key

-- name: rate_ins
-- Creates rate limit bucket ?1 at tat 0 unless it exists.
INSERT OR IGNORE INTO fastq_rate_limit (key, tat)
VALUES (?1, 0)

-- name: rate_get
-- Bucket ?1's theoretical arrival time (microseconds).
SELECT tat
FROM fastq_rate_limit
WHERE key = ?1

-- name: rate_set
-- Writes bucket ?1's theoretical arrival time ?2 (microseconds).
UPDATE fastq_rate_limit
SET tat = ?2
WHERE key = ?1

-- name: hold_lease
-- Takes or renews leader lease ?1 for holder ?2 until ?4, if free, expired at ?3 (now)
-- or already ?2's; the holder after the write (no row: another holds it).
INSERT INTO fastq_leader (name, holder, lease_expires_at)
VALUES (?1, ?2, ?4)
ON CONFLICT (name) DO UPDATE
SET holder = excluded.holder, lease_expires_at = excluded.lease_expires_at
WHERE fastq_leader.holder = excluded.holder OR fastq_leader.lease_expires_at < ?3
RETURNING holder

-- name: drop_lease
-- Gives up leader lease ?1 if holder ?2 holds it.
DELETE FROM fastq_leader
WHERE name = ?1 AND holder = ?2

-- name: load_schedules
-- Every enabled schedule, by name.
SELECT name, task, args, kwargs, queue, priority, cron, timezone, coalesce(every, 0),
  catch_up, max_instances, next_run_at
FROM fastq_schedule
WHERE enabled
ORDER BY name

-- name: fire_leader
-- Whether holder ?2 holds leader lease ?1 unexpired at ?3 (now).
SELECT count(*)
FROM fastq_leader
WHERE name = ?1 AND holder = ?2 AND lease_expires_at > ?3

-- name: fire_cas
-- Advances schedule ?1 to next_run_at ?2 if its next_run_at still is ?3 (NULL: never
-- fired), compared as instants (Django writes whole seconds without a fraction).
UPDATE fastq_schedule
SET next_run_at = ?2
WHERE name = ?1 AND enabled AND ((?3 IS NULL AND next_run_at IS NULL) OR
  julianday(next_run_at) = julianday(?3))

-- name: fire_active
-- How many of schedule ?1's recent jobs (its last 100 slots) are queued or running:
-- max_instances.
SELECT count(*)
FROM fastq_job
WHERE state IN ('queued', 'running') AND id IN (SELECT job_id FROM fastq_schedule_run
  WHERE schedule = ?1 AND job_id IS NOT NULL ORDER BY slot DESC LIMIT 100)

-- name: fire_slot
-- Records slot ?2 of schedule ?1 with job ?3 (NULL: skipped) at ?4; no row written if
-- that slot already fired.
INSERT INTO fastq_schedule_run (schedule, slot, job_id, created_at)
VALUES (?1, ?2, ?3, ?4)
ON CONFLICT (schedule, slot) DO NOTHING

-- name: fire_outcome
-- Sets schedule ?1's last outcome to ?2.
UPDATE fastq_schedule
SET last_outcome = ?2
WHERE name = ?1

-- name: fire_ran
-- Records that schedule ?1 enqueued job ?3 at ?2.
UPDATE fastq_schedule
SET last_run_at = ?2, last_job_id = ?3, last_outcome = 'queued'
WHERE name = ?1

-- name: prune_runs
-- Deletes the schedule slots before ?1.
DELETE FROM fastq_schedule_run
WHERE slot < ?1

-- name: prune_job
-- Deletes job ?1 (retention).
DELETE FROM fastq_job
WHERE id = ?1

-- name: prune_edges_out
-- Deletes the workflow edges from parent ?1 (retention).
DELETE FROM fastq_dependency
WHERE parent_id = ?1

-- name: prune_edges_in
-- Deletes the workflow edges into child ?1 (retention).
DELETE FROM fastq_dependency
WHERE child_id = ?1

-- name: prune_workflow
-- Deletes workflow ?1's row if no step of it is left (retention).
DELETE FROM fastq_workflow
WHERE root_id = ?1 AND NOT EXISTS (SELECT 1 FROM fastq_job WHERE workflow_id = ?1)

-- name: beat_worker
-- A worker registry heartbeat: ?1..?10 the row's id, kind, supervisor, host, pid,
-- version, queues, tasks, concurrency, processes; ?11 now, ?12 the lease's end; ?13..?15
-- processed, failed, rss_bytes. A stopped row stays stopped.
INSERT INTO fastq_worker (id, kind, supervisor, host, pid, version, queues, tasks,
  concurrency, processes, state, started_at, last_heartbeat, expires_at, stopped_at,
  processed, failed, rss_bytes)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'running', ?11, ?11, ?12, NULL, ?13,
  ?14, ?15)
ON CONFLICT (id) DO UPDATE
SET state = 'running', last_heartbeat = excluded.last_heartbeat, expires_at =
  excluded.expires_at, processed = excluded.processed, failed = excluded.failed,
  rss_bytes = excluded.rss_bytes, queues = excluded.queues, tasks = excluded.tasks,
  concurrency = excluded.concurrency, processes = excluded.processes
WHERE fastq_worker.state <> 'stopped'

-- name: stop_worker
-- A worker registry row marked stopped at ?11 (now): ?1..?10 and ?13..?15 as
-- beat_worker.
INSERT INTO fastq_worker (id, kind, supervisor, host, pid, version, queues, tasks,
  concurrency, processes, state, started_at, last_heartbeat, expires_at, stopped_at,
  processed, failed, rss_bytes)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'stopped', ?11, ?11, ?11, ?11, ?13,
  ?14, ?15)
ON CONFLICT (id) DO UPDATE
SET state = 'stopped', last_heartbeat = excluded.last_heartbeat, expires_at =
  excluded.expires_at, stopped_at = excluded.stopped_at, processed = excluded.processed,
  failed = excluded.failed, rss_bytes = excluded.rss_bytes

-- name: reap_workers_lost
-- Marks running registry rows expired before ?1 (now) as lost.
UPDATE fastq_worker
SET state = 'lost'
WHERE state = 'running' AND expires_at < ?1

-- name: reap_workers_gone
-- Deletes stopped or lost registry rows silent since before ?1.
DELETE FROM fastq_worker
WHERE state <> 'running' AND last_heartbeat < ?1

-- name: workers
-- Every worker registry row.
SELECT id, kind, supervisor, host, pid, version, queues, tasks, concurrency, processes,
  state, started_at, last_heartbeat, expires_at, stopped_at, processed, failed,
  rss_bytes
FROM fastq_worker
ORDER BY id

-- name: count_runnable
-- How many jobs of the queues in ?1 (a JSON array) are runnable at ?2 (now), paused
-- queues left out.
SELECT count(*)
FROM fastq_job
WHERE state = 'queued' AND run_at <= ?2 AND queue IN (SELECT value FROM json_each(?1))
  AND queue NOT IN (SELECT name FROM fastq_queue WHERE paused)

-- name: paused_queues
-- Which of the queues in ?1 (a JSON array) are paused.
SELECT name
FROM fastq_queue
WHERE paused AND name IN (SELECT value FROM json_each(?1))

-- name: settle_load
-- The waiting children of the workflow steps in ?1 (a JSON array of ids) with their
-- edges.
SELECT d.parent_id, d.child_id, d.position, c.parents_pending, c.pass_results,
  c.on_failure, c.args
FROM fastq_dependency d JOIN fastq_job c ON c.id = d.child_id
WHERE d.parent_id IN (SELECT value FROM json_each(?1)) AND c.state = 'waiting'
ORDER BY d.child_id, d.position

-- name: settle_parents
-- Every parent of the children in ?1 (a JSON array of ids), with its state and outcome,
-- in edge order.
SELECT d.child_id, p.id, p.state, p.result, p.error_type, p.error
FROM fastq_dependency d JOIN fastq_job p ON p.id = d.parent_id
WHERE d.child_id IN (SELECT value FROM json_each(?1))
ORDER BY d.child_id, d.position

-- name: settle_write
-- Writes one settle decision to waiting child ?1: parents pending ?2, state ?3, args ?4,
-- error type ?5 and message ?6, finished_at ?7 (cancelled only).
UPDATE fastq_job
SET parents_pending = ?2, state = ?3, args = ?4, error_type = ?5, error = ?6,
  finished_at = ?7
WHERE id = ?1 AND state = 'waiting'

-- name: data_version
-- Changes whenever another connection commits to the database: an idle claim skips the
-- write lock while it stays put.
PRAGMA data_version

-- name: claim
-- Claims up to ?5 runnable jobs at ?1 (now) for worker ?4 under lease token ?3, leased
-- until ?2; ?6 is the attempts ceiling (kAttemptsCeiling). A template: {branches} is one
-- claim_branch per queue claimed from, joined by UNION ALL, each queue a parameter from
-- ?7 on. The statement holds SQLite's write lock from its first read, so the count of a
-- limited queue's running jobs and the claim are one step for every process on the
-- database.
UPDATE fastq_job SET state = 'running',
  attempts = CASE WHEN attempts < ?6 THEN attempts + 1 ELSE attempts END,
  lease_token = ?3, lease_expires_at = ?2, started_at = NULL, worker = ?4
WHERE id IN (SELECT id FROM ({branches}) ORDER BY priority DESC, run_at, id LIMIT ?5)
RETURNING id, task, queue, args, kwargs, priority, attempts, max_attempts,
  expires_at IS NOT NULL AND expires_at < ?1, cancel_requested, envelope,
  coalesce(time_limit, 0), coalesce(soft_time_limit, 0), coalesce(rate_key, '')

-- name: claim_branch
-- One queue's part of claim: one index range scan (index: queue, priority DESC, run_at,
-- id) of queue {queue} (a parameter, ?7 on), taking at most the queue's room: none when
-- paused (fastq_queue), its concurrency minus its jobs running under a live lease when
-- limited, else the whole limit ?5.
SELECT * FROM (SELECT id, priority, run_at FROM fastq_job
  WHERE state = 'queued' AND queue = {queue} AND run_at <= ?1
  ORDER BY priority DESC, run_at, id
  LIMIT coalesce((SELECT CASE WHEN s.paused THEN 0 WHEN s.concurrency IS NULL THEN ?5
    ELSE max(0, min(?5, s.concurrency - (SELECT count(*) FROM fastq_job r
    WHERE r.state = 'running' AND r.queue = {queue} AND r.lease_expires_at > ?1))) END
    FROM fastq_queue s WHERE s.name = {queue}), ?5))

-- name: quarantine_candidates
-- The next claimable rows of the queues in ?1 (a JSON array) at ?2 (now), at most ?3,
-- each with the values a claim checks, for quarantine() to try one by one.
SELECT id, 'attempts=' || attempts || ' max_attempts=' || max_attempts || ' priority=' ||
  priority || ' time_limit=' || coalesce(time_limit, 'NULL') || ' soft_time_limit=' ||
  coalesce(soft_time_limit, 'NULL')
FROM fastq_job
WHERE state = 'queued' AND queue IN (SELECT value FROM json_each(?1)) AND run_at <= ?2
ORDER BY priority DESC, run_at, id LIMIT ?3

-- name: quarantine_try
-- The write a claim makes, tried on queued job ?1 alone (and rolled back): the error it
-- raises, if any, says why no claim can take the row. ?2 is the attempts ceiling.
UPDATE fastq_job SET state = 'running',
  attempts = CASE WHEN attempts < ?2 THEN attempts + 1 ELSE attempts END, lease_token = 0
WHERE id = ?1

-- name: quarantine_end
-- Ends queued job ?1 as dead at ?3 (now) with reason ?2 and error type ?4
-- (kInvalidJobType), its columns brought within the table's CHECK constraints: ?5 is the
-- attempts ceiling, ?6 the max_attempts limit. The row comes back as a finished step (id,
-- state, is a step, error_type, error).
UPDATE fastq_job SET state = 'dead', finished_at = ?3, error_type = ?4, error = ?2,
  attempts = min(max(attempts, 0), ?5), max_attempts = min(max(max_attempts, 1), ?6),
  priority = min(max(priority, -32768), 32767),
  time_limit = CASE WHEN time_limit >= 0 AND time_limit <= 1e9 THEN time_limit END,
  soft_time_limit = CASE WHEN soft_time_limit >= 0 AND soft_time_limit <= 1e9 THEN
    soft_time_limit END,
  interrupted = max(interrupted, 0), lease_token = NULL, lease_expires_at = NULL
WHERE id = ?1 AND state = 'queued'
RETURNING fastq_job.id, fastq_job.state, fastq_job.workflow_id IS NOT NULL,
  fastq_job.error_type, fastq_job.error

-- name: complete
-- Writes the outcomes ?1 (JSON array of {id, token, state, result, error_type, error,
-- traceback, retry_at, started_at}) of jobs whose lease token still matches; ?2 is now.
-- Each row written comes back as a finished step (id, state, is a step, error_type,
-- error) for the driver to settle workflow dependents in the same transaction.
UPDATE fastq_job SET state = v.state, result = v.result,
  error_type = coalesce(v.error_type, ''), error = coalesce(v.error, ''),
  traceback = coalesce(v.traceback, ''),
  finished_at = CASE WHEN v.state = 'queued' THEN NULL ELSE ?2 END,
  run_at = coalesce(v.retry_at, fastq_job.run_at),
  started_at = coalesce(fastq_job.started_at, v.started_at),
  lease_token = NULL, lease_expires_at = NULL
FROM (SELECT value->>'id' AS id, value->>'token' AS token, value->>'state' AS state,
  value->>'result' AS result, value->>'error_type' AS error_type,
  value->>'error' AS error, value->>'traceback' AS traceback,
  value->>'retry_at' AS retry_at, value->>'started_at' AS started_at
  FROM json_each(?1)) AS v
WHERE fastq_job.id = v.id AND fastq_job.lease_token = v.token
RETURNING fastq_job.id, fastq_job.state, fastq_job.workflow_id IS NOT NULL,
  fastq_job.error_type, fastq_job.error

-- name: interrupt
-- Hands the running jobs in ?1 (JSON array of {id, token}) back after an interruption
-- (worker shutdown) at ?2 (now): unspent (the attempt returned) while fewer than ?6
-- (kMaxUnspentHandbacks) interruptions; past that a job whose attempts are used up is
-- dead (?3 error type, error ?4 || interruptions || ?5). ?7 is the attempts ceiling.
-- Rows come back as finished steps, as complete's do.
UPDATE fastq_job SET
  state = CASE WHEN (interrupted >= ?6 AND attempts >= max_attempts) THEN 'dead'
    ELSE 'queued' END,
  attempts = CASE WHEN interrupted < ?6 THEN max(attempts - 1, 0) ELSE attempts END,
  interrupted = CASE WHEN interrupted < ?7 THEN interrupted + 1 ELSE interrupted END,
  error_type = CASE WHEN (interrupted >= ?6 AND attempts >= max_attempts) THEN ?3
    ELSE error_type END,
  error = CASE WHEN (interrupted >= ?6 AND attempts >= max_attempts)
    THEN ?4 || (interrupted + 1) || ?5 ELSE error END,
  finished_at = CASE WHEN (interrupted >= ?6 AND attempts >= max_attempts) THEN ?2 END,
  lease_token = NULL, lease_expires_at = NULL, worker = ''
FROM (SELECT value->>'id' AS id, value->>'token' AS token FROM json_each(?1)) AS v
WHERE fastq_job.id = v.id AND fastq_job.lease_token = v.token
  AND fastq_job.state = 'running'
RETURNING fastq_job.id, fastq_job.state, fastq_job.workflow_id IS NOT NULL,
  fastq_job.error_type, fastq_job.error

-- name: rescue
-- Running jobs whose lease expired before ?1 (now): never started (started_at NULL) and
-- below ?5 (kMaxUnspentHandbacks) hand-backs, back unspent; otherwise charged, and dead
-- once their attempts are used up (?2 error type, error ?3 || attempts || ?4). Rows come
-- back as finished steps, as complete's do.
UPDATE fastq_job SET
  state = CASE WHEN (NOT (started_at IS NULL AND interrupted < ?5)
    AND attempts >= max_attempts) THEN 'dead' ELSE 'queued' END,
  attempts = CASE WHEN (started_at IS NULL AND interrupted < ?5)
    THEN max(attempts - 1, 0) ELSE attempts END,
  interrupted = CASE WHEN (started_at IS NULL AND interrupted < ?5)
    THEN interrupted + 1 ELSE interrupted END,
  error_type = CASE WHEN (NOT (started_at IS NULL AND interrupted < ?5)
    AND attempts >= max_attempts) THEN ?2 ELSE error_type END,
  error = CASE WHEN (NOT (started_at IS NULL AND interrupted < ?5)
    AND attempts >= max_attempts) THEN ?3 || attempts || ?4 ELSE error END,
  finished_at = CASE WHEN (NOT (started_at IS NULL AND interrupted < ?5)
    AND attempts >= max_attempts) THEN ?1 END,
  lease_token = NULL, lease_expires_at = NULL, worker = ''
WHERE state = 'running' AND lease_expires_at < ?1
RETURNING fastq_job.id, fastq_job.state, fastq_job.workflow_id IS NOT NULL,
  fastq_job.error_type, fastq_job.error

-- name: prune_count
-- Retention's dry run: how many finished jobs in state ?1, finished before ?2 and after
-- the cursor (?3 finished_at, ?4 id), could go. A job is kept while a schedule slot or a
-- poller mark names it, or while its workflow has an unfinished step.
SELECT count(*) FROM fastq_job j
WHERE j.state = ?1 AND j.finished_at IS NOT NULL AND j.finished_at < ?2
  AND (j.finished_at, j.id) > (?3, ?4)
  AND NOT (EXISTS (SELECT 1 FROM fastq_schedule_run r WHERE r.job_id = j.id)
  OR EXISTS (SELECT 1 FROM fastq_poller_mark m WHERE m.job_id = j.id)
  OR (j.workflow_id IS NOT NULL AND EXISTS (SELECT 1 FROM fastq_job w
  WHERE w.workflow_id = j.workflow_id AND w.state IN ('waiting', 'queued', 'running'))))

-- name: prune_scan
-- One retention batch's scan: the next ?5 rows of prune_count's range (a range scan of
-- fastq_job_prune from the cursor), each with its workflow, finished_at and whether it
-- may go.
SELECT j.id, j.workflow_id, j.finished_at,
  NOT (EXISTS (SELECT 1 FROM fastq_schedule_run r WHERE r.job_id = j.id)
  OR EXISTS (SELECT 1 FROM fastq_poller_mark m WHERE m.job_id = j.id)
  OR (j.workflow_id IS NOT NULL AND EXISTS (SELECT 1 FROM fastq_job w
  WHERE w.workflow_id = j.workflow_id AND w.state IN ('waiting', 'queued', 'running'))))
FROM fastq_job j
WHERE j.state = ?1 AND j.finished_at IS NOT NULL AND j.finished_at < ?2
  AND (j.finished_at, j.id) > (?3, ?4)
ORDER BY j.finished_at, j.id LIMIT ?5

-- The poller's statements (KeysetSource) are templates around the project's query: the
-- driver puts the query (its placeholders made plain ?) for {query}, its key column for
-- {key}, and ? for {prefix} (the pending unique-key prefix), {after} (the last key of the
-- previous page) and {limit}; parameters bind in the order they appear.

-- name: poll_count
-- How many rows the query has.
SELECT count(*) FROM ({query}) AS fastq_q

-- name: poll_page
-- The first page of keys.
SELECT fastq_q.{key} FROM ({query}) AS fastq_q ORDER BY fastq_q.{key} LIMIT {limit}

-- name: poll_page_after
-- The page of keys after {after}.
SELECT fastq_q.{key} FROM ({query}) AS fastq_q WHERE fastq_q.{key} > {after}
ORDER BY fastq_q.{key} LIMIT {limit}

-- name: poll_pending_page
-- The first page of keys, each with whether a queued or running job holds the unique
-- key {prefix} || key.
SELECT fastq_q.{key}, (SELECT 1 FROM fastq_job fastq_j
  WHERE fastq_j.unique_key = {prefix} || fastq_q.{key}
  AND fastq_j.state IN ('queued', 'running') LIMIT 1) IS NOT NULL
FROM ({query}) AS fastq_q ORDER BY fastq_q.{key} LIMIT {limit}

-- name: poll_pending_page_after
-- poll_pending_page after {after}.
SELECT fastq_q.{key}, (SELECT 1 FROM fastq_job fastq_j
  WHERE fastq_j.unique_key = {prefix} || fastq_q.{key}
  AND fastq_j.state IN ('queued', 'running') LIMIT 1) IS NOT NULL
FROM ({query}) AS fastq_q WHERE fastq_q.{key} > {after}
ORDER BY fastq_q.{key} LIMIT {limit}

-- name: journal_mode
-- Set on every connection: readers do not block the writer, nor it them.
PRAGMA journal_mode=WAL

-- name: wal_frames
-- The write-ahead log's frames (the second column) after a passive checkpoint, which
-- copies what it can without waiting (JobStore::reclaim).
PRAGMA wal_checkpoint(PASSIVE)

-- name: wal_truncate
-- The write-ahead log checkpointed whole and truncated: new readers and the writer wait
-- (the busy timeout) while the readers of the moment finish. The first column is 1 when
-- it could not finish. Automatic checkpoints restart the log only when no reader is on
-- it, which a busy fleet never allows: without this the log grows for ever (1.1 GiB after
-- 4 million jobs in the retention benchmark) and every read searches it.
PRAGMA wal_checkpoint(TRUNCATE)

-- name: synchronous
-- Set on every connection: with WAL, durable at checkpoints, consistent always.
PRAGMA synchronous=NORMAL

-- workflow operations

-- name: enqueue_workflow_jobs
-- A workflow's steps, one JSON array parameter (?1) as for enqueue_batch plus each step's
-- workflow_id, pending (its number of parents: a step with parents starts waiting), pass
-- and on_failure (workflow.hpp). Steps hold no unique key. ?2 is now (created_at, and
-- run_at for a step without one), ?3 the envelope version.
INSERT INTO fastq_job (id, task, queue, priority, state, args, kwargs, run_at, attempts,
  max_attempts, expires_at, cancel_requested, unique_key, worker, error_type, error,
  traceback, created_at, envelope, time_limit, soft_time_limit, rate_key, workflow_id,
  parents_pending, pass_results, on_failure, group_label)
SELECT json_extract(value, '$.id'), json_extract(value, '$.task'),
  json_extract(value, '$.queue'), json_extract(value, '$.priority'),
  CASE WHEN json_extract(value, '$.pending') > 0 THEN 'waiting' ELSE 'queued' END,
  json_extract(value, '$.args'), json_extract(value, '$.kwargs'),
  COALESCE(json_extract(value, '$.run_at'), ?2), 0, json_extract(value, '$.max_attempts'),
  json_extract(value, '$.expires_at'), 0, NULL, '', '', '', '', ?2, ?3,
  json_extract(value, '$.time_limit'), json_extract(value, '$.soft_time_limit'),
  json_extract(value, '$.rate_key'), json_extract(value, '$.workflow_id'),
  json_extract(value, '$.pending'), json_extract(value, '$.pass'),
  json_extract(value, '$.on_failure'), json_extract(value, '$.group_label')
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

-- name: forget_jobs
-- Deletes the finished jobs among ?1 (a JSON array of ids) with their workflow edges
-- (postgres.sql's forget_jobs says which are kept). A row per job deleted: its workflow.
DELETE FROM fastq_job AS j
WHERE j.id IN (SELECT value FROM json_each(?1))
  AND j.state IN ('succeeded', 'failed', 'dead', 'expired', 'cancelled')
  AND NOT (EXISTS (SELECT 1 FROM fastq_schedule_run r WHERE r.job_id = j.id)
  OR EXISTS (SELECT 1 FROM fastq_poller_mark m WHERE m.job_id = j.id)
  OR (j.workflow_id IS NOT NULL AND EXISTS (SELECT 1 FROM fastq_job w
  WHERE w.workflow_id = j.workflow_id AND w.state IN ('waiting', 'queued', 'running'))))
RETURNING id, workflow_id

-- name: purge_queued
-- Deletes the queued jobs of the queues ?1 (a JSON array; NULL: every queue) that are not
-- workflow steps (postgres.sql's purge_queued). A row per job deleted.
DELETE FROM fastq_job
WHERE state = 'queued' AND workflow_id IS NULL
  AND (?1 IS NULL OR queue IN (SELECT value FROM json_each(?1)))
RETURNING id

-- name: relabel_jobs
-- Sets the group label of the jobs ?1 (a JSON array of ids) to ?2 (NULL: none). A row
-- per job.
UPDATE fastq_job SET group_label = ?2
WHERE id IN (SELECT value FROM json_each(?1))
RETURNING id

-- name: record_finished
-- A job run outside the queue (postgres.sql's record_finished): ?1 id, ?2 task, ?3
-- queue, ?4 priority, ?5 args, ?6 kwargs, ?7 max_attempts, ?8 state, ?9 result, ?10
-- error_type, ?11 error, ?12 traceback, ?13 and ?14 started and finished, ?15
-- group_label, ?16 the envelope version.
INSERT INTO fastq_job (id, task, queue, priority, state, args, kwargs, run_at, attempts,
  max_attempts, expires_at, cancel_requested, unique_key, worker, result, error_type, error,
  traceback, created_at, started_at, finished_at, group_label, envelope)
VALUES (?1, ?2, ?3, ?4, ?8, ?5, ?6, ?13, 1, ?7, NULL, 0, NULL, '', ?9, ?10, ?11, ?12, ?13,
  ?13, ?14, ?15, ?16)

-- name: set_custom_state
-- Celery's update_state: job ?1's custom_state (JSON text ?2). A row if the job exists.
UPDATE fastq_job SET custom_state = ?2 WHERE id = ?1
RETURNING id

-- name: write_attempt_log
-- The attempt log (JSON text ?3) of job ?1 while it runs, fenced by lease token ?2 (NULL:
-- the job has none; postgres.sql's write_attempt_log). A row if it was written.
UPDATE fastq_job
SET attempt_log = ?3
WHERE id = ?1 AND state = 'running' AND (?2 IS NULL OR lease_token = ?2)
RETURNING id

-- name: run_now_slot
-- Records a run of schedule ?1 made on demand ("Run now") with job ?3 at slot ?2, created
-- at ?4, as fire_slot records a fired one. No row written if that slot is taken (the
-- caller tries the next microsecond).
INSERT INTO fastq_schedule_run (schedule, slot, job_id, created_at)
VALUES (?1, ?2, ?3, ?4)
ON CONFLICT (schedule, slot) DO NOTHING
RETURNING slot

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

-- fastq's statements for PostgreSQL, one per name. Compiled into the core at build time
-- (cmake/embed_sql.cmake) and looked up with fastq::sql::statement(Dialect::kPostgres,
-- "name"). A block runs from its "-- name:" line to the next one; comment lines are
-- dropped. Parameters are $1, $2, ... (libpq, unnamed or prepared).

-- name: enqueue_jobs
-- New jobs, one JSON array parameter ($1) expanded by json_to_recordset: one statement
-- for any batch size. Jobs holding a unique key that a queued-or-running job already
-- holds are skipped; the ids written come back. $2 is the envelope version.
INSERT INTO fastq_active (id, task, queue, priority, state, args, kwargs, run_at, attempts,
  max_attempts, expires_at, cancel_requested, unique_key, worker, error_type, error,
  traceback, created_at, envelope, time_limit, soft_time_limit, rate_key, group_label)
SELECT id, task, queue, priority, 'queued', args, kwargs,
  COALESCE(to_timestamp(run_at_us / 1e6), now()), 0, max_attempts,
  to_timestamp(expires_at_us / 1e6), false, unique_key, '', '', '', '', now(), $2::int,
  time_limit, soft_time_limit, rate_key, group_label
FROM json_to_recordset($1::json) AS x(id uuid, task text, queue text, priority int,
  args text, kwargs text, run_at_us bigint, max_attempts int, expires_at_us bigint,
  unique_key text, time_limit float8, soft_time_limit float8, rate_key text,
  group_label text)
ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING
RETURNING id

-- name: enqueue_job
-- One new job: enqueue_jobs for a batch of one, as a VALUES row of typed parameters. It
-- is what `.delay()` runs, and it is planned in a third of the time of the JSON form
-- (no json_to_recordset to parse and plan), which is most of a call when Django's
-- default sends every statement unprepared. $1 id, $2 task, $3 queue, $4 priority, $5
-- args, $6 kwargs, $7 run_at (microseconds, NULL: now), $8 max_attempts, $9 expires_at
-- (microseconds), $10 unique_key, $11 time_limit, $12 soft_time_limit, $13 rate_key,
-- $14 the envelope version, $15 group_label. The id comes back unless a queued-or-running
-- job already holds the unique key.
INSERT INTO fastq_active (id, task, queue, priority, state, args, kwargs, run_at, attempts,
  max_attempts, expires_at, cancel_requested, unique_key, worker, error_type, error,
  traceback, created_at, envelope, time_limit, soft_time_limit, rate_key, group_label)
VALUES ($1::uuid, $2::text, $3::text, $4::int, 'queued', $5::text, $6::text,
  COALESCE(to_timestamp($7::bigint / 1e6), now()), 0, $8::int,
  to_timestamp($9::bigint / 1e6), false, $10::text, '', '', '', '', now(), $14::int,
  $11::float8, $12::float8, $13::text, $15::text)
ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING
RETURNING id

-- name: enqueue_plain_job
-- One new job with nothing optional set (no unique key, start time, expiry, time limits,
-- rate key or group label): what most `.delay()` calls are. enqueue_job's row from 8
-- parameters instead of 15, without its conversions, conflict clause and RETURNING:
-- unprepared, in one transaction, 172 us a row against enqueue_job's 218 (psycopg).
-- $1 id (canonical text: the caller's id is the row's), $2 task, $3 queue, $4 priority,
-- $5 args, $6 kwargs, $7 max_attempts, $8 the envelope version.
INSERT INTO fastq_active (id, task, queue, priority, state, args, kwargs, run_at, attempts,
  max_attempts, cancel_requested, worker, error_type, error, traceback, created_at, envelope)
VALUES ($1::uuid, $2::text, $3::text, $4::int, 'queued', $5::text, $6::text, now(), 0,
  $7::int, false, '', '', '', '', now(), $8::int)

-- name: unique_holders
-- The queued-or-running job holding each of the unique keys in $1 (a text array).
SELECT unique_key, id FROM fastq_active
WHERE unique_key = ANY($1::text[]) AND state IN ('queued', 'running')

-- name: cancel_job
-- Cancels job $1 unless it is a workflow step: queued or waiting, at once ($2, $3: error
-- type and message); running, asked to stop. Counts: cancelled, asked, rows with that
-- id, queued or waiting workflow steps with that id (left alone here: cancel_step).
WITH q AS (UPDATE fastq_active SET state = 'cancelled', finished_at = now(),
    error_type = $2, error = $3
  WHERE id = $1 AND state IN ('queued', 'waiting') AND workflow_id IS NULL RETURNING 1),
r AS (UPDATE fastq_active SET cancel_requested = true
  WHERE id = $1 AND state = 'running' RETURNING 1)
SELECT (SELECT count(*) FROM q), (SELECT count(*) FROM r),
  (SELECT count(*) FROM fastq_job WHERE id = $1),
  (SELECT count(*) FROM fastq_active WHERE id = $1 AND state IN ('queued', 'waiting')
    AND workflow_id IS NOT NULL)

-- name: cancel_step
-- Cancels workflow step $1 if it is queued or waiting ($2, $3: error type and message);
-- the driver settles its dependents in the same transaction (workflow.hpp).
UPDATE fastq_active SET state = 'cancelled', finished_at = now(), error_type = $2, error = $3
WHERE id = $1 AND state IN ('queued', 'waiting') AND workflow_id IS NOT NULL
RETURNING id

-- name: cancel_workflow
-- Cancels every unfinished step of workflow $1: queued or waiting ones at once ($2, $3:
-- error type and message), running ones asked to stop. One count: both.
WITH q AS (UPDATE fastq_active SET state = 'cancelled', finished_at = now(),
    error_type = $2, error = $3
  WHERE workflow_id = $1 AND state IN ('queued', 'waiting') RETURNING 1),
r AS (UPDATE fastq_active SET cancel_requested = true
  WHERE workflow_id = $1 AND state = 'running' RETURNING 1)
SELECT (SELECT count(*) FROM q) + (SELECT count(*) FROM r)

-- name: get_job
-- One job as read back for its status and result (AsyncResult, tests).
SELECT id, task, queue, state, priority, attempts, args, kwargs, result, error_type,
  error, traceback, max_attempts, cancel_requested,
  (extract(epoch FROM started_at) * 1000000)::bigint, interrupted, workflow_id,
  parents_pending
FROM fastq_job WHERE id = $1

-- name: claim_lock
-- Locks the fastq_queue rows of the limited queues among $1 (a text array), in name
-- order (no deadlock between workers), before a limited claim; a row per queue locked.
SELECT name
FROM fastq_queue
WHERE name = ANY($1::text[]) AND concurrency IS NOT NULL
ORDER BY name FOR UPDATE

-- name: quarantine_candidates
-- The next claimable rows of the queues in $1 (a text array), at most $2, each with the
-- values a claim checks, for quarantine() to try one by one.
SELECT id, format('attempts=%s max_attempts=%s priority=%s time_limit=%s soft_time_limit=%s',
  attempts, max_attempts, priority, time_limit, soft_time_limit)
FROM fastq_active
WHERE state = 'queued' AND queue = ANY($1::text[]) AND run_at <= now()
ORDER BY priority DESC, run_at, id LIMIT $2

-- name: renew
-- Extends the leases of the running jobs in $1 (JSON array of {id, token}) to $2
-- milliseconds from now; the ids renewed and whether each was asked to stop.
UPDATE fastq_active j
SET lease_expires_at = now() + $2::bigint * interval '1 millisecond'
FROM json_to_recordset($1::json) AS v(id uuid, token bigint)
WHERE j.id = v.id AND j.lease_token = v.token AND j.state = 'running'
RETURNING j.id, j.cancel_requested

-- name: release
-- Hands the running jobs in $1 (JSON array of {id, token}) back to the queue unspent (an
-- attempt returned) and wakes workers; the count released.
WITH r AS (UPDATE fastq_active j SET state = 'queued', attempts = GREATEST(j.attempts - 1,
  0), lease_token = NULL, lease_expires_at = NULL, started_at = NULL, worker = '' FROM
  json_to_recordset($1::json) AS v(id uuid, token bigint) WHERE j.id = v.id AND
  j.lease_token = v.token AND j.state = 'running' RETURNING 1)
SELECT count(*), pg_notify('fastq', 'release')
FROM r

-- name: mark_started
-- Records when the running jobs in $1 (JSON array of {id, token, ago_us}) started, as an
-- age on the database's clock; only where not recorded yet.
UPDATE fastq_active j
SET started_at = now() - v.ago_us * interval '1 microsecond'
FROM json_to_recordset($1::json) AS v(id uuid, token bigint, ago_us bigint)
WHERE j.id = v.id AND j.lease_token = v.token AND j.state = 'running' AND j.started_at
  IS NULL

-- name: release_claim
-- Hands every running job claimed with lease token $1 back to the queue unspent and
-- wakes workers; the count released.
WITH r AS (UPDATE fastq_active SET state = 'queued', attempts = GREATEST(attempts - 1, 0),
  lease_token = NULL, lease_expires_at = NULL, started_at = NULL, worker = '' WHERE
  state = 'running' AND lease_token = $1 RETURNING 1)
SELECT count(*), pg_notify('fastq', 'release')
FROM r

-- name: defer
-- Sends the running jobs in $1 (JSON array of {id, token, run_at_us}) back to the queue
-- to run at run_at_us, the attempt returned.
UPDATE fastq_active j
SET state = 'queued', attempts = GREATEST(j.attempts - 1, 0), run_at =
  to_timestamp(v.run_at_us / 1e6), lease_token = NULL, lease_expires_at = NULL,
  started_at = NULL, worker = ''
FROM json_to_recordset($1::json) AS v(id uuid, token bigint, run_at_us bigint)
WHERE j.id = v.id AND j.lease_token = v.token AND j.state = 'running'

-- name: rate_lock
-- Locks rate limit bucket $1 (creating it at tat 0); its theoretical arrival time and
-- the server's clock, both in microseconds.
INSERT INTO fastq_rate_limit AS b (key, tat)
VALUES ($1, 0)
ON CONFLICT (key) DO UPDATE
SET tat = b.tat
RETURNING b.tat, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint

-- name: rate_set
-- Writes bucket $1's theoretical arrival time $2 (microseconds).
UPDATE fastq_rate_limit
SET tat = $2
WHERE key = $1

-- name: hold_lease
-- Takes or renews leader lease $1 for holder $2 for $3 milliseconds, if free, expired or
-- already $2's; the holder after the write (no row: another holds it).
INSERT INTO fastq_leader AS l (name, holder, lease_expires_at)
VALUES ($1, $2, now() + $3::bigint * interval '1 millisecond')
ON CONFLICT (name) DO UPDATE
SET holder = excluded.holder, lease_expires_at = excluded.lease_expires_at
WHERE l.holder = excluded.holder OR l.lease_expires_at < now()
RETURNING l.holder

-- name: database_now
-- The server's clock, in microseconds since the epoch.
SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint

-- name: drop_lease
-- Gives up leader lease $1 if holder $2 holds it.
DELETE FROM fastq_leader
WHERE name = $1 AND holder = $2

-- name: load_schedules
-- Every enabled schedule, by name; next_run_at in microseconds (NULL: never fired).
SELECT name, task, args, kwargs, queue, priority, cron, timezone, COALESCE(every, 0),
  catch_up, max_instances, (extract(epoch FROM next_run_at) * 1000000)::bigint
FROM fastq_schedule
WHERE enabled
ORDER BY name

-- name: fire_leader
-- Whether holder $2 holds leader lease $1 unexpired; FOR SHARE keeps a competitor from
-- taking the lease over until the fire commits.
SELECT 1
FROM fastq_leader
WHERE name = $1 AND holder = $2 AND lease_expires_at > now() FOR SHARE

-- name: fire_cas
-- Advances schedule $1 to next_run_at $2 (microseconds) if its next_run_at still is $3
-- (NULL: never fired): the compare-and-set of a fire.
UPDATE fastq_schedule
SET next_run_at = to_timestamp($2::bigint / 1e6)
WHERE name = $1 AND enabled AND (($3::bigint IS NULL AND next_run_at IS NULL) OR
  (extract(epoch FROM next_run_at) * 1000000)::bigint = $3::bigint)

-- name: fire_outcome
-- Sets schedule $1's last outcome to $2.
UPDATE fastq_schedule
SET last_outcome = $2
WHERE name = $1

-- name: fire_active
-- How many of schedule $1's recent jobs (its last 100 slots) are queued or running:
-- max_instances.
SELECT count(*)
FROM fastq_active
WHERE state IN ('queued', 'running') AND id IN (SELECT job_id FROM fastq_schedule_run
  WHERE schedule = $1 AND job_id IS NOT NULL ORDER BY slot DESC LIMIT 100)

-- name: fire_slot
-- Records slot $2 (microseconds) of schedule $1 with job $3 (NULL: skipped); no row
-- written if that slot already fired.
INSERT INTO fastq_schedule_run (schedule, slot, job_id, created_at)
VALUES ($1, to_timestamp($2::bigint / 1e6), $3::uuid, now())
ON CONFLICT (schedule, slot) DO NOTHING

-- name: fire_ran
-- Records that schedule $1 just enqueued job $2.
UPDATE fastq_schedule
SET last_run_at = now(), last_job_id = $2::uuid, last_outcome = 'queued'
WHERE name = $1

-- name: prune_runs
-- Deletes the schedule slots before $1 (microseconds).
DELETE FROM fastq_schedule_run
WHERE slot < to_timestamp($1::bigint / 1e6)

-- name: prune_workflows
-- Deletes the fastq_workflow rows of the workflows in $1 (a uuid array) that have no
-- step left.
DELETE FROM fastq_workflow f
WHERE f.root_id = ANY($1::uuid[]) AND NOT EXISTS (SELECT 1 FROM fastq_job j WHERE
  j.workflow_id = f.root_id)

-- name: beat_worker
-- A worker registry heartbeat: $1..$10 the row's id, kind, supervisor, host, pid,
-- version, queues, tasks, concurrency, processes; $11 the lease in milliseconds;
-- $12..$14 processed, failed, rss_bytes. A stopped row stays stopped.
INSERT INTO fastq_worker AS w (id, kind, supervisor, host, pid, version, queues, tasks,
  concurrency, processes, state, started_at, last_heartbeat, expires_at, stopped_at,
  processed, failed, rss_bytes)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'running', now(), now(), now() +
  $11::bigint * interval '1 millisecond', NULL, $12, $13, $14)
ON CONFLICT (id) DO UPDATE
SET state = 'running', last_heartbeat = excluded.last_heartbeat, expires_at =
  excluded.expires_at, processed = excluded.processed, failed = excluded.failed,
  rss_bytes = excluded.rss_bytes, queues = excluded.queues, tasks = excluded.tasks,
  concurrency = excluded.concurrency, processes = excluded.processes
WHERE w.state <> 'stopped'

-- name: stop_worker
-- A worker registry row marked stopped: $1..$10 as beat_worker, $11..$13 processed,
-- failed, rss_bytes.
INSERT INTO fastq_worker AS w (id, kind, supervisor, host, pid, version, queues, tasks,
  concurrency, processes, state, started_at, last_heartbeat, expires_at, stopped_at,
  processed, failed, rss_bytes)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'stopped', now(), now(), now(), now(),
  $11, $12, $13)
ON CONFLICT (id) DO UPDATE
SET state = 'stopped', last_heartbeat = excluded.last_heartbeat, expires_at =
  excluded.expires_at, stopped_at = excluded.stopped_at, processed = excluded.processed,
  failed = excluded.failed, rss_bytes = excluded.rss_bytes

-- name: reap_workers_lost
-- Marks running registry rows whose heartbeat expired as lost.
UPDATE fastq_worker
SET state = 'lost'
WHERE state = 'running' AND expires_at < now()

-- name: reap_workers_gone
-- Deletes stopped or lost registry rows silent for more than $1 milliseconds.
DELETE FROM fastq_worker
WHERE state <> 'running' AND last_heartbeat < now() - $1::bigint * interval '1 millisecond'

-- name: workers
-- Every worker registry row, times in microseconds.
SELECT id, kind, supervisor, host, pid, version, queues, tasks, concurrency, processes,
  state, (extract(epoch FROM started_at) * 1000000)::bigint, (extract(epoch FROM
  last_heartbeat) * 1000000)::bigint, (extract(epoch FROM expires_at) *
  1000000)::bigint, (extract(epoch FROM stopped_at) * 1000000)::bigint, processed,
  failed, rss_bytes
FROM fastq_worker
ORDER BY id

-- name: count_runnable
-- How many jobs of the queues in $1 (a text array) are runnable now, paused queues left
-- out.
SELECT count(*)
FROM fastq_active
WHERE state = 'queued' AND queue = ANY($1::text[]) AND run_at <= now() AND queue NOT IN
  (SELECT name FROM fastq_queue WHERE paused)

-- name: mark
-- Poller scope $1 records keys $2 (a text array) with their alert jobs $3 (a uuid array,
-- same order); the keys newly recorded.
INSERT INTO fastq_poller_mark (poller, key, created_at, job_id)
SELECT $1, k, now(), j
FROM unnest($2::text[], $3::uuid[]) AS t(k, j)
ON CONFLICT (poller, key) DO NOTHING
RETURNING key

-- name: paused_queues
-- Which of the queues in $1 (a text array) are paused.
SELECT name
FROM fastq_queue
WHERE paused AND name = ANY($1::text[])

-- name: settle_load
-- The waiting children of the workflow steps in $1 (a uuid array) with their edges, each
-- child row locked (FOR UPDATE, in id order) so that sibling completions take turns.
SELECT d.parent_id, d.child_id, d.position, c.parents_pending, c.pass_results,
  c.on_failure, c.args
FROM fastq_dependency d JOIN fastq_active c ON c.id = d.child_id
WHERE d.parent_id = ANY($1::uuid[]) AND c.state = 'waiting'
ORDER BY c.id, d.position FOR UPDATE OF c

-- name: settle_parents
-- Every parent of the children in $1 (a uuid array), with its state and outcome, in edge
-- order.
SELECT d.child_id, p.id, p.state, p.result, p.error_type, p.error
FROM fastq_dependency d JOIN fastq_job p ON p.id = d.parent_id
WHERE d.child_id = ANY($1::uuid[])
ORDER BY d.child_id, d.position

-- name: settle_write
-- Writes the settle decisions $1 (JSON array of {id, pending, state, args, error_type,
-- error}) to waiting children, and wakes workers if one was released.
WITH w AS (UPDATE fastq_active c SET parents_pending = v.pending, state = v.state, args =
  COALESCE(v.args, c.args), error_type = COALESCE(v.error_type, c.error_type), error =
  COALESCE(v.error, c.error), finished_at = CASE WHEN v.state = 'cancelled' THEN now()
  ELSE c.finished_at END FROM json_to_recordset($1::json) AS v(id uuid, pending int,
  state text, args text, error_type text, error text) WHERE c.id = v.id AND c.state =
  'waiting' RETURNING c.state)
SELECT CASE WHEN count(*) FILTER (WHERE state = 'queued') > 0 THEN pg_notify('fastq',
  'release') END
FROM w

-- name: claim_limited
-- Whether any of the queues in $1 (a text array) has a concurrency limit.
SELECT EXISTS (SELECT 1 FROM fastq_queue WHERE name = ANY($1::text[]) AND concurrency IS
  NOT NULL)

-- name: claim
-- Claims up to $1 runnable jobs of the queues in $5 (a text array) for worker $4 under
-- lease token $3, leased for $2 milliseconds. One index range scan per queue (index:
-- queue, priority DESC, run_at, id), each taking its rows with SKIP LOCKED; the outer
-- query keeps the best $1 across queues. Rows a branch locked but the outer query dropped
-- are unlocked at commit, microseconds later. Queue controls (fastq_queue, joined by
-- primary key): paused queues are skipped; a limited queue takes at most its concurrency
-- minus its running jobs, and only when $6 says the caller holds that queue's row lock
-- (claim_lock), else it is skipped. An unlimited queue's room is $1, so the count is
-- never run for it. $7 is the attempts ceiling (kAttemptsCeiling). The claim index of
-- fastq_active is not filtered on state and no index of that table names a column this
-- UPDATE writes, so the update is HOT (migration 0017); running rows of the queue are
-- passed over by the state test. The UPDATE probes the primary key for each claimed id
-- (= ANY(ARRAY(...))) whatever the small table's statistics say.
WITH qs AS (SELECT q.name, CASE WHEN s.concurrency IS NULL THEN $1::int ELSE
    GREATEST(0, LEAST($1::int, s.concurrency - (SELECT count(*) FROM fastq_active r
    WHERE r.state = 'running' AND r.queue = q.name AND r.lease_expires_at > now()))) END
    AS room
  FROM unnest($5::text[]) AS q(name) LEFT JOIN fastq_queue s ON s.name = q.name
  WHERE s.paused IS NOT TRUE AND (s.concurrency IS NULL OR $6::boolean)),
c AS (SELECT p.id FROM qs CROSS JOIN LATERAL (SELECT id, priority, run_at FROM fastq_active
    WHERE state = 'queued' AND queue = qs.name AND run_at <= now()
    ORDER BY priority DESC, run_at, id LIMIT qs.room FOR UPDATE SKIP LOCKED) AS p
  ORDER BY p.priority DESC, p.run_at, p.id LIMIT $1)
UPDATE fastq_active j SET state = 'running',
  attempts = CASE WHEN j.attempts < $7::int THEN j.attempts + 1 ELSE j.attempts END,
  lease_token = $3, lease_expires_at = now() + $2::bigint * interval '1 millisecond',
  started_at = NULL, worker = $4
WHERE j.id = ANY(ARRAY(SELECT id FROM c))
RETURNING j.id, j.task, j.queue, j.args, j.kwargs, j.priority, j.attempts,
  j.max_attempts, j.expires_at IS NOT NULL AND j.expires_at < now(),
  j.cancel_requested, j.envelope, COALESCE(j.time_limit, 0),
  COALESCE(j.soft_time_limit, 0), COALESCE(j.rate_key, '')

-- name: quarantine_try
-- The write a claim makes, tried on queued job $1 alone (and rolled back): the error it
-- raises, if any, says why no claim can take the row. $2 is the attempts ceiling.
UPDATE fastq_active SET state = 'running',
  attempts = CASE WHEN attempts < $2::int THEN attempts + 1 ELSE attempts END,
  lease_token = 0
WHERE id = $1

-- name: quarantine_end
-- Ends queued job $1 as dead with reason $2 and error type $3 (kInvalidJobType), its
-- columns brought within the table's CHECK constraints (which any UPDATE of the row must
-- pass): $4 is the attempts ceiling, $5 the max_attempts limit. Whether it is a workflow
-- step (no row: it was no longer queued).
UPDATE fastq_active SET state = 'dead', finished_at = now(), error_type = $3, error = $2,
  attempts = LEAST(GREATEST(attempts, 0), $4::int),
  max_attempts = LEAST(GREATEST(max_attempts, 1), $5::int),
  time_limit = CASE WHEN time_limit >= 0 AND time_limit <= 1e9 THEN time_limit END,
  soft_time_limit = CASE WHEN soft_time_limit >= 0 AND soft_time_limit <= 1e9 THEN
    soft_time_limit END,
  interrupted = GREATEST(interrupted, 0), lease_token = NULL, lease_expires_at = NULL
WHERE id = $1 AND state = 'queued'
RETURNING workflow_id IS NOT NULL

-- name: complete
-- Writes the outcomes $1 (JSON array of {id, token, state, result, error_type, error,
-- traceback, retry_at_us, started_ago_us}) of running jobs outside workflows whose lease
-- token still matches. A retry stays in fastq_active, queued again at retry_at_us; any
-- other outcome moves the job to the finished log in one step: its active row deleted,
-- its finished row inserted (no dead row version left behind in the active table but the
-- deleted one, no index entry there at all). A start travels as its age, so started_at
-- is on the database's clock. One count: the jobs written.
WITH v AS (SELECT * FROM json_to_recordset($1::json) AS v(id uuid, token bigint,
    state text, result text, error_type text, error text, traceback text,
    retry_at_us bigint, started_ago_us bigint)),
retried AS (UPDATE fastq_active j SET state = 'queued', result = v.result,
    error_type = COALESCE(v.error_type, ''), error = COALESCE(v.error, ''),
    traceback = COALESCE(v.traceback, ''), finished_at = NULL,
    run_at = COALESCE(to_timestamp(v.retry_at_us / 1e6), j.run_at),
    started_at = COALESCE(j.started_at, now() - v.started_ago_us * interval '1 microsecond'),
    lease_token = NULL, lease_expires_at = NULL
  FROM v WHERE v.state = 'queued' AND j.id = v.id AND j.lease_token = v.token
    AND j.state = 'running' AND j.workflow_id IS NULL
  RETURNING 1),
done AS (DELETE FROM fastq_active j USING v
  WHERE v.state <> 'queued' AND j.id = v.id AND j.lease_token = v.token
    AND j.state = 'running' AND j.workflow_id IS NULL
  RETURNING j.*, v.state AS v_state, v.result AS v_result, v.error_type AS v_error_type,
    v.error AS v_error, v.traceback AS v_traceback, v.started_ago_us AS v_started_ago_us),
ins AS (INSERT INTO fastq_finished (id, task, queue, priority, state, args, kwargs, run_at, attempts,
  max_attempts, expires_at, cancel_requested, unique_key, envelope, time_limit,
  soft_time_limit, rate_key, lease_token, lease_expires_at, worker, result, error_type,
  error, traceback, created_at, started_at, finished_at, group_label, attempt_log,
  custom_state, interrupted, workflow_id, parents_pending, pass_results, on_failure)
  SELECT id, task, queue, priority, v_state, args, kwargs, run_at, attempts,
    max_attempts, expires_at, cancel_requested, unique_key, envelope, time_limit,
    soft_time_limit, rate_key, NULL, NULL, worker, v_result, COALESCE(v_error_type, ''),
    COALESCE(v_error, ''), COALESCE(v_traceback, ''), created_at,
    COALESCE(started_at, now() - v_started_ago_us * interval '1 microsecond'), now(),
    group_label, attempt_log, custom_state, interrupted, workflow_id, parents_pending,
    pass_results, on_failure
  FROM done RETURNING 1)
SELECT (SELECT count(*) FROM retried) + (SELECT count(*) FROM ins)

-- name: complete_steps
-- complete for the workflow steps among $1; each step written comes back (id, state,
-- error_type, error) for the driver to settle its dependents in the same transaction.
-- Steps are rarer than plain jobs: an UPDATE, and the finished ones move to the log at
-- the end of the statement (trigger fastq_active_finish, migration 0017).
UPDATE fastq_active j SET state = v.state, result = v.result,
  error_type = COALESCE(v.error_type, ''), error = COALESCE(v.error, ''),
  traceback = COALESCE(v.traceback, ''),
  finished_at = CASE WHEN v.state = 'queued' THEN NULL ELSE now() END,
  run_at = COALESCE(to_timestamp(v.retry_at_us / 1e6), j.run_at),
  started_at = COALESCE(j.started_at, now() - v.started_ago_us * interval '1 microsecond'),
  lease_token = NULL, lease_expires_at = NULL
FROM json_to_recordset($1::json) AS v(id uuid, token bigint, state text, result text,
  error_type text, error text, traceback text, retry_at_us bigint, started_ago_us bigint)
WHERE j.id = v.id AND j.lease_token = v.token AND j.state = 'running'
  AND j.workflow_id IS NOT NULL
RETURNING j.id, j.state, j.error_type, j.error

-- name: interrupt
-- Hands the running jobs in $1 (JSON array of {id, token}) back after an interruption
-- (worker shutdown): unspent (the attempt returned) while fewer than $5
-- (kMaxUnspentHandbacks) interruptions; past that a job whose attempts are used up is
-- dead ($2 error type, error $3 || interruptions || $4). $6 is the attempts ceiling.
-- Count, a notify when some went back to the queue, and the workflow steps now dead.
WITH r AS (UPDATE fastq_active j SET
    state = CASE WHEN (j.interrupted >= $5::int AND j.attempts >= j.max_attempts) THEN
      'dead' ELSE 'queued' END,
    attempts = CASE WHEN j.interrupted < $5::int THEN GREATEST(j.attempts - 1, 0)
      ELSE j.attempts END,
    interrupted = CASE WHEN j.interrupted < $6::int THEN j.interrupted + 1
      ELSE j.interrupted END,
    error_type = CASE WHEN (j.interrupted >= $5::int AND j.attempts >= j.max_attempts)
      THEN $2 ELSE j.error_type END,
    error = CASE WHEN (j.interrupted >= $5::int AND j.attempts >= j.max_attempts)
      THEN $3 || (j.interrupted + 1) || $4 ELSE j.error END,
    finished_at = CASE WHEN (j.interrupted >= $5::int AND j.attempts >= j.max_attempts)
      THEN now() END,
    lease_token = NULL, lease_expires_at = NULL, worker = ''
  FROM json_to_recordset($1::json) AS v(id uuid, token bigint)
  WHERE j.id = v.id AND j.lease_token = v.token AND j.state = 'running'
  RETURNING j.id, j.state, j.workflow_id IS NOT NULL AS step)
SELECT count(*), CASE WHEN count(*) FILTER (WHERE state = 'queued') > 0 THEN
  pg_notify('fastq', 'interrupt') END,
  array_agg(id) FILTER (WHERE step AND state = 'dead') FROM r

-- name: rescue
-- Running jobs whose lease expired: never started (started_at NULL) and below $4
-- (kMaxUnspentHandbacks) hand-backs, back unspent; otherwise charged, and dead once
-- their attempts are used up ($1 error type, error $2 || attempts || $3). Count, a
-- notify when some went back to the queue, and the workflow steps now dead.
WITH r AS (UPDATE fastq_active SET
    state = CASE WHEN (NOT (started_at IS NULL AND interrupted < $4::int)
      AND attempts >= max_attempts) THEN 'dead' ELSE 'queued' END,
    attempts = CASE WHEN (started_at IS NULL AND interrupted < $4::int)
      THEN GREATEST(attempts - 1, 0) ELSE attempts END,
    interrupted = CASE WHEN (started_at IS NULL AND interrupted < $4::int)
      THEN interrupted + 1 ELSE interrupted END,
    error_type = CASE WHEN (NOT (started_at IS NULL AND interrupted < $4::int)
      AND attempts >= max_attempts) THEN $1 ELSE error_type END,
    error = CASE WHEN (NOT (started_at IS NULL AND interrupted < $4::int)
      AND attempts >= max_attempts) THEN $2 || attempts || $3 ELSE error END,
    finished_at = CASE WHEN (NOT (started_at IS NULL AND interrupted < $4::int)
      AND attempts >= max_attempts) THEN now() END,
    lease_token = NULL, lease_expires_at = NULL, worker = ''
  WHERE state = 'running' AND lease_expires_at < now()
  RETURNING id, state, workflow_id IS NOT NULL AS step)
SELECT n, CASE WHEN q > 0 THEN pg_notify('fastq', 'rescue') END, d
FROM (SELECT count(*) AS n, count(*) FILTER (WHERE state = 'queued') AS q,
  array_agg(id) FILTER (WHERE step AND state = 'dead') AS d FROM r) c

-- name: prune_count
-- Retention's dry run: how many finished jobs in state $1, finished before $2
-- (microseconds) and after the cursor ($3 finished_at, $4 id), could go. A template:
-- {log} is fastq_finished, or fastq_finished_default where upkeep drops the
-- partitions whole (the leader's succeeded jobs: PruneRequest::keep). A job is kept
-- while a schedule slot or a poller mark names it, or while its workflow has an
-- unfinished step.
SELECT count(*) FROM (SELECT j.id, j.workflow_id FROM {log} j
  WHERE j.state = $1 AND j.finished_at < to_timestamp($2::bigint / 1e6)
  AND (j.finished_at, j.id) > ($3::timestamptz, $4::uuid)) c
WHERE NOT (EXISTS (SELECT 1 FROM fastq_schedule_run r WHERE r.job_id = c.id)
  OR EXISTS (SELECT 1 FROM fastq_poller_mark m WHERE m.job_id = c.id)
  OR (c.workflow_id IS NOT NULL AND EXISTS (SELECT 1 FROM fastq_active w
  WHERE w.workflow_id = c.workflow_id)))

-- name: prune_jobs
-- One retention batch: the next $5 jobs of prune_count's range (a range scan of the
-- log's fastq_finished_at from the cursor, partitions past the cutoff never read), those
-- not kept deleted with their workflow edges. No row lock ahead of the DELETE: it would
-- write every row twice (half the batch's cost), and the only other writer of the log,
-- an admin retry moving a job back, either deletes the row first (this DELETE then finds
-- nothing) or waits for this one and finds nothing itself. Deleted, scanned, the
-- workflows of deleted steps, and the new cursor (finished_at and id of the last row
-- scanned). {log} as for prune_count.
WITH c AS MATERIALIZED (SELECT j.id, j.workflow_id, j.finished_at FROM {log} j
  WHERE j.state = $1 AND j.finished_at < to_timestamp($2::bigint / 1e6)
  AND (j.finished_at, j.id) > ($3::timestamptz, $4::uuid)
  ORDER BY j.finished_at, j.id LIMIT $5),
gone AS (DELETE FROM {log} j USING c WHERE j.id = c.id
  AND j.finished_at = c.finished_at
  AND NOT (EXISTS (SELECT 1 FROM fastq_schedule_run r WHERE r.job_id = c.id)
  OR EXISTS (SELECT 1 FROM fastq_poller_mark m WHERE m.job_id = c.id)
  OR (c.workflow_id IS NOT NULL AND EXISTS (SELECT 1 FROM fastq_active w
  WHERE w.workflow_id = c.workflow_id)))
  RETURNING j.id, j.workflow_id),
edges_out AS (DELETE FROM fastq_dependency e USING gone g
  WHERE g.workflow_id IS NOT NULL AND e.parent_id = g.id),
edges_in AS (DELETE FROM fastq_dependency e USING gone g
  WHERE g.workflow_id IS NOT NULL AND e.child_id = g.id),
last AS (SELECT finished_at, id FROM c ORDER BY finished_at DESC, id DESC LIMIT 1)
SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM c),
  (SELECT array_agg(DISTINCT workflow_id) FILTER (WHERE workflow_id IS NOT NULL)
  FROM gone), (SELECT finished_at::text FROM last), (SELECT id::text FROM last)

-- name: upkeep
-- The finished log's partitions: $1 seconds wide, made $2 seconds ahead, and with $3 (a
-- JSON object of final state -> cutoff in microseconds; NULL: retention off) every
-- partition ending by the succeeded jobs' cutoff dropped, the jobs that must stay copied
-- out first (fastq_finished_upkeep, migrations 0017 and 0018). How many it dropped.
SELECT fastq_finished_upkeep($1::int, $2::int, $3::jsonb)

-- name: reclaim_candidates
-- The job store's tables that need a VACUUM or an ANALYZE now (JobStore::reclaim):
-- fastq_active and the finished log's partitions, only those the current role may vacuum
-- (it owns them), most dead rows first. A VACUUM when the dead rows pass $1 + $2 x the
-- live rows, as PostgreSQL's statistics count them: every completion leaves a dead row in
-- fastq_active and every row-by-row prune one in the log, and a claim walks the dead
-- index entries until a vacuum removes them, so at thousands of jobs a second they cannot
-- wait for autovacuum's next round (autovacuum_naptime, a minute by default) or for an
-- autovacuum that is off. An ANALYZE when the rows changed since the last one pass the
-- same bound and that one is $3 seconds old: the claim's plan (an ordered scan of the
-- claim index) needs statistics that see the queued rows; without any, the planner
-- guesses one row and sorts the whole queue for every claim.
SELECT format('%I.%I', s.schemaname, s.relname),
  s.n_dead_tup > $1::bigint + $2::float8 * s.n_live_tup AS vacuum,
  s.n_mod_since_analyze > $1::bigint + $2::float8 * s.n_live_tup
    AND COALESCE(GREATEST(s.last_analyze, s.last_autoanalyze), '-infinity')
      < now() - $3::float8 * interval '1 second' AS analyze
FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
WHERE s.relid IN (SELECT 'fastq_active'::regclass UNION ALL
  SELECT relid FROM pg_partition_tree('fastq_finished') WHERE isleaf)
  AND pg_has_role(c.relowner, 'USAGE')
ORDER BY s.n_dead_tup DESC

-- name: reclaim_vacuum
-- Vacuums one table reclaim_candidates named ({table}, already quoted). SKIP_LOCKED: a
-- table another VACUUM (autovacuum's) is on is left to it. TRUNCATE false: giving the
-- empty pages at the table's end back to the file system needs the table's exclusive
-- lock, which a vacuum waits up to 5 s for while claims and completions keep coming
-- (the queue's table fills again anyway; the log's partitions go whole); autovacuum and
-- a VACUUM by hand still truncate. VACUUM runs outside a transaction, by the simple
-- protocol, so it is not a prepared statement.
VACUUM (SKIP_LOCKED, TRUNCATE false) {table}

-- name: reclaim_vacuum_analyze
-- reclaim_vacuum, and its statistics made anew.
VACUUM (SKIP_LOCKED, TRUNCATE false, ANALYZE) {table}

-- name: reclaim_analyze
-- One table's statistics made anew (reclaim_candidates, {table} as there).
ANALYZE (SKIP_LOCKED) {table}

-- name: copy_jobs
-- New jobs by COPY (text format). A template: {columns} is the column list of the batch
-- (pg_copy_batch, bulk.hpp), fixed names chosen by which optional fields the batch has.
COPY fastq_active ({columns}) FROM STDIN

-- The poller's statements (KeysetSource) are templates around the project's query: the
-- driver puts the query (its placeholders made $1..$n) for {query}, its key column for
-- {key}, and the numbers of the parameters after the query's for {prefix} (the pending
-- unique-key prefix), {after} (the last key of the previous page) and {limit}. The
-- pending flag is a scalar subquery: a per-row index probe whatever the table's
-- statistics say (an anti-join planned on a fresh, unanalyzed table can scan it per
-- row).

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
SELECT fastq_q.{key}, (SELECT 1 FROM fastq_active fastq_j
  WHERE fastq_j.unique_key = {prefix} || fastq_q.{key}::text
  AND fastq_j.state IN ('queued', 'running') LIMIT 1) IS NOT NULL
FROM ({query}) AS fastq_q ORDER BY fastq_q.{key} LIMIT {limit}

-- name: poll_pending_page_after
-- poll_pending_page after {after}.
SELECT fastq_q.{key}, (SELECT 1 FROM fastq_active fastq_j
  WHERE fastq_j.unique_key = {prefix} || fastq_q.{key}::text
  AND fastq_j.state IN ('queued', 'running') LIMIT 1) IS NOT NULL
FROM ({query}) AS fastq_q WHERE fastq_q.{key} > {after}
ORDER BY fastq_q.{key} LIMIT {limit}

-- name: async_commit
-- A worker's claim connection (JobStore::commit_claims_async): its claims, hand-backs
-- and rate tokens commit without waiting for the WAL flush. Visibility is unchanged; a
-- server crash can lose the last fraction of a second of them, and a lost claim leaves
-- its job queued, to run again (the first run's outcome is fenced off).
SET synchronous_commit = off

-- name: session_setup
-- Run on every new connection: workers write UTC; the session zone only affects how
-- timestamps print.
SET TIME ZONE 'UTC'

-- name: listen
-- The listener connection's subscription to channel "fastq", which the INSERT trigger
-- of the Django migration notifies at commit (and the driver's own pg_notify calls).
LISTEN fastq

-- workflow operations

-- name: enqueue_workflow_jobs
-- A workflow's steps, one JSON array parameter ($1) as for enqueue_jobs plus each step's
-- workflow_id, pending (its number of parents: a step with parents starts waiting), pass
-- and on_failure (workflow.hpp). Steps hold no unique key. $2 is the envelope version.
INSERT INTO fastq_active (id, task, queue, priority, state, args, kwargs, run_at, attempts,
  max_attempts, expires_at, cancel_requested, unique_key, worker, error_type, error,
  traceback, created_at, envelope, time_limit, soft_time_limit, rate_key, workflow_id,
  parents_pending, pass_results, on_failure, group_label)
SELECT id, task, queue, priority, CASE WHEN pending > 0 THEN 'waiting' ELSE 'queued' END,
  args, kwargs, COALESCE(to_timestamp(run_at_us / 1e6), now()), 0, max_attempts,
  to_timestamp(expires_at_us / 1e6), false, NULL, '', '', '', '', now(), $2::int,
  time_limit, soft_time_limit, rate_key, workflow_id, pending, pass, on_failure, group_label
FROM json_to_recordset($1::json) AS x(id uuid, task text, queue text, priority int,
  args text, kwargs text, run_at_us bigint, max_attempts int, expires_at_us bigint,
  time_limit float8, soft_time_limit float8, rate_key text, workflow_id uuid, pending int,
  pass smallint, on_failure smallint, group_label text)

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

-- name: forget_jobs
-- Deletes the finished jobs among $1 (a uuid array) with their workflow edges: a result
-- forgotten (Celery's forget), a group deleted (Django-Q2's delete_group), a save limit.
-- Queued, running and waiting jobs are left, and so is a finished job something still
-- depends on, as retention leaves it: a schedule slot or a poller mark naming it, a
-- step of a workflow with an unfinished step (its results are still to be read). The
-- count deleted, and the workflows of the steps deleted (prune_workflows next).
WITH gone AS (DELETE FROM fastq_finished j WHERE j.id = ANY($1::uuid[])
  AND NOT (EXISTS (SELECT 1 FROM fastq_schedule_run r WHERE r.job_id = j.id)
  OR EXISTS (SELECT 1 FROM fastq_poller_mark m WHERE m.job_id = j.id)
  OR (j.workflow_id IS NOT NULL AND EXISTS (SELECT 1 FROM fastq_active w
  WHERE w.workflow_id = j.workflow_id)))
  RETURNING j.id, j.workflow_id),
edges_out AS (DELETE FROM fastq_dependency e USING gone g
  WHERE g.workflow_id IS NOT NULL AND e.parent_id = g.id),
edges_in AS (DELETE FROM fastq_dependency e USING gone g
  WHERE g.workflow_id IS NOT NULL AND e.child_id = g.id)
SELECT count(*), array_agg(DISTINCT workflow_id) FILTER (WHERE workflow_id IS NOT NULL)
FROM gone

-- name: purge_queued
-- Deletes the queued jobs of the queues $1 (a text array; NULL: every queue) that are
-- not workflow steps (Celery's purge; the caller cancels the workflows of queued steps,
-- whose waiting children would otherwise wait for ever). How many.
WITH gone AS (DELETE FROM fastq_active WHERE state = 'queued' AND workflow_id IS NULL
  AND ($1::text[] IS NULL OR queue = ANY($1::text[])) RETURNING 1)
SELECT count(*) FROM gone

-- name: relabel_jobs
-- Sets the group label of the jobs $1 (a uuid array) to $2 (NULL: none), wherever they
-- are (Django-Q2's delete_group without its tasks). How many.
WITH a AS (UPDATE fastq_active SET group_label = $2::text WHERE id = ANY($1::uuid[])
  RETURNING 1),
f AS (UPDATE fastq_finished SET group_label = $2::text WHERE id = ANY($1::uuid[])
  RETURNING 1)
SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM f)

-- name: record_finished
-- A job run outside the queue (Django-Q2's sync=True), stored in the finished log as a
-- worker would have left it after one attempt: $1 id, $2 task, $3 queue, $4 priority, $5
-- args, $6 kwargs, $7 max_attempts, $8 state (succeeded or failed), $9 result (JSON
-- text; NULL: none), $10 error_type, $11 error, $12 traceback, $13 and $14 started and
-- finished (microseconds), $15 group_label, $16 the envelope version.
INSERT INTO fastq_finished (id, task, queue, priority, state, args, kwargs, run_at,
  attempts, max_attempts, result, error_type, error, traceback, created_at, started_at,
  finished_at, group_label, envelope)
VALUES ($1::uuid, $2::text, $3::text, $4::int, $8::text, $5::text, $6::text,
  to_timestamp($13::bigint / 1e6), 1, $7::int, $9::text, $10::text, $11::text, $12::text,
  to_timestamp($13::bigint / 1e6), to_timestamp($13::bigint / 1e6),
  to_timestamp($14::bigint / 1e6), $15::text, $16::int)

-- name: set_custom_state
-- Celery's update_state: job $1's custom_state (JSON text $2), wherever it is. How many
-- rows (0: no such job).
WITH a AS (UPDATE fastq_active SET custom_state = $2::text WHERE id = $1::uuid RETURNING 1),
f AS (UPDATE fastq_finished SET custom_state = $2::text WHERE id = $1::uuid RETURNING 1)
SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM f)

-- name: write_attempt_log
-- The attempt log (JSON text $3) of job $1 while it runs, fenced by lease token $2 (NULL:
-- the job has none): a job rescued from its worker is no longer that worker's to write.
-- A row if it was written.
UPDATE fastq_active
SET attempt_log = $3::text
WHERE id = $1::uuid AND state = 'running' AND ($2::bigint IS NULL OR lease_token =
  $2::bigint)
RETURNING 1

-- name: run_now_slot
-- Records a run of schedule $1 made on demand ("Run now") with job $3, as fire_slot
-- records a fired one: slot $2 (microseconds; NULL: the transaction's now) plus $4
-- microseconds. No row written if that slot is taken (the caller tries the next
-- microsecond); the slot written, in microseconds, otherwise.
INSERT INTO fastq_schedule_run (schedule, slot, job_id, created_at)
VALUES ($1, COALESCE(timestamptz 'epoch' + $2::bigint * interval '1 microsecond', now())
  + $4::bigint * interval '1 microsecond', $3::uuid, now())
ON CONFLICT (schedule, slot) DO NOTHING
RETURNING (extract(epoch FROM slot) * 1000000)::bigint

-- name: retry_jobs
-- Queues again those of the jobs $1 (a uuid array) that ended unsuccessfully (failed,
-- dead, expired, cancelled): moved from the finished log back to the active table with
-- attempts, result, error, lease, expiry and cancel cleared, run_at now. Wakes workers
-- when it queued any. One count.
WITH d AS (DELETE FROM fastq_finished
  WHERE id = ANY($1::uuid[]) AND state IN ('failed', 'dead', 'expired', 'cancelled')
  RETURNING *),
r AS (INSERT INTO fastq_active (id, task, queue, priority, state, args, kwargs, run_at, attempts,
  max_attempts, expires_at, cancel_requested, unique_key, envelope, time_limit,
  soft_time_limit, rate_key, lease_token, lease_expires_at, worker, result, error_type,
  error, traceback, created_at, started_at, finished_at, group_label, attempt_log,
  custom_state, interrupted, workflow_id, parents_pending, pass_results, on_failure)
  SELECT id, task, queue, priority, 'queued', args, kwargs, now(), 0, max_attempts, NULL,
    false, unique_key, envelope, time_limit, soft_time_limit, rate_key, NULL, NULL, '',
    NULL, '', '', '', created_at, NULL, NULL, group_label, attempt_log, custom_state,
    interrupted, workflow_id, parents_pending, pass_results, on_failure
  FROM d RETURNING 1)
SELECT n, CASE WHEN n > 0 THEN pg_notify('fastq', 'retry') END
FROM (SELECT count(*) AS n FROM r) AS c


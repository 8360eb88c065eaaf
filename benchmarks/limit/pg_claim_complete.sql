-- fastq's claim and completion (src/cpp/core/postgres_driver.cpp: claim_sql() as run for
-- a worker without limited queues, and PostgresDriver::complete for jobs outside
-- workflows), :batch jobs each. The claimed rows come back as the JSON the completion
-- takes, built by the server instead of the worker.
\set token random(1, 4611686018427387903)
WITH qs AS (SELECT q.name, CASE WHEN s.concurrency IS NULL THEN :batch ELSE
    GREATEST(0, LEAST(:batch, s.concurrency - (SELECT count(*) FROM fastq_job r WHERE
    r.state = 'running' AND r.queue = q.name AND r.lease_expires_at > now()))) END AS room
  FROM unnest(ARRAY['default']::text[]) AS q(name) LEFT JOIN fastq_queue s ON s.name = q.name
  WHERE s.paused IS NOT TRUE AND (s.concurrency IS NULL OR false)),
c AS (SELECT p.id FROM qs CROSS JOIN LATERAL (
    SELECT id, priority, run_at FROM fastq_job WHERE state = 'queued' AND queue = qs.name
    AND run_at <= now() ORDER BY priority DESC, run_at, id LIMIT qs.room FOR UPDATE SKIP LOCKED
  ) AS p ORDER BY p.priority DESC, p.run_at, p.id LIMIT :batch),
claimed AS (UPDATE fastq_job j SET state = 'running', attempts = CASE WHEN j.attempts < 1000000000
    THEN j.attempts + 1 ELSE j.attempts END,
    lease_token = :token, lease_expires_at = now() + 30000::bigint * interval '1 millisecond',
    started_at = NULL, worker = 'limit' FROM c WHERE j.id = c.id
  RETURNING j.id, j.task, j.queue, j.args, j.kwargs, j.priority, j.attempts, j.max_attempts,
    j.expires_at IS NOT NULL AND j.expires_at < now(), j.cancel_requested, j.envelope,
    COALESCE(j.time_limit, 0), COALESCE(j.soft_time_limit, 0), COALESCE(j.rate_key, ''))
SELECT coalesce(json_agg(json_build_object('id', id, 'token', :token::bigint,
  'state', 'succeeded', 'result', 'null', 'started_ago_us', 1000)), '[]') AS done FROM claimed
\gset
UPDATE fastq_job j SET state = v.state, result = v.result,
  error_type = COALESCE(v.error_type, ''), error = COALESCE(v.error, ''),
  traceback = COALESCE(v.traceback, ''),
  finished_at = CASE WHEN v.state = 'queued' THEN NULL ELSE now() END,
  run_at = COALESCE(to_timestamp(v.retry_at_us / 1e6), j.run_at),
  started_at = COALESCE(j.started_at, now() - v.started_ago_us * interval '1 microsecond'),
  lease_token = NULL, lease_expires_at = NULL
FROM json_to_recordset(:done::json) AS v(id uuid, token bigint, state text, result text,
  error_type text, error text, traceback text, retry_at_us bigint, started_ago_us bigint)
WHERE j.id = v.id AND j.lease_token = v.token AND j.state = 'running' AND j.workflow_id IS NULL;

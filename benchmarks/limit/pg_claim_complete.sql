-- fastq's claim and completion (src/cpp/core/postgres_driver.cpp: claim_sql() and
-- PostgresDriver::complete), :batch jobs each. The claimed rows come back as the JSON the
-- completion takes, built by the server instead of the worker.
\set token random(1, 4611686018427387903)
WITH c AS (SELECT p.id FROM unnest(ARRAY['default']::text[]) AS q(name) CROSS JOIN LATERAL (
    SELECT id, priority, run_at FROM fastq_job WHERE state = 'queued' AND queue = q.name
    AND run_at <= now() ORDER BY priority DESC, run_at, id LIMIT :batch FOR UPDATE SKIP LOCKED
  ) AS p ORDER BY p.priority DESC, p.run_at, p.id LIMIT :batch),
claimed AS (UPDATE fastq_job j SET state = 'running', attempts = j.attempts + 1,
    lease_token = :token, lease_expires_at = now() + 30000::bigint * interval '1 millisecond',
    started_at = now(), worker = 'limit' FROM c WHERE j.id = c.id
  RETURNING j.id, j.task, j.queue, j.args, j.kwargs, j.priority, j.attempts, j.max_attempts,
    j.expires_at IS NOT NULL AND j.expires_at < now(), j.cancel_requested)
SELECT coalesce(json_agg(json_build_object('id', id, 'token', :token::bigint,
  'state', 'succeeded', 'result', 'null')), '[]') AS done FROM claimed
\gset
UPDATE fastq_job j SET state = v.state, result = v.result,
  error_type = COALESCE(v.error_type, ''), error = COALESCE(v.error, ''),
  traceback = COALESCE(v.traceback, ''),
  finished_at = CASE WHEN v.state = 'queued' THEN NULL ELSE now() END,
  run_at = COALESCE(to_timestamp(v.retry_at_us / 1e6), j.run_at), lease_token = NULL,
  lease_expires_at = NULL
FROM json_to_recordset(:done::json) AS v(id uuid, token bigint, state text, result text,
  error_type text, error text, traceback text, retry_at_us bigint)
WHERE j.id = v.id AND j.lease_token = v.token AND j.state = 'running';

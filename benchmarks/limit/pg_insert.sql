-- fastq's enqueue statement (src/cpp/core/postgres_driver.cpp, PostgresDriver::enqueue),
-- one batch of :rows (a JSON array passed with pgbench -D) per transaction. The ids are
-- drawn by the server instead of the client; everything else is the same statement.
INSERT INTO fastq_job (id, task, queue, priority, state, args, kwargs, run_at, attempts,
  max_attempts, expires_at, cancel_requested, unique_key, worker, error_type, error,
  traceback, created_at)
SELECT gen_random_uuid(), task, queue, priority, 'queued', args, kwargs,
  COALESCE(to_timestamp(run_at_us / 1e6), now()), 0, max_attempts,
  to_timestamp(expires_at_us / 1e6), false, unique_key, '', '', '', '', now()
FROM json_to_recordset(:rows::json) AS x(task text, queue text, priority int, args text,
  kwargs text, run_at_us bigint, max_attempts int, expires_at_us bigint, unique_key text)
ON CONFLICT (unique_key) WHERE state IN ('queued', 'running') DO NOTHING
RETURNING id;

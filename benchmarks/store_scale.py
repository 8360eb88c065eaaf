"""The job store at scale: are rescue, lookups by id, the admin list, the unique index and
the claim still fast with --running jobs running and --finished jobs finished?
(docs/job-store.md, "Proof at scale".)

Builds the job store as fastq's migrations make it (migration 0017) in its own database,
with day partitions for the past week, fills the finished log server-side
(generate_series, spread over the last six days) and the active table with --running
running and --queued queued jobs, VACUUM ANALYZEs, then times each statement as fastq or
the admin sends it (median of --repeats, `EXPLAIN (ANALYZE)`'s execution time; the plans
are printed).

    .venv/bin/python benchmarks/store_scale.py --finished 10000000 --running 10000
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import store_designs as sd
from harness import pgsql

DB = f"{sd.PREFIX}_scale"

FILL = """
INSERT INTO fastq_finished (id, task, queue, priority, state, args, kwargs, result, attempts,
  max_attempts, envelope, created_at, run_at, started_at, finished_at, worker)
SELECT (lpad(to_hex((extract(epoch FROM t) * 1000)::bigint), 12, '0') || '7'
  || substr(md5(g::text), 1, 3) || '8' || substr(md5(g::text), 4, 15))::uuid,  -- a UUIDv7
  'bench.tasks.noop', 'default', 0,
  CASE WHEN random() < 0.01 THEN 'failed' ELSE 'succeeded' END, '[]', '{}', 'null',
  1, 4, 1, t - interval '2 ms', t - interval '2 ms', t - interval '1 ms', t, 'bench'
FROM (SELECT g, now() - interval '6 days' + (g * (interval '6 days' / %(n)s)) AS t
      FROM generate_series(1, %(n)s) g) s;
"""
# The past week's day partitions, as a week of the leader's upkeep leaves them.
PAST_PARTITIONS = """
DO $$ BEGIN
  FOR k IN 1..7 LOOP
    EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF fastq_finished '
      'FOR VALUES FROM (%L) TO (%L)',
      'fastq_finished_p' || to_char(current_date - k, 'YYYYMMDD'),
      (current_date - k)::timestamp AT TIME ZONE 'UTC',
      (current_date - k + 1)::timestamp AT TIME ZONE 'UTC');
  END LOOP;
END $$;
"""


def bound(sql: str, *params: str) -> str:
    """A statement of src/sql/postgres.sql with its parameters written in."""
    for i in range(len(params), 0, -1):
        sql = sql.replace(f"${i}", params[i - 1])
    return sql


ACTIVE_FILL = """
INSERT INTO fastq_active (id, task, queue, priority, state, args, kwargs, attempts,
  max_attempts, envelope, lease_token, lease_expires_at, worker, run_at, unique_key)
SELECT (lpad(to_hex((extract(epoch FROM now()) * 1000)::bigint), 12, '0') || '7'
  || substr(md5(%(state)s || g), 1, 3) || '8' || substr(md5(%(state)s || g), 4, 15))::uuid,
  'bench.tasks.noop', 'default', 0, %(state)s::text, '[]', '{}',
  %(attempts)s, 4, 1, %(token)s, %(lease)s, %(worker)s,
  now() - interval '1 hour' + g * interval '1 us',
  CASE WHEN g %% 10 = 0 THEN %(state)s::text || g END
FROM generate_series(1, %(n)s) g;
"""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--finished", type=int, default=10_000_000)
    p.add_argument("--running", type=int, default=10_000)
    p.add_argument("--queued", type=int, default=100_000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default=str(sd.HERE / "results" / "store_scale.json"))
    opts = p.parse_args()
    sd.make_base()
    sd.admin(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    sd.admin(f"CREATE DATABASE {DB} TEMPLATE {sd.STORE_DB}")
    sd.admin(f"DROP DATABASE IF EXISTS {sd.BASE_DB} WITH (FORCE)")
    sd.admin(f"DROP DATABASE IF EXISTS {sd.STORE_DB} WITH (FORCE)")
    result: dict[str, Any] = {"finished": opts.finished, "running": opts.running}
    try:
        with psycopg.connect(dbname=DB, autocommit=True, **sd.PG) as conn:
            conn.execute(PAST_PARTITIONS)
            t = time.perf_counter()
            conn.execute(FILL, {"n": opts.finished})  # type: ignore[arg-type]
            for state, n, lease in (
                ("running", opts.running, "now() + interval '30 s'"),
                ("queued", opts.queued, None),
            ):
                sql = ACTIVE_FILL.replace("%(lease)s", lease or "NULL")
                conn.execute(
                    sql,  # type: ignore[arg-type]
                    {
                        "state": state,
                        "n": n,
                        "attempts": 1 if state == "running" else 0,
                        "token": 42 if state == "running" else None,
                        "worker": "w" if state == "running" else "",
                    },
                )
            conn.execute("VACUUM ANALYZE fastq_active")
            conn.execute("VACUUM ANALYZE fastq_finished")
            result["fill_s"] = time.perf_counter() - t
            some = conn.execute(
                "SELECT id FROM fastq_finished WHERE finished_at > now() - interval '1 day' "
                "LIMIT 1 OFFSET 1000"
            ).fetchone()[0]  # type: ignore[index]
            running = conn.execute(
                "SELECT id FROM fastq_active WHERE state = 'running' LIMIT 1"
            ).fetchone()[0]  # type: ignore[index]
            statements = {
                "rescue (nothing expired)": bound(
                    pgsql.statement("rescue"), "'E'", "'e'", "'f'", "3"
                ),
                "lookup by id, a finished job (get_job: the view)": bound(
                    pgsql.statement("get_job"), f"'{some}'"
                ),
                "lookup by id, a running job (get_job: the view)": bound(
                    pgsql.statement("get_job"), f"'{running}'"
                ),
                # The admin's changelist (JobAdmin.ordering: newest first by id), 51 rows.
                "admin list, every job, newest 51": (
                    "SELECT id, task, state, created_at FROM fastq_job ORDER BY id DESC LIMIT 51"
                ),
                "admin list, state = succeeded, newest 51": (
                    "SELECT id, task, state, created_at FROM fastq_job "
                    "WHERE state = 'succeeded' ORDER BY id DESC LIMIT 51"
                ),
                "admin list, state = failed, newest 51": (
                    "SELECT id, task, state, created_at FROM fastq_job "
                    "WHERE state = 'failed' ORDER BY id DESC LIMIT 51"
                ),
                "admin list, state = running, newest 51": (
                    "SELECT id, task, state, created_at FROM fastq_job "
                    "WHERE state = 'running' ORDER BY id DESC LIMIT 51"
                ),
                "dashboard: last 15 minutes' outcomes (the BRIN on finished_at)": (
                    "SELECT state, count(*) FROM fastq_finished "
                    "WHERE finished_at >= now() - interval '15 minutes' GROUP BY state"
                ),
                "unique enqueue, key in use": (
                    "INSERT INTO fastq_active (id, task, unique_key, max_attempts, envelope) "
                    "VALUES (gen_random_uuid(), 'bench.tasks.noop', 'running10', 4, 1) "
                    "ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING"
                ),
                "claim 256 (with the running jobs ahead in the claim index)": bound(
                    pgsql.statement("claim"),
                    "256",
                    "30000",
                    "7",
                    "'w'",
                    "ARRAY['default']",
                    "false",
                    str(pgsql.ATTEMPTS_CEILING),
                ),
            }
            conn.autocommit = False
            for label, sql in statements.items():
                times = []
                plan = ""
                for _ in range(opts.repeats):
                    rows = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}").fetchall()  # type: ignore[arg-type]
                    conn.rollback()
                    plan = "\n".join(r[0] for r in rows)
                    times.append(float(plan.rsplit("Execution Time: ", 1)[1].split()[0]))
                ms = statistics.median(times)
                result[label] = ms
                print(f"\n== {label}: {ms:.2f} ms (median of {opts.repeats})\n{plan}", flush=True)
            conn.autocommit = True
            sizes = conn.execute(
                "SELECT pg_size_pretty(sum(pg_table_size(relid))), "
                "pg_size_pretty(sum(pg_indexes_size(relid))) FROM pg_partition_tree("
                "'fastq_finished') WHERE isleaf"
            ).fetchone()
            result["finished_log_size"] = {"table": sizes[0], "indexes": sizes[1]}  # type: ignore[index]
    finally:
        sd.admin(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    print("\n| statement | ms |\n|---|---:|")
    for k, v in result.items():
        if isinstance(v, float) and k != "fill_s":
            print(f"| {k} | {v:.2f} |")
    out = Path(opts.out)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"finished log: {result['finished_log_size']}; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

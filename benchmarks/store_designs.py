"""Job-store table designs on the local PostgreSQL, same load for each (issue 17).

For every design: a fresh database copied from fastq's migrated schema (the benchmark
project's `migrate`), the design's DDL applied on top, then

1. enqueue: --jobs no-op jobs by COPY (the columns fastq's driver copies), batches of
   --copy-batch rows, one connection;
2. claim + complete: pgbench -M prepared, 2 clients, each looping "claim --batch with FOR
   UPDATE SKIP LOCKED, then complete those" until the jobs are drained (as fastq's worker
   claims and completes on two connections).

Per design and run it records jobs/s of claim + complete, WAL bytes per job for each phase
and over the job's life (enqueue + claim + complete), % HOT updates (n_tup_hot_upd /
n_tup_upd of the design's tables) and table + index sizes after the run.

WAL: `pg_current_wal_lsn()` differences are the whole server's WAL, and the server is
shared. So the WAL of each phase is also read back with pg_waldump (a temporary physical
replication slot keeps it until it is read) and only the records of the benchmark's
database and the commit records of its transactions are counted ("attributed"). Both are
reported; they agree on a quiet server. A CHECKPOINT runs before each design's enqueue so
that every design pays its full-page images from the same point.

    .venv/bin/python benchmarks/store_designs.py                 # all designs, 2 runs each
    .venv/bin/python benchmarks/store_designs.py --designs today,active --runs 3 --jobs 50000

Writes benchmarks/results/store_designs.json and prints a Markdown table
(docs/benchmarks.md, "Job store designs"; docs/job-store.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from harness import pgsql

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PG = {"host": "127.0.0.1", "user": "postgres"}
PREFIX = "bench17_designs"
BASE_DB = f"{PREFIX}_base"
STORE_DB = f"{PREFIX}_store_base"
PGBIN = Path("/usr/lib/postgresql/15/bin")
CLIENTS = 2
LEASE_MS = 30000
ATTEMPTS_CEILING = 1_000_000_000  # kAttemptsCeiling (src/cpp/core/include/fastq/types.hpp)

# ---------------------------------------------------------------------------------------
# Statements. {t} is the table the claim reads; the claim is src/cpp/core/postgres_driver.cpp
# claim_sql() with $1 = :batch, $2 = the lease, $3 = :token, $4 = the worker, $5 = the
# queues, $6 = false (no limited queue locked), and RETURNING turned into the JSON the
# completion takes (built by the server, as harness/pgsql.py does for the built store).
# ---------------------------------------------------------------------------------------


def claim_sql(table: str, extra_filter: str = "", set_started: str = "started_at = NULL, ") -> str:
    return f"""\\set token random(1, 4611686018427387903)
WITH qs AS (SELECT q.name, CASE WHEN s.concurrency IS NULL THEN :batch ELSE
    GREATEST(0, LEAST(:batch, s.concurrency - (SELECT count(*) FROM {table} r WHERE
    r.state = 'running' AND r.queue = q.name AND r.lease_expires_at > now()))) END AS room
  FROM unnest(ARRAY['default']::text[]) AS q(name) LEFT JOIN fastq_queue s ON s.name = q.name
  WHERE s.paused IS NOT TRUE AND (s.concurrency IS NULL OR false)),
c AS (SELECT p.id FROM qs CROSS JOIN LATERAL (
    SELECT id, priority, run_at FROM {table} WHERE state = 'queued' AND queue = qs.name
    AND run_at <= now(){extra_filter} ORDER BY priority DESC, run_at, id LIMIT qs.room
    FOR UPDATE SKIP LOCKED) AS p ORDER BY p.priority DESC, p.run_at, p.id LIMIT :batch),
claimed AS (UPDATE {table} j SET state = 'running', attempts = CASE WHEN j.attempts <
    {ATTEMPTS_CEILING} THEN j.attempts + 1 ELSE j.attempts END, lease_token = :token,
    lease_expires_at = now() + {LEASE_MS}::bigint * interval '1 millisecond',
    {set_started}worker = 'bench' FROM c WHERE j.id = c.id
  RETURNING j.id, j.task, j.queue, j.args, j.kwargs, j.priority, j.attempts, j.max_attempts,
    j.expires_at IS NOT NULL AND j.expires_at < now(), j.cancel_requested, j.envelope,
    COALESCE(j.time_limit, 0), COALESCE(j.soft_time_limit, 0), COALESCE(j.rate_key, ''))
SELECT coalesce(json_agg(json_build_object('id', id, 'token', :token::bigint,
  'state', 'succeeded', 'result', 'null', 'started_ago_us', 1000)), '[]') AS done FROM claimed
\\gset
"""


OUTCOMES = (
    "json_to_recordset(:done::json) AS v(id uuid, token bigint, state text, result text, "
    "error_type text, error text, traceback text, retry_at_us bigint, started_ago_us bigint)"
)

# PostgresDriver::complete, jobs outside workflows.
COMPLETE_UPDATE = f"""UPDATE fastq_job j SET state = v.state, result = v.result,
  error_type = COALESCE(v.error_type, ''), error = COALESCE(v.error, ''),
  traceback = COALESCE(v.traceback, ''),
  finished_at = CASE WHEN v.state = 'queued' THEN NULL ELSE now() END,
  run_at = COALESCE(to_timestamp(v.retry_at_us / 1e6), j.run_at),
  started_at = COALESCE(j.started_at, now() - v.started_ago_us * interval '1 microsecond'),
  lease_token = NULL, lease_expires_at = NULL
FROM {OUTCOMES}
WHERE j.id = v.id AND j.lease_token = v.token AND j.state = 'running' AND j.workflow_id IS NULL;
"""

DELETE_ONLY = f"""DELETE FROM fastq_active a USING {OUTCOMES}
WHERE a.id = v.id AND a.lease_token = v.token AND a.state = 'running'
  AND a.workflow_id IS NULL AND v.state <> 'queued';
"""


# PostgresDriver::rescue_expired on the active table: no lease index, a scan of the active
# rows (queued and running only). Jobs charged dead move to the finished log (not shown).
RESCUE_ACTIVE = """UPDATE fastq_active SET state = 'queued', lease_token = NULL,
  lease_expires_at = NULL, worker = '' WHERE state = 'running' AND lease_expires_at < now()"""


def move_to_log(columns: list[str]) -> str:
    """Completion as DELETE from the active table + INSERT of the finished row into the
    log, in one statement (retries, v.state = 'queued', stay an UPDATE of the active row:
    not part of this load)."""
    override = {
        "state": "v_state",
        "result": "v_result",
        "error_type": "COALESCE(v_error_type, '')",
        "error": "COALESCE(v_error, '')",
        "traceback": "COALESCE(v_traceback, '')",
        "finished_at": "now()",
        "started_at": "COALESCE(started_at, now() - v_started_ago_us * interval '1 microsecond')",
        "lease_token": "NULL",
        "lease_expires_at": "NULL",
    }
    select = ", ".join(override.get(c, c) for c in columns)
    return f"""WITH d AS (DELETE FROM fastq_active a USING {OUTCOMES}
  WHERE a.id = v.id AND a.lease_token = v.token AND a.state = 'running'
    AND a.workflow_id IS NULL AND v.state <> 'queued'
  RETURNING a.*, v.state AS v_state, v.result AS v_result, v.error_type AS v_error_type,
    v.error AS v_error, v.traceback AS v_traceback, v.started_ago_us AS v_started_ago_us)
INSERT INTO fastq_finished ({", ".join(columns)}) SELECT {select} FROM d;
"""


# ---------------------------------------------------------------------------------------
# Designs
# ---------------------------------------------------------------------------------------


@dataclass
class Design:
    key: str
    title: str
    ddl: str  # run on the migrated schema
    copy_table: str
    tables: list[str]  # whose HOT updates and sizes are reported (partitioned: the parent)
    claim_table: str
    claim_filter: str = ""
    completion: str = "update"  # update | move | delete | store
    base: str = "0016"  # the schema it starts from: 0016 (one fastq_job table) or "store"

    def script(self, columns: list[str]) -> str:
        if self.completion == "store":
            return pgsql.claim_complete_script()
        body = claim_sql(self.claim_table, self.claim_filter)
        if self.completion == "update":
            return body + COMPLETE_UPDATE
        if self.completion == "delete":
            return body + DELETE_ONLY
        return body + move_to_log(columns)


# The active table: fastq_job's columns, defaults and CHECKs; fillfactor 50 so that the
# claim's update finds room on its page (HOT); the claim index is not filtered on state
# (the claim changes no indexed column); no lease index (rescue scans a small table).
ACTIVE = """
CREATE TABLE fastq_active (LIKE fastq_job INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
  WITH (fillfactor = 50);
ALTER TABLE fastq_active ADD PRIMARY KEY (id);
CREATE INDEX fastq_active_claim ON fastq_active (queue, priority DESC, run_at, id);
CREATE UNIQUE INDEX fastq_active_unique ON fastq_active (unique_key)
  WHERE unique_key IS NOT NULL;
CREATE INDEX fastq_active_workflow ON fastq_active (workflow_id) WHERE workflow_id IS NOT NULL;
CREATE TRIGGER fastq_active_notify AFTER INSERT ON fastq_active
  FOR EACH STATEMENT EXECUTE FUNCTION fastq_notify();
"""


def finished_log(indexes: str) -> str:
    """The finished log: fastq_job's columns, partitioned by day of finished_at; a week of
    partitions around today (retention drops the oldest)."""
    today = dt.datetime.now(dt.UTC).date()
    parts = []
    for d in range(-3, 4):
        lo, hi = today + dt.timedelta(days=d), today + dt.timedelta(days=d + 1)
        parts.append(
            f"CREATE TABLE fastq_finished_{lo:%Y%m%d} PARTITION OF fastq_finished "
            f"FOR VALUES FROM ('{lo}') TO ('{hi}');"
        )
    return (
        "CREATE TABLE fastq_finished (LIKE fastq_job INCLUDING DEFAULTS) "
        "PARTITION BY RANGE (finished_at);\n" + "\n".join(parts) + "\n" + indexes
    )


DESIGNS = {
    d.key: d
    for d in (
        Design(
            "today",
            "today's fastq_job and statements",
            "",
            "fastq_job",
            ["fastq_job"],
            "fastq_job",
        ),
        Design(
            "minidx",
            "today's, minimum indexes (no (state, created_at); unique index only WHERE "
            "unique_key IS NOT NULL)",
            """
DROP INDEX fastq_job_state_created;
ALTER TABLE fastq_job DROP CONSTRAINT IF EXISTS fastq_job_unique_active;
DROP INDEX IF EXISTS fastq_job_unique_active;
CREATE UNIQUE INDEX fastq_job_unique_active ON fastq_job (unique_key)
  WHERE unique_key IS NOT NULL AND state IN ('queued', 'running');
""",
            "fastq_job",
            ["fastq_job"],
            "fastq_job",
        ),
        Design(
            "active",
            "small active table (fillfactor 50, claim index not filtered on state, no lease "
            "index) + completion = DELETE there and INSERT into a finished log partitioned "
            "by day (indexes: id, finished_at)",
            ACTIVE
            + finished_log(
                "CREATE INDEX fastq_finished_id ON fastq_finished (id);\n"
                "CREATE INDEX fastq_finished_at ON fastq_finished (finished_at);"
            ),
            "fastq_active",
            ["fastq_active", "fastq_finished"],
            "fastq_active",
            completion="move",
        ),
        Design(
            "active-idonly",
            "the same, finished log with the id index only",
            ACTIVE + finished_log("CREATE INDEX fastq_finished_id ON fastq_finished (id);"),
            "fastq_active",
            ["fastq_active", "fastq_finished"],
            "fastq_active",
            completion="move",
        ),
        Design(
            "active-queuedidx",
            "the active table with its claim index WHERE state = 'queued' (running rows "
            "out of the claim's way, so the claim is not HOT) + the finished log (id, "
            "finished_at)",
            ACTIVE.replace(
                "(queue, priority DESC, run_at, id);",
                "(queue, priority DESC, run_at, id) WHERE state = 'queued';",
            )
            + finished_log(
                "CREATE INDEX fastq_finished_id ON fastq_finished (id);\n"
                "CREATE INDEX fastq_finished_at ON fastq_finished (finished_at);"
            ),
            "fastq_active",
            ["fastq_active", "fastq_finished"],
            "fastq_active",
            completion="move",
        ),
        Design(
            "onetable-hot",
            "one table, HOT claim: fillfactor 50, claim and unique indexes WHERE finished_at "
            "IS NULL (state in no index), no lease or (state, created_at) index; completion "
            "an UPDATE that sets finished_at",
            """
ALTER TABLE fastq_job SET (fillfactor = 50);
DROP INDEX fastq_job_state_created;
DROP INDEX fastq_job_claim;
DROP INDEX fastq_job_lease;
ALTER TABLE fastq_job DROP CONSTRAINT IF EXISTS fastq_job_unique_active;
DROP INDEX IF EXISTS fastq_job_unique_active;
CREATE INDEX fastq_job_claim ON fastq_job (queue, priority DESC, run_at, id)
  WHERE finished_at IS NULL;
CREATE UNIQUE INDEX fastq_job_unique_active ON fastq_job (unique_key)
  WHERE unique_key IS NOT NULL AND finished_at IS NULL;
""",
            "fastq_job",
            ["fastq_job"],
            "fastq_job",
            claim_filter=" AND finished_at IS NULL",
        ),
        Design(
            "store",
            "the job store as built (migration 0017 and src/sql/postgres.sql's claim and "
            "complete): the active table + the finished log partitioned by day (indexes: "
            "id, finished_at, partial workflow_id and group_label)",
            "",
            "fastq_active",
            ["fastq_active", "fastq_finished"],
            "fastq_active",
            completion="store",
            base="store",
        ),
        Design(
            "floor",
            "keep nothing: the active table, completion = DELETE (no history) - the floor",
            ACTIVE,
            "fastq_active",
            ["fastq_active"],
            "fastq_active",
            completion="delete",
        ),
    )
}


# ---------------------------------------------------------------------------------------
# Database helpers
# ---------------------------------------------------------------------------------------


def admin(sql: str) -> None:
    with psycopg.connect(dbname="postgres", autocommit=True, **PG) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def lsn(conn: psycopg.Connection[Any]) -> str:
    return conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]  # type: ignore[index]


def lsn_diff(conn: psycopg.Connection[Any], a: str, b: str) -> int:
    row = conn.execute("SELECT pg_wal_lsn_diff(%s::pg_lsn, %s::pg_lsn)", (b, a)).fetchone()
    return int(row[0])  # type: ignore[index]


def make_base() -> None:
    """The benchmark project's databases, migrated: BASE_DB with fastq_job as one table
    (fastq_django 0016, the designs' starting point), STORE_DB with the job store."""
    for db, target in ((BASE_DB, "0016"), (STORE_DB, None)):
        admin(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        admin(f"CREATE DATABASE {db}")
        env = dict(os.environ, BENCH_BROKER="postgres", BENCH_DB=db, PYTHONPATH=str(HERE))
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
            cwd=HERE,
            env=env,
            check=True,
        )
        if target:
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "fastq_django", target, "-v", "0"],
                cwd=HERE,
                env=env,
                check=True,
            )


RECORD = re.compile(r"len \(rec/tot\):\s*(\d+)/\s*(\d+), tx:\s*(\d+),")


def attributed_wal(start: str, end: str, dboid: int) -> dict[str, int]:
    """Bytes of the WAL between two LSNs that belong to database ``dboid``: records whose
    block references name it, and the records (commits) of transactions that wrote one."""
    wal_dir = Path(
        subprocess.run(
            ["psql", "-h", PG["host"], "-U", PG["user"], "-Atc", "SHOW data_directory"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    proc = subprocess.Popen(
        [str(PGBIN / "pg_waldump"), "-p", str(wal_dir / "pg_wal"), "-s", start, "-e", end],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout
    ours = f" rel 1663/{dboid}/"
    total = rec = fpi_records = 0
    pending: dict[int, int] = defaultdict(int)
    xids: set[int] = set()
    for line in proc.stdout:
        m = RECORD.search(line)
        if not m:
            continue
        r, t, tx = int(m.group(1)), int(m.group(2)), int(m.group(3))
        if ours in line:
            total += t
            rec += r
            fpi_records += t > r
            if tx:
                xids.add(tx)
        elif tx:
            pending[tx] += t
    proc.wait()
    others = sum(b for x, b in pending.items() if x in xids)
    return {"bytes": total + others, "bytes_without_fpi": rec + others, "fpi_records": fpi_records}


@dataclass
class Run:
    design: str
    run: int
    jobs: int
    figures: dict[str, Any]


def run_design(design: Design, run: int, jobs: int, copy_batch: int, batch: int) -> Run:
    db = f"{PREFIX}_{design.key.replace('-', '_')}"
    admin(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    admin(f"CREATE DATABASE {db} TEMPLATE {STORE_DB if design.base == 'store' else BASE_DB}")
    figs: dict[str, Any] = {}
    try:
        with psycopg.connect(dbname=db, autocommit=True, **PG) as conn:
            if design.ddl.strip():
                conn.execute(design.ddl)  # type: ignore[arg-type]
            dboid = conn.execute(
                "SELECT oid FROM pg_database WHERE datname = current_database()"
            ).fetchone()[0]  # type: ignore[index]
            columns = [
                r[0]
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = "
                    "'fastq_job' ORDER BY ordinal_position"
                ).fetchall()
            ]
            conn.execute("CHECKPOINT")
            # 1. enqueue by COPY, as PostgresDriver::enqueue sends jobs without unique keys.
            a = lsn(conn)
            t0 = time.perf_counter()
            cols = "id, task, queue, priority, args, kwargs, max_attempts, envelope"
            row = "\tbench.tasks.noop\tdefault\t0\t[]\t{}\t4\t1\n"
            left = jobs
            while left:
                n = min(copy_batch, left)
                data = "".join(str(uuid.uuid4()) + row for _ in range(n))
                copy = f"COPY {design.copy_table} ({cols}) FROM STDIN"
                with conn.transaction(), conn.cursor().copy(copy) as cp:
                    cp.write(data)
                left -= n
            figs["enqueue_s"] = time.perf_counter() - t0
            b = lsn(conn)
            conn.execute(f"ANALYZE {design.copy_table}")
            # 2. claim + complete, 2 clients.
            with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
                f.write(design.script(columns))
                script = f.name
            per_client = jobs // (CLIENTS * batch)
            c = lsn(conn)
            cmd = [str(PGBIN / "pgbench"), "-h", PG["host"], "-U", PG["user"], "-n"]
            cmd += ["-M", "prepared", "-c", str(CLIENTS), "-j", str(CLIENTS)]
            cmd += ["-t", str(per_client), "-f", script, "-D", f"batch={batch}", db]
            t1 = time.perf_counter()
            out = subprocess.run(cmd, capture_output=True, text=True)
            wall = time.perf_counter() - t1
            d = lsn(conn)
            os.unlink(script)
            if out.returncode != 0:
                raise RuntimeError(f"{design.key}: pgbench failed\n{out.stderr[-3000:]}")
            m = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out.stdout)
            assert m, out.stdout
            done_expected = per_client * CLIENTS * batch
            time.sleep(1.0)  # pgbench's backends have exited: their statistics are flushed
            figs |= table_figures(conn, design)
            figs["claimed_complete"] = done_expected
            figs["done"] = count_done(conn, design)
            if figs["done"] != done_expected:
                raise RuntimeError(f"{design.key}: {figs['done']} done, {done_expected} expected")
            figs["jobs_per_s"] = float(m.group(1)) * batch
            figs["pgbench_wall_s"] = wall
            figs["enqueue_jobs_per_s"] = jobs / figs["enqueue_s"]
            figs["lsn_enqueue_bytes"] = lsn_diff(conn, a, b)
            figs["lsn_claim_complete_bytes"] = lsn_diff(conn, c, d)
        enq = attributed_wal(a, b, dboid)
        cc = attributed_wal(c, d, dboid)
        figs["wal_enqueue_per_job"] = enq["bytes"] / jobs
        figs["wal_claim_complete_per_job"] = cc["bytes"] / done_expected
        figs["wal_life_per_job"] = figs["wal_enqueue_per_job"] + figs["wal_claim_complete_per_job"]
        figs["wal_claim_complete_per_job_no_fpi"] = cc["bytes_without_fpi"] / done_expected
        figs["wal_enqueue_per_job_no_fpi"] = enq["bytes_without_fpi"] / jobs
        figs["fpi_records_claim_complete"] = cc["fpi_records"]
        figs["lsn_enqueue_per_job"] = figs["lsn_enqueue_bytes"] / jobs
        figs["lsn_claim_complete_per_job"] = figs["lsn_claim_complete_bytes"] / done_expected
        figs["load_1min"] = os.getloadavg()[0]
    finally:
        admin(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    return Run(design.key, run, jobs, figs)


def count_done(conn: psycopg.Connection[Any], design: Design) -> int:
    """Jobs that reached their end (checks that every claim found a full batch)."""
    if design.completion == "delete":
        running = conn.execute("SELECT count(*) FROM fastq_active WHERE state = 'running'")
        assert running.fetchone()[0] == 0  # type: ignore[index]
        row = conn.execute(
            "SELECT n_tup_del FROM pg_stat_user_tables WHERE relname = 'fastq_active'"
        ).fetchone()
        return int(row[0])  # type: ignore[index]
    table = "fastq_finished" if design.completion in ("move", "store") else "fastq_job"
    row = conn.execute(f"SELECT count(*) FROM {table} WHERE state = 'succeeded'").fetchone()
    return int(row[0])  # type: ignore[index]


def table_figures(conn: psycopg.Connection[Any], design: Design) -> dict[str, Any]:
    upd = hot = 0
    heap = idx = 0
    for t in design.tables:
        rels = [
            r[0]
            for r in conn.execute(
                "SELECT relid::regclass::text FROM pg_partition_tree(%s) WHERE isleaf", (t,)
            ).fetchall()
        ] or [t]
        for rel in rels:
            row = conn.execute(
                "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relid = "
                "%s::regclass",
                (rel,),
            ).fetchone()
            if row:
                upd += row[0]
                hot += row[1]
            sizes = conn.execute(
                "SELECT pg_table_size(%s::regclass), pg_indexes_size(%s::regclass)", (rel, rel)
            ).fetchone()
            heap += sizes[0]  # type: ignore[index]
            idx += sizes[1]  # type: ignore[index]
    return {
        "updates": upd,
        "hot_updates": hot,
        "hot_pct": 100.0 * hot / upd if upd else None,
        "table_mb": heap / 2**20,
        "index_mb": idx / 2**20,
    }


def summary(runs: list[Run], keys: list[str]) -> str:
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        by[r.design].append(r.figures)

    def med(k: str, f: str) -> float:
        return statistics.median(x[f] for x in by[k])

    def spread(k: str, f: str, fmt: str) -> str:
        v = [x[f] for x in by[k]]
        return f"{min(v):{fmt}}..{max(v):{fmt}}"

    lines = [
        "| design | claim+complete jobs/s (min..max) | WAL B/job claim+complete "
        "(no FPI) | WAL B/job enqueue | WAL B/job life | lsn diff B/job claim+complete | "
        "HOT updates | table MB | index MB | load (1 min) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for k in keys:
        if k not in by:
            continue
        hot = [x["hot_pct"] for x in by[k] if x["hot_pct"] is not None]
        hot_s = f"{statistics.median(hot):.0f}%" if hot else "-"
        lines.append(
            f"| {k} | {med(k, 'jobs_per_s'):,.0f} ({spread(k, 'jobs_per_s', ',.0f')}) | "
            f"{med(k, 'wal_claim_complete_per_job'):,.0f} "
            f"({med(k, 'wal_claim_complete_per_job_no_fpi'):,.0f}) | "
            f"{med(k, 'wal_enqueue_per_job'):,.0f} | {med(k, 'wal_life_per_job'):,.0f} | "
            f"{med(k, 'lsn_claim_complete_per_job'):,.0f} | {hot_s} | "
            f"{med(k, 'table_mb'):.1f} | {med(k, 'index_mb'):.1f} | "
            f"{spread(k, 'load_1min', '.1f')} |"
        )
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--designs", default=",".join(DESIGNS))
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--jobs", type=int, default=200_000)
    p.add_argument("--copy-batch", type=int, default=5_000)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--out", default=str(HERE / "results" / "store_designs.json"))
    opts = p.parse_args()
    keys = [k for k in opts.designs.split(",") if k]
    for k in keys:
        if k not in DESIGNS:
            p.error(f"unknown design {k!r} (known: {', '.join(DESIGNS)})")
    settings = {}
    with psycopg.connect(dbname="postgres", autocommit=True, **PG) as conn:
        for s in (
            "server_version",
            "fsync",
            "synchronous_commit",
            "full_page_writes",
            "wal_level",
            "wal_compression",
            "shared_buffers",
            "max_wal_size",
        ):
            settings[s] = conn.execute(f"SHOW {s}").fetchone()[0]  # type: ignore[index]
        # Keeps the WAL of the run until pg_waldump has read it; dropped with the session.
        conn.execute("SELECT pg_create_physical_replication_slot(%s, true, true)", (PREFIX,))
        print("server:", ", ".join(f"{k}={v}" for k, v in settings.items()), flush=True)
        make_base()
        runs: list[Run] = []
        try:
            for i in range(opts.runs):
                for k in keys:  # designs interleaved: a noisy minute hits every design
                    r = run_design(DESIGNS[k], i, opts.jobs, opts.copy_batch, opts.batch)
                    f = r.figures
                    print(
                        f"  {i} {k:14} {f['jobs_per_s']:>9,.0f} jobs/s  WAL/job "
                        f"claim+complete {f['wal_claim_complete_per_job']:,.0f} "
                        f"(lsn {f['lsn_claim_complete_per_job']:,.0f}) life "
                        f"{f['wal_life_per_job']:,.0f}  HOT "
                        f"{(f['hot_pct'] or 0):.0f}%  table {f['table_mb']:.0f} MB index "
                        f"{f['index_mb']:.0f} MB  load {f['load_1min']:.1f}",
                        flush=True,
                    )
                    runs.append(r)
        finally:
            admin(f"DROP DATABASE IF EXISTS {BASE_DB} WITH (FORCE)")
    table = summary(runs, keys)
    print("\n" + table)
    out = Path(opts.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "server": settings,
                "jobs": opts.jobs,
                "batch": opts.batch,
                "clients": CLIENTS,
                "designs": {k: DESIGNS[k].title for k in keys},
                "runs": [r.__dict__ for r in runs],
            },
            indent=1,
        )
        + "\n"
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The SQL limit: fastq's own statements with no queue logic around them.

PostgreSQL: pgbench with scripts made of fastq's own statements (harness/pgsql.py reads
them from src/sql/postgres.sql): the enqueue statement, then claim + complete in a loop.
SQLite: a small C++ program (benchmarks/limit/sqlite_limit.cpp, built here with g++
against the system's libsqlite3).
Both run on fastq's real schema (``manage.py migrate`` of the fastq project), so indexes
and the NOTIFY trigger cost what they cost fastq.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness import pgsql
from harness.systems import HERE, PG, Target, pg_wal_bytes, pg_wal_lsn

LIMIT_DIR = HERE / "limit"
INSERT_BATCH = 1000  # rows per INSERT: a pgbench -D variable must stay under 128 KiB
SQLITE_INSERT_BATCH = 2000  # task.map's rows per statement on SQLite (broker._MAX_ROWS)
CLAIM_BATCH = 256  # fastq_worker's default --claim-batch
CLIENTS = 2  # fastq's worker claims and completes on two connections at once


@dataclass
class Limit:
    insert_jobs_per_s: float
    drain_jobs_per_s: float
    jobs: int
    insert_wal_per_job: float | None = None  # PostgreSQL: pg_current_wal_lsn() differences
    drain_wal_per_job: float | None = None


def _pgbench(db: str, script: str, clients: int, transactions: int, **variables: str) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
    try:
        return _run_pgbench(db, f.name, clients, transactions, **variables)
    finally:
        os.unlink(f.name)


def _run_pgbench(db: str, path: str, clients: int, transactions: int, **variables: str) -> float:
    cmd = ["pgbench", "-h", PG["host"], "-U", PG["user"], "-n", "-M", "prepared"]
    cmd += ["-c", str(clients), "-j", str(clients), "-t", str(transactions)]
    cmd += ["-f", path]
    for k, v in variables.items():
        cmd += ["-D", f"{k}={v}"]
    out = subprocess.run([*cmd, db], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"pgbench {path} failed:\n{out.stderr[-2000:]}")
    m = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out.stdout)
    if not m:
        raise RuntimeError(f"pgbench {path}: no tps in output:\n{out.stdout[-2000:]}")
    return float(m.group(1))


def postgres(target: Target, jobs: int) -> Limit:
    """``target`` is fastq on PostgreSQL (its migrated database is reused)."""
    import psycopg

    target.setup("limit")
    db = target.db_name("limit")
    row = {
        "task": "bench.tasks.noop",
        "queue": "default",
        "priority": 0,
        "args": "[]",
        "kwargs": "{}",
        "max_attempts": 4,
    }
    rows = json.dumps([row] * INSERT_BATCH, separators=(",", ":"))
    with psycopg.connect(dbname=db, autocommit=True, **PG) as conn:
        # The job store's tables (migration 0017): fastq_job is a view of them.
        conn.execute("TRUNCATE fastq_active, fastq_finished")
        conn.execute("VACUUM fastq_active")
    inserts = max(1, jobs // INSERT_BATCH)
    a = pg_wal_lsn()
    tps = _pgbench(db, pgsql.enqueue_script(), 1, inserts, rows=rows)
    insert_wal = pg_wal_bytes(a, pg_wal_lsn()) / (inserts * INSERT_BATCH)
    insert_rate = tps * INSERT_BATCH
    with psycopg.connect(dbname=db, autocommit=True, **PG) as conn:
        conn.execute("ANALYZE fastq_active")  # as fastq's prefill leaves it
    # Every transaction must find a full batch: stop short of the rows inserted.
    per_client = max(1, inserts * INSERT_BATCH // (CLIENTS * CLAIM_BATCH))
    a = pg_wal_lsn()
    tps = _pgbench(db, pgsql.claim_complete_script(), CLIENTS, per_client, batch=str(CLAIM_BATCH))
    drain_wal = pg_wal_bytes(a, pg_wal_lsn()) / (per_client * CLIENTS * CLAIM_BATCH)
    return Limit(insert_rate, tps * CLAIM_BATCH, inserts * INSERT_BATCH, insert_wal, drain_wal)


def build_sqlite(tmp: Path) -> Path:
    binary = tmp / "sqlite_limit"
    source = LIMIT_DIR / "sqlite_limit.cpp"
    if not binary.exists():
        subprocess.run(
            ["g++", "-O2", "-std=c++20", "-o", str(binary), str(source), "-lsqlite3"],
            check=True,
        )
    return binary


def sqlite(target: Target, jobs: int) -> Limit:
    """``target`` is fastq on SQLite; a fresh migrated file per run."""
    target.ready.discard("limit")
    target.setup("limit")
    binary = build_sqlite(target.tmp)
    cmd = [str(binary), target.db_name("limit"), str(jobs), str(SQLITE_INSERT_BATCH)]
    cmd.append(str(CLAIM_BATCH))
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    return Limit(result["insert_jobs_per_s"], result["drain_jobs_per_s"], result["drained"])

"""The enqueue path users call most: ``task.delay()`` on PostgreSQL, through Django.

* ``delay-atomic``: ``.delay()`` in a loop inside one ``transaction.atomic()`` (jobs/s;
  issue target: at least 10,000/s).
* ``delay-autocommit``: ``.delay()`` in autocommit, one commit per job, against a bare
  single-row ``INSERT`` of the same row into ``fastq_active`` + ``COMMIT`` on the same
  connection (Django's cursor, autocommit): the commit is the floor. Target: at least 90%
  of the bare loop.

Each figure is the median of ``--repeats`` runs of ``--n`` calls on a fresh table.
``--prepare-threshold N`` sets Django's ``OPTIONS["prepare_threshold"]`` (Django's default
is None: no server-side prepared statements, for connection poolers); with a number,
psycopg prepares Django's repeated queries and fastq its own statements.

    .venv/bin/python benchmarks/delay_bench.py [--n 20000] [--repeats 5] [--db NAME]
        [--prepare-threshold N] [--out benchmarks/results/delay.json] [--profile]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness.systems import PG, pg_admin  # noqa: E402


def setup_django(db_name: str, prepare_threshold: int | None = None) -> None:
    import django
    from django.conf import settings

    pg_admin(f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
    pg_admin(f"CREATE DATABASE {db_name}")
    settings.configure(
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": db_name,
                "HOST": PG["host"],
                "USER": PG["user"],
                "OPTIONS": {"prepare_threshold": prepare_threshold},
            }
        },
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "fastq_django"],
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def truncate() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        # The job store's tables (migration 0017): fastq_job is a view of them.
        cursor.execute("TRUNCATE fastq_active, fastq_finished CASCADE")
        cursor.execute("VACUUM ANALYZE fastq_active")


def delay_atomic(task: Any, n: int) -> float:
    from django.db import transaction

    t0 = time.perf_counter()
    with transaction.atomic():
        for i in range(n):
            task.delay(i)
    return n / (time.perf_counter() - t0)


def delay_autocommit(task: Any, n: int) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        task.delay(i)
    return n / (time.perf_counter() - t0)


def bare_insert_autocommit(n: int) -> float:
    """The floor: the same row, one INSERT and its COMMIT a job, on Django's connection."""
    from django.db import connection

    sql = (
        "INSERT INTO fastq_active (id, task, queue, priority, state, args, kwargs, run_at, "
        "attempts, max_attempts, cancel_requested, worker, error_type, error, traceback, "
        "created_at, envelope) VALUES (%s, 'bench.noop', 'default', 0, 'queued', %s, '{}', "
        "now(), 0, 4, false, '', '', '', '', now(), 1)"
    )
    with connection.cursor() as cursor:
        t0 = time.perf_counter()
        for i in range(n):
            cursor.execute(sql, [uuid.uuid4(), f"[{i}]"])
        return n / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--db", default="bench_delay")
    ap.add_argument("--prepare-threshold", type=int, default=None)
    ap.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    ap.add_argument("--profile", action="store_true", help="cProfile one atomic run")
    ap.add_argument("--out", default=str(HERE / "results" / "delay.json"))
    a = ap.parse_args()
    if a.quick:
        a.n, a.repeats = 2000, 1
    setup_django(a.db, a.prepare_threshold)
    import fastq

    @fastq.task(name="bench.noop")
    def noop(i: int) -> None:
        return None

    if a.profile:
        import cProfile
        import pstats

        truncate()
        prof = cProfile.Profile()
        prof.runcall(delay_atomic, noop, a.n)
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)
        return 0

    runs: dict[str, list[float]] = {"delay_atomic": [], "delay_autocommit": [], "bare": []}
    for _ in range(a.repeats):
        for name, fn in (
            ("delay_atomic", lambda: delay_atomic(noop, a.n)),
            ("bare", lambda: bare_insert_autocommit(a.n)),
            ("delay_autocommit", lambda: delay_autocommit(noop, a.n)),
        ):
            truncate()
            runs[name].append(fn())
    out = {k: round(statistics.median(v), 1) for k, v in runs.items()}
    out["autocommit_vs_bare"] = round(out["delay_autocommit"] / out["bare"], 3)
    out["n"] = a.n
    out["repeats"] = a.repeats
    out["prepare_threshold"] = a.prepare_threshold
    print(json.dumps(out))
    print(
        f"delay() in one transaction: {out['delay_atomic']:,.0f} jobs/s\n"
        f"delay() autocommit: {out['delay_autocommit']:,.0f} jobs/s = "
        f"{out['autocommit_vs_bare']:.0%} of a bare INSERT + COMMIT ({out['bare']:,.0f}/s)"
    )
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

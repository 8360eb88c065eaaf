"""The operator's reads on a big job table: every ``fastq_inspect`` sub-command, the
``/fastq/metrics`` page and ``fastq_health`` on a table of N jobs (default 1,000,000).

The table is shaped like a busy fleet: 93% of the rows finished over the last two hours
(an eighth of them, about 116,000, in the last 15 minutes; 3% failed or dead), 6% queued
and due, 1% scheduled for later, 400 running (half started, half reserved), over 4
queues and 20 tasks; 16 live workers. Each read runs
``--repeat`` times on a warm cache; the median is reported.

    .venv/bin/python benchmarks/inspect_bench.py [--rows N] [--brokers postgres,sqlite]

Writes benchmarks/results/inspect.json (or --out) and prints a table.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness.systems import PG, pg_admin  # noqa: E402

DB_NAME = "bench_inspect"
QUEUES = ["default", "mail", "reports", "tracking"]
TASKS = 20


def setup_django(broker: str, tmp: Path) -> None:
    import django
    from django.conf import settings

    if broker == "postgres":
        pg_admin(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        pg_admin(f"CREATE DATABASE {DB_NAME}")
        db = {"ENGINE": "django.db.backends.postgresql", "NAME": DB_NAME}
        db.update({"HOST": PG["host"], "USER": PG["user"]})
    else:
        db = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp / "inspect.sqlite3")}
    settings.configure(
        DATABASES={"default": db},
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "fastq_django",
        ],
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        FASTQ={"QUEUES": QUEUES},
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


# Row i: its queue, task and state follow from i; times spread over the last 2 hours.
# On PostgreSQL fastq_job is a view of the job store's two tables (migration 0017): each
# row goes straight to the table of its state ({table}, {where}).
_PG_FILL = """
INSERT INTO {table} (id, task, queue, priority, state, args, kwargs, run_at, attempts,
  max_attempts, lease_token, lease_expires_at, worker, created_at, started_at, finished_at,
  cancel_requested, envelope, error_type, error, traceback, interrupted)
SELECT * FROM (SELECT md5(g::text)::uuid,
  'app.tasks.task_' || (g % 20),
  (ARRAY['default','mail','reports','tracking'])[1 + g % 4],
  0,
  CASE WHEN g % 5000 IN (1, 2) THEN 'running'
       WHEN g % 1000 < 70 THEN 'queued'
       WHEN g % 100 < 3 THEN (ARRAY['failed','dead'])[1 + g % 2]
       ELSE 'succeeded' END,
  '[1,"a"]', '{}',
  CASE WHEN g % 1000 BETWEEN 60 AND 69 AND g % 5000 NOT IN (1, 2)
       THEN now() + (g % 3600) * interval '1 second'
       ELSE now() - (g % 7200) * interval '1 second' END,
  1, 4,
  CASE WHEN g % 5000 IN (1, 2) THEN 7 END,
  CASE WHEN g % 5000 IN (1, 2) THEN now() + interval '30 seconds' END,
  'host-' || (g % 8) || ':' || (1000 + g % 16),
  now() - (g % 7200) * interval '1 second' - interval '1 second',
  CASE WHEN g % 1000 >= 70 OR g % 5000 = 1 THEN
    now() - (g % 7200) * interval '1 second' + (g % 50) * interval '1 millisecond' END,
  CASE WHEN g % 1000 >= 70 THEN
    now() - (g % 7200) * interval '1 second' + (50 + g % 500) * interval '1 millisecond' END,
  false, 1, '', '', '', 0
FROM generate_series(1, %(rows)s) g) AS s (id, task, queue, priority, state)
WHERE {where}
"""


def fill(broker: str, rows: int) -> float:
    from django.db import connection
    from django.utils import timezone
    from fastq_django.models import Job, WorkerProcess

    started = time.perf_counter()
    if broker == "postgres":
        with connection.cursor() as c:
            for table, where in (
                ("fastq_active", "state IN ('queued', 'running')"),
                ("fastq_finished", "state NOT IN ('queued', 'running')"),
            ):
                sql = _PG_FILL.replace("%(rows)s", str(rows))
                c.execute(sql.replace("{table}", table).replace("{where}", where))
                c.execute(f"ANALYZE {table}")
    else:
        now = timezone.now()
        batch: list[Job] = []
        for g in range(1, rows + 1):
            m = g % 1000
            running = g % 5000 in (1, 2)
            state = (
                "running"
                if running
                else "queued"
                if m < 70
                else ("failed", "dead")[g % 2]
                if g % 100 < 3
                else "succeeded"
            )
            t = now - timezone.timedelta(seconds=g % 7200)
            later = 60 <= m < 70 and not running
            run_at = now + timezone.timedelta(seconds=g % 3600) if later else t
            start = (
                t + timezone.timedelta(milliseconds=g % 50) if m >= 70 or g % 5000 == 1 else None
            )
            finish = t + timezone.timedelta(milliseconds=50 + g % 500) if m >= 70 else None
            batch.append(
                Job(
                    task=f"app.tasks.task_{g % TASKS}",
                    queue=QUEUES[g % 4],
                    state=state,
                    run_at=run_at,
                    attempts=1,
                    created_at=t,
                    started_at=start,
                    finished_at=finish,
                    lease_token=7 if state == "running" else None,
                    lease_expires_at=now + timezone.timedelta(seconds=30)
                    if state == "running"
                    else None,
                    worker=f"host-{g % 8}:{1000 + g % 16}",
                )
            )
            if len(batch) == 20000:
                Job.objects.bulk_create(batch)
                batch.clear()
        Job.objects.bulk_create(batch)
        with connection.cursor() as c:
            c.execute("ANALYZE")
    now = timezone.now()
    WorkerProcess.objects.bulk_create(
        WorkerProcess(
            id=f"host-{i % 8}:{1000 + i}:bench",
            kind="worker",
            host=f"host-{i % 8}",
            pid=1000 + i,
            queues=json.dumps(QUEUES),
            tasks=json.dumps([f"app.tasks.task_{t}" for t in range(TASKS)]),
            concurrency=8,
            state="running",
            started_at=now,
            last_heartbeat=now,
            expires_at=now + timezone.timedelta(minutes=10),
        )
        for i in range(16)
    )
    return time.perf_counter() - started


def timed(fn: Any, repeat: int) -> tuple[float, Any]:
    times = []
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def run_broker(broker: str, rows: int, repeat: int) -> list[dict[str, Any]]:
    from django.core.management import call_command
    from django.db import connection
    from fastq_django import views
    from fastq_django.models import Job

    fill_s = fill(broker, rows)
    total = Job.objects.count()
    print(f"  {broker}: {total:,} jobs written in {fill_s:.1f} s", flush=True)
    out = []

    def command(*args: str) -> Any:
        def run() -> str:
            buf = io.StringIO()
            with contextlib.suppress(SystemExit):
                call_command(*args, stdout=buf, stderr=io.StringIO())
            return buf.getvalue()

        return run

    reads = [
        (f"fastq_inspect {sub}", command("fastq_inspect", sub))
        for sub in ("workers", "active", "reserved", "scheduled", "registered", "queues", "stats")
    ]
    reads.append(("fastq_inspect stats --json", command("fastq_inspect", "stats", "--json")))
    reads.append(
        (
            "fastq_health --max-depth --max-wait",
            command("fastq_health", "--max-depth", "1000000", "--max-wait", "86400"),
        )
    )
    reads.append(("/fastq/metrics (render)", views.render))
    for name, fn in reads:
        fn()  # warm the cache
        seconds, result = timed(fn, repeat)
        lines = str(result).count("\n")
        out.append({"broker": broker, "rows": total, "read": name, "seconds": round(seconds, 4)})
        print(f"  {broker:8} {name:38} {seconds * 1000:9.1f} ms  ({lines} lines)", flush=True)
        if name == "fastq_inspect stats":
            print(result)
    if broker == "postgres":
        with connection.cursor() as c:
            from django.utils import timezone
            from fastq_django.inspect import STATS_SQL, WINDOWS

            now = timezone.now()
            c.execute(
                "EXPLAIN " + STATS_SQL,
                {f"since{m}": now - timezone.timedelta(minutes=m) for m in WINDOWS},
            )
            plan = "\n".join(r[0] for r in c.fetchall())
            print("  plan of stats:\n" + "\n".join("    " + p for p in plan.splitlines()))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--brokers", default="postgres")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", default=str(HERE / "results" / "inspect.json"))
    args = parser.parse_args()
    brokers = [b for b in args.brokers.split(",") if b]
    if len(brokers) != 1:
        # Django is configured once per process: one broker per run.
        for b in brokers:
            import subprocess

            code = subprocess.call(
                [
                    sys.executable,
                    __file__,
                    "--rows",
                    str(args.rows),
                    "--brokers",
                    b,
                    "--repeat",
                    str(args.repeat),
                    "--out",
                    args.out.replace(".json", f".{b}.json"),
                ]
            )
            if code:
                return code
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        setup_django(brokers[0], Path(tmp))
        results = run_broker(brokers[0], args.rows, args.repeat)
    if brokers[0] == "postgres":
        pg_admin(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

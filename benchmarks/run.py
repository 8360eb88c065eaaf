"""`make bench`: no-op throughput of `manage.py fastq_worker --burst` on SQLite and on
PostgreSQL, and bulk enqueue rate, as a user would run them. Writes
benchmarks/results/latest.json and prints a table. See benchmarks/README.md."""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PG_DB = "fastq_bench"


def manage(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [sys.executable, str(HERE / "manage.py"), *args],
        cwd=HERE,
        env=env,
        check=True,
        text=True,
        capture_output=True,
    )
    return out.stdout


def fresh_database(broker: str, tmp: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(HERE), DJANGO_SETTINGS_MODULE="benchproject.settings")
    env["FASTQ_BENCH_BROKER"] = broker
    if broker == "sqlite":
        path = tmp / "bench.sqlite3"
        for f in tmp.glob("bench.sqlite3*"):
            f.unlink()
        env["FASTQ_BENCH_NAME"] = str(path)
    else:
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {PG_DB}")
        env["FASTQ_BENCH_NAME"] = PG_DB
    manage(env, "migrate", "--verbosity", "0")
    return env


def run_once(broker: str, jobs: int, concurrency: int, tmp: Path) -> dict[str, float]:
    env = fresh_database(broker, tmp)
    enqueue_s = json.loads(manage(env, "bench_enqueue", str(jobs)))["seconds"]
    started = time.perf_counter()
    worker = subprocess.run(
        [
            sys.executable,
            str(HERE / "manage.py"),
            "fastq_worker",
            "--burst",
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "WARNING",
        ],
        cwd=HERE,
        env=env,
        text=True,
        capture_output=True,
    )
    wall = time.perf_counter() - started
    if worker.returncode != 0:
        raise SystemExit(f"worker failed on {broker}:\n{worker.stderr}")
    states = json.loads(manage(env, "bench_states"))
    if states != {"succeeded": jobs}:
        raise SystemExit(f"{broker}: expected {jobs} succeeded, got {states}")
    m = re.search(r"stopped after ([\d.]+)s", worker.stderr)
    run_s = float(m.group(1)) if m else wall
    return {"enqueue_s": enqueue_s, "wall_s": wall, "run_s": run_s}


def machine(brokers: list[str]) -> dict[str, object]:
    import django

    info: dict[str, object] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
    }
    if "postgres" in brokers:
        import psycopg

        with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres") as conn:
            info["postgres"] = conn.execute("SHOW server_version").fetchone()[0]
    return info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--brokers", default="sqlite,postgres")
    parser.add_argument("--quick", action="store_true", help="2,000 jobs, one repeat")
    parser.add_argument("--out", default=str(HERE / "results" / "latest.json"))
    opts = parser.parse_args()
    if opts.quick:
        opts.jobs, opts.repeats = 2_000, 1
    brokers = [b for b in opts.brokers.split(",") if b]

    records: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(opts.repeats):
            for broker in brokers:  # interleaved: A B A B ...
                r = run_once(broker, opts.jobs, opts.concurrency, Path(tmp))
                records.append(
                    {
                        "system": "fastq",
                        "broker": broker,
                        "workload": "noop",
                        "repeat": repeat,
                        "jobs": opts.jobs,
                        "jobs_per_s": opts.jobs / r["wall_s"],
                        "worker_jobs_per_s": opts.jobs / r["run_s"],
                        "seconds": r["wall_s"],
                    }
                )
                records.append(
                    {
                        "system": "fastq",
                        "broker": broker,
                        "workload": "enqueue-bulk",
                        "repeat": repeat,
                        "jobs": opts.jobs,
                        "jobs_per_s": opts.jobs / r["enqueue_s"],
                        "seconds": r["enqueue_s"],
                    }
                )
                print(
                    f"  {broker:8} repeat {repeat}: worker {opts.jobs / r['run_s']:>9,.0f} "
                    f"jobs/s, process {opts.jobs / r['wall_s']:>9,.0f} jobs/s, enqueue "
                    f"{opts.jobs / r['enqueue_s']:>9,.0f} jobs/s",
                    flush=True,
                )

    print(
        f"\nfastq, {opts.jobs:,} no-op jobs, --concurrency {opts.concurrency}, "
        f"median of {opts.repeats} (min..max)"
    )
    print(f"{'broker':10}{'workload':26}{'jobs/s':>12}   spread")
    for broker in brokers:
        for workload, key, label in (
            ("noop", "worker_jobs_per_s", "drain (worker run)"),
            ("noop", "jobs_per_s", "drain (process wall)"),
            ("enqueue-bulk", "jobs_per_s", "enqueue (task.map)"),
        ):
            vals = [
                float(r[key])
                for r in records
                if r["broker"] == broker and r["workload"] == workload
            ]
            print(
                f"{broker:10}{label:26}{statistics.median(vals):>12,.0f}   "
                f"{min(vals):,.0f}..{max(vals):,.0f}"
            )

    out = Path(opts.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine(brokers), "records": records}, indent=2) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

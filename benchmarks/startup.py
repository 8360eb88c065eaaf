"""What `manage.py fastq_worker` does between exec and its first job (issue 17's start-up
target: 150 ms on an idle machine).

1. start to first job: one no-op job waits; `manage.py fastq_worker --burst` (the drain's
   command) is spawned; the figure is the job's `started_at` minus the moment just
   before the spawn; median of --samples starts (also in `make bench`, workload startup);
2. the same through benchmarks/startup_probe.py, which stamps the end of each phase:
   interpreter, `import django`, `django.setup()`, the worker command's import, system
   checks and argument parsing, task modules, the database check (first connection),
   queue limits and scheduler, the fork, each worker process' Worker (its connections)
   and its run, the first job's start;
3. `python -X importtime` of the same command: import time by top-level package.

    .venv/bin/python benchmarks/startup.py [--broker postgres|sqlite] [--samples 9]

Writes benchmarks/results/startup.json and prints the tables (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from harness import procs
from harness.systems import HERE, Target, pg_admin

WORKER_ARGS = ["--queues", "default", "-l", "WARNING", "--concurrency", "2", "--burst"]
PHASES = [
    ("main", "interpreter and site up (exec to our first line)"),
    ("import_django", "import django"),
    ("django_setup", "django.setup(): settings, apps, models"),
    ("import_worker_command", "import of the fastq_worker command (fastq, fastq._core, ...)"),
    ("handle_start", "management utility, argument parsing, system checks"),
    ("task_modules", "importing the task modules"),
    ("database_checked", "broker + database check (first connection, migrations table)"),
    ("queue_limits", "queue limits synced"),
    ("run_start", "scheduler, banner, connections closed"),
    ("worker_made", "fork, then the worker process' Worker (its connections)"),
    ("worker_run", "until the worker's run starts"),
    ("first_job", "first claim to the first job's start (started_at)"),
]


def one_start(
    target: Target, cmd: list[str], env: dict[str, str], log: Path
) -> tuple[float, float]:
    """The epoch just before the spawn and the job's started_at."""
    target.manage("main", "bench_startup", "enqueue")
    t0 = time.time()
    worker = procs.start(cmd, target.project, env, log)
    try:
        if not procs.wait_all_exit([worker], 60):
            raise RuntimeError(f"worker did not finish:\n{log.read_text()[-2000:]}")
    finally:
        procs.stop([worker])
    out = target.manage("main", "bench_startup", "started")
    started = json.loads(out.strip().splitlines()[-1])["started_at"]
    return t0, started


def importtime(target: Target, env: dict[str, str]) -> dict[str, float]:
    """Cumulative import time (ms) of each top-level import of the worker command, by
    top-level package, in the process that runs manage.py (children import nothing new)."""
    target.manage("main", "bench_startup", "enqueue")
    out = subprocess.run(
        [str(target.python), "-X", "importtime", "manage.py", "fastq_worker", *WORKER_ARGS],
        cwd=target.project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    by: dict[str, float] = defaultdict(float)
    seen: set[tuple[int, str]] = set()
    for line in out.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if not m:
            continue
        depth = len(m.group(3)) - 1
        name = m.group(4)
        if depth == 0 and (0, name) not in seen:
            seen.add((0, name))
            by[name.split(".")[0]] += int(m.group(2)) / 1000
    return dict(sorted(by.items(), key=lambda kv: -kv[1]))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--broker", default="postgres", choices=["postgres", "sqlite"])
    p.add_argument("--samples", type=int, default=9)
    p.add_argument(
        "--db-prefix", default="bench_startup", help="prefix of the PostgreSQL database created"
    )
    p.add_argument("--out", default=str(HERE / "results" / "startup.json"))
    opts = p.parse_args()
    result: dict[str, Any] = {"broker": opts.broker, "load_1min_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="fastq-startup-") as tmpdir:
        tmp = Path(tmpdir)
        (tmp / "logs").mkdir()
        target = Target("fastq", opts.broker, tmp, tmp / "logs", db_prefix=opts.db_prefix)
        try:
            target.setup("main")
            env = target.worker_env("startup", "main")
            # As a deployed worker starts: with its modules' bytecode cached (the harness
            # runs everything else with PYTHONDONTWRITEBYTECODE=1, which would make every
            # start compile fastq's and the project's sources), after one start to write it.
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            py = str(target.python)
            plain = [py, "manage.py", "fastq_worker", *WORKER_ARGS]
            one_start(target, plain, env, tmp / "logs" / "warm-up.log")
            # The interpreter alone, for scale.
            bare = []
            for _ in range(opts.samples):
                t = time.perf_counter()
                subprocess.run([py, "-c", "pass"], check=True)
                bare.append((time.perf_counter() - t) * 1000)
            result["python_c_pass_ms"] = statistics.median(bare)
            starts = []
            for i in range(opts.samples):
                t0, started = one_start(target, plain, env, tmp / "logs" / f"plain{i}.log")
                starts.append((started - t0) * 1000)
            result["start_to_first_job_ms"] = sorted(starts)
            result["start_to_first_job_median_ms"] = statistics.median(starts)
            # The probe: phase by phase.
            phases: dict[str, list[float]] = defaultdict(list)
            for i in range(opts.samples):
                stamps = tmp / f"stamps{i}"
                penv = dict(env, STARTUP_PROBE_OUT=str(stamps))
                probe = [py, str(HERE / "startup_probe.py"), *WORKER_ARGS]
                t0, started = one_start(target, probe, penv, tmp / "logs" / f"probe{i}.log")
                first: dict[str, float] = {}
                for line in stamps.read_text().splitlines():
                    name, at, _pid = line.split()
                    first.setdefault(name, float(at))  # the first worker process to get there
                first["first_job"] = started
                prev = t0
                for name, _ in PHASES:
                    if name in first:
                        phases[name].append((first[name] - prev) * 1000)
                        prev = first[name]
                phases["total"].append((started - t0) * 1000)
            result["phases_ms"] = {k: statistics.median(v) for k, v in phases.items()}
            result["imports_ms"] = importtime(target, env)
        finally:
            if opts.broker == "postgres":
                for purpose in target.ready:
                    pg_admin(f"DROP DATABASE IF EXISTS {target.db_name(purpose)} WITH (FORCE)")
    result["load_1min_after"] = os.getloadavg()[0]
    print(
        f"python -c pass: {result['python_c_pass_ms']:.0f} ms; start to first job "
        f"({opts.broker}): median {result['start_to_first_job_median_ms']:.0f} ms of "
        f"{opts.samples} ({min(starts):.0f}..{max(starts):.0f}); load "
        f"{result['load_1min_before']:.1f}..{result['load_1min_after']:.1f}\n"
    )
    print("| phase (ends when) | ms (median) |\n|---|---:|")
    for name, label in PHASES:
        if name in result["phases_ms"]:
            print(f"| {label} | {result['phases_ms'][name]:.0f} |")
    print(f"| total, through the probe | {result['phases_ms']['total']:.0f} |")
    print("\n| top-level import (-X importtime, cumulative) | ms |\n|---|---:|")
    for name, ms in list(result["imports_ms"].items())[:15]:
        print(f"| {name} | {ms:.1f} |")
    out = Path(opts.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

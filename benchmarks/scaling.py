"""Scale-out on one host: no-op throughput of `fastq_worker --processes N` (N = 1, 2, 4, 8
worker processes, each with --concurrency 2) against one PostgreSQL, on this machine's
cores. docs/scaling.md has the method and the figures.

Each point drains --jobs no-op jobs queued beforehand (task.map, as `make bench`'s noop
workload), timed from the worker's start to the last job done, and over the worker's own
run (first claim to last outcome: the steady state), with the server's WAL per job and the
1-minute load average (the machine may be shared: the load says how much). Points are
interleaved over the repeats, so that a noisy minute hits every N.

    .venv/bin/python benchmarks/scaling.py [--processes 1,2,4,8] [--jobs 50000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from harness.systems import HERE, Target, pg_admin
from run import Runner, Sizes


class ScaledTarget(Target):
    processes: int = 1

    def worker_commands(self, workload: str) -> list[list[str]]:
        cmd = super().worker_commands(workload)[0]
        return [[*cmd, "--processes", str(self.processes)]]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--processes", default="1,2,4,8")
    p.add_argument("--jobs", type=int, default=50_000)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument(
        "--db-prefix", default="bench_scaling", help="prefix of the PostgreSQL database created"
    )
    p.add_argument("--out", default=str(HERE / "results" / "scaling.json"))
    opts = p.parse_args()
    counts = [int(x) for x in opts.processes.split(",") if x]
    sizes = Sizes(noop_jobs=opts.jobs, noop_cap=60.0)
    records: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="fastq-scaling-") as tmpdir:
        tmp = Path(tmpdir)
        runner = Runner(sizes, tmp, verbose=False)
        target = ScaledTarget("fastq", "postgres", tmp, runner.logs, db_prefix=opts.db_prefix)
        try:
            target.setup("main")
            for repeat in range(opts.repeats):
                for n in counts:
                    target.processes = n
                    load = os.getloadavg()[0]
                    rec = runner.drain(target, "noop")
                    rec |= {"processes": n, "repeat": repeat, "load_1min_before": round(load, 2)}
                    rec["load_1min_after"] = round(os.getloadavg()[0], 2)
                    records.append(rec)
                    print(
                        f"  {repeat} {n} process(es): {rec['jobs_per_s']:>8,.0f} jobs/s from "
                        f"start, {rec.get('worker_jobs_per_s', 0):>8,.0f} over the worker's "
                        f"run, WAL {rec.get('wal_bytes_per_job', 0):,.0f} B/job, RSS "
                        f"{rec['peak_rss_mb']:.0f} MiB, load {load:.1f}..."
                        f"{rec['load_1min_after']:.1f}",
                        flush=True,
                    )
                    time.sleep(1)
        finally:
            for purpose in target.ready:
                pg_admin(f"DROP DATABASE IF EXISTS {target.db_name(purpose)} WITH (FORCE)")
    by: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by[r["processes"]].append(r)
    print(
        "\n| worker processes | jobs/s from start | jobs/s, worker's run | WAL B/job | "
        "peak RSS MiB | load (1 min) |\n|---:|---:|---:|---:|---:|---|"
    )
    for n in counts:
        rs = by[n]

        def med(f: str, rs: list[dict[str, Any]] = rs) -> float:
            return statistics.median(r.get(f, 0) for r in rs)

        loads = [r["load_1min_before"] for r in rs] + [r["load_1min_after"] for r in rs]
        print(
            f"| {n} | {med('jobs_per_s'):,.0f} | {med('worker_jobs_per_s'):,.0f} | "
            f"{med('wal_bytes_per_job'):,.0f} | {med('peak_rss_mb'):.0f} | "
            f"{min(loads):.1f}..{max(loads):.1f} |"
        )
    out = Path(opts.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"cpus": os.cpu_count(), "jobs": opts.jobs, "records": records}, indent=1) + "\n"
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

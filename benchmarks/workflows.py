"""Workflows at scale, in one run: on fastq, plain no-op jobs, a chord of N no-op members
and a chain of M no-op steps; on Celery (Redis broker, Redis result backend, its native
chord counter), the same chord. Each figure is jobs per second from the worker's start to
the last job's finish as the system recorded it (the chord: its callback; the chain: its
last step), the worker started after everything was enqueued.

The fan-in cost is 1 - chord/plain on fastq: what waiting steps, dependency edges and the
release in the completion transaction cost per job (target: under 20%). A chain is
sequential by nature (each step waits for the previous one's completion, then a claim):
its figure is steps per second, shown beside the others, not compared to them.

    .venv/bin/python benchmarks/workflows.py [--chord 10000] [--chain 1000] [--repeats 3]
        [--systems fastq,celery] [--out benchmarks/results/workflows.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness import peers_env, procs  # noqa: E402
from harness.systems import Target  # noqa: E402


def manage(target: Target, *args: str, timeout: float = 900) -> dict[str, Any]:
    out = subprocess.run(
        [str(target.python), "manage.py", "bench_workflow", *args],
        cwd=target.project,
        env=target.env("main"),
        text=True,
        capture_output=True,
        timeout=timeout,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{target.key} bench_workflow {args[0]}: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_one(target: Target, kind: str, n: int, log: Path) -> dict[str, Any]:
    target.setup("main")
    queued = manage(target, "enqueue", "--kind", kind, "--n", str(n))
    t0 = time.time()
    # A chain is a run of hand-offs: its worker is a normal one, woken by the NOTIFY of
    # each release (a --burst worker polls instead); the others drain in burst mode.
    commands = target.worker_commands("latency" if kind == "chain" else "noop")
    workers = [procs.start(c, target.project, target.env("main"), log) for c in commands]
    try:
        done = manage(
            target, "finished", "--kind", kind, "--n", str(n), "--target", queued["target"]
        )
    finally:
        procs.stop(workers)
    seconds = done["end"] - t0
    return {
        "jobs": queued["jobs"],
        "seconds": round(seconds, 3),
        "jobs_per_s": round(queued["jobs"] / seconds, 1),
        "enqueue_s": round(queued["enqueue_s"], 3),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chord", type=int, default=10_000)
    ap.add_argument("--chain", type=int, default=1_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--systems", default="fastq,celery")
    ap.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    ap.add_argument("--out", default=str(HERE / "results" / "workflows.json"))
    a = ap.parse_args()
    if a.quick:
        a.chord, a.chain, a.repeats = 500, 50, 1
    systems = a.systems.split(",")
    tmp = Path(tempfile.mkdtemp(prefix="fastq-bench-wf-"))
    runs: list[tuple[Target, str, int]] = []
    if "fastq" in systems:
        fq = Target("fastq", "postgres", tmp, tmp)
        runs += [(fq, "plain", a.chord), (fq, "chord", a.chord), (fq, "chain", a.chain)]
    if "celery" in systems:
        usable = peers_env.ensure()
        if usable.get("celery"):
            runs.append((Target("celery", "redis", tmp, tmp), "chord", a.chord))
        else:
            print("celery: not installed in benchmarks/.peers, skipped", flush=True)
    results: dict[str, list[dict[str, Any]]] = {}
    # Repeats interleave the runs, so that a noisy minute hits every figure.
    for rep in range(a.repeats):
        for target, kind, n in runs:
            key = f"{target.key} {kind}"
            r = run_one(target, kind, n, tmp / f"{target.slug}-{kind}.log")
            results.setdefault(key, []).append(r)
            print(
                f"[{rep + 1}/{a.repeats}] {key}: {r['jobs']} jobs, {r['jobs_per_s']:.0f}/s",
                flush=True,
            )
    summary: dict[str, Any] = {}
    for key, rs in results.items():
        rates = [r["jobs_per_s"] for r in rs]
        summary[key] = {
            "jobs": rs[0]["jobs"],
            "jobs_per_s": statistics.median(rates),
            "min": min(rates),
            "max": max(rates),
            "runs": rs,
        }
    plain = summary.get("fastq/postgres plain", {}).get("jobs_per_s")
    chord = summary.get("fastq/postgres chord", {}).get("jobs_per_s")
    if plain and chord:
        summary["fan_in_cost"] = round(1 - chord / plain, 3)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(summary, indent=2) + "\n")
    print("\n| run | jobs | jobs/s (median) | min..max |\n|---|---:|---:|---:|")
    for key, s in summary.items():
        if key != "fan_in_cost":
            print(
                f"| {key} | {s['jobs']} | {s['jobs_per_s']:.0f} | {s['min']:.0f}..{s['max']:.0f} |"
            )
    if "fan_in_cost" in summary:
        print(f"\nfan-in cost on fastq (1 - chord/plain): {summary['fan_in_cost']:.1%}")
    print(f"written to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

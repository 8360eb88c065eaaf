"""`make bench`: fastq side by side with Celery, Django-Q2 and django-tasks, and with the
SQL limit of fastq's own statements, in one run. See benchmarks/README.md.

Writes benchmarks/results/latest.json, latest.md and latest.png, and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import limit, peers_env, procs, report
from harness.systems import (
    BROKERS,
    FASTQ_SYSTEMS,
    HERE,
    SYSTEMS,
    Target,
    pg_admin,
    pg_wal_bytes,
    pg_wal_lsn,
    settings_summary,
)

WORKLOADS = ("noop", "enqueue", "enqueue-bulk", "latency", "io", "depth", "startup")
# Which brokers each system runs on (Celery: Redis only; fastq has no Redis broker yet).
SYSTEM_BROKERS = {
    "fastq": ("postgres", "sqlite"),
    "fastq-tasks": ("postgres",),
    "celery": ("redis",),
    "django-q2": ("postgres", "redis", "sqlite"),
    "django-tasks": ("postgres", "sqlite"),
}
# io and depth run on fewer targets to stay within the time budget (README: "Scope").
IO_TARGETS = {
    "fastq/postgres",
    "fastq/sqlite",
    "celery/redis",
    "django-q2/postgres",
    "django-q2/redis",
    "django-tasks/postgres",
}
# Peers run these only in the first repeat: they take the longest and are cut off anyway.
PEERS_ONCE = {"io", "depth"}
# Celery's backlog would be another Redis list, which its worker never touches: nothing
# to learn for the 1.2 GB it takes. The two ORM brokers are where depth can hurt.
DEPTH_TARGETS = {"fastq/postgres", "fastq/sqlite", "django-q2/postgres", "django-tasks/postgres"}


@dataclass
class Sizes:
    noop_jobs: int = 50_000
    noop_cap: float = 5.0  # seconds from worker start; slower systems are cut off there
    enqueue_jobs: int = 50_000
    enqueue_cap: float = 1.0
    latency_rate: float = 200.0
    latency_seconds: float = 2.0
    io_jobs: int = 5_000
    io_cap: float = 10.0
    depth_jobs: int = 1_000_000
    limit_jobs: int = 50_000  # as many as noop drains: the claim slows as a drain goes on
    startup_samples: int = 7  # worker starts per repeat; the median is the figure

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            noop_jobs=2_000,
            noop_cap=2.0,
            enqueue_jobs=2_000,
            enqueue_cap=0.5,
            latency_seconds=0.5,
            io_jobs=200,
            io_cap=2.0,
            depth_jobs=20_000,
            limit_jobs=2_000,
            startup_samples=3,
        )


class BenchProcess(subprocess.Popen[str]):
    ready: dict[str, Any]


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


class Runner:
    def __init__(self, sizes: Sizes, tmp: Path, verbose: bool) -> None:
        self.sizes = sizes
        self.tmp = tmp
        self.logs = tmp / "logs"
        self.logs.mkdir()
        self.verbose = verbose
        self.stub_url = ""
        self.runs = 0
        self.limit_targets: list[Target] = []
        self.cut_off: dict[tuple[str, str], int] = {}  # (target, workload) -> jobs done
        self.db_prefix = "bench"

    def step(
        self, target: Target, step: str, repeat: int, workloads: list[str]
    ) -> list[dict[str, Any]]:
        """One measurement of one target; returns its record(s), printing each."""
        base = {"system": target.system, "broker": target.broker, "repeat": repeat}
        started = time.monotonic()
        results: dict[str, dict[str, Any]]
        if step in ("noop", "io", "depth"):
            results = {step: self.drain(target, step)}
        elif step == "latency":
            results = {step: self.latency(target)}
        elif step == "startup":
            results = {step: self.startup(target)}
        else:
            results = {w: r for w, r in self.enqueue(target).items() if w in workloads}
        records = [{**base, "workload": w, **r} for w, r in results.items()]
        for rec in records:
            report.progress(rec, time.monotonic() - started)
        return records

    def log_path(self, target: Target, workload: str) -> Path:
        self.runs += 1
        return self.logs / f"{self.runs:03d}-{target.slug}-{workload}.log"

    def _fail(self, target: Target, what: str, log: Path | None) -> RuntimeError:
        tail = log.read_text()[-3000:] if log and log.exists() else ""
        return RuntimeError(f"{target.key} {what}\n{tail}")

    def _bench(self, target: Target, cmd: list[str], purpose: str, log: Path) -> BenchProcess:
        """Starts ``manage.py bench <op>`` and waits for its ``ready`` line."""
        bench = BenchProcess(
            cmd,
            cwd=target.project,
            env=target.env(purpose),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log.open("a"),
            text=True,
        )
        assert bench.stdout
        line = ""
        while not line.startswith("{"):
            line = bench.stdout.readline()
            if not line:
                bench.wait()
                raise self._fail(target, f"{cmd[3]}: bench failed before ready", log)
        bench.ready = json.loads(line)
        return bench

    def drain(self, target: Target, workload: str) -> dict[str, Any]:
        """Prefill, start the worker(s), measure from their start until the last job is
        done (or the cap). noop, depth and io."""
        s = self.sizes
        io = workload == "io"
        purpose = "depth" if workload == "depth" else "main"
        jobs, cap = (s.io_jobs, s.io_cap) if io else (s.noop_jobs, s.noop_cap)
        # A system cut off in an earlier repeat gets five times what it finished then
        # (at least 5,000) instead of the full count: its queue still never runs dry
        # within the cap, and preparing jobs it will not reach only costs time.
        earlier = self.cut_off.get((target.key, workload))
        if earlier is not None:
            jobs = min(jobs, max(5_000, 5 * earlier))
        cmd = [str(target.python), "manage.py", "bench", "drain", "--jobs", str(jobs)]
        cmd += ["--task", "io" if io else "noop", "--url", self.stub_url, "--cap", str(cap)]
        cmd += ["--poll", str(target.poll)]
        if target.external_stop:
            cmd.append("--external")
        log = self.log_path(target, workload)
        bench = self._bench(target, cmd, purpose, log)
        assert bench.stdin
        prefill_s = bench.ready["prefill_s"]
        env = target.worker_env(workload, purpose)
        children_cpu = procs.children_cpu_s()
        wal_start = pg_wal_lsn() if target.uses_postgres else None
        wal_end = None
        t0 = time.time()
        workers = [
            procs.start(c, target.project, env, log) for c in target.worker_commands(workload)
        ]
        bench.stdin.write(f"go {t0}\n")
        bench.stdin.flush()
        try:
            with procs.RssSampler([w.pid for w in workers]) as rss:
                if target.external_stop:
                    if not procs.wait_all_exit(workers, cap * 10 + 60):
                        raise self._fail(target, f"{workload}: worker did not finish", log)
                    if any(w.returncode != 0 for w in workers):
                        raise self._fail(target, f"{workload}: worker failed", log)
                    # Exited and reaped: its whole CPU time, to the end, is known.
                    rss.cpu_s = procs.children_cpu_s() - children_cpu
                    bench.stdin.write("finished\n")
                    bench.stdin.flush()
                out, _ = bench.communicate(timeout=cap * 10 + 120)
                if wal_start is not None:
                    wal_end = pg_wal_lsn()
                if not target.external_stop:
                    rss.sample()  # the CPU time up to the last job, before the kill
        finally:
            procs.stop(workers)
            if bench.poll() is None:
                bench.kill()
        if bench.returncode != 0:
            raise self._fail(target, f"{workload}: bench drain failed", log)
        result = json_lines(out)[-1]
        seconds = result["end"] - t0
        done = int(result["done"])
        if done < jobs:
            self.cut_off[(target.key, workload)] = max(
                done, self.cut_off.get((target.key, workload), 0)
            )
        record: dict[str, Any] = {
            "queued": jobs,
            "jobs": done,
            "jobs_per_s": done / seconds,
            "seconds": seconds,
            "capped": done < jobs,
            "peak_rss_mb": round(rss.peak_mb, 1),
            "worker_cpu_s": round(rss.cpu_s, 2),  # start-up included
            "prefill_s": round(prefill_s, 3),
            "workers": len(workers),
        }
        if wal_start is not None and wal_end is not None and done:
            # From the worker's start to the last job done (a peer that was cut off: to
            # the cap, its later work not counted); the whole server's WAL.
            record["wal_bytes_per_job"] = round(pg_wal_bytes(wal_start, wal_end) / done, 1)
        if target.system in FASTQ_SYSTEMS:
            # One line per worker process (and the supervisor's): the longest worker's
            # run is the drain's; a process that claimed nothing reports 0.00 s.
            runs = [
                float(x)
                for x in re.findall(r"fastq worker \d+ stopped after ([\d.]+)s", log.read_text())
            ]
            if runs and max(runs) > 0:
                record["worker_seconds"] = max(runs)
                record["worker_jobs_per_s"] = done / max(runs)
            if done < jobs:
                raise self._fail(target, f"{workload}: only {done} of {jobs} succeeded", log)
        if io:
            record["concurrency"] = env.get("BENCH_Q_WORKERS") or " ".join(
                target.worker_commands(workload)[0]
            )
        return record

    def latency(self, target: Target) -> dict[str, Any]:
        s = self.sizes
        log = self.log_path(target, "latency")
        cmd = [str(target.python), "manage.py", "bench", "latency"]
        cmd += ["--rate", str(s.latency_rate), "--seconds", str(s.latency_seconds)]
        bench = self._bench(target, cmd, "main", log)
        assert bench.stdin
        env = target.worker_env("latency", "main")
        commands = target.worker_commands("latency")
        workers = [procs.start(c, target.project, env, log) for c in commands]
        try:
            bench.stdin.write("go\n")
            bench.stdin.flush()
            out, _ = bench.communicate(timeout=300)
        finally:
            procs.stop(workers)
            if bench.poll() is None:
                bench.kill()
        results = json_lines(out)
        if bench.returncode != 0 or not results or "error" in results[-1]:
            raise self._fail(target, "latency failed", log)
        return results[-1]

    def startup(self, target: Target) -> dict[str, Any]:
        """Start to first job: one no-op job waits; the worker is spawned (``--burst``, the
        drain's command); the figure is the job's ``started_at`` minus the moment just
        before the spawn. Median of ``startup_samples`` starts."""
        samples: list[float] = []
        # As a deployed worker starts, with its modules' bytecode cached: the first start
        # (not counted) writes it.
        env = target.worker_env("startup", "main")
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        cmd = target.worker_commands("noop")[0]
        for i in range(self.sizes.startup_samples + 1):
            target.manage("main", "bench_startup", "enqueue")
            log = self.log_path(target, "startup")
            t0 = time.time()
            worker = procs.start(cmd, target.project, env, log)
            try:
                if not procs.wait_all_exit([worker], 60):
                    raise self._fail(target, "startup: worker did not finish", log)
            finally:
                procs.stop([worker])
            out = target.manage("main", "bench_startup", "started")
            if i:
                samples.append((json_lines(out)[-1]["started_at"] - t0) * 1000)
        samples.sort()
        return {
            "startup_ms": round(samples[len(samples) // 2], 1),
            "startup_min_ms": round(samples[0], 1),
            "startup_max_ms": round(samples[-1], 1),
            "samples": len(samples),
            "load_1min": round(os.getloadavg()[0], 2),
        }

    def enqueue(self, target: Target) -> dict[str, dict[str, Any]]:
        s = self.sizes
        out = target.manage(
            "main", "bench", "enqueue", "--jobs", str(s.enqueue_jobs), "--cap", str(s.enqueue_cap)
        )
        result: dict[str, dict[str, Any]] = {}
        for workload, r in json_lines(out)[-1].items():
            result[workload] = {
                "jobs": r["jobs"],
                "seconds": r["seconds"],
                "jobs_per_s": r["jobs"] / r["seconds"],
            }
        return result


def start_stub() -> tuple[subprocess.Popen[str], str]:
    stub = subprocess.Popen(
        [sys.executable, "-m", "harness.httpstub", "--delay", "0.05"],
        cwd=HERE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert stub.stdout
    port = int(stub.stdout.readline())
    return stub, f"http://127.0.0.1:{port}/"


def machine_info(peer_versions: dict[str, str]) -> dict[str, Any]:
    import django
    import psycopg

    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
    }
    with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres") as conn:
        info["postgres"] = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    try:
        words = subprocess.run(["redis-server", "--version"], capture_output=True, text=True)
        info["redis"] = next((w[2:] for w in words.stdout.split() if w.startswith("v=")), "?")
    except FileNotFoundError:
        info["redis"] = "?"
    info["peers"] = peer_versions
    info["settings"] = settings_summary()
    return info


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # so that `finally` stops workers and drops databases


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--systems", default=",".join((*SYSTEMS, "limit")))
    parser.add_argument("--brokers", default=",".join(BROKERS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat (CI)")
    parser.add_argument("--out", default=str(HERE / "results" / "latest.json"))
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument(
        "--db-prefix",
        default="bench",
        help="prefix of the PostgreSQL databases created (and dropped): runs that share a "
        "server need different ones",
    )
    opts = parser.parse_args()
    sizes = Sizes.quick() if opts.quick else Sizes()
    if opts.quick and "--repeats" not in sys.argv:
        opts.repeats = 1
    workloads = [w for w in opts.workloads.split(",") if w]
    systems = [s for s in opts.systems.split(",") if s]
    brokers = [b for b in opts.brokers.split(",") if b]
    for w in workloads:
        if w not in WORKLOADS:
            parser.error(f"unknown workload {w!r} (known: {', '.join(WORKLOADS)})")
    for s in systems:
        if s not in (*SYSTEMS, "limit"):
            parser.error(f"unknown system {s!r}")

    started = time.monotonic()
    usable = {"fastq": True, "fastq-tasks": True}
    peer_versions: dict[str, str] = {}
    if any(s not in (*FASTQ_SYSTEMS, "limit") for s in systems) or "latency" in workloads:
        usable |= peers_env.ensure()
        peer_versions = peers_env.versions()

    records: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="fastq-bench-") as tmpdir:
        tmp = Path(tmpdir)
        runner = Runner(sizes, tmp, opts.verbose)
        runner.db_prefix = opts.db_prefix
        targets = [
            Target(system, broker, tmp, runner.logs, db_prefix=opts.db_prefix)
            for system in SYSTEMS
            if system in systems and usable.get(system)
            for broker in SYSTEM_BROKERS[system]
            if broker in brokers
        ]
        # Interleave systems: fastq/postgres, celery/redis, django-q2/postgres, ...
        targets.sort(key=lambda t: BROKERS.index(t.broker) if t.broker != "redis" else 0.5)
        stub, runner.stub_url = start_stub()
        try:
            setup_s = time.monotonic()
            for t in targets:
                t.setup("main")
            if "depth" in workloads:
                for t in targets:
                    if t.key in DEPTH_TARGETS:
                        t.setup("depth")
                        r = json_lines(
                            t.manage("depth", "bench", "depth", "--jobs", str(sizes.depth_jobs))
                        )
                        print(
                            f"  {t.key}: {sizes.depth_jobs:,} jobs waiting in another queue "
                            f"({r[-1]['seconds']:.1f} s)",
                            flush=True,
                        )
            print(f"setup: {time.monotonic() - setup_s:.0f} s", flush=True)

            steps = [w for w in WORKLOADS if w in workloads and w != "enqueue-bulk"]
            if "enqueue-bulk" in workloads and "enqueue" not in steps:
                steps.insert(1, "enqueue")
            for repeat in range(opts.repeats):
                for step in steps:
                    for t in targets:
                        if step == "io" and t.key not in IO_TARGETS:
                            continue
                        if step == "depth" and t.key not in DEPTH_TARGETS:
                            continue
                        if step in PEERS_ONCE and repeat > 0 and t.system != "fastq":
                            continue
                        if step == "startup" and t.system != "fastq":
                            continue
                        try:
                            records += runner.step(t, step, repeat, workloads)
                        except (RuntimeError, subprocess.SubprocessError) as exc:
                            # A shared machine: a database restart or a stray failure
                            # should cost one retry, not the whole run.
                            print(f"  {t.key} {step} failed, retrying once: {str(exc)[-1500:]}")
                            time.sleep(2)
                            records += runner.step(t, step, repeat, workloads)
                if "limit" in systems:
                    records += run_limits(brokers, workloads, sizes, runner, repeat)
        finally:
            stub.kill()
            stub.wait()
            for t in targets + runner.limit_targets:
                if t.uses_sql and t.broker != "sqlite":
                    for purpose in t.ready:
                        pg_admin(f"DROP DATABASE IF EXISTS {t.db_name(purpose)} WITH (FORCE)")

    elapsed = time.monotonic() - started
    data = {
        "machine": machine_info(peer_versions),
        "run": {
            "quick": opts.quick,
            "repeats": opts.repeats,
            "seconds": round(elapsed, 1),
            "sizes": sizes.__dict__,
        },
        "records": records,
    }
    out = Path(opts.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1) + "\n")
    table = report.markdown(data)
    out.with_suffix(".md").write_text(table)
    print("\n" + table)
    report.chart(out, out.with_suffix(".png"))
    print(
        f"wrote {out}, {out.with_suffix('.md').name}, {out.with_suffix('.png').name} "
        f"in {elapsed:.0f} s"
    )
    return 0


def run_limits(
    brokers: list[str], workloads: list[str], sizes: Sizes, runner: Runner, repeat: int
) -> list[dict[str, Any]]:
    if "noop" not in workloads and "enqueue-bulk" not in workloads:
        return []
    out: list[dict[str, Any]] = []
    for broker in ("postgres", "sqlite"):
        if broker not in brokers:
            continue
        target = next((t for t in runner.limit_targets if t.broker == broker), None)
        if target is None:
            target = Target("fastq", broker, runner.tmp, runner.logs, db_prefix=runner.db_prefix)
            runner.limit_targets.append(target)
        fn = limit.postgres if broker == "postgres" else limit.sqlite
        result = fn(target, sizes.limit_jobs)
        base = {"system": "limit", "broker": broker, "repeat": repeat, "jobs": result.jobs}
        for workload, rate in (
            ("noop", result.drain_jobs_per_s),
            ("enqueue-bulk", result.insert_jobs_per_s),
        ):
            if workload in workloads:
                rec = {**base, "workload": workload, "jobs_per_s": rate}
                wal = result.drain_wal_per_job if workload == "noop" else result.insert_wal_per_job
                if wal is not None:
                    rec["wal_bytes_per_job"] = round(wal, 1)
                out.append(rec)
                report.progress(rec)
    return out


if __name__ == "__main__":
    sys.exit(main())

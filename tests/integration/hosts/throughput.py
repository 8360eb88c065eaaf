"""No-op throughput of 1, 2 and 3 worker hosts (network namespaces, netns.py) against one
PostgreSQL, for docs/scaling.md: ``make bench-hosts`` (root, PostgreSQL at 127.0.0.1).

Each round enqueues JOBS no-op jobs (testapp.tasks.noop), starts one ``fastq_worker
--burst`` per host and waits for them to drain the table. Throughput is JOBS over the
span from the first claim to the last outcome (the table's started_at and finished_at,
on the database's clock), so worker start-up does not count. While a round runs, CPU
time is sampled from /proc per kind of process (PostgreSQL, workers, forwarders) and the
server's counters (pg_stat_database, pg_stat_wal) are read before and after. A round on
127.0.0.1 without namespace nor forwarder gives the forwarder's cost.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DJANGO = HERE.parent.parent / "django"
DB = "fastq_hosts_bench"
TICK = os.sysconf("SC_CLK_TCK")

sys.path[:0] = [str(HERE), str(DJANGO)]
os.environ.setdefault("FASTQ_TEST_DB", "postgres")
os.environ["FASTQ_TEST_DB_NAME"] = DB
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")

import netns  # noqa: E402
import psycopg  # noqa: E402


def _kind(pid: str) -> str | None:
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None
    if comm == "postgres":
        return "postgres"
    if comm == "socat":
        return "forwarder"
    if comm.startswith("python") or comm.startswith("fastq"):
        return "workers" if pid != str(os.getpid()) else None
    return None


class CpuSampler(threading.Thread):
    """CPU seconds per kind of process over a round; processes that come and go (the
    workers' backends) are counted from their first sample."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.first: dict[str, int] = {}
        self.last: dict[str, tuple[str, int]] = {}
        self.stop = threading.Event()
        self._sample(baseline=True)

    def _sample(self, baseline: bool = False) -> None:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            kind = _kind(pid)
            if kind is None:
                continue
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2 :].split()
            ticks = int(fields[11]) + int(fields[12])
            key = f"{pid}:{fields[19]}"  # pid and start time: a reused pid is another process
            if key not in self.first:
                self.first[key] = ticks if baseline else 0
            self.last[key] = (kind, ticks)

    def run(self) -> None:
        while not self.stop.wait(0.1):
            self._sample()

    def finish(self) -> dict[str, float]:
        self.stop.set()
        self.join()
        self._sample()
        out: dict[str, float] = {}
        for key, (kind, ticks) in self.last.items():
            out[kind] = out.get(kind, 0.0) + (ticks - self.first[key]) / TICK
        return out


def _machine_busy() -> tuple[int, int]:
    cpu = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in cpu]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def _server_counters(conn: psycopg.Connection) -> dict[str, float]:
    row = conn.execute(
        "SELECT xact_commit, tup_updated, tup_inserted, blks_hit, blks_read "
        "FROM pg_stat_database WHERE datname = %s",
        [DB],
    ).fetchone()
    wal = conn.execute(
        "SELECT wal_records, wal_bytes, wal_write, wal_sync FROM pg_stat_wal"
    ).fetchone()
    keys = ("commits", "updated", "inserted", "blks_hit", "blks_read")
    out = dict(zip(keys, map(float, row), strict=True))
    out.update(
        zip(("wal_records", "wal_bytes", "wal_write", "wal_sync"), map(float, wal), strict=True)
    )
    return out


def _worker_env(host: netns.Host | None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(DJANGO), env.get("PYTHONPATH", "")])
    env.pop("FASTQ_LEDGER", None)
    if host is not None:
        env.update(host.env())
    return env


def run_round(hosts: list[netns.Host | None], jobs: int, concurrency: int) -> dict[str, object]:
    from django.db import connection
    from testapp import tasks

    with connection.cursor() as c:
        c.execute("TRUNCATE fastq_active, fastq_finished")  # the job store behind fastq_job
    tasks.noop.map([() for _ in range(jobs)])
    connection.close()
    admin = psycopg.connect(host="127.0.0.1", user="postgres", dbname=DB, autocommit=True)
    admin.execute("SELECT pg_stat_reset_shared('wal')")
    before = _server_counters(admin)
    busy0 = _machine_busy()
    sampler = CpuSampler()
    sampler.start()
    began = time.monotonic()
    procs = [
        subprocess.Popen(
            [
                *(h.prefix() if h else []),
                sys.executable,
                str(DJANGO / "manage.py"),
                "fastq_worker",
                "--burst",
                "--processes",
                "1",
                "--concurrency",
                str(concurrency),
                "--loglevel",
                "WARNING",
            ],
            cwd=DJANGO,
            env=_worker_env(h),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        for h in hosts
    ]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err.decode()
    wall = time.monotonic() - began
    cpu = sampler.finish()
    busy1 = _machine_busy()
    after = _server_counters(admin)
    span, done = admin.execute(
        "SELECT extract(epoch FROM max(finished_at) - min(started_at)), "
        "count(*) FILTER (WHERE state = 'succeeded') FROM fastq_job"
    ).fetchone()
    admin.close()
    assert done == jobs, f"{done} of {jobs} jobs succeeded"
    delta = {k: after[k] - before[k] for k in after}
    delta["wal_records"], delta["wal_bytes"] = after["wal_records"], after["wal_bytes"]
    delta["wal_write"], delta["wal_sync"] = after["wal_write"], after["wal_sync"]
    return {
        "hosts": len(hosts),
        "namespaces": hosts[0] is not None,
        "jobs": jobs,
        "span_s": round(float(span), 2),
        "jobs_per_s": round(jobs / float(span)),
        "wall_s": round(wall, 2),
        "machine_busy": round((busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]), 2),
        "cpu_s": {k: round(v, 2) for k, v in sorted(cpu.items())},
        "per_1000_jobs": {
            "commits": round(delta["commits"] * 1000 / jobs, 1),
            "wal_records": round(delta["wal_records"] * 1000 / jobs),
            "wal_kib": round(delta["wal_bytes"] * 1000 / jobs / 1024),
            "wal_syncs": round(delta["wal_sync"] * 1000 / jobs, 1),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", default="build/bench-hosts.json")
    args = parser.parse_args()
    problem = netns.unavailable()
    if problem:
        sys.exit(f"bench-hosts: {problem}")

    with psycopg.connect(
        host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True
    ) as c:
        c.execute(f"DROP DATABASE IF EXISTS {DB}")
        c.execute(f"CREATE DATABASE {DB}")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    hosts = netns.setup(3)
    results = []
    try:
        layouts: list[list[netns.Host | None]] = [[None], hosts[:1], hosts[:2], hosts[:3]]
        for _ in range(args.repeat):
            for layout in layouts:
                r = run_round(layout, args.jobs, args.concurrency)
                results.append(r)
                print(json.dumps(r), flush=True)
    finally:
        netns.teardown(hosts)
        from django.db import connection

        connection.close()
        with psycopg.connect(
            host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True
        ) as c:
            c.execute(f"DROP DATABASE IF EXISTS {DB}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Retention at scale: a worker (its scheduler's leader pruning) processes N no-op jobs with
every final state kept RETENTION seconds, and the job table must stay small for ever.

One fastq_worker (the benchmark project, --concurrency 2, scheduler on) runs while this
process keeps the queue fed (bulk enqueue, at most --depth jobs waiting). For each
segment (a million jobs by default) it records the seconds it took (the first
segment's clock starts when the first job is done, so worker start-up is not in it),
the finished rows in the job table (on PostgreSQL its statistics' live rows, not a
count), and the table's size when it ended: on PostgreSQL
the heap, its indexes and the total with TOAST (pg_relation_size, pg_indexes_size,
pg_total_relation_size); on SQLite the pages in use, the free pages and the WAL. Sizes
are also sampled every --sample seconds. The run passes when the last segment's
throughput is within 10% of the first's and the table is bounded: through the second half
of the run, which starts once the retention window has filled, its total size stays
within 1.2x its size at the half (it stops growing once retention deletes as fast as jobs
finish). The defaults (10 million jobs on PostgreSQL, 4 million on SQLite, above the
issue's 5 and 1 million) make a run last three or more 60-second windows here: a run
shorter than the window would never prune and could not show the bound.

    .venv/bin/python benchmarks/retention.py [--brokers postgres,sqlite] [--pg-jobs 10000000]
        [--sqlite-jobs 4000000] [--retention 60] [--quick] [--out FILE]

Writes benchmarks/results/retention.json (or --out) and prints a table per broker.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness import procs  # noqa: E402
from harness.systems import PG, pg_admin  # noqa: E402

DB_NAME = "retention_bench"
CHUNK = 5000
POLL = 0.25  # seconds between two counts of the waiting jobs


def env_for(broker: str, db: str, retention: float) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("VIRTUAL_ENV", None)
    env["PYTHONPATH"] = str(HERE)
    env["DJANGO_SETTINGS_MODULE"] = "benchproject.settings"
    env["BENCH_BROKER"] = broker
    env["BENCH_DB"] = db
    env["BENCH_RETENTION"] = str(retention)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def sizes(broker: str) -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as c:
        if broker == "postgres":
            # The job store's tables (migration 0017): the active table and every
            # partition of the finished log; fastq_job is a view of them.
            # Rows from the statistics collector's live counts (reported by the backends
            # within a second or so): a count(*) of millions of rows every sample would
            # read the whole log through the shared buffers the run is measured on.
            c.execute(
                "SELECT sum(pg_relation_size(r)), sum(pg_indexes_size(r)), "
                "sum(pg_total_relation_size(r)), "
                "sum((SELECT n_live_tup FROM pg_stat_user_tables s WHERE s.relid = r)), "
                "sum((SELECT n_dead_tup FROM pg_stat_user_tables s WHERE s.relid = r)) "
                "FROM (SELECT 'fastq_active'::regclass AS r UNION ALL SELECT relid "
                "FROM pg_partition_tree('fastq_finished') WHERE isleaf) t"
            )
            heap, index, total, rows, dead = (int(v or 0) for v in c.fetchone())
            # The server's WAL position and checkpoints so far: the segments' WAL bytes a
            # job, and whether a checkpoint (and the full-page images after it) fell in one.
            c.execute(
                "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn, "
                "checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter"
            )
            lsn, checkpoints = (int(v) for v in c.fetchone())
            return {
                "heap": heap,
                "indexes": index,
                "total": total,
                "rows": rows,
                "dead": dead,
                "wal_lsn": lsn,
                "checkpoints": checkpoints,
            }
        c.execute("PRAGMA page_size")
        page = c.fetchone()[0]
        c.execute("PRAGMA page_count")
        pages = c.fetchone()[0]
        c.execute("PRAGMA freelist_count")
        free = c.fetchone()[0]
        c.execute("SELECT count(*) FROM fastq_job")
        rows = c.fetchone()[0]
        name = str(connection.settings_dict["NAME"])
        wal = os.path.getsize(name + "-wal") if os.path.exists(name + "-wal") else 0
        return {
            "file": pages * page,
            "in_use": (pages - free) * page,
            "free": free * page,
            "total": pages * page + wal,  # the write-ahead log is the store's too
            "wal": wal,
            "rows": rows,
        }


def pending() -> int:
    from django.db import connection

    with connection.cursor() as c:
        c.execute("SELECT count(*) FROM fastq_job WHERE state IN ('queued', 'running')")
        return int(c.fetchone()[0])


def load_average() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def run_broker(
    broker: str, jobs: int, segment: int, retention: float, depth: int, sample: float, tmp: Path
) -> dict[str, Any]:
    import django
    from django.core.management import call_command

    if broker == "postgres":
        pg_admin(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        pg_admin(f"CREATE DATABASE {DB_NAME}")
        db = DB_NAME
    else:
        db = str(tmp / "retention.sqlite3")
    env = env_for(broker, db, retention)
    os.environ.update({k: env[k] for k in ("BENCH_BROKER", "BENCH_DB", "BENCH_RETENTION")})
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchproject.settings"
    django.setup()
    call_command("migrate", verbosity=0)
    from bench.tasks import noop
    from django.db import connection

    log = tmp / f"worker-{broker}.log"
    worker = procs.start(
        [
            sys.executable,
            "manage.py",
            "fastq_worker",
            "--queues",
            "default",
            "-l",
            "WARNING",
            "--concurrency",
            "2",
        ],
        HERE,
        env,
        log,
    )
    enqueued = 0
    segments: list[dict[str, Any]] = []
    samples: list[dict[str, Any]] = []
    start_sizes = sizes(broker)
    t0 = time.time()
    seg_start = 0.0  # the first segment's clock starts with the first job done
    next_sample = t0
    last_poll = t0
    try:
        while True:
            waiting = pending()
            done = enqueued - waiting
            now = time.time()
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited {worker.returncode}; see {log}")
            if not seg_start and done > 0:
                # The first job finished between the last poll and this one.
                seg_start = last_poll
            # One poll may cross several segment boundaries (a fast worker, a
            # slow poll); they share the time since the last boundary, so no
            # segment is reported as taking zero seconds.
            crossed = min(done // segment, jobs // segment) - len(segments)
            per_segment = max(now - seg_start, 1e-6) / crossed if crossed > 0 else 0.0
            while done >= (len(segments) + 1) * segment and len(segments) < jobs // segment:
                seconds = per_segment
                s = sizes(broker)
                s["finished_rows"] = s["rows"] - pending()
                extra = ""
                if "wal_lsn" in s:
                    before = segments[-1] if segments else start_sizes
                    s["wal_bytes_per_job"] = round((s["wal_lsn"] - before["wal_lsn"]) / segment)
                    s["checkpoints_in_segment"] = s["checkpoints"] - before["checkpoints"]
                    extra = (
                        f"  WAL {s['wal_bytes_per_job']:,} B/job"
                        f"  checkpoints {s['checkpoints_in_segment']}"
                    )
                segments.append(
                    {
                        "segment": len(segments) + 1,
                        "jobs": segment,
                        "seconds": round(seconds, 1),
                        "jobs_per_s": round(segment / seconds, 1),
                        "load": load_average(),
                        **s,
                    }
                )
                print(
                    f"{broker}: {len(segments) * segment:>9,} jobs  "
                    f"{segment / seconds:8.0f} jobs/s  finished rows {s['finished_rows']:>9,}  "
                    f"total {s['total'] / 2**20:7.1f} MiB  load {load_average()}{extra}",
                    flush=True,
                )
                seg_start = now
            last_poll = now
            if len(segments) * segment >= jobs:
                break
            if now >= next_sample:
                samples.append({"t": round(now - t0, 1), "done": done, **sizes(broker)})
                next_sample = now + sample
            # Topped up to the depth, then a pause: the count of waiting jobs reads the
            # whole active table, and polled as fast as chunks go (8 times a second at
            # 40,000 jobs/s) it took a quarter of a core, more as that table's pages grew.
            while enqueued < jobs and waiting < depth:
                n = min(CHUNK, jobs - enqueued)
                noop.map([()] * n)
                enqueued += n
                waiting += n
            time.sleep(POLL)
    finally:
        procs.stop([worker])
        connection.close()
    first, last = segments[0], segments[-1]
    half = len(segments) // 2
    second_half = [s["total"] for s in segments[half:]]
    # The second half starts when the window has filled (pruning under way) or the run
    # was too short to show a bound.
    window_filled = sum(s["seconds"] for s in segments[:half]) >= retention
    return {
        "broker": broker,
        "jobs": jobs,
        "retention_s": retention,
        "seconds": round(time.time() - t0, 1),
        "segments": segments,
        "samples": samples,
        "last_vs_first": round(last["jobs_per_s"] / first["jobs_per_s"], 3),
        "max_total_second_half": max(second_half),
        "total_after_first": first["total"],
        "total_at_half": second_half[0],
        "window_filled_by_half": window_filled,
        "steady_throughput": last["jobs_per_s"] >= 0.9 * first["jobs_per_s"],
        "bounded": window_filled and max(second_half) <= 1.2 * second_half[0],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--brokers", default="postgres,sqlite")
    ap.add_argument("--pg-jobs", type=int, default=10_000_000)
    ap.add_argument("--sqlite-jobs", type=int, default=4_000_000)
    ap.add_argument(
        "--segment",
        type=int,
        default=0,
        help="jobs per segment (default: N/5 or a million, whichever is smaller)",
    )
    ap.add_argument("--retention", type=float, default=60.0)
    ap.add_argument("--depth", type=int, default=50_000, help="most jobs waiting at once")
    ap.add_argument("--sample", type=float, default=30.0, help="seconds between size samples")
    ap.add_argument(
        "--quick", action="store_true", help="100,000 jobs a broker, retention 5 s (a smoke run)"
    )
    ap.add_argument("--out", default=str(HERE / "results" / "retention.json"))
    a = ap.parse_args()
    if a.quick:
        a.pg_jobs = a.sqlite_jobs = 100_000
        a.retention = 5.0
        a.sample = 5.0
    results = []
    for broker in a.brokers.split(","):
        jobs = a.pg_jobs if broker == "postgres" else a.sqlite_jobs
        segment = a.segment or min(1_000_000, max(jobs // 5, 1))
        with tempfile.TemporaryDirectory(prefix="fastq-retention-") as tmp:
            # One Django setup per process: each broker runs in a child of its own.
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--one",
                    broker,
                    str(jobs),
                    str(segment),
                    str(a.retention),
                    str(a.depth),
                    str(a.sample),
                    tmp,
                ],
                check=False,
                capture_output=False,
                stdout=None,
            )
            if out.returncode != 0:
                print(f"{broker}: failed ({out.returncode})", file=sys.stderr)
                return 1
            results.append(json.loads((Path(tmp) / "result.json").read_text()))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"runs": results, "pg": PG}, indent=1) + "\n")
    for r in results:
        print(
            f"{r['broker']}: {r['jobs']:,} jobs in {r['seconds']} s; last segment at "
            f"{r['last_vs_first']:.0%} of the first; table at most "
            f"{r['max_total_second_half'] / 2**20:.1f} MiB in the second half "
            f"({r['total_at_half'] / 2**20:.1f} MiB at the half, "
            f"{r['total_after_first'] / 2**20:.1f} MiB after the first segment"
            f"{'' if r['window_filled_by_half'] else '; run shorter than two windows'})"
        )
    ok = all(r["steady_throughput"] and r["bounded"] for r in results)
    print("retention benchmark:", "steady and bounded" if ok else "NOT steady or NOT bounded")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        broker, jobs, segment, keep, depth, sample, tmp = sys.argv[2:9]
        result = run_broker(
            broker, int(jobs), int(segment), float(keep), int(depth), float(sample), Path(tmp)
        )
        (Path(tmp) / "result.json").write_text(json.dumps(result))
        sys.exit(0)
    sys.exit(main())

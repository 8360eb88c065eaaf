"""Turning records into the table (latest.md), the targets verdicts and the chart."""

from __future__ import annotations

import statistics
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

from harness.systems import HERE, PEERS_VENV

Key = tuple[str, str, str]  # workload, system, broker
SYSTEM_ORDER = ("fastq", "fastq-tasks", "limit", "celery", "django-q2", "django-tasks")
BROKER_ORDER = ("postgres", "sqlite", "redis")


def progress(rec: dict[str, Any], took: float | None = None) -> None:
    """One line per measurement while the run goes on (``took``: wall time of the step,
    preparation included)."""
    what = f"  {rec['repeat']} {rec['workload']:13}{rec['system']:>13}/{rec['broker']:9}"
    if "startup_ms" in rec:
        fig = (
            f"start to first job {rec['startup_ms']:.0f} ms (median of {rec['samples']}, "
            f"{rec['startup_min_ms']:.0f}..{rec['startup_max_ms']:.0f}; load "
            f"{rec['load_1min']:.1f})"
        )
    elif "p50_ms" in rec:
        fig = f"p50 {rec['p50_ms']:.1f} ms  p95 {rec['p95_ms']:.1f}  p99 {rec['p99_ms']:.1f}"
    else:
        fig = f"{rec['jobs_per_s']:>10,.0f} jobs/s"
        if "seconds" in rec:
            fig += f"  {rec['seconds']:6.2f} s"
        if rec.get("capped"):
            fig += f"  (cut off: {rec['jobs']:,} done)"
        if "worker_jobs_per_s" in rec:
            fig += f"  worker run {rec['worker_jobs_per_s']:,.0f} jobs/s"
        if "peak_rss_mb" in rec and rec["workload"] == "noop":
            fig += f"  RSS {rec['peak_rss_mb']:.0f} MiB"
        if "wal_bytes_per_job" in rec:
            fig += f"  WAL {rec['wal_bytes_per_job']:,.0f} B/job"
    if took is not None:
        fig += f"  [{took:.0f} s]"
    print(what + fig, flush=True)


class Stats:
    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.groups: dict[Key, list[dict[str, Any]]] = defaultdict(list)
        for r in records:
            self.groups[(r["workload"], r["system"], r["broker"])].append(r)

    def values(self, key: Key, field: str) -> list[float]:
        return [float(r[field]) for r in self.groups.get(key, []) if r.get(field) is not None]

    def median(self, key: Key, field: str) -> float | None:
        v = self.values(key, field)
        return statistics.median(v) if v else None

    def spread(self, key: Key, field: str, fmt: str) -> str:
        v = self.values(key, field)
        return f"{min(v):{fmt}}..{max(v):{fmt}}" if v else ""

    def capped(self, key: Key) -> bool:
        return any(r.get("capped") for r in self.groups.get(key, []))

    def keys(self, workload: str) -> list[Key]:
        ks = [k for k in self.groups if k[0] == workload]
        return sorted(ks, key=lambda k: (SYSTEM_ORDER.index(k[1]), BROKER_ORDER.index(k[2])))


def _fastq_ref(stats: Stats, workload: str, broker: str, field: str) -> float | None:
    """fastq's figure to compare a peer with: same broker, else PostgreSQL."""
    same = stats.median((workload, "fastq", broker), field)
    return same if same is not None else stats.median((workload, "fastq", "postgres"), field)


def _ratio(fastq: float | None, peer: float | None, higher_is_better: bool) -> str:
    if not fastq or not peer:
        return ""
    r = fastq / peer if higher_is_better else peer / fastq
    return f"{r:,.1f}x" if r < 100 else f"{r:,.0f}x"


def targets(stats: Stats) -> list[tuple[str, str, bool | None]]:
    """(target, figures, met) for each target of issue 5; met is None when not measured."""
    out: list[tuple[str, str, bool | None]] = []

    def med(w: str, s: str, b: str, f: str = "jobs_per_s") -> float | None:
        return stats.median((w, s, b), f)

    fq_pg = med("noop", "fastq", "postgres")
    for label, peer, factor in (
        ("no-op on PostgreSQL >= 10x Celery/Redis", ("celery", "redis"), 10),
        ("no-op on PostgreSQL >= 30x Django-Q2 on PostgreSQL", ("django-q2", "postgres"), 30),
    ):
        p = med("noop", *peer)
        if fq_pg and p:
            out.append(
                (label, f"{fq_pg / p:,.1f}x ({fq_pg:,.0f} vs {p:,.0f} jobs/s)", fq_pg >= factor * p)
            )
        else:
            out.append((label, "not measured", None))
    lim = med("noop", "limit", "postgres")
    fq_run = med("noop", "fastq", "postgres", "worker_jobs_per_s")
    if fq_pg and lim:
        figs = f"{fq_pg / lim:.0%} from worker start"
        if fq_run:
            figs += f", {fq_run / lim:.0%} over the worker's own run time"
        figs += f" (limit {lim:,.0f} jobs/s)"
        out.append(("no-op on PostgreSQL >= 50% of the SQL limit", figs, fq_pg >= 0.5 * lim))
    else:
        out.append(("no-op on PostgreSQL >= 50% of the SQL limit", "not measured", None))
    fq_sq, q2_sq = med("noop", "fastq", "sqlite"), med("noop", "django-q2", "sqlite")
    label = "no-op on SQLite >= 30x Django-Q2 on SQLite"
    if fq_sq and q2_sq:
        out.append(
            (
                label,
                f"{fq_sq / q2_sq:,.1f}x ({fq_sq:,.0f} vs {q2_sq:,.0f} jobs/s)",
                fq_sq >= 30 * q2_sq,
            )
        )
    else:
        out.append((label, "not measured", None))
    p50 = med("latency", "fastq", "postgres", "p50_ms")
    label = "latency p50 on PostgreSQL <= 5 ms and below every peer"
    if p50 is not None:
        peers = {
            f"{k[1]}/{k[2]}": stats.median(k, "p50_ms")
            for k in stats.keys("latency")
            if k[1] not in ("fastq", "fastq-tasks", "limit")
        }
        best = min((v for v in peers.values() if v is not None), default=None)
        fig = f"{p50:.1f} ms"
        if best is not None:
            who = min(peers, key=lambda k: peers[k] or float("inf"))
            fig += f"; best peer {who} {best:.1f} ms"
        met = p50 <= 5 and (best is None or p50 < best)
        out.append((label, fig, met))
    else:
        out.append((label, "not measured", None))
    bulk = med("enqueue-bulk", "fastq", "postgres")
    label = "bulk enqueue on PostgreSQL >= 100,000 jobs/s"
    out.append(
        (label, f"{bulk:,.0f} jobs/s", bulk >= 100_000) if bulk else (label, "not measured", None)
    )
    out += tasks_api_targets(stats)
    st = med("startup", "fastq", "postgres", "startup_ms")
    label = "fastq_worker on PostgreSQL starts its first job within 150 ms of its start"
    out.append((label, f"{st:.0f} ms", st <= 150) if st else (label, "not measured", None))
    c_rss = med("noop", "celery", "redis", "peak_rss_mb")
    f_rss = [
        v
        for v in (med("noop", "fastq", b, "peak_rss_mb") for b in ("postgres", "sqlite"))
        if v is not None
    ]
    label = "fastq worker peak RSS <= Celery's (2 processes / 2 threads)"
    if c_rss and f_rss:
        out.append(
            (label, f"fastq {max(f_rss):.0f} MiB, Celery {c_rss:.0f} MiB", max(f_rss) <= c_rss)
        )
    else:
        out.append((label, "not measured", None))
    return out


def tasks_api_targets(stats: Stats) -> list[tuple[str, str, bool | None]]:
    """Issue 14's targets for Django's Tasks API: fastq's backend (fastq-tasks) against
    django-tasks-db's database backend and worker, and against native @fastq.task, no-op
    on PostgreSQL, same run."""
    out: list[tuple[str, str, bool | None]] = []
    ft = stats.median(("noop", "fastq-tasks", "postgres"), "jobs_per_s")
    dt = stats.median(("noop", "django-tasks", "postgres"), "jobs_per_s")
    fq = stats.median(("noop", "fastq", "postgres"), "jobs_per_s")
    label = "Tasks API no-op on PostgreSQL: fastq's backend >= 30x django-tasks-db"
    if ft and dt:
        out.append((label, f"{ft / dt:,.1f}x ({ft:,.0f} vs {dt:,.0f} jobs/s)", ft >= 30 * dt))
    else:
        out.append((label, "not measured", None))
    label = "Tasks API no-op on PostgreSQL: fastq's backend within 10% of native @fastq.task"
    if ft and fq:
        out.append(
            (label, f"{ft / fq:.0%} of native ({ft:,.0f} vs {fq:,.0f} jobs/s)", ft >= 0.9 * fq)
        )
    else:
        out.append((label, "not measured", None))
    return out


def markdown(data: dict[str, Any]) -> str:
    stats = Stats(data["records"])
    run, m = data["run"], data["machine"]
    sizes = run["sizes"]
    lines = [
        "# fastq and its peers, side by side",
        "",
        f"{m['cpus']} cores, Python {m['python']}, Django {m['django']}, PostgreSQL "
        f"{m.get('postgres', '?').split()[0]}, Redis {m.get('redis', '?')}, SQLite {m['sqlite']}; "
        + ", ".join(f"{k} {v}" for k, v in m.get("peers", {}).items() if k != "matplotlib")
        + f". {'Quick run' if run['quick'] else 'Full run'}: {run['repeats']} repeat(s), "
        f"median and min..max, {run['seconds']:.0f} s in all.",
        "",
        "`fastq x`: how many times better fastq is (its throughput / the peer's, or the "
        "peer's time / fastq's), against fastq on the same broker (PostgreSQL for Redis).",
        "",
        "## Throughput (jobs/s)",
        "",
        "| workload | system | broker | jobs/s | min..max | fastq x | WAL B/job |",
        "|---|---|---|---:|---|---:|---:|",
    ]
    notes = {
        "noop": f"no-op, {sizes['noop_jobs']:,} queued, from worker start to last done",
        "depth": f"no-op as above, {sizes['depth_jobs']:,} more waiting in another queue",
        "enqueue": "`.delay()` in a loop",
        "enqueue-bulk": "bulk path",
    }
    for workload in ("noop", "depth", "enqueue", "enqueue-bulk"):
        for key in stats.keys(workload):
            _, system, broker = key
            med = stats.median(key, "jobs_per_s")
            assert med is not None
            star = "*" if stats.capped(key) else ""
            ratio = ""
            if system not in ("fastq", "limit"):
                ratio = _ratio(_fastq_ref(stats, workload, broker, "jobs_per_s"), med, True)
            elif system == "limit":
                fq = stats.median((workload, "fastq", broker), "jobs_per_s")
                ratio = f"fastq at {fq / med:.0%}" if fq else ""
            wal = stats.median(key, "wal_bytes_per_job")
            lines.append(
                f"| {workload} | {system} | {broker} | {med:,.0f}{star} | "
                f"{stats.spread(key, 'jobs_per_s', ',.0f')} | {ratio} | "
                f"{'' if wal is None else f'{wal:,.0f}'} |"
            )
            if system in ("fastq", "fastq-tasks") and stats.values(key, "worker_jobs_per_s"):
                wk = stats.median(key, "worker_jobs_per_s")
                lines.append(
                    f"| {workload} | {system}, worker's own run time | {broker} | {wk:,.0f} | "
                    f"{stats.spread(key, 'worker_jobs_per_s', ',.0f')} | | |"
                )
    lines += [
        "",
        "Workloads: " + "; ".join(f"**{k}**: {v}" for k, v in notes.items()) + ". "
        f"`*`: cut off {sizes['noop_cap']:.0f} s after the worker started (jobs done by "
        "then / time). `limit`: fastq's statements alone (pgbench, sqlite_limit.cpp); its "
        "noop row is claim + complete, its enqueue-bulk row the INSERT. `WAL B/job`: "
        "PostgreSQL's WAL (`pg_current_wal_lsn()` differences, the whole server) from "
        "the worker's start to the last job done, per job done (prefill not included; "
        "limit: its statements alone).",
        "",
        f"## Latency, enqueue to start, at {sizes['latency_rate']:.0f} jobs/s (ms)",
        "",
        "| system | broker | p50 | p95 | p99 | p50 min..max | fastq x (p50) |",
        "|---|---|---:|---:|---:|---|---:|",
    ]
    for key in stats.keys("latency"):
        _, system, broker = key
        p = {f: stats.median(key, f) for f in ("p50_ms", "p95_ms", "p99_ms")}
        ratio = ""
        if system != "fastq":
            ratio = _ratio(_fastq_ref(stats, "latency", broker, "p50_ms"), p["p50_ms"], False)
        lines.append(
            f"| {system} | {broker} | {p['p50_ms']:.1f} | {p['p95_ms']:.1f} | "
            f"{p['p99_ms']:.1f} | {stats.spread(key, 'p50_ms', '.1f')} | {ratio} |"
        )
    lines += [
        "",
        f"## io: {sizes['io_jobs']:,} jobs, each an HTTP call answered after 50 ms (seconds)",
        "",
        "| system | broker | seconds | min..max | jobs/s | fastq x |",
        "|---|---|---:|---|---:|---:|",
    ]
    for key in stats.keys("io"):
        _, system, broker = key
        sec = stats.median(key, "seconds")
        jps = stats.median(key, "jobs_per_s")
        assert sec is not None and jps is not None
        star = "*" if stats.capped(key) else ""
        ratio = ""
        if system != "fastq":
            ratio = _ratio(_fastq_ref(stats, "io", broker, "jobs_per_s"), jps, True)
        lines.append(
            f"| {system} | {broker} | {sec:.2f}{star} | {stats.spread(key, 'seconds', '.2f')} | "
            f"{jps:,.0f} | {ratio} |"
        )
    lines += [
        "",
        f"`*`: not finished {sizes['io_cap']:.0f} s after the worker started; jobs/s is "
        "what was done by then.",
        "",
        "## Peak RSS of the worker processes during no-op (MiB)",
        "",
        "Summed over each command started and all its descendants, sampled from /proc.",
        "",
        "| system | broker | commands started | peak RSS | min..max |",
        "|---|---|---:|---:|---|",
    ]
    for key in stats.keys("noop"):
        _, system, broker = key
        rss = stats.median(key, "peak_rss_mb")
        if rss is None:
            continue
        n = stats.groups[key][0].get("workers", 1)
        lines.append(
            f"| {system} | {broker} | {n} | {rss:.0f} | {stats.spread(key, 'peak_rss_mb', '.0f')} |"
        )
    if stats.keys("startup"):
        lines += [
            "",
            "## Start-up: `fastq_worker` spawned to its first job's `started_at` (ms)",
            "",
            "One no-op job waits; the drain's worker command is spawned; median of the "
            "starts of each repeat, then the median of the repeats (1-min load average "
            "beside it).",
            "",
            "| system | broker | ms | min..max (of repeats' medians) | load |",
            "|---|---|---:|---|---|",
        ]
        for key in stats.keys("startup"):
            _, system, broker = key
            ms = stats.median(key, "startup_ms")
            lines.append(
                f"| {system} | {broker} | {ms:.0f} | {stats.spread(key, 'startup_ms', '.0f')} | "
                f"{stats.spread(key, 'load_1min', '.1f')} |"
            )
    lines += ["", "## Targets", "", "| target | measured | |", "|---|---|---|"]
    for label, fig, met in targets(stats):
        verdict = "n/a" if met is None else ("met" if met else "**missed**")
        lines.append(f"| {label} | {fig} | {verdict} |")
    return "\n".join(lines) + "\n"


def chart(results: Path, png: Path) -> None:
    """Draws latest.png with matplotlib from the peers' virtualenv (if it is there)."""
    python = PEERS_VENV / "bin" / "python"
    if not python.exists():
        print("no chart: benchmarks/.peers is missing (matplotlib lives there)")
        return
    out = subprocess.run(
        [str(python), str(HERE / "harness" / "chart.py"), str(results), str(png)],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        print(f"no chart: {out.stderr.strip()[-500:]}")

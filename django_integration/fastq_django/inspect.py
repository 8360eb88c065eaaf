"""What the fleet is doing, read from the database: the queries behind ``fastq_inspect``,
``fastq_health`` and ``/fastq/metrics`` (and a dashboard's).

Every function here reads; none writes. Each one is shaped to stay fast on a job table
of millions of rows by touching only what an index or the job store already narrows:

- queued and running rows (``active``, ``reserved``): on PostgreSQL the job store's
  active table (migration 0017), which holds only queued, running and waiting jobs
  whatever the history (a query of ``fastq_job`` for those states never reads the
  finished log: its CHECK constraint excludes it); on SQLite the partial indexes
  ``fastq_job_claim`` (queued) and ``fastq_job_lease`` (running);
- recent outcomes (``stats``, the metrics' per-task counters): ``fastq_finished``, a range
  over its ``finished_at`` index (on SQLite a view of ``fastq_job`` over
  ``fastq_job_finished``); percentiles are computed in SQL on PostgreSQL
  (``percentile_cont``), in Python on SQLite;
- workers: the small ``fastq_worker`` table.

Lists are bounded (``limit``) and their totals counted separately, so a backlog of a
million never travels to the client.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import connections
from django.db.models import Count, Max, Min, Q
from django.utils import timezone
from fastq import conf, registry

from fastq_django.models import Job, JobState, Queue, Schedule, WorkerProcess, WorkerState

FINISHED_STATES = (
    JobState.SUCCEEDED,
    JobState.FAILED,
    JobState.DEAD,
    JobState.EXPIRED,
    JobState.CANCELLED,
)
FAILED_STATES = (JobState.FAILED, JobState.DEAD)
WINDOWS = (1, 5, 15)  # minutes, for stats


def alias() -> str:
    return str(conf.get("DATABASE"))


def _now() -> datetime:
    return timezone.now()


def _seconds(delta: timedelta | None) -> float | None:
    return None if delta is None else delta.total_seconds()


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


# ---- workers ------------------------------------------------------------------------------


def workers(include_stopped: bool = False) -> list[dict[str, Any]]:
    """Registry rows: live and lost ones (and stopped ones with ``include_stopped``)."""
    now = _now()
    rows = WorkerProcess.objects.using(alias()).all()
    if not include_stopped:
        rows = rows.exclude(state=WorkerState.STOPPED)
    out = []
    for w in rows.order_by("host", "pid", "id"):
        out.append(
            {
                "id": w.id,
                "kind": w.kind,
                "supervisor": w.supervisor,
                "host": w.host,
                "pid": w.pid,
                "version": w.version,
                "state": w.shown_state,
                "queues": w.queue_list,
                "tasks": w.task_list,
                "concurrency": w.concurrency,
                "processes": w.processes,
                "processed": w.processed,
                "failed": w.failed,
                "rss_bytes": w.rss_bytes,
                "started_at": _iso(w.started_at),
                "last_heartbeat": _iso(w.last_heartbeat),
                "heartbeat_age": _seconds(now - w.last_heartbeat),
                "expires_at": _iso(w.expires_at),
                "stopped_at": _iso(w.stopped_at),
            }
        )
    return out


def live_workers() -> list[WorkerProcess]:
    """Worker processes (not supervisors) whose heartbeat is within their lease."""
    return list(
        WorkerProcess.objects.using(alias()).filter(
            state=WorkerState.RUNNING, kind="worker", expires_at__gte=_now()
        )
    )


# ---- jobs held by workers -----------------------------------------------------------------


def _running(started: bool, limit: int) -> dict[str, Any]:
    now = _now()
    base = Job.objects.using(alias()).filter(state=JobState.RUNNING, started_at__isnull=not started)
    total = base.count()
    order = "started_at" if started else "lease_expires_at"
    jobs = []
    for j in base.order_by(order).values(
        "id", "task", "queue", "worker", "attempts", "started_at", "run_at", "lease_expires_at"
    )[:limit]:
        item = {
            "id": str(j["id"]),
            "task": j["task"],
            "queue": j["queue"],
            "worker": j["worker"],
            "attempt": j["attempts"],
            "lease_expires_at": _iso(j["lease_expires_at"]),
        }
        if started:
            item["started_at"] = _iso(j["started_at"])
            item["runtime"] = _seconds(now - j["started_at"])
        else:
            item["run_at"] = _iso(j["run_at"])
        jobs.append(item)
    return {"total": total, "jobs": jobs}


def active(limit: int = 100) -> dict[str, Any]:
    """Running jobs (started), longest running first, with worker and runtime."""
    return _running(True, limit)


def reserved(limit: int = 100) -> dict[str, Any]:
    """Jobs a worker claimed but has not started (prefetched, or waiting for a rate
    limit's token)."""
    return _running(False, limit)


def scheduled(limit: int = 100) -> dict[str, Any]:
    """Queued jobs waiting for their run time (countdown, eta, retries), soonest first,
    and every schedule's next fire."""
    now = _now()
    base = Job.objects.using(alias()).filter(state=JobState.QUEUED, run_at__gt=now)
    total = base.count()
    jobs = [
        {
            "id": str(j["id"]),
            "task": j["task"],
            "queue": j["queue"],
            "run_at": _iso(j["run_at"]),
            "in": _seconds(j["run_at"] - now),
            "attempts": j["attempts"],
        }
        for j in base.order_by("run_at").values("id", "task", "queue", "run_at", "attempts")[:limit]
    ]
    schedules = [
        {
            "name": s.name,
            "task": s.task,
            "enabled": s.enabled,
            "next_run_at": _iso(s.next_run_at),
            "in": _seconds(s.next_run_at - now) if s.next_run_at else None,
            "last_run_at": _iso(s.last_run_at),
            "last_outcome": s.last_outcome,
        }
        for s in Schedule.objects.using(alias()).order_by("name")
    ]
    return {"total": total, "jobs": jobs, "schedules": schedules}


def registered() -> dict[str, Any]:
    """The tasks each live worker runs, and the tasks declared in this code base (its
    ``fastq.registry`` after discovery) that no live worker runs."""
    live = live_workers()
    by_worker = [
        {"id": w.id, "host": w.host, "pid": w.pid, "queues": w.queue_list, "tasks": w.task_list}
        for w in sorted(live, key=lambda w: (w.host, w.pid))
    ]
    served = {t for w in live for t in w.task_list}
    declared = sorted(registry)
    return {
        "workers": by_worker,
        "declared": declared,
        "not_served": [t for t in declared if t not in served],
    }


# ---- queues -------------------------------------------------------------------------------


def queue_names(extra: Iterable[str] = ()) -> list[str]:
    """Queues worth reporting: configured ones, those of registered tasks and live
    workers, and ``extra`` (those with rows)."""
    names = set(extra)
    names.update(conf.get("QUEUES") or [])
    names.update(t.queue for t in registry.values())
    for w in live_workers():
        names.update(w.queue_list)
    return sorted(names)


def queues() -> list[dict[str, Any]]:
    """Per queue: depth (due now), scheduled later, oldest wait, running, reserved, the
    live workers consuming it, and its controls (``fastq_queue``: paused, fleet-wide
    limit; ``fastq_queues``)."""
    now = _now()
    db = alias()
    queued = {
        r["queue"]: r
        for r in Job.objects.using(db)
        .filter(state=JobState.QUEUED)
        .values("queue")
        .annotate(
            depth=Count("id", filter=Q(run_at__lte=now)),
            later=Count("id", filter=Q(run_at__gt=now)),
            oldest=Min("run_at", filter=Q(run_at__lte=now)),
        )
        .order_by()
    }
    running = {
        r["queue"]: r
        for r in Job.objects.using(db)
        .filter(state=JobState.RUNNING)
        .values("queue")
        .annotate(
            running=Count("id", filter=Q(started_at__isnull=False)),
            reserved=Count("id", filter=Q(started_at__isnull=True)),
        )
        .order_by()
    }
    controls = {c.name: c for c in Queue.objects.using(db).all()}
    consumers: dict[str, int] = defaultdict(int)
    slots: dict[str, int] = defaultdict(int)
    for w in live_workers():
        for q in w.queue_list:
            consumers[q] += 1
            slots[q] += w.concurrency
    out = []
    for name in queue_names([*queued, *running, *controls]):
        q = queued.get(name, {})
        r = running.get(name, {})
        c = controls.get(name)
        oldest = q.get("oldest")
        out.append(
            {
                "queue": name,
                "depth": q.get("depth", 0),
                "scheduled": q.get("later", 0),
                "oldest_wait": _seconds(now - oldest) if oldest else 0.0,
                "running": r.get("running", 0),
                "reserved": r.get("reserved", 0),
                "workers": consumers.get(name, 0),
                "concurrency": slots.get(name, 0),
                "paused": bool(c and c.paused),
                "limit": c.concurrency if c else None,
            }
        )
    return out


# ---- stats --------------------------------------------------------------------------------


def _percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """Linear interpolation between closest ranks (PostgreSQL's percentile_cont)."""
    if not sorted_values:
        return None
    k = (len(sorted_values) - 1) * p
    lo, hi = math.floor(k), math.ceil(k)
    if lo == hi:
        return float(sorted_values[lo])
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo))


def _stats_sql() -> str:
    """One pass over the last 15 minutes' finished rows (fastq_job_finished), grouped by
    queue and task; each window's aggregates FILTER the rows to that window."""
    per_window = []
    for m in WINDOWS:
        inside = f"j.finished_at >= %(since{m})s"
        wait = "extract(epoch FROM j.started_at - j.run_at)"
        run = "extract(epoch FROM j.finished_at - j.started_at)"
        per_window.append(
            f"count(*) FILTER (WHERE {inside}), "
            f"count(*) FILTER (WHERE {inside} AND j.state IN ('failed', 'dead')), "
            f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {wait}) FILTER (WHERE {inside}), "
            f"percentile_cont(0.95) WITHIN GROUP (ORDER BY {wait}) FILTER (WHERE {inside}), "
            f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {run}) FILTER (WHERE {inside}), "
            f"percentile_cont(0.95) WITHIN GROUP (ORDER BY {run}) FILTER (WHERE {inside})"
        )
    return (
        "SELECT j.queue, j.task, "
        + ", ".join(per_window)
        + f" FROM fastq_finished j WHERE j.finished_at >= %(since{max(WINDOWS)})s"
        " AND j.state IN ('succeeded', 'failed', 'dead', 'expired', 'cancelled')"
        " GROUP BY j.queue, j.task"
    )


STATS_SQL = _stats_sql()


def stats(now: datetime | None = None) -> list[dict[str, Any]]:
    """Per queue and task, over the last 1, 5 and 15 minutes: jobs finished per second,
    failure rate (failed or dead among finished), and p50/p95 of wait (run_at to start)
    and run time (start to finish). Wait and run time leave out jobs that never started
    (expired, cancelled)."""
    now = now or _now()
    since = now - timedelta(minutes=max(WINDOWS))
    db = alias()
    cells: dict[tuple[str, str], dict[int, dict[str, Any]]] = defaultdict(dict)
    if connections[db].vendor == "postgresql":
        params = {f"since{m}": now - timedelta(minutes=m) for m in WINDOWS}
        with connections[db].cursor() as cur:
            cur.execute(STATS_SQL, params)
            for queue, task, *values in cur.fetchall():
                for i, minutes in enumerate(WINDOWS):
                    n, failed, w50, w95, r50, r95 = values[i * 6 : i * 6 + 6]
                    if n:
                        cells[(queue, task)][minutes] = _cell(
                            minutes, n, failed, w50, w95, r50, r95
                        )
    else:
        rows = (
            Job.objects.using(db)
            .filter(finished_at__gte=since, state__in=FINISHED_STATES)
            .values_list("queue", "task", "state", "run_at", "started_at", "finished_at")
        )
        grouped: dict[tuple[str, str], list[tuple[float, str, float | None, float | None]]] = (
            defaultdict(list)
        )
        for queue, task, state, run_at, started_at, finished_at in rows.iterator(chunk_size=5000):
            wait = run = None
            if started_at is not None:
                wait = (started_at - run_at).total_seconds()
                run = (finished_at - started_at).total_seconds()
            grouped[(queue, task)].append(((now - finished_at).total_seconds(), state, wait, run))
        for key, items in grouped.items():
            for minutes in WINDOWS:
                inside = [i for i in items if i[0] <= minutes * 60]
                if not inside:
                    continue
                waits = sorted(i[2] for i in inside if i[2] is not None)
                runs = sorted(i[3] for i in inside if i[3] is not None)
                cells[key][minutes] = _cell(
                    minutes,
                    len(inside),
                    sum(1 for i in inside if i[1] in FAILED_STATES),
                    _percentile(waits, 0.5),
                    _percentile(waits, 0.95),
                    _percentile(runs, 0.5),
                    _percentile(runs, 0.95),
                )
    return [
        {"queue": queue, "task": task, "windows": {str(m): w for m, w in sorted(win.items())}}
        for (queue, task), win in sorted(cells.items())
    ]


def _cell(
    minutes: int,
    n: int,
    failed: int,
    w50: float | None,
    w95: float | None,
    r50: float | None,
    r95: float | None,
) -> dict[str, Any]:
    def f(v: Any) -> float | None:
        return None if v is None else float(v)

    return {
        "finished": int(n),
        "failed": int(failed),
        "per_second": n / (minutes * 60),
        "failure_rate": failed / n if n else 0.0,
        "wait_p50": f(w50),
        "wait_p95": f(w95),
        "run_p50": f(r50),
        "run_p95": f(r95),
    }


# ---- metrics ------------------------------------------------------------------------------


def job_counts() -> list[tuple[str, str, str, int]]:
    """(queue, task, state, rows) over the whole job table: one grouped scan."""
    return [
        (r["queue"], r["task"], r["state"], r["n"])
        for r in Job.objects.using(alias())
        .values("queue", "task", "state")
        .annotate(n=Count("id"))
        .order_by("queue", "task", "state")
    ]


def schedule_lag() -> list[tuple[str, float]]:
    """Enabled schedules whose next fire is overdue: (name, seconds late; 0 when not)."""
    now = _now()
    return [
        (s["name"], max(0.0, (now - s["next_run_at"]).total_seconds()))
        for s in Schedule.objects.using(alias())
        .filter(enabled=True, next_run_at__isnull=False)
        .values("name", "next_run_at")
        .order_by("name")
    ]


def newest_heartbeat() -> datetime | None:
    return (
        WorkerProcess.objects.using(alias())
        .filter(state=WorkerState.RUNNING)
        .aggregate(m=Max("last_heartbeat"))["m"]
    )


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False, default=str)

"""The dashboard's numbers, each one indexed aggregate on ``fastq_job``.

What each query reads, so that a table of millions of finished jobs costs nothing extra:

* per-queue depth and oldest wait: one pass over the queued rows, found by an index on
  state (queues.overview);
* running per queue: the lease index ``fastq_job_lease`` (partial: running rows only);
* the last hour (finished, failed, p95 wait per minute), recent failures grouped by
  exception type and a task's page: ``fastq_finished`` (the job store's finished log on
  PostgreSQL, partitioned by day, read through its ``finished_at`` index; a view of
  ``fastq_job`` over the partial index ``fastq_job_finished`` on SQLite), so their cost
  follows the jobs that finished in the window, not the table's size. The per-minute
  series are aggregated in the database (GROUP BY minute; p95 as ``percentile_disc`` on
  PostgreSQL, the same nearest rank by window functions on SQLite); no row travels to
  Python.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connections
from django.db.models import Count, Max, Q
from django.utils import timezone

from fastq_django.models import Job, JobState

FAILED = (JobState.FAILED, JobState.DEAD)
BUCKETS = 60  # minutes in the charts
# Run-time histogram bounds (seconds) of a task's page; the last bucket is open-ended.
RUNTIME_BOUNDS = (0.001, 0.01, 0.1, 0.5, 1, 5, 30, 120, 600)


@dataclass
class HourSeries:
    start: datetime  # the first minute's start
    finished: list[int] = field(default_factory=lambda: [0] * BUCKETS)
    failed: list[int] = field(default_factory=lambda: [0] * BUCKETS)
    p95_wait: list[float | None] = field(default_factory=lambda: [None] * BUCKETS)

    @property
    def total_finished(self) -> int:
        return sum(self.finished)

    @property
    def total_failed(self) -> int:
        return sum(self.failed)


def _window(now: datetime) -> tuple[datetime, datetime]:
    # Whole minutes: the last bucket is the minute in progress.
    end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return end - timedelta(minutes=BUCKETS), end


def _param(alias: str, value: datetime) -> Any:
    return connections[alias].ops.adapt_datetimefield_value(value)


def hour_series(alias: str, now: datetime | None = None, task: str | None = None) -> HourSeries:
    """Per minute of the last hour: jobs that succeeded, that failed (failed or dead),
    and the 95th percentile (nearest rank) of their wait (started_at - run_at)."""
    now = now or timezone.now()
    start, end = _window(now)
    series = HourSeries(start=start)
    connection = connections[alias]
    pg = connection.vendor == "postgresql"
    task_sql = " AND task = %s" if task is not None else ""
    params: list[Any] = [_param(alias, start), _param(alias, start), _param(alias, end)]
    if task is not None:
        params.append(task)
    if pg:
        bucket = "floor(extract(epoch FROM finished_at - %s) / 60)::int"
        wait = "GREATEST(0, extract(epoch FROM started_at - run_at))"
        sql = (
            f"SELECT {bucket} AS b, count(*) FILTER (WHERE state = 'succeeded'), "
            "count(*) FILTER (WHERE state IN ('failed', 'dead')), "
            f"percentile_disc(0.95) WITHIN GROUP (ORDER BY {wait}) "
            "FILTER (WHERE started_at IS NOT NULL) "
            f"FROM fastq_finished WHERE finished_at >= %s AND finished_at < %s{task_sql} GROUP BY b"
        )
    else:
        bucket = "CAST((julianday(finished_at) - julianday(%s)) * 1440 AS INTEGER)"
        wait = "max(0, (julianday(started_at) - julianday(run_at)) * 86400)"
        sql = (
            f"WITH r AS (SELECT {bucket} AS b, state, CASE WHEN started_at IS NOT NULL THEN "
            f"{wait} END AS w FROM fastq_finished WHERE finished_at >= %s AND finished_at < %s"
            f"{task_sql}), ranked AS (SELECT b, w, row_number() OVER (PARTITION BY b ORDER BY "
            "w) AS rn, count(*) OVER (PARTITION BY b) AS n FROM r WHERE w IS NOT NULL), "
            "p AS (SELECT b, min(w) AS p95 FROM ranked WHERE rn >= 0.95 * n GROUP BY b) "
            "SELECT r.b, sum(r.state = 'succeeded'), sum(r.state IN ('failed', 'dead')), "
            "p.p95 FROM r LEFT JOIN p ON p.b = r.b GROUP BY r.b"
        )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for b, ok, bad, p95 in cursor.fetchall():
            if b is None or not 0 <= int(b) < BUCKETS:
                continue
            series.finished[int(b)] = int(ok or 0)
            series.failed[int(b)] = int(bad or 0)
            series.p95_wait[int(b)] = None if p95 is None else float(p95)
    return series


@dataclass
class FailureGroup:
    error_type: str
    count: int
    tasks: int
    last: datetime | None
    example: str  # the latest error message (shown only to users who may see jobs)


def failure_groups(alias: str, since: datetime, limit: int = 20) -> list[FailureGroup]:
    """Jobs that failed or died since ``since``, grouped by exception type, largest first."""
    rows = (
        Job.objects.using(alias)
        .filter(finished_at__gte=since, state__in=FAILED)
        .values("error_type")
        .annotate(n=Count("id"), tasks=Count("task", distinct=True), last=Max("finished_at"))
        .order_by("-n", "error_type")[:limit]
    )
    out = []
    for r in rows:
        example = (
            Job.objects.using(alias)
            .filter(finished_at__gte=since, state__in=FAILED, error_type=r["error_type"])
            .order_by("-finished_at")
            .values_list("error", flat=True)
            .first()
        )
        out.append(FailureGroup(r["error_type"], r["n"], r["tasks"], r["last"], example or ""))
    return out


def failure_group_jobs(alias: str, error_type: str, since: datetime) -> Any:
    return Job.objects.using(alias).filter(
        finished_at__gte=since, state__in=FAILED, error_type=error_type
    )


@dataclass
class TaskStats:
    name: str
    finished: int
    failed: int
    failure_rate: float | None
    runtime_histogram: list[tuple[str, int]]
    runtime_p50: float | None
    runtime_p95: float | None


def task_stats(alias: str, task: str, since: datetime) -> TaskStats:
    """A task's jobs that finished since ``since``: counts, failure rate, run-time
    distribution (finished_at - started_at) in fixed buckets, p50 and p95."""
    connection = connections[alias]
    pg = connection.vendor == "postgresql"
    if pg:
        runtime = "extract(epoch FROM finished_at - started_at)"
    else:
        runtime = "(julianday(finished_at) - julianday(started_at)) * 86400"
    cases = " ".join(f"WHEN {runtime} < {bound} THEN {i}" for i, bound in enumerate(RUNTIME_BOUNDS))
    sql = (
        f"SELECT CASE {cases} ELSE {len(RUNTIME_BOUNDS)} END AS b, count(*) FROM fastq_finished "
        "WHERE finished_at >= %s AND task = %s AND started_at IS NOT NULL "
        "AND state IN ('succeeded', 'failed', 'dead') GROUP BY b"
    )
    counts = [0] * (len(RUNTIME_BOUNDS) + 1)
    with connection.cursor() as cursor:
        cursor.execute(sql, [_param(alias, since), task])
        for b, n in cursor.fetchall():
            counts[int(b)] = int(n)
        if pg:
            cursor.execute(
                f"SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY {runtime}), "
                f"percentile_disc(0.95) WITHIN GROUP (ORDER BY {runtime}) FROM fastq_finished "
                "WHERE finished_at >= %s AND task = %s AND started_at IS NOT NULL "
                "AND state IN ('succeeded', 'failed', 'dead')",
                [_param(alias, since), task],
            )
            p50, p95 = cursor.fetchone()
        else:
            total = sum(counts)
            p50 = p95 = None
            if total:
                picks = []
                for q in (0.5, 0.95):
                    cursor.execute(
                        f"SELECT {runtime} FROM fastq_finished WHERE finished_at >= %s "
                        "AND task = %s AND started_at IS NOT NULL "
                        "AND state IN ('succeeded', 'failed', 'dead') "
                        f"ORDER BY 1 LIMIT 1 OFFSET %s",
                        [_param(alias, since), task, max(0, math.ceil(q * total) - 1)],
                    )
                    row = cursor.fetchone()
                    picks.append(row[0] if row else None)
                p50, p95 = picks
    done = Job.objects.using(alias).filter(finished_at__gte=since, task=task)
    agg = done.aggregate(
        ok=Count("id", filter=Q(state=JobState.SUCCEEDED)),
        bad=Count("id", filter=Q(state__in=FAILED)),
    )
    finished = int(agg["ok"]) + int(agg["bad"])
    labels = []
    low = "0"
    for bound in RUNTIME_BOUNDS:
        labels.append(f"{low} to {_seconds(bound)}")
        low = _seconds(bound)
    labels.append(f"≥ {low}")
    return TaskStats(
        name=task,
        finished=finished,
        failed=int(agg["bad"]),
        failure_rate=(int(agg["bad"]) / finished) if finished else None,
        runtime_histogram=list(zip(labels, counts, strict=True)),
        runtime_p50=None if p50 is None else float(p50),
        runtime_p95=None if p95 is None else float(p95),
    )


def _seconds(value: float) -> str:
    if value < 1:
        return f"{value * 1000:g} ms"
    return f"{value:g} s"

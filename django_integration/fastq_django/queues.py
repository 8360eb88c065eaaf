"""Queue controls and the numbers operators watch.

A paused queue (``pause``) starts no new job on any worker of the fleet: every claim
skips it (it reads ``fastq_queue`` in the claim statement itself), and workers hand back
the jobs of it they had claimed and not started, within a second (PostgreSQL: at once, on
the ``NOTIFY fastq, 'queues'`` sent at commit; SQLite: workers holding jobs look every
250 ms). Running jobs finish; enqueueing still works. The pause is a row, so it survives
restarts of workers and of the database.

A queue's ``concurrency`` bounds its running jobs across every worker (Oban's
``global_limit``). ``FASTQ["QUEUES"] = {"emails": {"concurrency": 5}}`` sets it when a
worker starts (:func:`sync_settings`); the admin and ``fastq_queues limit`` change it at
run time, and such a change holds until the setting itself changes.

:func:`overview` answers "how deep, how old, how busy" per queue from indexed
aggregates: one pass over the queued rows, found by an index on state (finished history
costs nothing; the cost follows the backlog), and one over the running rows (the lease
index, a partial index of running rows only).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connections, transaction
from django.db.models import Count, Min, Q
from django.utils import timezone
from fastq import conf

from fastq_django.models import MAX_QUEUE_CONCURRENCY, Job, JobState, Queue

MAX_NAME = 100


def broker_alias() -> str:
    return str(conf.get("DATABASE"))


def check_name(name: object) -> str:
    """``name`` if it can be a queue's name, else ValueError saying why."""
    if not isinstance(name, str) or not name:
        raise ValueError("a queue name is a non-empty string")
    if len(name) > MAX_NAME:
        raise ValueError(f"a queue name has at most {MAX_NAME} characters, not {len(name)}")
    if "\x00" in name:
        raise ValueError("a queue name cannot hold a NUL character")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("a queue name must be valid Unicode (no lone surrogates)") from None
    return name


def check_concurrency(value: object) -> int | None:
    """``value`` as a concurrency limit (None: no limit), else ValueError."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("a concurrency limit is a whole number, or none")
    if not 1 <= value <= MAX_QUEUE_CONCURRENCY:
        raise ValueError(f"a concurrency limit is from 1 to {MAX_QUEUE_CONCURRENCY}, not {value}")
    return value


def notify(alias: str) -> None:
    """Tells PostgreSQL workers, at commit, that a queue's controls changed; SQLite's
    idle workers get a wake-up poke at commit (a resumed queue's jobs start at once)."""
    connection = connections[alias]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify('fastq', 'queues')")
    else:
        from fastq_django.broker import _wake_workers

        _wake_workers(alias)


def _update(name: str, by: str, alias: str | None, **fields: Any) -> Queue:
    alias = alias or broker_alias()
    name = check_name(name)
    with transaction.atomic(using=alias):
        queue, _ = Queue.objects.using(alias).select_for_update().get_or_create(name=name)
        for key, value in fields.items():
            setattr(queue, key, value)
        queue.changed_by = (by or "")[:150]
        queue.updated_at = timezone.now()
        queue.save(using=alias)
        notify(alias)
    return queue


def pause(name: str, by: str = "", alias: str | None = None) -> Queue:
    """Pauses ``name`` fleet-wide (durable; see the module docstring)."""
    return _update(name, by, alias, paused=True)


def resume(name: str, by: str = "", alias: str | None = None) -> Queue:
    return _update(name, by, alias, paused=False)


def set_concurrency(name: str, limit: int | None, by: str = "", alias: str | None = None) -> Queue:
    """Sets (or with None lifts) ``name``'s fleet-wide concurrency limit."""
    return _update(name, by, alias, concurrency=check_concurrency(limit))


def sync_settings(alias: str | None = None) -> list[str]:
    """Writes the concurrency limits of ``FASTQ["QUEUES"]`` to the table. A setting that
    changed since it was last written wins over a value edited at run time; one that did
    not change leaves the run-time value alone. Returns the names of the queues written."""
    alias = alias or broker_alias()
    options = conf.queue_options(conf.get("QUEUES"))
    wanted = {name: check_concurrency(o.get("concurrency")) for name, o in options.items()}
    if not _limits_differ(alias, wanted):
        return []  # the usual start: one read, no transaction, no row locks
    written: list[str] = []
    with transaction.atomic(using=alias):
        # Workers start together: make the rows first (a conflict waits for the other
        # insert and skips), then lock and compare them.
        Queue.objects.using(alias).bulk_create(
            [Queue(name=name) for name, want in wanted.items() if want is not None],
            ignore_conflicts=True,
        )
        rows = {
            q.name: q
            for q in Queue.objects.using(alias)
            .select_for_update()
            .filter(Q(name__in=list(wanted)) | Q(settings_concurrency__isnull=False))
        }
        for name in sorted(set(wanted) | set(rows)):
            want = wanted.get(name)
            row = rows.get(name)
            if row is None or row.settings_concurrency == want:
                continue
            if want is not None or row.concurrency == row.settings_concurrency:
                # The setting changed: it wins over a run-time edit. Removed: so is the
                # limit it had set, unless someone changed it at run time since.
                row.concurrency = want
            row.settings_concurrency = want
            row.changed_by = "settings"
            row.updated_at = timezone.now()
            row.save(using=alias)
            written.append(name)
        if written:
            notify(alias)
    return written


def _limits_differ(alias: str, wanted: dict[str, int | None]) -> bool:
    """Whether :func:`sync_settings` has anything to write: a limit set whose row is
    missing, or a row whose last written setting is not the one wanted now. Read without
    locks; a True is decided again under them (a worker that starts with the same settings
    at the same moment finds the same answer, and writes the same values)."""
    stored = dict(
        Queue.objects.using(alias)
        .filter(Q(name__in=list(wanted)) | Q(settings_concurrency__isnull=False))
        .values_list("name", "settings_concurrency")
    )
    missing = any(want is not None and name not in stored for name, want in wanted.items())
    return missing or any(stored[name] != wanted.get(name) for name in stored)


@dataclass
class QueueRow:
    name: str
    paused: bool
    concurrency: int | None
    queued: int  # due now
    scheduled: int  # queued for later
    oldest_wait: float | None  # seconds the oldest due job has waited
    running: int
    changed_by: str
    updated_at: datetime | None


def overview(alias: str | None = None, now: datetime | None = None) -> list[QueueRow]:
    """One row per known queue: configured, controlled, or holding queued/running jobs."""
    from fastq.worker import default_queues

    alias = alias or broker_alias()
    now = now or timezone.now()
    jobs = Job.objects.using(alias)
    waiting = {
        r["queue"]: r
        for r in jobs.filter(state=JobState.QUEUED)
        .values("queue")
        .annotate(
            due=Count("id", filter=Q(run_at__lte=now)),
            later=Count("id", filter=Q(run_at__gt=now)),
            oldest=Min("run_at", filter=Q(run_at__lte=now)),
        )
        .order_by()
    }
    running = {
        r["queue"]: r["n"]
        for r in jobs.filter(state=JobState.RUNNING)
        .values("queue")
        .annotate(n=Count("id"))
        .order_by()
    }
    controls = {q.name: q for q in Queue.objects.using(alias).all()}
    names = sorted(set(default_queues()) | set(waiting) | set(running) | set(controls))
    out = []
    for name in names:
        w = waiting.get(name, {})
        c = controls.get(name)
        oldest = w.get("oldest")
        out.append(
            QueueRow(
                name=name,
                paused=bool(c and c.paused),
                concurrency=c.concurrency if c else None,
                queued=int(w.get("due") or 0),
                scheduled=int(w.get("later") or 0),
                oldest_wait=max(0.0, (now - oldest).total_seconds()) if oldest else None,
                running=running.get(name, 0),
                changed_by=c.changed_by if c else "",
                updated_at=c.updated_at if c else None,
            )
        )
    return out

"""``app.control``: ``inspect()`` and ``revoke()`` read and write fastq's job table.

Workers are known by the jobs they hold or just finished: the name fastq_worker writes on
each job it claims (``host:pid`` of the worker process). A worker with nothing running and
nothing finished in the last ``RECENT`` seconds does not show. (A worker registry, with
idle workers, their queues and start times, replaces this inference when fastq has one.)
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import fastq
from fastq.compat.celery import _jobs

RECENT = timedelta(seconds=60)


def _epoch(dt: datetime | None) -> float | None:
    return dt.timestamp() if dt is not None else None


def _request(row: dict[str, Any]) -> dict[str, Any]:
    """A job as Celery's worker describes a request."""
    worker = row.get("worker") or ""
    pid = worker.rpartition(":")[2]
    return {
        "id": str(row["id"]),
        "name": row["task"],
        "args": json.loads(row["args"]),
        "kwargs": json.loads(row["kwargs"]),
        "type": row["task"],
        "hostname": worker or None,
        "time_start": _epoch(row.get("started_at")),
        "acknowledged": row["state"] == "running",
        "delivery_info": {
            "exchange": "",
            "routing_key": row["queue"],
            "priority": row.get("priority"),
            "redelivered": (row.get("attempts") or 0) > 1,
        },
        "worker_pid": int(pid) if pid.isdigit() else None,
    }


class Inspect:
    """``app.control.inspect()``: each method returns ``{worker_name: ...}`` as Celery
    does, or None when no worker is known (Celery: no worker replied). ``destination``
    limits the answer to those worker names."""

    def __init__(
        self, app: Any = None, destination: list[str] | None = None, timeout: float = 1.0, **_: Any
    ) -> None:
        self.app = app
        self.destination = set(destination) if destination else None

    def _keep(self, out: dict[str, Any]) -> dict[str, Any] | None:
        if self.destination is not None:
            out = {k: v for k, v in out.items() if k in self.destination}
        return out or None

    def _running(self, started: bool) -> dict[str, list[dict[str, Any]]]:
        rows = _jobs.jobs().filter(state="running", started_at__isnull=not started)
        out: dict[str, list[dict[str, Any]]] = {name: [] for name in self._workers()}
        for row in rows.values(*_jobs.FIELDS).order_by("started_at", "id"):
            out.setdefault(row["worker"] or "unknown", []).append(_request(row))
        return out

    def _workers(self) -> list[str]:
        """Workers holding a job now, or that finished one within RECENT."""
        manager = _jobs.jobs()
        holding = set(
            manager.filter(state="running").exclude(worker="").values_list("worker", flat=True)
        )
        since = datetime.now(UTC) - RECENT
        recent = set(
            manager.filter(finished_at__gte=since)
            .exclude(worker="")
            .order_by()
            .values_list("worker", flat=True)
            .distinct()
        )
        return sorted(holding | recent)

    def active(self, safe: Any = None) -> dict[str, Any] | None:
        """Jobs running now (started), by worker."""
        return self._keep(self._running(True))

    def reserved(self, safe: Any = None) -> dict[str, Any] | None:
        """Jobs a worker has claimed but not started yet (prefetched), by worker."""
        return self._keep(self._running(False))

    def scheduled(self, safe: Any = None) -> dict[str, Any] | None:
        """Jobs due later (countdown, eta, retry back-off). On fastq they wait in the
        database, held by no worker: they are listed under the key ``"fastq@<broker>"``."""
        now = datetime.now(UTC)
        rows = (
            _jobs.jobs()
            .filter(state="queued", run_at__gt=now)
            .values(*_jobs.FIELDS)
            .order_by("run_at", "id")
        )
        entries = [
            {
                "eta": row["run_at"].isoformat(),
                "priority": row["priority"],
                "request": _request(row),
            }
            for row in rows
        ]
        key = f"fastq@{fastq.get_broker().name}"
        return self._keep({key: entries}) if entries else self._keep({})

    def registered(self, *taskinfoitems: Any) -> dict[str, Any] | None:
        """The task names of this project (each worker of it registers the same), under
        every known worker."""
        names = sorted(fastq.registry)
        return self._keep({w: list(names) for w in self._workers()})

    registered_tasks = registered

    def stats(self) -> dict[str, Any] | None:
        """Per worker: jobs it finished by task (``total``), its pid, what it holds."""
        workers = self._workers()
        if not workers:
            return None
        manager = _jobs.jobs()
        totals: dict[str, dict[str, int]] = {w: {} for w in workers}
        from django.db.models import Count

        for row in (
            manager.filter(worker__in=workers, state__in=_jobs.FINISHED)
            .values("worker", "task")
            .annotate(n=Count("id"))
        ):
            totals[row["worker"]][row["task"]] = row["n"]
        held = {
            row["worker"]: row["n"]
            for row in manager.filter(worker__in=workers, state="running")
            .values("worker")
            .annotate(n=Count("id"))
        }
        out = {}
        for w in workers:
            host, _, pid = w.rpartition(":")
            out[w] = {
                "total": totals[w],
                "pid": int(pid) if pid.isdigit() else None,
                "hostname": host,
                "broker": {"transport": fastq.get_broker().name},
                "pool": {"processes": [int(pid)] if pid.isdigit() else [], "held": held.get(w, 0)},
                "prefetch_count": None,
                "uptime": None,
            }
        return self._keep(out)

    def ping(self, destination: Any = None) -> dict[str, Any] | None:
        return self._keep({w: {"ok": "pong"} for w in self._workers()})

    def active_queues(self) -> dict[str, Any] | None:
        """The queues each known worker has taken jobs from (from the jobs it holds or just
        finished; not the full --queues list)."""
        since = datetime.now(UTC) - RECENT
        manager = _jobs.jobs()
        out: dict[str, set[str]] = {w: set() for w in self._workers()}
        workers = list(out)
        pairs = list(
            manager.filter(worker__in=workers, state="running")
            .order_by()
            .values_list("worker", "queue")
            .distinct()
        ) + list(
            manager.filter(worker__in=workers, finished_at__gte=since)
            .order_by()
            .values_list("worker", "queue")
            .distinct()
        )
        for worker, queue in pairs:
            out.setdefault(worker, set()).add(queue)
        return self._keep(
            {w: [{"name": q, "routing_key": q} for q in sorted(qs)] for w, qs in out.items()}
        )


class Control:
    """``app.control``."""

    def __init__(self, app: Any = None) -> None:
        self.app = app

    def inspect(
        self, destination: list[str] | None = None, timeout: float = 1.0, **kwargs: Any
    ) -> Inspect:
        return Inspect(self.app, destination=destination, timeout=timeout)

    def revoke(
        self,
        task_id: str | list[str],
        destination: Any = None,
        terminate: bool = False,
        signal: Any = None,
        **kwargs: Any,
    ) -> None:
        """Cancel the job(s): queued ones never run (REVOKED), running ones are asked to
        stop (``fastq.current_job().cancel_requested``). Stored in the database: restarts
        keep the revoke. ``terminate`` cannot kill a running task on fastq."""
        ids = [task_id] if isinstance(task_id, str) else list(task_id)
        broker = fastq.get_broker()
        for i in ids:
            broker.cancel(str(i))

    def ping(self, destination: Any = None, timeout: float = 1.0, **_: Any) -> list[Any]:
        answer = self.inspect(destination=destination).ping() or {}
        return [{w: v} for w, v in answer.items()]

    def purge(self) -> int:
        """Delete every queued job (Celery's purge). Returns how many."""
        deleted, _ = _jobs.jobs().filter(state="queued").delete()
        return int(deleted)

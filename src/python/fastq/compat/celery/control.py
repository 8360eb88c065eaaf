"""``app.control``: ``inspect()`` reads fastq's worker registry (the ``fastq_worker``
table every worker process beats into, as ``fastq_inspect`` reads it) and the jobs they
hold; ``revoke()`` cancels jobs in the database.

A Celery worker is named ``celery@host``; a fastq worker process is named ``host:pid``,
the name it writes on every job it claims (``AsyncResult.worker``, ``self.request.hostname``).
A prefork ``fastq_worker`` has one such process per ``--processes``; each answers for
itself, as Celery's worker answers for its pool. Workers whose heartbeat is within their
lease answer; a stopped or lost one does not (Celery: a worker that does not reply).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import fastq
from fastq.compat.celery import _jobs


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


def _live() -> list[Any]:
    """The live worker processes of the registry (not their supervisors), by name."""
    from django.utils import timezone
    from fastq_django.models import WorkerProcess, WorkerState

    alias = getattr(fastq.get_broker(), "alias", None)
    if alias is None:
        raise RuntimeError(
            "app.control.inspect() reads fastq's worker registry: add 'fastq_django' to "
            "INSTALLED_APPS (the in-memory broker keeps no registry)"
        )
    rows = WorkerProcess.objects.using(alias).filter(
        state=WorkerState.RUNNING, kind="worker", expires_at__gte=timezone.now()
    )
    return sorted(rows, key=lambda w: (w.host, w.pid))


def _name(w: Any) -> str:
    return f"{w.host}:{w.pid}"


class Inspect:
    """``app.control.inspect()``: each method returns ``{worker_name: ...}`` as Celery
    does, for the live workers of fastq's registry, or None when none is live (Celery: no
    worker replied). ``destination`` limits the answer to those worker names."""

    def __init__(
        self, app: Any = None, destination: list[str] | None = None, timeout: float = 1.0, **_: Any
    ) -> None:
        self.app = app
        self.destination = set(destination) if destination else None

    def _workers(self) -> list[Any]:
        live = _live()
        if self.destination is not None:
            live = [w for w in live if _name(w) in self.destination]
        return live

    def _answer(self, out: dict[str, Any]) -> dict[str, Any] | None:
        return out or None

    def _held(self, started: bool) -> dict[str, Any] | None:
        """Jobs the live workers hold (running ones, or claimed and not started)."""
        workers = self._workers()
        out: dict[str, list[dict[str, Any]]] = {_name(w): [] for w in workers}
        if not out:
            return None
        rows = _jobs.jobs().filter(
            state="running", started_at__isnull=not started, worker__in=list(out)
        )
        order = ("started_at", "id") if started else ("lease_expires_at", "id")
        for row in rows.values(*_jobs.FIELDS).order_by(*order):
            out[row["worker"]].append(_request(row))
        return out

    def active(self, safe: Any = None) -> dict[str, Any] | None:
        """Jobs running now (started), by worker."""
        return self._held(True)

    def reserved(self, safe: Any = None) -> dict[str, Any] | None:
        """Jobs a worker has claimed but not started yet (prefetched), by worker."""
        return self._held(False)

    def scheduled(self, safe: Any = None) -> dict[str, Any] | None:
        """Jobs due later (countdown, eta, retry back-off). On fastq they wait in the
        database, held by no worker: they are listed under the key ``"fastq@<broker>"``
        (every live worker would take them), and every live worker answers with an empty
        list of its own."""
        workers = self._workers()
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
        out: dict[str, Any] = {_name(w): [] for w in workers}
        if entries and (self.destination is None or self._database_key() in self.destination):
            out[self._database_key()] = entries
        return self._answer(out)

    @staticmethod
    def _database_key() -> str:
        return f"fastq@{fastq.get_broker().name}"

    def registered(self, *taskinfoitems: Any) -> dict[str, Any] | None:
        """The task names each live worker registered (its registry row)."""
        return self._answer({_name(w): sorted(w.task_list) for w in self._workers()})

    registered_tasks = registered

    def stats(self) -> dict[str, Any] | None:
        """Per live worker, Celery's keys from its registry row: ``pid``, ``uptime``,
        ``pool`` (``max-concurrency``, ``processes``), ``total`` (jobs it finished, by
        task, from the job table since it started), and fastq's own ``processed``,
        ``failed``, ``rss_bytes``, ``queues``, ``supervisor``."""
        workers = self._workers()
        if not workers:
            return None
        from django.db.models import Count

        names = [_name(w) for w in workers]
        totals: dict[str, dict[str, int]] = {n: {} for n in names}
        since = min(w.started_at for w in workers)
        for row in (
            _jobs.jobs()
            .filter(finished_at__gte=since, worker__in=names)
            .values("worker", "task")
            .annotate(n=Count("id"))
            .order_by()
        ):
            totals[row["worker"]][row["task"]] = row["n"]
        now = time.time()
        out = {}
        for w in workers:
            name = _name(w)
            out[name] = {
                "total": totals[name],
                "pid": w.pid,
                "hostname": w.host,
                "uptime": max(0, int(now - w.started_at.timestamp())),
                "clock": str(int(now)),
                "broker": {"transport": fastq.get_broker().name},
                "pool": {
                    "implementation": "fastq",
                    "max-concurrency": w.concurrency,
                    "processes": [w.pid],
                },
                "prefetch_count": None,
                "rusage": {"maxrss": w.rss_bytes // 1024},
                "processed": w.processed,
                "failed": w.failed,
                "rss_bytes": w.rss_bytes,
                "queues": w.queue_list,
                "version": w.version,
                "supervisor": w.supervisor or None,
                "last_heartbeat": w.last_heartbeat.isoformat(),
            }
        return out

    def ping(self, destination: Any = None) -> dict[str, Any] | None:
        """``{"ok": "pong"}`` from every live worker (a heartbeat within its lease)."""
        return self._answer({_name(w): {"ok": "pong"} for w in self._workers()})

    def active_queues(self) -> dict[str, Any] | None:
        """The queues each live worker consumes (its ``--queues``)."""
        return self._answer(
            {
                _name(w): [{"name": q, "routing_key": q} for q in w.queue_list]
                for w in self._workers()
            }
        )

    def report(self) -> dict[str, Any] | None:
        return self._answer(
            {_name(w): {"ok": f"fastq {w.version} {w.host}:{w.pid}"} for w in self._workers()}
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
        """Delete every queued job (Celery's purge); a workflow with a queued step is
        cancelled whole. Returns how many jobs."""
        return _jobs.purge_queued()

"""The database broker: jobs are rows in the ``fastq_job`` table of a Django database.

Enqueueing goes through Django's own connection, so a job exists only if the caller's
transaction commits; on PostgreSQL a statement trigger wakes workers at that commit.
"""

from __future__ import annotations

import functools
import uuid
from datetime import UTC, datetime

from django.db import close_old_connections, connections
from fastq import _core, conf
from fastq.brokers import Broker, JobSnapshot, NewJob

from fastq_django.conf import broker_vendor, libpq_conninfo

_COLUMNS = (
    "id, task, queue, priority, state, args, kwargs, run_at, attempts, worker, "
    "error_type, error, traceback, created_at"
)
_ROW = "(%s, %s, %s, %s, 'queued', %s, %s, %s, 0, '', '', '', '', %s)"
_PARAMS_PER_ROW = 8
# SQLite allows 32766 bound parameters per statement; stay well under it.
_MAX_ROWS = 2000


class DatabaseBroker(Broker):
    def __init__(self, alias: str = "default") -> None:
        self.alias = alias
        self.name = f"django:{alias}"

    @property
    def vendor(self) -> str:
        return broker_vendor(self.alias)

    def enqueue(self, jobs: list[NewJob]) -> None:
        if not jobs:
            return
        connection = connections[self.alias]
        vendor = broker_vendor(self.alias)
        ops = connection.ops
        now = datetime.now(UTC)
        now_db = ops.adapt_datetimefield_value(now)
        with connection.cursor() as cursor:
            for start in range(0, len(jobs), _MAX_ROWS):
                chunk = jobs[start : start + _MAX_ROWS]
                params: list[object] = []
                for job in chunk:
                    job_id = uuid.UUID(job.id)
                    params += [
                        job_id.hex if vendor == "sqlite" else job_id,
                        job.task,
                        job.queue,
                        job.priority,
                        job.args,
                        job.kwargs,
                        ops.adapt_datetimefield_value(job.run_at) if job.run_at else now_db,
                        now_db,
                    ]
                values = ", ".join([_ROW] * len(chunk))
                cursor.execute(f"INSERT INTO fastq_job ({_COLUMNS}) VALUES {values}", params)

    def fetch(self, job_id: str) -> JobSnapshot | None:
        from fastq_django.models import Job

        try:
            pk = uuid.UUID(str(job_id))
        except ValueError:
            return None
        row = (
            Job.objects.using(self.alias)
            .filter(pk=pk)
            .values_list(
                "task", "queue", "state", "attempts", "result", "error_type", "error", "traceback"
            )
            .first()
        )
        if row is None:
            return None
        task, queue, state, attempts, result, error_type, error, tb = row
        return JobSnapshot(
            id=str(pk),
            task=task,
            queue=queue,
            state=state,
            attempts=attempts,
            result=result,
            error_type=error_type,
            error=error,
            traceback=tb,
        )

    def before_job(self) -> None:
        close_old_connections()

    def worker_driver(self) -> _core.Driver:
        settings_dict = connections[self.alias].settings_dict
        if broker_vendor(self.alias) == "sqlite":
            name = str(settings_dict["NAME"])
            if name == ":memory:" or name.startswith("file::memory:") or "mode=memory" in name:
                raise RuntimeError(
                    f"database {self.alias!r} is an in-memory SQLite database; a worker needs "
                    "a file other processes can open (set TEST['NAME'] to a file in tests)"
                )
            timeout = (settings_dict.get("OPTIONS") or {}).get("timeout", 30)
            return _core.sqlite_driver(name, busy_timeout_ms=int(float(timeout) * 1000))
        return _core.postgres_driver(libpq_conninfo(settings_dict))


@functools.cache
def _broker_for(alias: str) -> DatabaseBroker:
    return DatabaseBroker(alias)


def default_broker() -> DatabaseBroker:
    """The broker on ``FASTQ["DATABASE"]`` (default: the ``default`` alias)."""
    return _broker_for(str(conf.get("DATABASE")))

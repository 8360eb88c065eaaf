"""Reading fastq's job table for the Celery compatibility layer (AsyncResult details,
``app.control``, result expiry). In a Django project with ``fastq_django`` this reads the
``fastq_job`` rows through the Django ORM; elsewhere it falls back to what the broker's
``fetch`` returns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastq.brokers import get_broker

FINISHED = ("succeeded", "failed", "dead", "expired", "cancelled")
FIELDS = (
    "id",
    "task",
    "queue",
    "priority",
    "state",
    "args",
    "kwargs",
    "attempts",
    "max_attempts",
    "result",
    "error_type",
    "error",
    "traceback",
    "worker",
    "run_at",
    "created_at",
    "started_at",
    "finished_at",
    "expires_at",
    "time_limit",
    "soft_time_limit",
    "custom_state",
)
# A custom state's name (update_state) is at most this long, as Celery's state column.
MAX_STATE = 50


def _django_jobs() -> Any | None:
    """The Job model's manager on the broker database, or None outside Django."""
    from fastq.conf import django_settings

    if django_settings() is None:
        return None
    from django.apps import apps

    if not apps.ready or not apps.is_installed("fastq_django"):
        return None
    broker = get_broker()
    alias = getattr(broker, "alias", None)
    if alias is None:  # a MemoryBroker set in a Django process
        return None
    from fastq_django.models import Job

    return Job.objects.using(alias)


def job(job_id: str) -> dict[str, Any] | None:
    """One job's columns (``FIELDS``), or None if there is no such job."""
    import uuid

    try:
        pk = uuid.UUID(str(job_id))
    except ValueError:
        return None
    jobs = _django_jobs()
    if jobs is not None:
        row = jobs.filter(pk=pk).values(*FIELDS).first()
        if row is not None:
            row["id"] = str(row["id"])
        return row
    snap = get_broker().fetch(str(pk))
    if snap is None:
        return None
    return {
        "id": snap.id,
        "task": snap.task,
        "queue": snap.queue,
        "state": snap.state,
        "attempts": snap.attempts,
        "result": snap.result,
        "error_type": snap.error_type,
        "error": snap.error,
        "traceback": snap.traceback,
        "started_at": None,
        "finished_at": None,
    }


def jobs() -> Any:
    """The Job manager; raises when fastq's tables are not reachable through Django."""
    manager = _django_jobs()
    if manager is None:
        raise RuntimeError(
            "this needs fastq's job table: add 'fastq_django' to INSTALLED_APPS (the "
            "in-memory broker keeps no table to read)"
        )
    return manager


def _writer() -> Any:
    """The database broker, whose core operations write fastq's tables (raises as
    :func:`jobs` does outside Django)."""
    jobs()
    return get_broker()


def forget(job_id: str) -> bool:
    """Delete a finished job's row (its result with it), through the core's forget
    operation. A queued or running job is kept, and so is one something still needs (a
    schedule slot's or a poller mark's, a step of an unfinished workflow)."""
    import uuid

    try:
        pk = uuid.UUID(str(job_id))
    except ValueError:
        return False
    return _writer().forget([str(pk)]) > 0


def delete_finished_before(cutoff: datetime, batch: int = 10_000) -> int:
    """Delete finished jobs that ended before ``cutoff``, ``batch`` a statement, oldest
    first (the ones something still needs are stepped over, not read again)."""
    from django.db.models import Q

    broker = _writer()
    manager = jobs()
    total = 0
    after: tuple[Any, Any] | None = None
    while True:
        ended = manager.filter(state__in=FINISHED, finished_at__lt=cutoff)
        if after is not None:
            ended = ended.filter(
                Q(finished_at__gt=after[1]) | Q(finished_at=after[1], pk__gt=after[0])
            )
        rows = list(ended.order_by("finished_at", "pk").values_list("pk", "finished_at")[:batch])
        if not rows:
            return total
        total += broker.forget([str(pk) for pk, _ in rows])
        after = rows[-1]


def purge_queued(queues: list[str] | None = None) -> int:
    """Celery's purge: the queued jobs of ``queues`` (None: every queue) deleted, and the
    workflows that have a queued step cancelled (their waiting steps would otherwise
    wait for ever), in one transaction. Returns how many jobs it deleted or cancelled."""
    from django.db import transaction

    broker = _writer()
    steps = jobs().filter(state="queued", workflow_id__isnull=False)
    if queues:
        steps = steps.filter(queue__in=queues)
    with transaction.atomic(using=broker.alias):
        flows = set(steps.values_list("workflow_id", flat=True).distinct())
        n = broker.purge(queues)
        for flow in flows:
            n += broker.cancel_workflow(str(flow))
    return n


def set_custom_state(job_id: str, state: str, meta_json: str, attempt: int | None) -> bool:
    """Record ``state`` (and its meta, JSON text) on the job: Celery's ``update_state``.
    ``attempt``: the attempt that reports it (None: the job's current one). Returns
    whether such a job exists."""
    import json
    import uuid

    try:
        pk = uuid.UUID(str(job_id))
    except ValueError:
        return False
    manager = jobs()
    if attempt is None:
        found = manager.filter(pk=pk).values_list("attempts", flat=True).first()
        if found is None:
            return False
        attempt = int(found)
    text = f'{{"state":{json.dumps(state)},"attempt":{int(attempt)},"meta":{meta_json}}}'
    return _writer().set_custom_state(str(pk), text)


def custom_state(row: dict[str, Any]) -> tuple[str, Any] | None:
    """(state, meta) a job reported with update_state, while it still stands: reported by
    the attempt running now, or before the job was first tried. A retry, a success or a
    failure ends it, as Celery's worker overwrites a custom state with its own."""
    import json

    text = row.get("custom_state")
    if not text or row.get("state") not in ("running", "queued", "waiting"):
        return None
    try:
        value = json.loads(text)
        state, attempt = str(value["state"]), int(value["attempt"])
    except (ValueError, KeyError, TypeError):
        return None
    if attempt != (row.get("attempts") or 0):
        return None
    if row.get("state") != "running" and row.get("error_type"):
        return None  # queued again after a failed attempt: RETRY
    return state, value.get("meta")

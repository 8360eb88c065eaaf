"""Schedules on the Django side: syncing code declarations into ``fastq_schedule``,
"run now", and the next fire time for display. The scheduler itself is in the C++ core."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from fastq import Cron, _core, conf, get_broker, registry
from fastq._core import NewJob
from fastq.schedules import PeriodicSchedule, declared, from_settings, providers
from fastq.serialization import encode_arguments

from fastq_django.broker import default_broker
from fastq_django.models import Job, Schedule, ScheduleSource

log = logging.getLogger("fastq.scheduler")

# last_outcome of a code schedule disabled because its declaration was removed.
REMOVED_FROM_CODE = "disabled: removed from code"


def code_schedules() -> dict[str, PeriodicSchedule]:
    """Every schedule declared in code: ``@fastq.periodic``, the providers of
    ``fastq.schedules.providers`` (Celery's beat schedule) and ``FASTQ["SCHEDULE"]``
    (settings win on a name clash)."""
    out = dict(declared)
    for provider in providers:
        out.update(provider())
    out.update(from_settings(conf.get("SCHEDULE")))
    return out


def sync_schedules(using: str | None = None) -> tuple[int, int, int]:
    """Writes code-declared schedules into the table by name (source "code") and disables
    code rows no longer declared. Returns (created, updated, disabled).

    An operator's ``enabled`` choice on an existing row is kept, except that a schedule
    declared again after its removal is enabled again.
    """
    specs = code_schedules()
    created = updated = disabled = 0
    for attempt in range(2):
        try:
            with transaction.atomic(using=using):
                created = updated = disabled = 0
                rows = {s.name: s for s in Schedule.objects.using(using).all()}
                for name, spec in specs.items():
                    fields = spec.fields()
                    row = rows.get(name)
                    if row is None:
                        Schedule.objects.using(using).create(
                            name=name, source=ScheduleSource.CODE, **fields
                        )
                        created += 1
                        continue
                    changed = [f for f, v in fields.items() if getattr(row, f) != v]
                    revived = not row.enabled and row.last_outcome == REMOVED_FROM_CODE
                    if changed or revived or row.source != ScheduleSource.CODE:
                        for f, v in fields.items():
                            setattr(row, f, v)
                        row.source = ScheduleSource.CODE
                        if revived:
                            row.enabled = True
                            row.last_outcome = ""
                        if set(changed) & set(Schedule.TIMING_FIELDS) or revived:
                            row.next_run_at = None
                        row.save(using=using)
                        updated += 1
                gone = [
                    r
                    for r in rows.values()
                    if r.source == ScheduleSource.CODE and r.name not in specs and r.enabled
                ]
                for row in gone:
                    row.enabled = False
                    row.last_outcome = REMOVED_FROM_CODE
                    row.save(using=using)
                    disabled += 1
            break
        except IntegrityError:
            # Another worker starting at the same moment created the same name.
            if attempt:
                raise
    return created, updated, disabled


def next_run(schedule: Schedule, now: datetime | None = None) -> datetime | None:
    """When the schedule fires next: its stored next_run_at, or (not computed yet) the
    first slot after now. None when disabled or invalid."""
    if not schedule.enabled:
        return None
    if schedule.next_run_at is not None:
        return schedule.next_run_at
    now = now or datetime.now(UTC)
    if schedule.cron:
        try:
            return Cron(schedule.cron, timezone=schedule.timezone or conf.timezone()).next_after(
                now
            )
        except ValueError:
            return None
    if schedule.every:
        return now + timedelta(seconds=schedule.every)
    return None


def last_outcome(schedule: Schedule) -> str:
    """The state of the last job (live), or what the scheduler recorded."""
    if schedule.last_outcome == "queued" and schedule.last_job_id:
        state = Job.objects.filter(id=schedule.last_job_id).values_list("state", flat=True).first()
        return state or "queued (job deleted)"
    return schedule.last_outcome or "—"


def run_now(schedule: Schedule) -> str:
    """Enqueues one run of the schedule at once (not a slot: nothing is skipped and the
    next slot stays as it is). Returns the job id.

    The run is recorded with the job, in one transaction on fastq's database, by the
    core's record_schedule_run: a slot row at now (retention keeps the job, max_instances
    counts it) and the schedule's last run, as the scheduler records a fire."""
    task = registry.get(schedule.task)
    args = json.loads(schedule.args or "[]")
    kwargs = json.loads(schedule.kwargs or "{}")
    broker = default_broker()
    with transaction.atomic(using=broker.alias):
        if task is not None:
            options: dict[str, Any] = {}
            if schedule.queue:
                options["queue"] = schedule.queue
            if schedule.priority:
                options["priority"] = schedule.priority
            job_id = task.apply_async(args=args, kwargs=kwargs, **options).id
        else:
            # Not registered in this process (e.g. the web server imports fewer modules):
            # the job as the schedule describes it, through the core's enqueue like any
            # other; the worker that knows the task runs it.
            args_json, kwargs_json = encode_arguments(schedule.task, args, kwargs)
            (job_id,) = get_broker().enqueue(
                [
                    NewJob(
                        id=_core.new_job_id(),
                        task=schedule.task,
                        queue=schedule.queue or "default",
                        priority=schedule.priority,
                        args=args_json,
                        kwargs=kwargs_json,
                    )
                ]
            )
        broker.record_schedule_run(schedule.name, job_id)
    return job_id

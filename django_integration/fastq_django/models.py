"""The job table. The C++ drivers read and write these same columns
(src/cpp/core/*_driver.cpp); change both together."""

from __future__ import annotations

import json
import uuid

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Now
from django.utils import timezone
from fastq import limits
from fastq.conf import MAX_QUEUE_CONCURRENCY


class JobState(models.TextChoices):
    # A workflow step whose parents have not all finished; no worker claims it.
    WAITING = "waiting", "Waiting"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    DEAD = "dead", "Dead"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"


# Bounds of a job row: the API's (fastq.limits, which refuses values outside them at the
# call site); the C++ core holds the same numbers (fastq/types.hpp).
MAX_ATTEMPTS_LIMIT = limits.MAX_ATTEMPTS_MAX
ATTEMPTS_CEILING = 1_000_000_000
MAX_TIME_LIMIT_SECONDS = limits.TIME_LIMIT_MAX
# Times a job goes back to the queue unspent (a run cut off at the end of --grace, a claim
# rescued before it started) before such a hand-back is charged (fastq::kMaxUnspentHandbacks).
MAX_UNSPENT_HANDBACKS = 3

JOB_CHECKS = [
    models.CheckConstraint(
        condition=models.Q(attempts__gte=0, attempts__lte=ATTEMPTS_CEILING),
        name="fastq_job_attempts_range",
    ),
    models.CheckConstraint(
        condition=models.Q(max_attempts__gte=1, max_attempts__lte=MAX_ATTEMPTS_LIMIT),
        name="fastq_job_max_attempts_range",
    ),
    models.CheckConstraint(
        condition=models.Q(priority__gte=limits.PRIORITY_MIN, priority__lte=limits.PRIORITY_MAX),
        name="fastq_job_priority_range",
    ),
    models.CheckConstraint(
        condition=models.Q(time_limit__isnull=True)
        | models.Q(time_limit__gte=0, time_limit__lte=MAX_TIME_LIMIT_SECONDS),
        name="fastq_job_time_limit_range",
    ),
    models.CheckConstraint(
        condition=models.Q(soft_time_limit__isnull=True)
        | models.Q(soft_time_limit__gte=0, soft_time_limit__lte=MAX_TIME_LIMIT_SECONDS),
        name="fastq_job_soft_time_limit_range",
    ),
    models.CheckConstraint(
        condition=models.Q(state__in=JobState.values),
        name="fastq_job_state_valid",
    ),
    models.CheckConstraint(
        condition=models.Q(interrupted__gte=0),
        name="fastq_job_interrupted_range",
    ),
]


def new_job_uuid() -> uuid.UUID:
    """A job id as the core makes them (UUIDv7: time-ordered), for rows created through
    the ORM: the admin lists jobs newest first by id, which the job store's id indexes
    serve at any size (docs/job-store.md)."""
    from fastq import _core

    return uuid.UUID(_core.new_job_id())


class Job(models.Model):
    id = models.UUIDField(primary_key=True, default=new_job_uuid, editable=False)
    task = models.CharField(max_length=255)
    queue = models.CharField(max_length=100, default="default", db_default="default")
    priority = models.SmallIntegerField(default=0, db_default=0, help_text="Higher runs first.")
    state = models.CharField(
        max_length=16, choices=JobState.choices, default=JobState.QUEUED, db_default="queued"
    )
    args = models.TextField(default="[]", db_default="[]", help_text="JSON array.")
    kwargs = models.TextField(default="{}", db_default="{}", help_text="JSON object.")
    run_at = models.DateTimeField(default=timezone.now, db_default=Now())
    attempts = models.IntegerField(default=0, db_default=0)
    max_attempts = models.IntegerField(
        default=4, db_default=4, help_text="Attempts allowed, counting worker deaths."
    )
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Not started by then: never runs (expired)."
    )
    cancel_requested = models.BooleanField(default=False, db_default=False)
    unique_key = models.CharField(
        max_length=255,
        null=True,
        blank=True,
        help_text="At most one queued or running job per key.",
    )
    envelope = models.SmallIntegerField(
        default=1, db_default=1, help_text="Row layout version; workers refuse others."
    )
    time_limit = models.FloatField(
        null=True, blank=True, help_text="Seconds before the process running it is killed."
    )
    soft_time_limit = models.FloatField(
        null=True, blank=True, help_text="Seconds before SoftTimeLimitExceeded is raised in it."
    )
    rate_key = models.CharField(
        max_length=255, null=True, blank=True, help_text="Rate-limit bucket (keyed limits)."
    )
    lease_token = models.BigIntegerField(null=True, blank=True, editable=False)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=255, blank=True, default="", db_default="")
    result = models.TextField(null=True, blank=True, help_text="JSON of the return value.")
    error_type = models.CharField(max_length=255, blank=True, default="", db_default="")
    error = models.TextField(blank=True, default="", db_default="")
    traceback = models.TextField(blank=True, default="", db_default="")
    created_at = models.DateTimeField(default=timezone.now, db_default=Now())
    started_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When this attempt began running; empty while claimed but not started "
        "(recorded a few milliseconds after the start).",
    )
    finished_at = models.DateTimeField(null=True, blank=True)
    group_label = models.CharField(
        max_length=100,
        null=True,
        blank=True,
        help_text="Label of a group of jobs (Django-Q2's group=).",
    )
    attempt_log = models.TextField(
        null=True,
        blank=True,
        editable=False,
        help_text="JSON array: earlier attempts' errors, for Django's TaskResult.errors "
        "(fastq_django.backends; bounded). The C++ core neither reads nor writes it.",
    )
    custom_state = models.TextField(
        null=True,
        blank=True,
        editable=False,
        help_text="JSON: a state a running task reported with its meta (Celery's "
        "update_state, fastq.compat.celery), and the attempt that reported it.",
    )
    interrupted = models.IntegerField(
        default=0,
        db_default=0,
        help_text="Times it went back to the queue without an attempt charged: a run cut off "
        f"at the end of --grace, or a claim lost before it started. After "
        f"{MAX_UNSPENT_HANDBACKS} such hand-backs the attempt is charged.",
    )
    # Workflows (docs/workflows.md; the dependency state machine is src/cpp/core/workflow.cpp).
    workflow_id = models.UUIDField(
        null=True, blank=True, editable=False, help_text="The workflow this job is a step of."
    )
    parents_pending = models.IntegerField(
        default=0,
        db_default=0,
        editable=False,
        help_text="Parents not finished yet (the step waits while this is above 0).",
    )
    pass_results = models.SmallIntegerField(
        default=0,
        db_default=0,
        editable=False,
        help_text="0: nothing from the parents; 1: the parent's result first; 2: the list "
        "of the parents' results first.",
    )
    on_failure = models.SmallIntegerField(
        default=0,
        db_default=0,
        editable=False,
        help_text="When a parent fails: 0 cancelled, 1 run anyway (failures marked), "
        "2 this is an error handler.",
    )

    class Meta:
        db_table = "fastq_job"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["unique_key"],
                condition=models.Q(state__in=["queued", "running"]),
                name="fastq_job_unique_active",
            ),
            # What a row may hold (migration 0008). The worker's claim counts attempts only
            # up to ATTEMPTS_CEILING, so no stored value can make the claim itself fail; a
            # row outside these bounds that slipped in anyway ends as fastq.InvalidJob.
            *JOB_CHECKS,
        ]
        indexes = [
            # The claim: one range scan per queue, in claim order, over queued rows only.
            models.Index(
                "queue",
                models.F("priority").desc(),
                "run_at",
                "id",
                name="fastq_job_claim",
                condition=models.Q(state="queued"),
            ),
            # The rescuer: running rows by lease expiry.
            models.Index(
                fields=["lease_expires_at"],
                name="fastq_job_lease",
                condition=models.Q(state="running"),
            ),
            # The admin: newest first, within a state.
            models.Index(fields=["state", "-created_at"], name="fastq_job_state_created"),
            # Recent outcomes (fastq_inspect stats, /fastq/metrics, the dashboard): a range
            # scan over the last minutes' finished rows. Partial, so enqueue writes no entry;
            # a job gets one when it finishes.
            models.Index(
                fields=["finished_at"],
                name="fastq_job_finished",
                condition=models.Q(finished_at__isnull=False),
            ),
            # Retention: each state's oldest finished jobs, from a cursor (migration 0016).
            models.Index(
                fields=["state", "finished_at", "id"],
                name="fastq_job_prune",
                condition=models.Q(finished_at__isnull=False),
            ),
            # Django-Q2's result_group / count_group / delete_group (fastq.compat.django_q).
            models.Index(
                fields=["group_label"],
                name="fastq_job_group_label",
                condition=models.Q(group_label__isnull=False),
            ),
            # A workflow's steps (admin page, cancel, a pruner's "still running?" test).
            models.Index(
                fields=["workflow_id"],
                name="fastq_job_workflow",
                condition=models.Q(workflow_id__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task} [{self.state}] {self.id}"

    @property
    def args_value(self) -> object:
        return json.loads(self.args)

    @property
    def kwargs_value(self) -> object:
        return json.loads(self.kwargs)

    @property
    def result_value(self) -> object:
        return None if self.result is None else json.loads(self.result)


class ActiveJob(models.Model):
    """The job store's table of queued, running and waiting jobs (migration 0017,
    docs/job-store.md). On PostgreSQL ``fastq_job`` is a view over this table and
    ``fastq_finished``; on SQLite this is a view of ``fastq_job``'s active rows. Read and
    write jobs through ``Job``: this model names the relation (Django's flush empties it
    between tests) and counts it, nothing more."""

    id = models.UUIDField(primary_key=True, editable=False)

    class Meta:
        db_table = "fastq_active"
        default_permissions = ()


class FinishedJob(models.Model):
    """The job store's log of finished jobs (succeeded, failed, dead, cancelled, expired),
    partitioned by day of ``finished_at`` on PostgreSQL; a view of ``fastq_job``'s
    finished rows on SQLite. See ``ActiveJob``."""

    id = models.UUIDField(primary_key=True, editable=False)

    class Meta:
        db_table = "fastq_finished"
        default_permissions = ()


class RateLimit(models.Model):
    """One fleet-wide rate-limit bucket (GCRA): ``tat`` is its theoretical arrival time in
    microseconds since the epoch. Written by the workers only."""

    key = models.CharField(max_length=255, primary_key=True)
    tat = models.BigIntegerField(default=0)

    class Meta:
        db_table = "fastq_rate_limit"
        verbose_name = "rate-limit bucket"

    def __str__(self) -> str:
        return self.key


_now = timezone.now  # Schedule has a field named timezone


class CatchUp(models.TextChoices):
    LATEST = "latest", "latest: fire once for the missed slots"
    ALL = "all", "all: fire every missed slot"
    NONE = "none", "none: skip to the next slot"


class ScheduleSource(models.TextChoices):
    CODE = "code", "code"
    ADMIN = "admin", "admin"


def default_timezone() -> str:
    """The zone of a new cron schedule: ``FASTQ["TIMEZONE"]``, else ``TIME_ZONE``."""
    from fastq import conf

    return conf.timezone()


# Columns whose change moves a schedule (its next_run_at is computed again from now).
SCHEDULE_TIMING_FIELDS = ("cron", "timezone", "every", "enabled")


class ScheduleQuerySet(models.QuerySet["Schedule"]):
    def update(self, **kwargs: object) -> int:
        """An update that changes the timing (``cron``, ``timezone``, ``every``, ``enabled``)
        clears ``next_run_at`` too, unless it sets it: the scheduler then computes the next
        slot from now, as for a save."""
        if "next_run_at" not in kwargs and set(kwargs) & set(SCHEDULE_TIMING_FIELDS):
            kwargs["next_run_at"] = None
        return super().update(**kwargs)

    update.alters_data = True  # type: ignore[attr-defined]


class Schedule(models.Model):
    """A periodic schedule. Rows with source "code" are written by ``fastq_worker`` at
    start from ``@fastq.periodic`` and ``FASTQ["SCHEDULE"]``; the scheduler (C++ core,
    src/cpp/core/scheduler.cpp) reads the enabled rows every few seconds and writes
    ``next_run_at`` and the ``last_*`` columns."""

    name = models.CharField(max_length=200, unique=True)
    task = models.CharField(max_length=255, help_text="Dotted name of a registered task.")
    args = models.TextField(default="[]", db_default="[]", help_text="JSON array.")
    kwargs = models.TextField(default="{}", db_default="{}", help_text="JSON object.")
    queue = models.CharField(
        max_length=100, blank=True, default="", db_default="", help_text="Blank: the task's."
    )
    priority = models.SmallIntegerField(
        default=0, db_default=0, help_text="0: the task's. Higher runs first."
    )
    cron = models.CharField(
        max_length=255,
        blank=True,
        default="",
        db_default="",
        help_text='Cron expression, e.g. "*/5 8-18 * * *" (or blank: set every).',
    )
    timezone = models.CharField(
        max_length=64,
        default=default_timezone,
        db_default="UTC",
        help_text='IANA zone of the cron (default: FASTQ["TIMEZONE"], else TIME_ZONE).',
    )
    every = models.FloatField(
        null=True, blank=True, help_text="Interval in seconds (instead of cron)."
    )
    enabled = models.BooleanField(default=True, db_default=True)
    catch_up = models.CharField(
        max_length=8, choices=CatchUp.choices, default=CatchUp.LATEST, db_default="latest"
    )
    max_instances = models.IntegerField(
        default=1,
        db_default=1,
        help_text="Skip a slot while this many runs are active (0: no limit).",
    )
    source = models.CharField(
        max_length=8,
        choices=ScheduleSource.choices,
        default=ScheduleSource.ADMIN,
        db_default="admin",
        editable=False,
    )
    next_run_at = models.DateTimeField(
        null=True, blank=True, help_text="Next slot; empty: computed by the scheduler."
    )
    last_run_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_job_id = models.UUIDField(null=True, blank=True, editable=False)
    last_outcome = models.CharField(
        max_length=64, blank=True, default="", db_default="", editable=False
    )
    created_at = models.DateTimeField(default=_now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    # Columns whose change moves the schedule (next_run_at is recomputed).
    TIMING_FIELDS = SCHEDULE_TIMING_FIELDS

    objects = ScheduleQuerySet.as_manager()

    class Meta:
        db_table = "fastq_schedule"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def kind(self) -> str:
        """ "poller" for a batch poller's schedule (its runs are cycles), else "periodic"."""
        return "poller" if self.task == "fastq.poll" else "periodic"

    @property
    def expression(self) -> str:
        if self.cron:
            return f"{self.cron} ({self.timezone})"
        return f"every {self.every:g}s" if self.every else "—"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError
        from fastq import Cron, CronError
        from fastq.serialization import dumps

        errors: dict[str, str] = {}
        if bool(self.cron) == (self.every is not None):
            errors["cron"] = "Give a cron expression or an interval (every), not both."
        elif self.cron:
            try:
                Cron(self.cron, timezone=self.timezone or default_timezone())
            except CronError as exc:
                errors["timezone" if "time zone" in str(exc) else "cron"] = str(exc)
        elif self.every is not None and not self.every > 0:
            errors["every"] = "The interval must be positive."
        for field_name, kind in (("args", list), ("kwargs", dict)):
            try:
                value = json.loads(getattr(self, field_name) or "null")
            except ValueError as exc:
                errors[field_name] = f"Not JSON: {exc}"
                continue
            if not isinstance(value, kind):
                errors[field_name] = f"Must be a JSON {'array' if kind is list else 'object'}."
                continue
            try:  # what a task's call may carry (fastq.limits): no NaN, 64-bit integers...
                dumps(value, field_name)
            except (TypeError, ValueError) as exc:
                errors[field_name] = str(exc)
        if self.max_instances is not None and self.max_instances < 0:
            errors["max_instances"] = "0 (no limit) or more."
        if errors:
            raise ValidationError(errors)

    def save(self, *args: object, **kwargs: object) -> None:
        """A changed expression, interval, zone or a re-enable moves the schedule: the
        scheduler computes the next slot from now (within seconds). This holds for a save
        limited to some fields too (``update_or_create`` saves only its ``defaults``)."""
        update_fields = kwargs.get("update_fields")
        timing: tuple[str, ...] = self.TIMING_FIELDS
        if update_fields is not None:
            timing = tuple(f for f in self.TIMING_FIELDS if f in set(update_fields))  # type: ignore[call-overload]
        if self.pk is not None and timing:
            db = kwargs.get("using") or self._state.db
            rows = type(self)._default_manager.using(db).filter(pk=self.pk)  # type: ignore[arg-type]
            old = rows.values(*timing).first()
            if old and any(old[f] != getattr(self, f) for f in timing):
                self.next_run_at = None
                if update_fields is not None and "next_run_at" not in update_fields:  # type: ignore[operator]
                    kwargs["update_fields"] = [*update_fields, "next_run_at"]  # type: ignore[misc]
        super().save(*args, **kwargs)  # type: ignore[arg-type]


class ScheduleRun(models.Model):
    """One fired slot of a schedule. The unique (schedule, slot) pair is what makes a slot
    fire once, whatever the number of schedulers."""

    schedule = models.CharField(max_length=200)
    slot = models.DateTimeField()
    job_id = models.UUIDField(null=True, blank=True, help_text="Empty: skipped (overlap).")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "fastq_schedule_run"
        constraints = [
            models.UniqueConstraint(fields=["schedule", "slot"], name="fastq_schedule_run_slot")
        ]
        indexes = [
            # Retention: a job a run names is kept while the run is (migration 0016).
            models.Index(
                fields=["job_id"],
                name="fastq_schedule_run_job",
                condition=models.Q(job_id__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.schedule} @ {self.slot.isoformat()}"


class Leader(models.Model):
    """A leader lease (the scheduler's row is "scheduler"), taken and renewed by workers."""

    name = models.CharField(max_length=100, primary_key=True)
    holder = models.CharField(max_length=255)
    lease_expires_at = models.DateTimeField()

    class Meta:
        db_table = "fastq_leader"

    def __str__(self) -> str:
        return f"{self.name}: {self.holder}"


class PollerMark(models.Model):
    """A row a batch poller has alerted on (``on_stale``): the unique (poller, key) pair
    makes the alert fire once per row, written in the same transaction as its job."""

    poller = models.CharField(max_length=200)
    key = models.CharField(max_length=255, help_text="The row's primary key, as text.")
    created_at = models.DateTimeField(default=timezone.now)
    job_id = models.UUIDField(
        null=True, blank=True, help_text="The alert job enqueued with this mark."
    )

    class Meta:
        db_table = "fastq_poller_mark"
        constraints = [
            models.UniqueConstraint(fields=["poller", "key"], name="fastq_poller_mark_key")
        ]
        indexes = [
            # Retention: the alert job is kept while its mark is (migration 0016).
            models.Index(
                fields=["job_id"],
                name="fastq_poller_mark_job",
                condition=models.Q(job_id__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.poller}: {self.key}"


class WorkerState(models.TextChoices):
    RUNNING = "running", "Running"
    STOPPED = "stopped", "Stopped"
    LOST = "lost", "Lost"


class WorkerProcess(models.Model):
    """The worker registry: one row per worker process and per prefork supervisor, written
    by the C++ core (src/cpp/core/*_driver.cpp, beat_worker/stop_worker/reap_workers) and
    read by ``fastq_inspect``, ``fastq_health``, ``/fastq/metrics`` and the admin.

    A worker writes its row at start and with every lease-renewal tick (lease/3), on the
    database's clock; ``expires_at`` is that heartbeat plus the worker's lease. A row still
    ``running`` whose ``expires_at`` has passed is lost (its process died or is cut off);
    the scheduler's leader marks such rows ``lost`` and deletes stopped and lost rows an
    hour after their last heartbeat. A graceful stop marks the row ``stopped``."""

    id = models.CharField(max_length=200, primary_key=True, help_text="host:pid:uuid")
    kind = models.CharField(max_length=16, help_text='"worker" or "supervisor".')
    supervisor = models.CharField(
        max_length=200, blank=True, default="", db_default="", help_text="Its supervisor's id."
    )
    host = models.CharField(max_length=255)
    pid = models.BigIntegerField()
    version = models.CharField(max_length=64, blank=True, default="", db_default="")
    queues = models.TextField(default="[]", db_default="[]", help_text="JSON array.")
    tasks = models.TextField(default="[]", db_default="[]", help_text="JSON array.")
    concurrency = models.IntegerField(default=0, db_default=0)
    processes = models.IntegerField(default=0, db_default=0)
    state = models.CharField(max_length=16, choices=WorkerState.choices)
    started_at = models.DateTimeField()
    last_heartbeat = models.DateTimeField()
    expires_at = models.DateTimeField(help_text="Silent past this: lost.")
    stopped_at = models.DateTimeField(null=True, blank=True)
    processed = models.BigIntegerField(default=0, db_default=0)
    failed = models.BigIntegerField(default=0, db_default=0)
    rss_bytes = models.BigIntegerField(default=0, db_default=0)

    class Meta:
        db_table = "fastq_worker"
        verbose_name = "worker"
        ordering = ["host", "pid"]
        permissions = [("view_metrics", "Can read the fleet metrics (/fastq/metrics)")]
        indexes = [
            models.Index(fields=["state", "expires_at"], name="fastq_worker_state"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.host}:{self.pid} [{self.shown_state}]"

    @property
    def shown_state(self) -> str:
        """``lost`` for a running row silent past its lease, before the leader marks it."""
        if self.state == WorkerState.RUNNING and self.expires_at < timezone.now():
            return WorkerState.LOST
        return self.state

    @property
    def queue_list(self) -> list[str]:
        return _json_list(self.queues)

    @property
    def task_list(self) -> list[str]:
        return _json_list(self.tasks)


def _json_list(text: str) -> list[str]:
    try:
        value = json.loads(text)
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def validate_queue_name(value: str) -> None:
    """A queue name the workers can match: no NUL (PostgreSQL refuses it in text) and no
    lone surrogate (not encodable as UTF-8)."""
    if "\x00" in value:
        raise ValidationError("A queue name cannot hold a NUL character.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("A queue name must be valid Unicode (no lone surrogates).") from None


class Dashboard(Job):
    """No table: the fleet dashboard's place in the admin (fastq_django/dashboard.py), so
    that it lives at /admin/fastq_django/dashboard/ and the admin index links to it."""

    class Meta:
        proxy = True
        verbose_name = "dashboard"
        verbose_name_plural = "dashboard"
        default_permissions = ()


class Queue(models.Model):
    """A queue's controls, read by every worker's claim: ``paused`` stops new starts
    fleet-wide (running jobs finish, enqueueing still works); ``concurrency`` bounds how
    many of its jobs run at once across every worker. ``settings_concurrency`` is the
    value last read from ``FASTQ["QUEUES"]``: a limit edited in the admin holds until that
    setting itself changes. A queue without a row is unpaused and unlimited."""

    name = models.CharField(max_length=100, primary_key=True, validators=[validate_queue_name])
    paused = models.BooleanField(default=False, db_default=False)
    concurrency = models.IntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_QUEUE_CONCURRENCY)],
        help_text="At most this many of its jobs run at once across every worker; empty: no limit.",
    )
    settings_concurrency = models.IntegerField(null=True, blank=True, editable=False)
    changed_by = models.CharField(max_length=150, blank=True, default="", db_default="")
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "fastq_queue"
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(concurrency__isnull=True)
                | models.Q(concurrency__gte=1, concurrency__lte=MAX_QUEUE_CONCURRENCY),
                name="fastq_queue_concurrency_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Dependency(models.Model):
    """An edge of a workflow: ``child_id`` waits for ``parent_id``. ``position`` orders
    the parents' results in what the child receives. Written with the jobs (one
    transaction), read by the worker that finishes the parent."""

    id = models.BigAutoField(primary_key=True)
    workflow_id = models.UUIDField()
    parent_id = models.UUIDField()
    child_id = models.UUIDField()
    position = models.IntegerField(default=0, db_default=0)

    class Meta:
        db_table = "fastq_dependency"
        constraints = [
            models.UniqueConstraint(fields=["parent_id", "child_id"], name="fastq_dependency_edge")
        ]
        indexes = [models.Index(fields=["child_id", "position"], name="fastq_dependency_child")]
        verbose_name_plural = "dependencies"

    def __str__(self) -> str:
        return f"{self.parent_id} -> {self.child_id}"


class Workflow(models.Model):
    """A chain, group, chord or graph as enqueued: ``members`` (JSON) lists the jobs that
    stand for its parts' results (a group's members in order), so that
    ``fastq.GroupResult.restore(id)`` and the admin page can find them. The workflow of a
    whole canvas has ``root_id`` = its own id; a group nested in it points to it."""

    id = models.UUIDField(primary_key=True)
    root_id = models.UUIDField(db_index=True)
    kind = models.CharField(max_length=16)
    name = models.CharField(max_length=255, blank=True, default="", db_default="")
    members = models.TextField(default="[]", db_default="[]", help_text="JSON array of job ids.")
    created_at = models.DateTimeField(default=timezone.now, db_default=Now())

    class Meta:
        db_table = "fastq_workflow"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"

    @property
    def member_ids(self) -> list[str]:
        return [str(x) for x in json.loads(self.members)]

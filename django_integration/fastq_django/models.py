"""The job table. The C++ drivers read and write these same columns
(src/cpp/core/*_driver.cpp); change both together."""

from __future__ import annotations

import json
import uuid

from django.db import models
from django.db.models.functions import Now
from django.utils import timezone


class JobState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    DEAD = "dead", "Dead"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"


class Job(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
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
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "fastq_job"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["unique_key"],
                condition=models.Q(state__in=["queued", "running"]),
                name="fastq_job_unique_active",
            ),
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

"""``PeriodicTask`` over ``fastq_schedule``; ``CrontabSchedule``, ``IntervalSchedule`` as
values (see the package docstring)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

_now = timezone.now  # PeriodicTask has a field named timezone

_PERIODS = {
    "days": 86400.0,
    "hours": 3600.0,
    "minutes": 60.0,
    "seconds": 1.0,
    "microseconds": 1e-6,
}


class _ValueManager:
    """``objects`` of a value class: ``create``, ``get``, ``get_or_create``,
    ``update_or_create`` and ``filter(...).first()`` build the value from its fields (there
    is no table; ``get_or_create`` reports created=False)."""

    def __init__(self, cls: type) -> None:
        self.cls = cls

    def create(self, **fields: Any) -> Any:
        return self.cls(**fields)

    def get(self, **fields: Any) -> Any:
        return self.cls(**fields)

    def get_or_create(
        self, defaults: dict[str, Any] | None = None, **fields: Any
    ) -> tuple[Any, bool]:
        return self.cls(**{**(defaults or {}), **fields}), False

    def update_or_create(
        self, defaults: dict[str, Any] | None = None, **fields: Any
    ) -> tuple[Any, bool]:
        return self.get_or_create(defaults=defaults, **fields)

    def filter(self, **fields: Any) -> list[Any]:
        return [self.cls(**fields)]


class IntervalSchedule:
    """Every ``every`` ``period`` (DAYS, HOURS, MINUTES, SECONDS, MICROSECONDS)."""

    DAYS, HOURS, MINUTES, SECONDS, MICROSECONDS = (
        "days",
        "hours",
        "minutes",
        "seconds",
        "microseconds",
    )
    PERIOD_CHOICES = tuple((p, p.capitalize()) for p in _PERIODS)

    def __init__(self, every: int = 1, period: str = "seconds", **_: Any) -> None:
        if period not in _PERIODS:
            raise ValidationError({"period": f"unknown period {period!r}"})
        if int(every) < 1:
            raise ValidationError({"every": "must be 1 or more"})
        self.every = int(every)
        self.period = period
        self.id = self.pk = None

    @property
    def seconds(self) -> float:
        return self.every * _PERIODS[self.period]

    @property
    def schedule(self) -> timedelta:
        return timedelta(seconds=self.seconds)

    def save(self, *args: Any, **kwargs: Any) -> None:
        return None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IntervalSchedule) and other.seconds == self.seconds

    def __hash__(self) -> int:
        return hash(self.seconds)

    def __str__(self) -> str:
        return f"every {self.every} {self.period}"


IntervalSchedule.objects = _ValueManager(IntervalSchedule)  # type: ignore[attr-defined]


class CrontabSchedule:
    """minute, hour, day_of_week, day_of_month, month_of_year, timezone (a zone name or
    ZoneInfo; default UTC)."""

    def __init__(
        self,
        minute: Any = "*",
        hour: Any = "*",
        day_of_week: Any = "*",
        day_of_month: Any = "*",
        month_of_year: Any = "*",
        timezone: Any = "UTC",
        **_: Any,
    ) -> None:
        from fastq.compat.celery.schedules import crontab

        zone = str(getattr(timezone, "key", timezone) or "UTC")
        try:
            c = crontab(minute, hour, day_of_week, day_of_month, month_of_year, tz=zone)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        self.minute, self.hour = c.minute, c.hour
        self.day_of_week, self.day_of_month, self.month_of_year = (
            c.day_of_week,
            c.day_of_month,
            c.month_of_year,
        )
        self.timezone = zone
        self.expression = c.expression
        self.id = self.pk = None

    def save(self, *args: Any, **kwargs: Any) -> None:
        return None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CrontabSchedule) and (other.expression, other.timezone) == (
            self.expression,
            self.timezone,
        )

    def __hash__(self) -> int:
        return hash((self.expression, self.timezone))

    def __str__(self) -> str:
        return f"{self.expression} ({self.timezone})"


CrontabSchedule.objects = _ValueManager(CrontabSchedule)  # type: ignore[attr-defined]


class SolarSchedule:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise ValidationError("solar schedules have no meaning on fastq; use a CrontabSchedule")


class ClockedSchedule:
    """A one-off time: a PeriodicTask with ``clocked`` runs once at ``clocked_time``."""

    def __init__(self, clocked_time: Any = None, **_: Any) -> None:
        if clocked_time is None or getattr(clocked_time, "tzinfo", None) is None:
            raise ValidationError({"clocked_time": "an aware datetime is required"})
        self.clocked_time = clocked_time
        self.id = self.pk = None

    def save(self, *args: Any, **kwargs: Any) -> None:
        return None


ClockedSchedule.objects = _ValueManager(ClockedSchedule)  # type: ignore[attr-defined]

_ONE_OFF_EVERY = 3650 * 86400.0  # a one-off schedule's interval: it is disabled after one run


class PeriodicTask(models.Model):
    """A beat entry in ``fastq_schedule``. ``name``, ``task``, ``args``/``kwargs`` (JSON
    text), ``queue``, ``priority``, ``enabled``, ``last_run_at`` are columns; ``interval``,
    ``crontab`` and ``clocked`` set the timing; ``one_off`` (and ``clocked``) fire once at
    ``start_time`` (default: now), their next slot being set ten years later."""

    id = models.BigAutoField(primary_key=True)
    name = models.CharField(max_length=200, unique=True)
    task = models.CharField(max_length=255)
    args = models.TextField(default="[]")
    kwargs = models.TextField(default="{}")
    queue = models.CharField(max_length=100, default="")
    priority = models.SmallIntegerField(default=0)
    cron = models.CharField(max_length=255, default="")
    timezone = models.CharField(max_length=64, default="UTC")
    every = models.FloatField(null=True)
    enabled = models.BooleanField(default=True)
    catch_up = models.CharField(max_length=8, default="latest")
    max_instances = models.IntegerField(default=1)
    source = models.CharField(max_length=8, default="admin")
    start_time = models.DateTimeField(null=True, db_column="next_run_at")
    last_run_at = models.DateTimeField(null=True)
    last_job_id = models.UUIDField(null=True)
    last_outcome = models.CharField(max_length=64, default="")
    created_at = models.DateTimeField(default=_now)
    date_changed = models.DateTimeField(auto_now=True, db_column="updated_at")

    class Meta:
        managed = False
        db_table = "fastq_schedule"
        app_label = "django_celery_beat"
        verbose_name = "periodic task"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.one_off = bool(kwargs.pop("one_off", False))
        for extra in (
            "description",
            "expires",
            "expire_seconds",
            "headers",
            "exchange",
            "routing_key",
            "solar",
        ):
            kwargs.pop(extra, None)
        super().__init__(*args, **kwargs)

    @property
    def interval(self) -> IntervalSchedule | None:
        if self.cron or not self.every or self.every == _ONE_OFF_EVERY:
            return None
        return IntervalSchedule(every=int(self.every), period="seconds")

    @interval.setter
    def interval(self, value: IntervalSchedule | None) -> None:
        if value is not None:
            self.cron, self.every = "", value.seconds

    @property
    def crontab(self) -> CrontabSchedule | None:
        if not self.cron:
            return None
        m, h, dom, mon, dow = self.cron.split()
        return CrontabSchedule(m, h, dow, dom, mon, timezone=self.timezone)

    @crontab.setter
    def crontab(self, value: CrontabSchedule | None) -> None:
        if value is not None:
            self.cron, self.every, self.timezone = value.expression, None, value.timezone

    @property
    def clocked(self) -> ClockedSchedule | None:
        return None

    @clocked.setter
    def clocked(self, value: ClockedSchedule | None) -> None:
        if value is not None:
            self.cron, self.every = "", _ONE_OFF_EVERY
            self.start_time = value.clocked_time
            self.one_off = True

    @property
    def total_run_count(self) -> int:
        from fastq_django.models import ScheduleRun

        return ScheduleRun.objects.filter(schedule=self.name).exclude(job_id=None).count()

    @property
    def schedule(self) -> Any:
        return self.crontab or self.interval

    def clean(self) -> None:
        from fastq import Cron, CronError

        if bool(self.cron) == (self.every is not None):
            raise ValidationError("give exactly one of interval, crontab or clocked")
        if self.cron:
            try:
                Cron(self.cron, timezone=self.timezone or "UTC")
            except CronError as exc:
                raise ValidationError({"crontab": str(exc)}) from None
        for field, kind in (("args", list), ("kwargs", dict)):
            try:
                value = json.loads(getattr(self, field) or ("[]" if kind is list else "{}"))
            except ValueError as exc:
                raise ValidationError({field: f"not JSON: {exc}"}) from None
            if not isinstance(value, kind):
                raise ValidationError({field: f"must be a JSON {kind.__name__}"})

    def save(self, *args: Any, **kwargs: Any) -> None:
        if isinstance(self.args, list | tuple):
            self.args = json.dumps(list(self.args))
        if isinstance(self.kwargs, dict):
            self.kwargs = json.dumps(self.kwargs)
        if self.one_off and self.every != _ONE_OFF_EVERY:
            # Fire once, at start_time (or now): a long interval, disabled after its run.
            self.cron, self.every = "", _ONE_OFF_EVERY
            if self.start_time is None:
                self.start_time = _now()
        self.clean()
        if self.pk is not None:
            old = (
                type(self)
                .objects.filter(pk=self.pk)
                .values("cron", "every", "timezone", "enabled")
                .first()
            )
            if old and (old["cron"], old["every"], old["timezone"], old["enabled"]) != (
                self.cron,
                self.every,
                self.timezone,
                self.enabled,
            ):
                self.start_time = None  # the scheduler computes the next slot from now
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return f"{self.name}: {self.schedule}"


class PeriodicTasks:
    """django-celery-beat's change marker; fastq's scheduler re-reads the table every 2 s."""

    @classmethod
    def changed(cls, *args: Any, **kwargs: Any) -> None:
        return None

    @classmethod
    def update_changed(cls, *args: Any, **kwargs: Any) -> None:
        return None

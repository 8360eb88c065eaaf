"""Django-Q2's models over fastq's tables (no tables of their own).

- ``Task`` (finished jobs), ``Success`` (succeeded), ``Failure`` (failed, dead, expired,
  cancelled) read ``fastq_job``. Jobs enqueued through ``async_task`` show the dotted
  path they ran as ``func``; native fastq jobs show their task name.
- ``OrmQ`` reads the queued and running jobs.
- ``Schedule`` reads and writes ``fastq_schedule``: creating one (or ``schedule()``)
  makes a fastq schedule the workers fire.
"""

from __future__ import annotations

import ast
import json
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from fastq.compat.django_q import paths

CALL = "fastq.compat.django_q.call"  # the fastq task that runs a dotted path
FINISHED = ("succeeded", "failed", "dead", "expired", "cancelled")
FAILED = ("failed", "dead", "expired", "cancelled")


class _FinishedManager(models.Manager):  # type: ignore[type-arg]
    states: tuple[str, ...] = FINISHED

    def get_queryset(self) -> models.QuerySet:  # type: ignore[type-arg]
        return super().get_queryset().filter(state__in=self.states)


class _SuccessManager(_FinishedManager):
    states = ("succeeded",)


class _FailureManager(_FinishedManager):
    states = FAILED


class Task(models.Model):
    """A finished job, as Django-Q2's Task: ``id``, ``name``, ``func``, ``hook``, ``args``,
    ``kwargs``, ``result``, ``group``, ``started``, ``stopped``, ``success``,
    ``attempt_count``, ``cluster`` (the queue)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    fastq_task = models.CharField(max_length=255, db_column="task")
    queue = models.CharField(max_length=100)
    state = models.CharField(max_length=16)
    group = models.CharField(max_length=100, null=True, db_column="group_label")
    args_json = models.TextField(db_column="args", default="[]")
    kwargs_json = models.TextField(db_column="kwargs", default="{}")
    result_json = models.TextField(db_column="result", null=True)
    error_type = models.CharField(max_length=255, default="")
    error = models.TextField(default="")
    traceback = models.TextField(default="")
    started = models.DateTimeField(db_column="started_at", null=True)
    stopped = models.DateTimeField(db_column="finished_at", null=True)
    attempt_count = models.IntegerField(db_column="attempts", default=0)
    created_at = models.DateTimeField(default=timezone.now)

    objects = _FinishedManager()

    class Meta:
        managed = False
        db_table = "fastq_job"
        app_label = "django_q"
        ordering = ["-stopped"]
        verbose_name = "Task"

    # -- Django-Q2's attributes -------------------------------------------------------

    def _call(self) -> tuple[str, list[Any], dict[str, Any], dict[str, Any]] | None:
        if self.fastq_task != CALL:
            return None
        try:
            func, args, kwargs, options = json.loads(self.args_json)
        except (ValueError, TypeError):
            return None
        return str(func), list(args), dict(kwargs), dict(options or {})

    @property
    def func(self) -> str:
        call = self._call()
        return call[0] if call else self.fastq_task

    @property
    def hook(self) -> str | None:
        call = self._call()
        return call[3].get("hook") if call else None

    @property
    def args(self) -> tuple[Any, ...]:
        call = self._call()
        return tuple(call[1] if call else json.loads(self.args_json or "[]"))

    @property
    def kwargs(self) -> dict[str, Any]:
        call = self._call()
        return call[2] if call else json.loads(self.kwargs_json or "{}")

    @property
    def name(self) -> str:
        call = self._call()
        if call and call[3].get("name"):
            return str(call[3]["name"])
        return self.id.hex if isinstance(self.id, uuid.UUID) else str(self.id)

    @property
    def success(self) -> bool:
        return self.state == "succeeded"

    @property
    def result(self) -> Any:
        """The return value; for a failure, Django-Q2's "message : traceback" text."""
        if self.state == "succeeded":
            return json.loads(self.result_json) if self.result_json is not None else None
        if self.state in FAILED:
            return f"{self.error} : {self.traceback}" if self.traceback else self.error
        return None

    @property
    def cluster(self) -> str:
        return self.queue

    def time_taken(self) -> float:
        if self.started is None or self.stopped is None:
            return 0.0
        return (self.stopped - self.started).total_seconds()

    def group_result(self, failures: bool = False) -> list[Any] | None:
        if self.group:
            return self.get_result_group(self.group, failures)
        return None

    def group_count(self, failures: bool = False) -> int | None:
        if self.group:
            return self.get_group_count(self.group, failures)
        return None

    def group_delete(self, tasks: bool = False) -> Any:
        if self.group:
            return self.delete_group(self.group, tasks)
        return None

    @staticmethod
    def get_task(task_id: Any) -> Task | None:
        try:
            pk = uuid.UUID(str(task_id))
        except ValueError:
            return None
        return Task.objects.filter(pk=pk).first()

    @staticmethod
    def get_result(task_id: Any) -> Any:
        task = Task.get_task(task_id)
        return task.result if task is not None else None

    @staticmethod
    def get_result_group(group_id: str, failures: bool = False) -> list[Any]:
        qs = Task.objects.filter(group=group_id).order_by("stopped", "id")
        if not failures:
            qs = qs.filter(state="succeeded")
        return [t.result for t in qs]

    @staticmethod
    def get_task_group(group_id: str, failures: bool = True) -> Any:
        qs = Task.objects.filter(group=group_id)
        return qs if failures else qs.filter(state="succeeded")

    @staticmethod
    def get_group_count(group_id: str, failures: bool = False) -> int:
        if failures:
            return Failure.objects.filter(group=group_id).count()
        return Task.objects.filter(group=group_id).count()

    @staticmethod
    def delete_group(group_id: str, objects: bool = False) -> Any:
        """Without ``objects`` the label goes and the tasks stay (how many); with it the
        group's finished tasks go, through the core's forget operation, and the answer
        has ``QuerySet.delete()``'s shape."""
        from fastq_django.models import Job

        import fastq

        broker = fastq.get_broker()
        jobs = Job.objects.using(broker.alias).filter(group_label=group_id)
        if objects:
            ids = [str(pk) for pk in jobs.filter(state__in=FINISHED).values_list("pk", flat=True)]
            n = broker.forget(ids)
            return n, ({"fastq_django.Job": n} if n else {})
        return broker.relabel([str(pk) for pk in jobs.values_list("pk", flat=True)], "")

    def __str__(self) -> str:
        return self.name


class Success(Task):
    objects = _SuccessManager()

    class Meta:
        proxy = True
        app_label = "django_q"
        ordering = ["-stopped"]
        verbose_name = "Successful task"


class Failure(Task):
    objects = _FailureManager()

    class Meta:
        proxy = True
        app_label = "django_q"
        ordering = ["-stopped"]
        verbose_name = "Failed task"


class _QueuedManager(models.Manager):  # type: ignore[type-arg]
    def get_queryset(self) -> models.QuerySet:  # type: ignore[type-arg]
        return super().get_queryset().filter(state__in=("waiting", "queued", "running"))


class OrmQ(models.Model):
    """A queued (or running) job, as Django-Q2's ORM broker row: ``key`` is the queue,
    ``lock`` the lease's end, ``payload`` the task as JSON (no signing: nothing in it is
    ever imported)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    key = models.CharField(max_length=100, db_column="queue")
    lock = models.DateTimeField(null=True, db_column="lease_expires_at")
    fastq_task = models.CharField(max_length=255, db_column="task")
    state = models.CharField(max_length=16)
    group_label = models.CharField(max_length=100, null=True)
    args_json = models.TextField(db_column="args", default="[]")
    kwargs_json = models.TextField(db_column="kwargs", default="{}")

    objects = _QueuedManager()

    class Meta:
        managed = False
        db_table = "fastq_job"
        app_label = "django_q"
        verbose_name = "Queued task"

    @property
    def task(self) -> dict[str, Any]:
        t = Task(
            id=self.id,
            fastq_task=self.fastq_task,
            args_json=self.args_json,
            kwargs_json=self.kwargs_json,
            group=self.group_label,
            queue=self.key,
        )
        out = {
            "id": self.id.hex,
            "name": t.name,
            "func": t.func,
            "args": t.args,
            "kwargs": t.kwargs,
            "group": self.group_label,
            "cluster": self.key,
        }
        if t.hook:
            out["hook"] = t.hook
        return out

    @property
    def payload(self) -> str:
        return json.dumps(self.task)

    def func(self) -> str:
        return str(self.task["func"])

    def task_id(self) -> str:
        return str(self.task["id"])

    def name(self) -> str:
        return str(self.task["name"])

    def group(self) -> str | None:
        return self.group_label

    def args(self) -> tuple[Any, ...]:
        return tuple(self.task["args"])

    def kwargs(self) -> dict[str, Any]:
        return dict(self.task["kwargs"])

    def q_options(self) -> dict[str, Any]:
        exclude = {"id", "name", "group", "func", "args", "kwargs"}
        return {k: v for k, v in self.task.items() if k not in exclude}


def _literal_args(value: Any) -> list[Any]:
    """Django-Q2's Schedule.args: a Python literal string ("1, 2, 'John'") or a tuple."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            parsed = ast.literal_eval(value)
        except (SyntaxError, ValueError) as exc:
            raise ValidationError({"args": f"not a Python literal: {exc}"}) from None
        return list(parsed) if isinstance(parsed, tuple) else [parsed]
    return list(value)


def _literal_kwargs(value: Any) -> dict[str, Any]:
    """Django-Q2's Schedule.kwargs: "x=1, y='a'", "{'x': 1}" or a dict."""
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return dict(value)
    try:
        parsed = ast.literal_eval(value)
        if isinstance(parsed, dict):
            return parsed
    except (SyntaxError, ValueError):
        pass
    try:
        call = ast.parse(f"f({value})", mode="eval").body
        assert isinstance(call, ast.Call)
        return {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords if kw.arg}
    except (SyntaxError, ValueError, AssertionError) as exc:
        raise ValidationError({"kwargs": f"not keyword arguments: {exc}"}) from None


class _CallScheduleManager(models.Manager):  # type: ignore[type-arg]
    def get_queryset(self) -> models.QuerySet:  # type: ignore[type-arg]
        return super().get_queryset().filter(fastq_task=CALL)


class Schedule(models.Model):
    """Django-Q2's Schedule over ``fastq_schedule`` (the rows that run a dotted path; the
    schedules of fastq tasks are fastq's admin's). ``func``, ``hook``, ``args``,
    ``kwargs``, ``schedule_type``, ``minutes``, ``repeats``, ``next_run``, ``cron``,
    ``cluster`` and ``intended_date_kwarg`` are Django-Q2's; saving writes the fastq
    schedule they stand for (cron in ``Q_CLUSTER['time_zone']`` or ``TIME_ZONE``, or an
    interval) that fastq's scheduler fires."""

    ONCE = "O"
    MINUTES = "I"
    HOURLY = "H"
    DAILY = "D"
    WEEKLY = "W"
    BIWEEKLY = "BW"
    MONTHLY = "M"
    BIMONTHLY = "BM"
    QUARTERLY = "Q"
    YEARLY = "Y"
    CRON = "C"
    TYPE = (
        (ONCE, "Once"),
        (MINUTES, "Minutes"),
        (HOURLY, "Hourly"),
        (DAILY, "Daily"),
        (WEEKLY, "Weekly"),
        (BIWEEKLY, "Biweekly"),
        (MONTHLY, "Monthly"),
        (BIMONTHLY, "Bimonthly"),
        (QUARTERLY, "Quarterly"),
        (YEARLY, "Yearly"),
        (CRON, "Cron"),
    )

    id = models.BigAutoField(primary_key=True)
    name = models.CharField(max_length=200, unique=True)
    fastq_task = models.CharField(max_length=255, db_column="task", default=CALL)
    args_json = models.TextField(db_column="args", default="[]")
    kwargs_json = models.TextField(db_column="kwargs", default="{}")
    queue = models.CharField(max_length=100, default="")
    priority = models.SmallIntegerField(default=0)
    cron_expr = models.CharField(max_length=255, db_column="cron", default="")
    zone = models.CharField(max_length=64, db_column="timezone", default="UTC")
    every = models.FloatField(null=True)
    enabled = models.BooleanField(default=True)
    catch_up = models.CharField(max_length=8, default="latest")
    max_instances = models.IntegerField(default=1)
    source = models.CharField(max_length=8, default="admin")
    next_run = models.DateTimeField(db_column="next_run_at", null=True)
    last_run_at = models.DateTimeField(null=True)
    last_job_id = models.UUIDField(null=True)
    last_outcome = models.CharField(max_length=64, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = _CallScheduleManager()

    class Meta:
        managed = False
        db_table = "fastq_schedule"
        app_label = "django_q"
        ordering = ["next_run"]
        verbose_name = "Scheduled task"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._call_cache: list[Any] | None = None
        super().__init__(*args, **kwargs)

    # -- the dotted call it runs (the fastq schedule's arguments) -----------------------

    def _callv(self) -> list[Any]:
        if self._call_cache is None:
            try:
                value = json.loads(self.args_json or "[]")
            except ValueError:
                value = []
            if self.fastq_task != CALL or not (isinstance(value, list) and len(value) == 4):
                value = [self.fastq_task, value, {}, {}]
            self._call_cache = [value[0], list(value[1]), dict(value[2]), dict(value[3] or {})]
        return self._call_cache

    def _set(self, index: int, value: Any) -> None:
        callv = self._callv()
        callv[index] = value

    def _opt(self, key: str, default: Any = None) -> Any:
        return self._callv()[3].get(key, default)

    def _set_opt(self, key: str, value: Any) -> None:
        self._callv()[3][key] = value

    @property
    def func(self) -> str:
        return str(self._callv()[0])

    @func.setter
    def func(self, value: Any) -> None:
        self._set(0, value if isinstance(value, str) else paths.path_of(value))

    @property
    def hook(self) -> str | None:
        return self._opt("hook")

    @hook.setter
    def hook(self, value: Any) -> None:
        if value is not None and not isinstance(value, str):
            value = paths.path_of(value)
        self._set_opt("hook", value)

    @property
    def args(self) -> str:
        values = self._callv()[1]
        return ", ".join(repr(v) for v in values)

    @args.setter
    def args(self, value: Any) -> None:
        self._set(1, _literal_args(value))

    @property
    def kwargs(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self._callv()[2].items())

    @kwargs.setter
    def kwargs(self, value: Any) -> None:
        self._set(2, _literal_kwargs(value))

    @property
    def schedule_type(self) -> str:
        return str(self._opt("schedule_type", self.ONCE))

    @schedule_type.setter
    def schedule_type(self, value: str) -> None:
        self._set_opt("schedule_type", value)

    @property
    def minutes(self) -> int | None:
        return self._opt("minutes")

    @minutes.setter
    def minutes(self, value: int | None) -> None:
        self._set_opt("minutes", value)

    @property
    def repeats(self) -> int:
        return int(self._opt("repeats", -1))

    @repeats.setter
    def repeats(self, value: int) -> None:
        self._set_opt("repeats", int(value))

    @property
    def cron(self) -> str | None:
        return self._opt("cron")

    @cron.setter
    def cron(self, value: str | None) -> None:
        self._set_opt("cron", value)

    @property
    def cluster(self) -> str | None:
        return self.queue or None

    @cluster.setter
    def cluster(self, value: str | None) -> None:
        self.queue = value or ""

    @property
    def intended_date_kwarg(self) -> str | None:
        return self._opt("intended_date_kwarg")

    @intended_date_kwarg.setter
    def intended_date_kwarg(self, value: str | None) -> None:
        self._set_opt("intended_date_kwarg", value)

    @property
    def task(self) -> str | None:
        """The id of the last task this schedule started (Django-Q2's Schedule.task)."""
        return self.last_job_id.hex if self.last_job_id else None

    def success(self) -> bool | None:
        if not self.last_job_id:
            return None
        t = Task.get_task(self.last_job_id)
        return t.success if t is not None else None

    def __str__(self) -> str:
        return self.func

    # -- saving: Django-Q2's type as a fastq cron or interval ----------------------------

    def _zone(self) -> str:
        from fastq.compat.django_q.conf import Conf

        return str(Conf.TIME_ZONE or "UTC")

    def _timing(self) -> tuple[str, float | None, datetime | None]:
        """(cron, every, first run) for the schedule type, from ``next_run``'s local time."""
        kind = self.schedule_type
        start = self.next_run or timezone.now()
        zone = self._zone()
        local = start.astimezone(ZoneInfo(zone))
        m, h, d, mon, dow = (
            local.minute,
            local.hour,
            local.day,
            local.month,
            (local.isoweekday() % 7),
        )
        if kind == self.CRON:
            if not self.cron:
                raise ValidationError({"cron": "a CRON schedule needs a cron expression"})
            return self.cron, None, None
        if kind == self.MINUTES:
            return "", 60.0 * int(self.minutes or 1), start
        if kind == self.HOURLY:
            return "", 3600.0, start
        if kind == self.DAILY:
            return f"{m} {h} * * *", None, start
        if kind == self.WEEKLY:
            return f"{m} {h} * * {dow}", None, start
        if kind == self.BIWEEKLY:
            return "", 14 * 86400.0, start
        if kind in (self.MONTHLY, self.BIMONTHLY, self.QUARTERLY):
            step = {self.MONTHLY: 1, self.BIMONTHLY: 2, self.QUARTERLY: 3}[kind]
            months = ",".join(
                str(x) for x in sorted({(mon - 1 + step * i) % 12 + 1 for i in range(12)})
            )
            return f"{m} {h} {d} {months if step > 1 else '*'} *", None, start
        if kind == self.YEARLY:
            return f"{m} {h} {d} {mon} *", None, start
        if kind == self.ONCE:
            # Fires at next_run; the run then ends the schedule (repeats).
            return "", float(timedelta(days=3650).total_seconds()), start
        raise ValidationError({"schedule_type": f"unknown schedule type {kind!r}"})

    def clean(self) -> None:
        from fastq import Cron, CronError

        try:
            paths.check(self.func)
        except paths.ForbiddenPath as exc:
            raise ValidationError({"func": str(exc)}) from None
        if self.hook:
            try:
                paths.check(self.hook)
            except paths.ForbiddenPath as exc:
                raise ValidationError({"hook": str(exc)}) from None
        cron, _, _ = self._timing()
        if cron:
            try:
                Cron(cron, timezone=self._zone())
            except CronError as exc:
                raise ValidationError({"cron": str(exc)}) from None
        ikw = self.intended_date_kwarg
        if ikw and not str(ikw).isidentifier():
            raise ValidationError({"intended_date_kwarg": "must be a keyword argument name"})

    def save(self, *args: Any, **kwargs: Any) -> None:
        from fastq import _core
        from fastq.compat.django_q.conf import Conf

        self.clean()
        cron, every, first = self._timing()
        if not self.name:
            self.name = f"{self.func}-{uuid.uuid4().hex[:8]}"
        self._set_opt("schedule", self.name)
        callv = self._callv()
        _core.encode_call(callv, {}, f"schedule {self.name!r}: ")
        self.fastq_task = CALL
        self.args_json = json.dumps(callv)
        self.kwargs_json = "{}"
        timing_changed = (self.cron_expr, self.every, self.zone) != (cron, every, self._zone())
        self.cron_expr, self.every, self.zone = cron, every, self._zone()
        self.catch_up = "all" if Conf.CATCH_UP else "latest"
        if self._state.adding or timing_changed:
            self.next_run = first
        if self.repeats == 0:
            self.enabled = False
        super().save(*args, **kwargs)
        self._call_cache = None

    def calculate_next_run(self, next_run: datetime | None = None) -> datetime | None:
        from fastq import Cron

        cron, every, _ = self._timing()
        base = next_run or self.next_run or timezone.now()
        if cron:
            return Cron(cron, timezone=self._zone()).next_after(base)
        return base + timedelta(seconds=every or 0)

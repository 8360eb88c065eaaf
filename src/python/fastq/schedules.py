"""Periodic schedules declared in code: ``@fastq.periodic`` and ``FASTQ["SCHEDULE"]``.

Declarations are checked at once (a bad cron expression, zone or interval raises when the
module is imported or the settings are read, naming the field). ``fastq_worker`` copies
them into the ``fastq_schedule`` table at start; the scheduler in the C++ core fires them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fastq import _core, conf, limits
from fastq._core import Cron, CronError
from fastq.result import AsyncResult
from fastq.task import Task, registry, task

CATCH_UP = ("latest", "all", "none")


@dataclass(frozen=True)
class PeriodicSchedule:
    """A schedule as declared in code: ``cron`` + ``timezone``, or ``every`` seconds. An
    empty ``timezone`` is the default zone, ``FASTQ["TIMEZONE"]`` (``conf.timezone()``),
    read when the schedule is written to the table."""

    name: str
    task: str
    cron: str = ""
    timezone: str = ""
    every: float | None = None
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    queue: str = ""
    priority: int = 0
    catch_up: str = "latest"
    max_instances: int = 1

    def __post_init__(self) -> None:
        where = f"schedule {self.name!r}"
        if not self.name:
            raise ValueError("a schedule needs a name")
        if not self.task:
            raise ValueError(f"{where}: task: a dotted task name is required")
        if bool(self.cron) == (self.every is not None):
            raise ValueError(f"{where}: give exactly one of cron= or every=")
        if self.cron:
            try:
                # The default zone (FASTQ["TIMEZONE"]) is checked on its own (fastq.E002).
                Cron(self.cron, timezone=self.timezone or "UTC")
            except CronError as exc:
                field_name = "timezone" if "time zone" in str(exc) else "cron"
                raise CronError(f"{where}: {field_name}: {exc}") from None
        elif self.every is None or not self.every > 0:
            raise ValueError(f"{where}: every: must be a positive interval")
        if self.catch_up not in CATCH_UP:
            raise ValueError(f"{where}: catch_up: must be one of {', '.join(CATCH_UP)}")
        if self.max_instances < 0:
            raise ValueError(f"{where}: max_instances: must be 0 (no limit) or more")
        if not isinstance(self.args, list | tuple):
            raise ValueError(f"{where}: args: must be a list")
        if not isinstance(self.kwargs, dict):
            raise ValueError(f"{where}: kwargs: must be a dict")
        # What a call of the task may carry (fastq.limits): raises naming the argument.
        limits.priority(self.priority, f"{where}: ")
        _core.encode_call(self.args, self.kwargs, f"{where}: ")

    def fields(self) -> dict[str, Any]:
        """The columns of the ``fastq_schedule`` row this declaration stands for."""
        return {
            "task": self.task,
            "cron": self.cron,
            "timezone": self.timezone or conf.timezone(),
            "every": self.every,
            "args": json.dumps(list(self.args)),
            "kwargs": json.dumps(self.kwargs),
            "queue": self.queue,
            "priority": self.priority,
            "catch_up": self.catch_up,
            "max_instances": self.max_instances,
        }


# Schedules declared with @fastq.periodic, by name.
declared: dict[str, PeriodicSchedule] = {}

# Other places schedules are declared (Celery's beat_schedule through
# fastq.compat.celery): functions returning schedules by name, called when a worker syncs
# the schedules table, so that they see settings read after import.
providers: list[Callable[[], Mapping[str, PeriodicSchedule]]] = []


def _seconds(every: timedelta | float | int | None) -> float | None:
    if every is None:
        return None
    if isinstance(every, timedelta):
        return every.total_seconds()
    return float(every)


def periodic(
    fn: Any = None,
    *,
    cron: str = "",
    timezone: str = "",
    every: timedelta | float | None = None,
    name: str | None = None,
    args: Iterable[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    queue: str = "",
    priority: int = 0,
    catch_up: str = "latest",
    max_instances: int = 1,
) -> Any:
    """Run a task on a schedule: ``@fastq.periodic(cron="*/5 8-18 * * *",
    timezone="Asia/Tehran")`` or ``@fastq.periodic(every=timedelta(minutes=30))``, above
    ``@fastq.task`` or instead of it (a plain function is registered as a task). Without
    ``timezone`` a cron runs in ``FASTQ["TIMEZONE"]`` (default: Django's ``TIME_ZONE``).

    ``name`` defaults to the task's name; ``args``/``kwargs`` are passed to each run;
    ``queue`` and ``priority`` override the task's; ``catch_up`` ("latest", "all",
    "none") says what to do with slots missed while no worker ran; ``max_instances``
    (default 1; 0 = no limit) skips a slot while that many runs are queued or running.
    """

    def wrap(f: Any) -> Task[Any, Any]:
        # Checked before the function is registered, so a bad schedule leaves no task.
        task_name = f.name if isinstance(f, Task) else f"{f.__module__}.{f.__qualname__}"
        spec = PeriodicSchedule(
            name=name or task_name,
            task=task_name,
            cron=cron,
            timezone=timezone,
            every=_seconds(every),
            args=list(args),
            kwargs=dict(kwargs or {}),
            queue=queue,
            priority=priority,
            catch_up=catch_up,
            max_instances=max_instances,
        )
        t = f if isinstance(f, Task) else task(f)
        declared[spec.name] = spec
        return t

    if fn is not None:
        return wrap(fn)
    return wrap


def from_settings(config: Mapping[str, Any] | None) -> dict[str, PeriodicSchedule]:
    """``FASTQ["SCHEDULE"]`` as declarations; raises naming the entry and field."""
    out: dict[str, PeriodicSchedule] = {}
    if not config:
        return out
    if not isinstance(config, Mapping):
        raise ValueError('FASTQ["SCHEDULE"] must be a dict of name -> options')
    known = {
        "task",
        "cron",
        "timezone",
        "every",
        "args",
        "kwargs",
        "queue",
        "priority",
        "catch_up",
        "max_instances",
    }
    for sched_name, options in config.items():
        where = f'FASTQ["SCHEDULE"][{sched_name!r}]'
        if not isinstance(options, Mapping):
            raise ValueError(f"{where} must be a dict")
        unknown = set(options) - known
        if unknown:
            raise ValueError(f"{where}: unknown option(s) {', '.join(sorted(unknown))}")
        try:
            out[sched_name] = PeriodicSchedule(
                name=sched_name,
                task=str(options.get("task", "")),
                cron=str(options.get("cron", "")),
                timezone=str(options.get("timezone") or ""),
                every=_seconds(options.get("every")),
                args=list(options.get("args", [])),
                kwargs=dict(options.get("kwargs", {})),
                queue=str(options.get("queue", "")),
                priority=int(options.get("priority", 0)),
                catch_up=str(options.get("catch_up", "latest")),
                max_instances=int(options.get("max_instances", 1)),
            )
        except CronError as exc:
            raise CronError(f'FASTQ["SCHEDULE"]: {exc}') from None
        except (ValueError, TypeError) as exc:
            raise ValueError(f'FASTQ["SCHEDULE"]: {exc}') from None
    return out


def schedule_once(
    target: Task[Any, Any] | str | Callable[..., Any],
    at: datetime,
    args: Iterable[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
) -> AsyncResult:
    """Run a task once at ``at``: ``apply_async(eta=at)`` (a naive datetime is read in
    Django's ``TIME_ZONE``, as for ``eta``)."""
    if isinstance(target, str):
        if target not in registry:
            raise KeyError(f"no task named {target!r} is registered")
        t = registry[target]
    elif isinstance(target, Task):
        t = target
    else:
        raise TypeError("schedule_once takes a task or a registered task name")
    return t.apply_async(args=tuple(args), kwargs=dict(kwargs or {}), eta=at)

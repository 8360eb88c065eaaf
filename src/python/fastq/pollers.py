"""Batch pollers: ``@fastq.poller`` checks every row of a queryset on a schedule.

    @fastq.poller(
        queryset=lambda: Order.objects.filter(status="shipped").exclude(tracking_id=""),
        every=timedelta(hours=12),
        rate_limit="10/s",
        stale_after=timedelta(days=3), stale_field="shipped_at", on_stale=alert_long_pending,
    )
    def track_order(order_id: int) -> None: ...

A poller is a schedule (``fastq_schedule``, named after the task unless ``name=`` says
otherwise) whose runs are *cycles*. The scheduler's leader fires each cycle once, as a
``fastq.poll`` job; the worker that takes it evaluates the queryset afresh and hands its
SQL to the C++ core, which walks the primary keys page by page and enqueues one
``track_order(pk)`` per row, spread evenly over the interval, never a second one while a
row's previous check is queued or running. Rows that left the queryset are not checked
again. Rows whose ``stale_field`` is older than ``stale_after`` get ``on_stale(pk)`` once
per row, ever. Start, stop, status and "run now" are the schedule's: the admin and
``manage.py fastq_schedules``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastq import conf
from fastq._core import Cron
from fastq.schedules import PeriodicSchedule
from fastq.schedules import declared as declared_schedules
from fastq.task import Task, task

# The task every poller's schedule fires: one cycle of the poller named in its kwargs.
POLL_TASK = "fastq.poll"


@dataclass(frozen=True)
class Poller:
    """A poller as declared with :func:`poller`."""

    name: str
    task: Task[Any, Any]
    queryset: Callable[[], Any]
    schedule: PeriodicSchedule
    stale_after: timedelta | None = None
    stale_field: str = ""
    on_stale: Task[Any, Any] | None = None
    batch_size: int = 5000
    spread: bool = True

    def span(self, now: datetime) -> float:
        """Seconds one cycle's checks are spread over: the interval, or (cron) the time to
        the next slot; 0 with ``spread=False``."""
        if not self.spread:
            return 0.0
        if self.schedule.every:
            return float(self.schedule.every)
        following = Cron(
            self.schedule.cron, timezone=self.schedule.timezone or conf.timezone()
        ).next_after(now)
        return max((following - now).total_seconds(), 0.0)

    def min_gap(self) -> float:
        """Seconds between two checks at least: the task's rate-limit interval (a per-key
        rate limit leaves it to the buckets)."""
        if self.task.rate_interval is None or self.task.rate_limit_key is not None:
            return 0.0
        return self.task.rate_interval


# Pollers declared in this process, by name.
declared: dict[str, Poller] = {}


def poller(
    fn: Any = None,
    *,
    queryset: Callable[[], Any],
    every: timedelta | float | None = None,
    cron: str = "",
    timezone: str = "",
    name: str | None = None,
    rate_limit: str | None = None,
    stale_after: timedelta | None = None,
    stale_field: str = "",
    on_stale: Task[Any, Any] | Callable[[Any], Any] | None = None,
    batch_size: int = 5000,
    spread: bool = True,
    queue: str = "default",
    priority: int = 0,
    catch_up: str = "latest",
    **task_options: Any,
) -> Any:
    """Check each row of ``queryset()`` every ``every`` (or on ``cron`` in ``timezone``):
    the decorated function becomes a task called with the row's primary key.

    ``queryset`` is a callable, evaluated at each cycle (so ``timezone.now()`` in it is
    fresh), returning a QuerySet on fastq's database. ``rate_limit`` ("10/s") is the
    task's fleet-wide rate limit and also the least spacing of one cycle's checks.
    ``stale_after`` + ``stale_field`` + ``on_stale``: rows whose field is older than that
    get ``on_stale(pk)`` (a task, or a function registered as one) once per row.
    ``batch_size`` keys are read and enqueued per round trip. ``spread=False`` makes every
    check of a cycle due at once. ``queue``, ``priority`` and other options
    (``max_retries``, ``time_limit``...) are the task's, when the function is not a task
    yet; a cycle runs on the task's queue.
    """
    if not callable(queryset):
        raise TypeError("poller: queryset must be a callable returning a QuerySet")
    if batch_size < 1:
        raise ValueError("poller: batch_size must be at least 1")
    stale_given = [stale_after is not None, bool(stale_field), on_stale is not None]
    if any(stale_given) and not all(stale_given):
        raise ValueError("poller: stale_after, stale_field and on_stale go together")
    if stale_after is not None and stale_after <= timedelta(0):
        raise ValueError("poller: stale_after must be positive")

    def wrap(f: Any) -> Task[Any, Any]:
        if isinstance(f, Task):
            if rate_limit is not None or task_options:
                raise ValueError(
                    f"poller {f.name}: it is a task already; set rate_limit and other task "
                    "options on @fastq.task"
                )
            check = f
        else:
            check = None
        task_name = check.name if check else f"{f.__module__}.{f.__qualname__}"
        poller_name = name or task_name
        spec = PeriodicSchedule(
            name=poller_name,
            task=POLL_TASK,
            cron=cron,
            timezone=timezone,
            every=every.total_seconds() if isinstance(every, timedelta) else every,
            kwargs={"poller": poller_name},
            queue=check.queue if check else queue,
            catch_up=catch_up,
            max_instances=1,
        )
        if check is None:
            check = Task(f, queue=queue, priority=priority, rate_limit=rate_limit, **task_options)
        alert: Task[Any, Any] | None = None
        if on_stale is not None:
            alert = on_stale if isinstance(on_stale, Task) else Task(on_stale)
        declared[poller_name] = Poller(
            name=poller_name,
            task=check,
            queryset=queryset,
            schedule=spec,
            stale_after=stale_after,
            stale_field=stale_field,
            on_stale=alert,
            batch_size=batch_size,
            spread=spread,
        )
        declared_schedules[poller_name] = spec
        return check

    if fn is not None:
        return wrap(fn)
    return wrap


def job_template(t: Task[Any, Any]) -> tuple[str, str, int, int, float, float, str]:
    """What the core needs to enqueue ``t`` the way ``t.delay(pk)`` would."""
    return (
        t.name,
        t.queue,
        t.priority,
        t.max_retries + 1,
        t.time_limit or 0.0,
        t.soft_time_limit or 0.0,
        "",
    )


# Runs one cycle of the poller named by its first argument at the given time and returns
# the cycle's counts.
CycleRunner = Callable[[str, datetime], dict[str, Any]]


class PollRunners:
    """Who runs a poller's cycle. Evaluating a queryset is the Django layer's work:
    ``fastq_django`` registers its runner here in ``AppConfig.ready``; this layer never
    imports it."""

    def __init__(self) -> None:
        self._runner: CycleRunner | None = None

    def register(self, runner: CycleRunner | None) -> None:
        self._runner = runner

    def run(self, poller: str, now: datetime) -> dict[str, Any]:
        runner = self._runner
        if runner is None:
            raise RuntimeError(
                f"poller {poller}: no poll runner is registered. Pollers evaluate Django "
                "querysets: add 'fastq_django' to INSTALLED_APPS (it registers its runner "
                "when the app registry is ready)"
            )
        return runner(poller, now)


# The process's poll runner: register_runner sets it, the fastq.poll task calls it.
poll_runners = PollRunners()


def register_runner(runner: CycleRunner | None) -> None:
    """Make ``runner(poller_name, now)`` run the cycles of ``fastq.poll`` jobs (None:
    none). ``fastq_django`` registers its own when its app is ready."""
    poll_runners.register(runner)


@task(name=POLL_TASK, max_retries=0)
def poll(poller: str) -> dict[str, Any]:
    """One cycle of the poller named ``poller`` (fired by its schedule, or run now)."""
    return poll_runners.run(poller, datetime.now(UTC))

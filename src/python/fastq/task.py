"""``@fastq.task``: declaring tasks and enqueueing them."""

from __future__ import annotations

import contextvars
import functools
import json
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, ParamSpec, TypeVar, overload

from fastq import _core, conf
from fastq.brokers import NewJob, get_broker
from fastq.result import AsyncResult, EagerResult, TaskFailed
from fastq.serialization import encode_arguments

P = ParamSpec("P")
R = TypeVar("R")

# Every task this process knows, by name. The worker runs only names found here.
registry: dict[str, Task[Any, Any]] = {}

# How many jobs task.map() inserts per statement.
MAP_BATCH = 5000


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a running task can learn about its job (``fastq.current_job()``)."""

    id: str
    task: str
    attempt: int


_current: contextvars.ContextVar[JobContext | None] = contextvars.ContextVar(
    "fastq_current_job", default=None
)


def current_job() -> JobContext | None:
    """The job being run by this thread's worker, or None outside a worker."""
    return _current.get()


class Task(Generic[P, R]):
    """A function registered as a task. Calling it runs it here; ``delay`` enqueues it."""

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        queue: str = "default",
        priority: int = 0,
    ) -> None:
        if not callable(fn):
            raise TypeError("@fastq.task decorates a function")
        if not queue:
            raise ValueError("queue must be a non-empty string")
        self.fn = fn
        self.name = name or f"{fn.__module__}.{fn.__qualname__}"
        if "<locals>" in self.name:
            raise ValueError(
                f"{self.name}: tasks must be importable module-level functions (or pass name=...)"
            )
        self.queue = queue
        self.priority = int(priority)
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]
        registry[self.name] = self

    def __repr__(self) -> str:
        return f"<fastq.Task {self.name} queue={self.queue!r}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.fn(*args, **kwargs)

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> AsyncResult:
        """Enqueue a call with these arguments; returns its :class:`AsyncResult`."""
        return self.apply_async(args=args, kwargs=kwargs)

    def apply_async(
        self,
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        countdown: float | None = None,
        eta: datetime | None = None,
        queue: str | None = None,
        priority: int | None = None,
    ) -> AsyncResult:
        """Enqueue with options: ``countdown`` seconds or an aware ``eta`` datetime to
        delay the start, another ``queue``, another ``priority`` (higher runs first)."""
        args = tuple(args)
        kwargs = dict(kwargs or {})
        job = self._new_job(args, kwargs, countdown, eta, queue, priority)
        if conf.get("EAGER"):
            return self._run_eagerly(job)
        broker = get_broker()
        broker.enqueue([job])
        return AsyncResult(job.id, broker)

    def map(self, calls: Iterable[Iterable[Any]]) -> list[AsyncResult]:
        """Enqueue one job per argument tuple, ``MAP_BATCH`` rows per round trip."""
        jobs = [self._new_job(tuple(a), {}, None, None, None, None) for a in calls]
        if conf.get("EAGER"):
            return [self._run_eagerly(j) for j in jobs]
        broker = get_broker()
        for start in range(0, len(jobs), MAP_BATCH):
            broker.enqueue(jobs[start : start + MAP_BATCH])
        return [AsyncResult(j.id, broker) for j in jobs]

    def _new_job(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        countdown: float | None,
        eta: datetime | None,
        queue: str | None,
        priority: int | None,
    ) -> NewJob:
        args_json, kwargs_json = encode_arguments(self.name, args, kwargs)
        if countdown is not None and eta is not None:
            raise ValueError("pass countdown or eta, not both")
        run_at = None
        if countdown is not None:
            run_at = datetime.now(UTC) + timedelta(seconds=countdown)
        elif eta is not None:
            if eta.tzinfo is None:
                raise ValueError("eta must be a timezone-aware datetime")
            run_at = eta
        return NewJob(
            id=_core.new_job_id(),
            task=self.name,
            queue=queue or self.queue,
            priority=self.priority if priority is None else int(priority),
            args=args_json,
            kwargs=kwargs_json,
            run_at=run_at,
        )

    def _run_eagerly(self, job: NewJob) -> EagerResult:
        # Round-trip through JSON so eager tests see what a worker would see.
        args, kwargs = json.loads(job.args), json.loads(job.kwargs)
        token = _current.set(JobContext(job.id, self.name, 1))
        try:
            value = self.fn(*args, **kwargs)  # type: ignore[arg-type]
            value = json.loads(json.dumps(value))
        except Exception as exc:
            failure = TaskFailed(
                job.id, _type_name(type(exc)), str(exc), "".join(traceback.format_exception(exc))
            )
            return EagerResult(job.id, failure=failure)
        finally:
            _current.reset(token)
        return EagerResult(job.id, value=value)


def _type_name(t: type) -> str:
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


@overload
def task(fn: Callable[P, R], /) -> Task[P, R]: ...
@overload
def task(
    *, name: str | None = None, queue: str = "default", priority: int = 0
) -> Callable[[Callable[P, R]], Task[P, R]]: ...
def task(
    fn: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    queue: str = "default",
    priority: int = 0,
) -> Task[P, R] | Callable[[Callable[P, R]], Task[P, R]]:
    """Register a function as a task: ``@fastq.task`` or ``@fastq.task(queue="sms")``.

    The name defaults to ``module.function`` (``shop.tasks.send_sms``); workers run only
    names registered in their own process, never one taken from a message.
    """
    if fn is not None:
        return Task(fn, name=name, queue=queue, priority=priority)

    def decorate(f: Callable[P, R]) -> Task[P, R]:
        return Task(f, name=name, queue=queue, priority=priority)

    return decorate

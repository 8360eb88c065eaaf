"""``@fastq.task``: declaring tasks (the :class:`Task` class, the ``task()`` decorator,
the registry of names, signature checks) and retrying them.

Enqueueing a task's calls lives in :mod:`fastq.enqueue`, options and their defaults in
:mod:`fastq.options`; the names they held here stay importable from this module."""

from __future__ import annotations

import functools
import inspect
import json
import math
import random
import traceback
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, NoReturn, ParamSpec, TypeVar, overload

from fastq import _core, limits
from fastq import enqueue as _enqueue
from fastq.enqueue import (  # noqa: F401 - importable from here as before the split
    MAP_BATCH,
    _warned_queues,
    known_queues,
)
from fastq.enqueue import after as _after  # noqa: F401
from fastq.enqueue import check_queue as _check_queue  # noqa: F401
from fastq.options import (  # noqa: F401 - importable from here as before the split
    DEFAULT_MAX_RETRIES,
    DEFAULT_RETRY_DELAY,
    TASK_DEFAULT_OPTIONS,
    parse_rate_limit,
    with_task_defaults,
)
from fastq.result import AsyncResult, EagerResult, TaskFailed
from fastq.retry import type_name
from fastq.runtime import (  # re-exported: the runtime's public names were here before
    JobContext,
    current_job,
    run_job,
)

if TYPE_CHECKING:
    from fastq.brokers import NewJob
    from fastq.canvas import Signature

P = ParamSpec("P")
R = TypeVar("R")

# Every task this process knows, by name. The worker runs only names found here.
registry: dict[str, Task[Any, Any]] = {}


class Retry(Exception):
    """Raised by :meth:`Task.retry`: run this job again later.

    The worker turns it into a retry outcome (the job goes back to the queue with the
    error of this attempt) while attempts remain, and into a failure once they are spent.
    """

    def __init__(self, countdown: float | None = None, exc: BaseException | None = None) -> None:
        super().__init__(f"retry in {countdown} s" if countdown is not None else "retry")
        self.countdown = countdown
        self.exc = exc
        # Filled in by the worker before the C++ core reads them.
        self.eta_us = 0
        self.error_type = ""
        self.error = ""
        self.traceback = ""


class MaxRetriesExceededError(Exception):
    """``self.retry()`` was called with no attempts left and no exception to re-raise."""


class Task(Generic[P, R]):
    """A function registered as a task. Calling it runs it here; ``delay`` enqueues it."""

    def __init__(
        self,
        fn: Callable[..., R],
        *,
        name: str | None = None,
        queue: str = "default",
        priority: int = 0,
        bind: bool = False,
        max_retries: int = DEFAULT_MAX_RETRIES,
        autoretry_for: tuple[type[BaseException], ...] = (),
        retry_backoff: bool | float = False,
        retry_backoff_max: float = 600.0,
        retry_jitter: bool = True,
        default_retry_delay: float = DEFAULT_RETRY_DELAY,
        expires: float | None = None,
        unique: bool = False,
        unique_key: Callable[..., Any] | None = None,
        time_limit: float | None = None,
        soft_time_limit: float | None = None,
        rate_limit: str | None = None,
        rate_limit_key: Callable[..., Any] | None = None,
        rate_limit_burst: int = 1,
    ) -> None:
        if not callable(fn):
            raise TypeError("@fastq.task decorates a function")
        self.fn = fn
        self.name = name or f"{fn.__module__}.{fn.__qualname__}"
        if "<locals>" in self.name:
            raise ValueError(
                f"{self.name}: tasks must be importable module-level functions (or pass name=...)"
            )
        where = f"task {self.name}: "
        if not queue:
            raise ValueError(f"{where}queue must be a non-empty string")
        self.queue = queue
        self.priority = limits.priority(priority, where)
        self.bind = bind
        self.max_retries = limits.max_retries(max_retries, where)
        self.autoretry_for = tuple(autoretry_for)
        self.retry_backoff = retry_backoff
        self.retry_backoff_max = float(retry_backoff_max)
        self.retry_jitter = retry_jitter
        self.default_retry_delay = float(default_retry_delay)
        if isinstance(expires, datetime):
            limits.aware_datetime("expires", expires, where)
        elif expires is not None:
            limits.seconds("expires", expires, where)
        self.expires = expires
        self.unique = unique or unique_key is not None
        self.unique_key = unique_key
        self.time_limit = limits.time_limit("time_limit", time_limit, where)
        self.soft_time_limit = limits.time_limit("soft_time_limit", soft_time_limit, where)
        self.rate_limit = rate_limit
        self.rate_interval = parse_rate_limit(rate_limit) if rate_limit else None
        if rate_limit_key is not None and rate_limit is None:
            raise ValueError("rate_limit_key needs a rate_limit")
        if rate_limit_burst < 1:
            raise ValueError("rate_limit_burst must be at least 1")
        self.rate_limit_key = rate_limit_key
        self.rate_limit_burst = int(rate_limit_burst)
        self._signature = _call_signature(fn, bind)
        self._arity = _positional_arity(self._signature)
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]
        _register(self)

    def __repr__(self) -> str:
        return f"<fastq.Task {self.name} queue={self.queue!r}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        if self.bind:
            return self.fn(self, *args, **kwargs)
        return self.fn(*args, **kwargs)

    @property
    def request(self) -> JobContext | None:
        """The job this task is running for in this thread (Celery's ``self.request``)."""
        return current_job()

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        """A signature of a call (fastq.canvas): in a chain it receives the previous
        step's result as its first argument."""
        from fastq.canvas import Signature

        return Signature(self, args, kwargs)

    def si(self, *args: Any, **kwargs: Any) -> Signature:
        """An immutable signature: it runs with these arguments only, whatever the
        previous step returned."""
        from fastq.canvas import Signature

        return Signature(self, args, kwargs, immutable=True)

    def signature(
        self,
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        immutable: bool = False,
        **options: Any,
    ) -> Signature:
        """Celery's ``task.signature(args, kwargs, **options)``."""
        from fastq.canvas import Signature

        return Signature(self, args, kwargs, options, immutable)

    def _result_for(self, job_id: str) -> Any:
        """What a canvas (fastq.canvas) returns for a step of this task: fastq's
        :class:`AsyncResult`. A front end with results of its own overrides it
        (fastq.compat.celery: Celery's states, parent links and group results)."""
        return AsyncResult(job_id)

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> AsyncResult:
        """Enqueue a call with these arguments; returns its :class:`AsyncResult`."""
        return self.apply_async(args=args, kwargs=kwargs)

    def apply_async(
        self,
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        countdown: float | timedelta | None = None,
        eta: datetime | None = None,
        queue: str | None = None,
        priority: int | None = None,
        max_retries: int | None = None,
        expires: float | timedelta | datetime | None = None,
        time_limit: float | None = None,
        soft_time_limit: float | None = None,
    ) -> AsyncResult:
        """Enqueue with options: ``countdown`` (seconds or a ``timedelta``) or an ``eta``
        datetime (a naive one is read in Django's ``TIME_ZONE``) to delay the start,
        another ``queue``, another ``priority`` (higher runs first), another
        ``max_retries``, ``expires`` (seconds or a ``timedelta`` from now, or a datetime:
        a job not started by then never runs and ends EXPIRED), another ``time_limit``
        or ``soft_time_limit`` (seconds). Arguments that do not bind to the task's
        signature raise ``TypeError`` here, as calling the function would."""
        return _enqueue.apply_async(
            self,
            args,
            kwargs,
            countdown,
            eta,
            queue,
            priority,
            max_retries,
            expires,
            time_limit,
            soft_time_limit,
        )

    def map(self, calls: Iterable[Iterable[Any]]) -> list[AsyncResult]:
        """Enqueue one job per argument tuple, with the task's options.

        The batch is built in the C++ core (ids, JSON arguments) and handed to the broker
        in one piece (on PostgreSQL: ``COPY``). Tasks with unique or rate-limit keys,
        which need Python per call, take the per-job path.
        """
        return _enqueue.map_calls(self, calls)

    def retry(self, exc: BaseException | None = None, countdown: float | None = None) -> NoReturn:
        """Run the current job again later (inside a task declared with ``bind=True``).

        ``countdown`` seconds from now, else the task's backoff policy. When no attempts
        are left, ``exc`` is raised (or :class:`MaxRetriesExceededError`) and the job
        fails.
        """
        raise Retry(countdown=countdown, exc=exc)

    def retry_delay(self, attempt: int) -> float:
        """Seconds to wait before the attempt after ``attempt`` (1-based)."""
        if self.retry_backoff:
            base = 1.0 if self.retry_backoff is True else float(self.retry_backoff)
            delay = min(self.retry_backoff_max, base * 2 ** (attempt - 1))
            # Full jitter: spreads a burst of failures instead of retrying in lockstep.
            return random.uniform(0, delay) if self.retry_jitter else delay
        return self.default_retry_delay

    def _new_job(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        countdown: float | timedelta | None,
        eta: datetime | None,
        queue: str | None,
        priority: int | None,
        max_retries: int | None,
        expires: float | datetime | None,
        time_limit: float | None,
        soft_time_limit: float | None,
        prepended: int = 0,
    ) -> NewJob:
        """The job this call makes, every option checked (:func:`fastq.enqueue.new_job`)."""
        return _enqueue.new_job(
            self,
            args,
            kwargs,
            countdown,
            eta,
            queue,
            priority,
            max_retries,
            expires,
            time_limit,
            soft_time_limit,
            prepended,
        )

    def _check_call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Raises ``TypeError`` at the call site, as calling the function would, when the
        arguments do not bind to the task's signature (Celery does the same): the worker
        would only fail the job with it later."""
        if self._signature is None:
            return
        # Positional arguments alone bind exactly when their number is in range (what
        # map() checks too); binding costs ~6 us a call.
        if not kwargs and self._arity[0] <= len(args) <= self._arity[1]:
            return
        try:
            self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self.name}(): {exc}") from None

    def _run_eagerly(self, job: NewJob) -> EagerResult:
        # Round-trip through JSON so eager tests see what a worker would see; retries
        # run at once, without waiting.
        args, kwargs = json.loads(job.args), json.loads(job.kwargs)
        for attempt in range(1, job.max_attempts + 1):
            try:
                value = run_job(self, args, kwargs, job.id, attempt, job.max_attempts)
            except Retry:
                continue
            except Exception as exc:
                failure = TaskFailed(
                    job.id,
                    type_name(type(exc)),
                    str(exc),
                    "".join(traceback.format_exception(exc)),
                )
                return EagerResult(
                    job.id, failure=failure, dead=getattr(exc, "_fastq_gave_up", False)
                )
            try:  # the worker's encoder, refusing what a worker refuses
                text = _core.encode_json(value, "result")
            except (TypeError, ValueError) as exc:
                failure = TaskFailed(
                    job.id,
                    "fastq.ResultNotSerializable",
                    f"the task returned a value JSON cannot encode: {exc}",
                )
                return EagerResult(job.id, failure=failure)
            return EagerResult(job.id, value=json.loads(text))
        raise AssertionError("unreachable: the last attempt never retries")


def _call_signature(fn: Callable[..., Any], bind: bool) -> inspect.Signature | None:
    """The signature calls of the task must bind to (without ``self`` for ``bind=True``),
    or None when it cannot be read (some builtins and C callables)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    if bind:
        params = list(sig.parameters.values())
        if params and params[0].kind in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            sig = sig.replace(parameters=params[1:])
    return sig


def _positional_arity(sig: inspect.Signature | None) -> tuple[float, float]:
    """How many positional arguments alone bind to ``sig``: (fewest, most). (1, 0), which
    nothing satisfies, when a keyword-only parameter is required."""
    if sig is None:
        return (0, math.inf)
    low, high = 0, 0.0
    for p in sig.parameters.values():
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            high += 1
            if p.default is p.empty:
                low += 1
        elif p.kind is inspect.Parameter.VAR_POSITIONAL:
            high = math.inf
        elif p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is p.empty:
            return (1, 0)
    return (low, high)


def _register(t: Task[Any, Any]) -> None:
    """Adds ``t`` to the registry. A name belongs to one function: another function
    claiming it raises. The same declaration again (the same function decorated twice,
    or its module reloaded: same module, qualified name, file and line) replaces it."""
    existing = registry.get(t.name)
    if existing is not None and not _same_declaration(existing.fn, t.fn):
        raise ValueError(
            f"task name {t.name!r} is taken: {_describe(existing.fn)} is registered under it "
            f"already, and {_describe(t.fn)} claims it too; give one of them another name="
        )
    registry[t.name] = t


def _unwrap(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The function under decorators that set ``__wrapped__`` (a Task does too)."""
    try:
        return inspect.unwrap(fn)
    except ValueError:  # a cycle of __wrapped__
        return fn


def _same_declaration(a: Callable[..., Any], b: Callable[..., Any]) -> bool:
    a, b = _unwrap(a), _unwrap(b)
    if a is b:
        return True
    code_a, code_b = getattr(a, "__code__", None), getattr(b, "__code__", None)
    if code_a is None or code_b is None:
        return False
    return (
        getattr(a, "__module__", None) == getattr(b, "__module__", None)
        and getattr(a, "__qualname__", None) == getattr(b, "__qualname__", None)
        and code_a.co_filename == code_b.co_filename
        and code_a.co_firstlineno == code_b.co_firstlineno
    )


def _describe(fn: Callable[..., Any]) -> str:
    fn = _unwrap(fn)
    name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
    code = getattr(fn, "__code__", None)
    return f"{name} ({code.co_filename}:{code.co_firstlineno})" if code else name


@overload
def task(fn: Callable[P, R], /) -> Task[P, R]: ...
@overload
def task(
    *,
    name: str | None = None,
    queue: str = "default",
    priority: int = 0,
    bind: bool = False,
    max_retries: int = DEFAULT_MAX_RETRIES,
    autoretry_for: tuple[type[BaseException], ...] = (),
    retry_backoff: bool | float = False,
    retry_backoff_max: float = 600.0,
    retry_jitter: bool = True,
    default_retry_delay: float = DEFAULT_RETRY_DELAY,
    expires: float | None = None,
    unique: bool = False,
    unique_key: Callable[..., Any] | None = None,
    time_limit: float | None = None,
    soft_time_limit: float | None = None,
    rate_limit: str | None = None,
    rate_limit_key: Callable[..., Any] | None = None,
    rate_limit_burst: int = 1,
) -> Callable[[Callable[..., R]], Task[Any, R]]: ...
def task(
    fn: Callable[P, R] | None = None, /, **options: Any
) -> Task[P, R] | Callable[[Callable[..., R]], Task[Any, R]]:
    """Register a function as a task: ``@fastq.task`` or ``@fastq.task(queue="sms")``.

    The name defaults to ``module.function`` (``shop.tasks.send_sms``); workers run only
    names registered in their own process, never one taken from a message.

    Retries: ``max_retries`` (default 3; worker deaths count too), ``autoretry_for=(Exc,
    ...)``, ``retry_backoff`` (True: 1 s doubling; a number: that base), capped by
    ``retry_backoff_max``, with full jitter unless ``retry_jitter=False``; with
    ``bind=True`` the task gets itself first and can call ``self.retry(exc, countdown)``.

    Uniqueness: ``unique=True`` (key: the arguments) or ``unique_key=callable`` (key: its
    result for the call's arguments): while a job with the key is queued or running,
    enqueueing another returns that job's AsyncResult instead.

    Time limits (seconds, overridable per call): ``soft_time_limit`` raises
    :class:`fastq.SoftTimeLimitExceeded` inside the task; ``time_limit`` kills the worker
    process running it (prefork mode) and the attempt fails with
    ``fastq.TimeLimitExceeded``, retried while attempts remain, then dead.

    Rate limits: ``rate_limit="20/s"`` (or ``/m``, ``/h``) holds across every worker on the
    broker's database; ``rate_limit_key=callable`` keeps one bucket per key of the call's
    arguments (e.g. per provider); ``rate_limit_burst`` lets that many start at once.
    """
    if fn is not None:
        return Task(fn, **with_task_defaults(options))

    def decorate(f: Callable[..., R]) -> Task[Any, R]:
        return Task(f, **with_task_defaults(options))

    return decorate

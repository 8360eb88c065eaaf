"""``@fastq.task``: declaring tasks, enqueueing them, and retrying them."""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import logging
import math
import random
import re
import traceback
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, NoReturn, ParamSpec, TypeVar, overload

from fastq import _core, conf, limits, signals
from fastq.brokers import NewJob, get_broker, to_micros
from fastq.result import AsyncResult, EagerResult, TaskFailed
from fastq.retry import DEFAULT_MAX_RETRIES, DEFAULT_RETRY_DELAY, type_name
from fastq.runtime import (  # re-exported: the runtime's public names were here before
    JobContext,
    current_job,
    run_job,
)
from fastq.serialization import encode_arguments

if TYPE_CHECKING:
    from fastq.canvas import Signature

P = ParamSpec("P")
R = TypeVar("R")

# Every task this process knows, by name. The worker runs only names found here.
registry: dict[str, Task[Any, Any]] = {}

# How many jobs task.map() inserts per round trip.
MAP_BATCH = 5000


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


_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$")
_UNIT_SECONDS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60}


def parse_rate_limit(text: str) -> float:
    """``"20/s"``, ``"100/m"``, ``"3/h"`` -> seconds between two starts."""
    m = _RATE.match(text)
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"rate_limit {text!r}: expected a count per s, m or h, like '20/s'")
    return _UNIT_SECONDS.get(m.group(2), 3600) / float(m.group(1))


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
        job = self._new_job(
            tuple(args),
            dict(kwargs or {}),
            countdown,
            eta,
            queue,
            priority,
            max_retries,
            expires,
            time_limit,
            soft_time_limit,
        )
        if conf.get("EAGER"):
            return self._run_eagerly(job)
        broker = get_broker()
        (job_id,) = broker.enqueue([job])
        if job_id == job.id and signals.task_enqueued.has_listeners(self):
            signals.task_enqueued.send(sender=self, job_ids=[job.id])
        return AsyncResult(job_id, broker)

    def map(self, calls: Iterable[Iterable[Any]]) -> list[AsyncResult]:
        """Enqueue one job per argument tuple, with the task's options.

        The batch is built in the C++ core (ids, JSON arguments) and handed to the broker
        in one piece (on PostgreSQL: ``COPY``). Tasks with unique or rate-limit keys,
        which need Python per call, take the per-job path.
        """
        if self.unique or self.rate_limit_key is not None or conf.get("EAGER"):
            return self._map_jobs(calls)
        if self._signature is not None:
            # Positional calls only: counting them is enough (and costs ~50 ns a call,
            # where binding each would halve map()'s rate); a count out of range is bound
            # for its message.
            calls = [c if isinstance(c, tuple) else tuple(c) for c in calls]
            low, high = self._arity
            for call in calls:
                if not low <= len(call) <= high:
                    self._check_call(call, {})
        expires_at = None
        if isinstance(self.expires, datetime):
            expires_at = to_micros(self.expires)
        elif self.expires is not None:
            expires_at = to_micros(_after("expires", self.expires, f"{self.name}.map(): "))
        batch = _core.job_batch(
            self.name,
            self.queue,
            self.priority,
            self.max_retries + 1,
            None,
            expires_at,
            self.time_limit,
            self.soft_time_limit,
            calls,
        )
        if not len(batch):
            return []
        broker = get_broker()
        ids = broker.enqueue_batch(batch)
        if signals.task_enqueued.has_listeners(self):
            signals.task_enqueued.send(sender=self, job_ids=ids)
        return [AsyncResult(i, broker) for i in ids]

    def _map_jobs(self, calls: Iterable[Iterable[Any]]) -> list[AsyncResult]:
        """:meth:`map` one :class:`NewJob` at a time (unique and rate-limit keys, eager
        mode), ``MAP_BATCH`` jobs per broker call."""
        jobs = [
            self._new_job(tuple(a), {}, None, None, None, None, None, None, None, None)
            for a in calls
        ]
        if conf.get("EAGER"):
            return [self._run_eagerly(j) for j in jobs]
        broker = get_broker()
        ids: list[str] = []
        for start in range(0, len(jobs), MAP_BATCH):
            ids += broker.enqueue(jobs[start : start + MAP_BATCH])
        if jobs and signals.task_enqueued.has_listeners(self):
            new = [i for i, j in zip(ids, jobs, strict=True) if i == j.id]
            signals.task_enqueued.send(sender=self, job_ids=new)
        return [AsyncResult(i, broker) for i in ids]

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
        # Everything is checked before the broker sees the job: a bad value raises here,
        # naming the argument, and nothing is written (fastq.limits). ``prepended``: how
        # many positional arguments the job gets in front of ``args`` when it runs (a
        # workflow step receives its parents' result first).
        args_json, kwargs_json = encode_arguments(self.name, args, kwargs)
        self._check_call((None,) * prepended + tuple(args), kwargs)
        where = f"{self.name}(): "
        if countdown is not None and eta is not None:
            raise ValueError(f"{where}pass countdown or eta, not both")
        run_at = None
        if countdown is not None:
            run_at = _after("countdown", countdown, where)
        elif eta is not None:
            run_at = limits.aware_datetime("eta", eta, where)
        expires_at = None
        if expires is None:
            expires = self.expires
        if isinstance(expires, datetime):
            expires_at = limits.aware_datetime("expires", expires, where)
        elif expires is not None:
            expires_at = _after("expires", expires, where)
        priority = self.priority if priority is None else limits.priority(priority, where)
        if max_retries is None:
            max_retries = self.max_retries
        else:
            max_retries = limits.max_retries(max_retries, where)
        if time_limit is None:
            time_limit = self.time_limit
        else:
            time_limit = limits.time_limit("time_limit", time_limit, where)
        if soft_time_limit is None:
            soft_time_limit = self.soft_time_limit
        else:
            soft_time_limit = limits.time_limit("soft_time_limit", soft_time_limit, where)
        if queue:
            _check_queue(queue)
        return NewJob(
            id=_core.new_job_id(),
            task=self.name,
            queue=queue or self.queue,
            priority=priority,
            args=args_json,
            kwargs=kwargs_json,
            run_at=run_at,
            max_attempts=max_retries + 1,
            expires_at=expires_at,
            unique_key=self._unique_key(args, kwargs, args_json, kwargs_json),
            time_limit=time_limit,
            soft_time_limit=soft_time_limit,
            rate_key=f"{self.name}:{self.rate_limit_key(*args, **kwargs)}"
            if self.rate_limit_key is not None
            else "",
        )

    def _check_call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Raises ``TypeError`` at the call site, as calling the function would, when the
        arguments do not bind to the task's signature (Celery does the same): the worker
        would only fail the job with it later."""
        if self._signature is None:
            return
        try:
            self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self.name}(): {exc}") from None

    def _unique_key(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], args_json: str, kwargs_json: str
    ) -> str:
        if self.unique_key is not None:
            return f"{self.name}:{self.unique_key(*args, **kwargs)}"
        if self.unique:
            digest = hashlib.sha256(f"{args_json}\n{kwargs_json}".encode()).hexdigest()
            return f"{self.name}:{digest[:32]}"
        return ""

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


# Queues checked (and warned about when unknown), once each per process.
_warned_queues: set[str] = set()


def known_queues() -> set[str]:
    """Queues some worker configuration names: a registered task's queue, an entry of
    ``FASTQ["QUEUES"]``, and "default"."""
    return {"default", *(t.queue for t in registry.values()), *(conf.get("QUEUES") or ())}


def _check_queue(queue: str) -> None:
    """Logs a warning, once per queue and process, for a job sent to a queue that no
    registered task and no ``FASTQ["QUEUES"]`` entry names: a worker started without
    ``--queues`` would never take it (a typo, most of the time)."""
    if queue in _warned_queues:
        return
    known = queue in known_queues()
    # Checked once per queue: tasks are only ever added, so a known queue stays known.
    _warned_queues.add(queue)
    if known:
        return
    logging.getLogger("fastq.task").warning(
        "job enqueued on queue %r, which no registered task and no FASTQ['QUEUES'] entry "
        "names: only a worker started with --queues %s takes it (known queues: %s)",
        queue,
        queue,
        ", ".join(sorted(known_queues())),
    )


def _after(option: str, value: Any, where: str) -> datetime:
    """Now plus ``value`` seconds (a finite number; negative is in the past)."""
    s = limits.seconds(option, value, where)
    try:
        return datetime.now(UTC) + timedelta(seconds=s)
    except OverflowError:
        raise ValueError(
            f"{where}{option} of {s} seconds reaches past the dates a job can hold"
        ) from None


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


# The options FASTQ["TASK_DEFAULTS"] may set: those that make sense fleet-wide (a name,
# bind, uniqueness or a rate-limit key belong to one task).
TASK_DEFAULT_OPTIONS = (
    "queue",
    "priority",
    "max_retries",
    "autoretry_for",
    "retry_backoff",
    "retry_backoff_max",
    "retry_jitter",
    "default_retry_delay",
    "expires",
    "time_limit",
    "soft_time_limit",
    "rate_limit",
    "rate_limit_burst",
)


def with_task_defaults(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` over ``FASTQ["TASK_DEFAULTS"]``: what a task declared with these options
    gets. Read when the task is declared (its module imported)."""
    defaults = conf.get("TASK_DEFAULTS") or {}
    if not defaults:
        return dict(options)
    unknown = sorted(set(defaults) - set(TASK_DEFAULT_OPTIONS))
    if unknown:
        raise ValueError(
            f"FASTQ['TASK_DEFAULTS'] has option(s) a fleet-wide default cannot set: "
            f"{', '.join(map(str, unknown))} (allowed: {', '.join(TASK_DEFAULT_OPTIONS)})"
        )
    return {**defaults, **options}

"""The job runtime: one attempt of a job in a worker (or eagerly), its context
(``fastq.current_job()``), and the event loops ``async def`` tasks run on."""

from __future__ import annotations

import contextvars
import inspect
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastq import signals, timelimits
from fastq.retry import DEFAULT_MAX_RETRIES, ending

if TYPE_CHECKING:
    import asyncio

    from fastq.task import Task


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a running task can learn about its job (``fastq.current_job()``)."""

    id: str
    task: str
    attempt: int
    max_attempts: int = DEFAULT_MAX_RETRIES + 1
    lease_token: int | None = None  # fences this attempt's writes; None when run eagerly
    # The worker (fastq._core.Worker) running this attempt; None when run eagerly.
    _worker: Any = field(default=None, repr=False, compare=False, kw_only=True)

    @property
    def cancel_requested(self) -> bool:
        """True once ``AsyncResult.cancel()`` reached this job's worker (within a third of
        the lease). A long task should check it and return early."""
        return self._worker is not None and bool(self._worker.cancel_requested(self.id))

    @property
    def retries(self) -> int:
        """Retries so far (Celery's ``request.retries``): attempt - 1."""
        return self.attempt - 1


_current: contextvars.ContextVar[JobContext | None] = contextvars.ContextVar(
    "fastq_current_job", default=None
)


def current_job() -> JobContext | None:
    """The job being run by this thread's worker, or None outside a worker."""
    return _current.get()


def run_job(
    task: Task[Any, Any],
    args: list[Any],
    kwargs: dict[str, Any],
    job_id: str,
    attempt: int,
    max_attempts: int,
    lease_token: int | None = None,
    soft_time_limit: float | None = None,
    worker: Any = None,
) -> Any:
    """Run one attempt of a job, deciding retries. Raises :class:`Retry` (filled in) to
    ask for another attempt; any other exception fails the job. ``worker``: the
    ``fastq._core.Worker`` running it (for ``current_job().cancel_requested``)."""
    job = JobContext(job_id, task.name, attempt, max_attempts, lease_token, _worker=worker)
    token = _current.set(job)
    soft = timelimits.arm(soft_time_limit) if soft_time_limit else None
    try:
        if signals.task_started.has_listeners(task):
            signals.task_started.send(sender=task, job=job)
        result = task(*args, **kwargs)
        if inspect.iscoroutine(result):
            result = _event_loop().run_until_complete(result)
        if signals.task_succeeded.has_listeners(task):
            signals.task_succeeded.send(sender=task, job=job, result=result)
        return result
    except BaseException as exc:
        raise ending(task, job, exc)  # noqa: B904 - _ending sets the cause it means
    finally:
        if soft is not None:
            timelimits.disarm(soft)
        _current.reset(token)


async def run_job_async(
    task: Task[Any, Any],
    args: list[Any],
    kwargs: dict[str, Any],
    job_id: str,
    attempt: int,
    max_attempts: int,
    lease_token: int | None = None,
    soft_time_limit: float | None = None,
    worker: Any = None,
) -> Any:
    """:func:`run_job` for an ``async def`` task, run on the worker's event loop (many at
    once). A soft time limit cancels the coroutine (it sees ``CancelledError`` at its
    current ``await``) and the attempt ends with :class:`fastq.SoftTimeLimitExceeded`."""
    import asyncio  # here, not at import: `import fastq` stays light

    job = JobContext(job_id, task.name, attempt, max_attempts, lease_token, _worker=worker)
    _current.set(job)  # this coroutine runs in a context of its own
    try:
        if signals.task_started.has_listeners(task):
            signals.task_started.send(sender=task, job=job)
        coro = task(*args, **kwargs)
        if soft_time_limit:
            limit = asyncio.timeout(soft_time_limit)
            try:
                async with limit:
                    result = await coro
            except TimeoutError as exc:
                if not limit.expired():
                    raise
                raise timelimits.SoftTimeLimitExceeded(
                    f"{task.name} ran past its soft_time_limit of {soft_time_limit} s"
                ) from exc
        else:
            result = await coro
        if signals.task_succeeded.has_listeners(task):
            signals.task_succeeded.send(sender=task, job=job, result=result)
        return result
    except BaseException as exc:
        raise ending(task, job, exc)  # noqa: B904 - _ending sets the cause it means


_async_loop: asyncio.AbstractEventLoop | None = None
_async_thread: threading.Thread | None = None
_async_lock = threading.Lock()


def async_loop() -> asyncio.AbstractEventLoop:
    """The event loop ``async def`` tasks share in a worker process, on a thread of its
    own (started on first use)."""
    import asyncio  # here, not at import: `import fastq` stays light

    global _async_loop, _async_thread
    with _async_lock:
        if _async_loop is None or _async_loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=loop.run_forever, name="fastq-async-tasks", daemon=True
            )
            thread.start()
            _async_loop, _async_thread = loop, thread
        return _async_loop


def stop_async_loop() -> None:
    """Stop the shared event loop (the worker calls this once it has stopped)."""
    import asyncio  # here, not at import: `import fastq` stays light

    global _async_loop, _async_thread
    with _async_lock:
        loop, thread = _async_loop, _async_thread
        _async_loop = _async_thread = None
    if loop is None or thread is None:
        return

    async def _shutdown() -> None:
        await loop.shutdown_asyncgens()

    asyncio.run_coroutine_threadsafe(_shutdown(), loop).result(timeout=5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)
    if not thread.is_alive():
        loop.close()


_loops = threading.local()
_open_loops: list[asyncio.AbstractEventLoop] = []
_open_loops_lock = threading.Lock()


def _event_loop() -> asyncio.AbstractEventLoop:
    """This executor thread's event loop for ``async def`` tasks, kept for the thread's
    life so async clients and their connection pools survive between jobs."""
    import asyncio  # here, not at import: `import fastq` stays light

    loop: asyncio.AbstractEventLoop | None = getattr(_loops, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _loops.loop = loop
        with _open_loops_lock:
            _open_loops.append(loop)
    return loop


def close_event_loops() -> None:
    """Close the executor threads' event loops (the worker calls this when it stops)."""
    with _open_loops_lock:
        loops = list(_open_loops)
        _open_loops.clear()
    for loop in loops:
        if not loop.is_closed():
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

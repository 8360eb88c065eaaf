"""Running tasks: the Python face of the C++ worker."""

from __future__ import annotations

import concurrent.futures
import inspect
import logging
import os
import socket
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any

from fastq import _core, conf
from fastq.brokers import Broker, get_broker
from fastq.runtime import (
    async_loop,
    close_event_loops,
    run_job,
    run_job_async,
    stop_async_loop,
)
from fastq.task import Retry, registry

log = logging.getLogger("fastq.worker")

_LEVELS = [logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR]


class _Runtime:
    """What the C++ executors call into, for one worker: its broker's per-job hook (the
    Django broker drops unusable or expired connections there, as Django does around each
    request, so a database restart costs one failed job at most) and the worker itself
    (for ``current_job().cancel_requested``)."""

    def __init__(self, before_job: Callable[[], None] | None) -> None:
        self.before_job = before_job
        self.worker: _core.Worker | None = None

    def execute(
        self,
        task_name: str,
        args: list[Any],
        kwargs: dict[str, Any],
        job_id: str,
        attempt: int,
        max_attempts: int,
        lease_token: int,
        soft_time_limit: float,
    ) -> Any:
        """Called by the C++ executors (with the GIL held) for every job they run."""
        if self.before_job is not None:
            self.before_job()
        return run_job(
            registry[task_name],
            args,
            kwargs,
            job_id,
            attempt,
            max_attempts,
            lease_token,
            soft_time_limit or None,
            worker=self.worker,
        )

    def execute_async(
        self,
        task_name: str,
        args: list[Any],
        kwargs: dict[str, Any],
        job_id: str,
        attempt: int,
        max_attempts: int,
        lease_token: int,
        soft_time_limit: float,
        report: Callable[[bool, Any], None],
    ) -> None:
        """Called by the C++ executors for ``async def`` tasks: schedules the job on the
        process's event loop and returns; ``report(ok, value_or_exception)`` ends it."""
        import asyncio  # here, not at import: `import fastq` stays light

        coro = run_job_async(
            registry[task_name],
            args,
            kwargs,
            job_id,
            attempt,
            max_attempts,
            lease_token,
            soft_time_limit or None,
            worker=self.worker,
        )
        future = asyncio.run_coroutine_threadsafe(coro, async_loop())

        def finished(f: concurrent.futures.Future[Any]) -> None:
            try:
                value = f.result()
            except BaseException as exc:
                report(False, exc)
                return
            report(True, value)

        future.add_done_callback(finished)


# Queues consumed by default besides those of registered tasks (the Django Tasks
# backend adds the QUEUES of its TASKS entries: fastq_django.backends).
extra_queues: set[str] = set()


def default_queues() -> list[str]:
    """``FASTQ["QUEUES"]`` if set, else every queue a registered task uses (and
    :data:`extra_queues`)."""
    configured = conf.queue_names(conf.get("QUEUES"))
    if configured:
        return configured
    return sorted({"default", *(t.queue for t in registry.values()), *extra_queues})


def _log(level: int, message: str) -> None:
    log.log(_LEVELS[level] if 0 <= level < len(_LEVELS) else logging.ERROR, message)


class Worker:
    """Runs registered tasks from a broker until stopped.

    ``Worker(burst=True).run()`` drains what is runnable and returns; otherwise it runs
    until :meth:`stop` (from another thread), SIGTERM or SIGINT (when ``handle_signals``),
    or until it has taken ``max_jobs`` jobs (when non-zero) and run them.

    ``prefetch``: jobs held beyond ``concurrency`` (None: one claim batch; 0: none).
    Logs one line per failed, retried, dead or expired job on ``fastq.worker``
    (WARNING/ERROR), the traceback at DEBUG, and with ``log_jobs`` one INFO line per job
    started and succeeded.
    """

    def __init__(
        self,
        broker: Broker | None = None,
        config: _core.WorkerConfig | None = None,
        *,
        queues: Iterable[str] | None = None,
        concurrency: int | None = None,
        prefetch: int | None = None,
        claim_batch: int | None = None,
        lease: float | None = None,
        burst: bool | None = None,
        grace: float | None = None,
        handle_signals: bool | None = None,
        max_jobs: int | None = None,
        log_jobs: bool | None = None,
        registry_row: bool = True,
        notify_systemd: bool | None = None,
    ) -> None:
        # The options are one fastq._core.WorkerConfig: its defaults (the C++ struct's)
        # are the only ones; a keyword given here overrides the field of the same name.
        cfg = config.copy() if config is not None else _core.WorkerConfig()
        given = {
            "concurrency": concurrency,
            "prefetch": prefetch,
            "claim_batch": claim_batch,
            "lease": lease,
            "burst": burst,
            "grace": grace,
            "handle_signals": handle_signals,
            "max_jobs": max_jobs,
            "log_jobs": log_jobs,
            "notify_systemd": notify_systemd,
        }
        for field, value in given.items():
            if value is not None:
                setattr(cfg, field, value)
        if queues:
            cfg.queues = list(queues)
        elif config is None:
            cfg.queues = default_queues()
        self.broker = broker or get_broker()
        self.queues = list(cfg.queues)
        self.name = cfg.name or f"{socket.gethostname()}:{os.getpid()}"
        cfg.name = self.name
        self.max_jobs = cfg.max_jobs
        cfg.registered = sorted(registry)
        cfg.max_payload_bytes = int(conf.get("MAX_PAYLOAD_BYTES"))
        cfg.rate_limits = {
            t.name: _core.RateLimit(int(t.rate_interval * 1_000_000), t.rate_limit_burst)
            for t in registry.values()
            if t.rate_interval
        }
        cfg.async_tasks = [t.name for t in registry.values() if inspect.iscoroutinefunction(t.fn)]
        # Tracebacks cross into Python only when a DEBUG line would be written.
        cfg.log_tracebacks = log.isEnabledFor(logging.DEBUG)
        # Its row in the worker registry (table fastq_worker, `fastq_inspect workers`),
        # written with every lease renewal tick. A child of the prefork supervisor names
        # the supervisor's row (the bindings fill it in).
        self.registry_id = f"{self.name}:{_core.new_job_id()}"
        cfg.registry = _registry_row(self.registry_id, "") if registry_row else None
        self.config = cfg
        self._runtime = _Runtime(self.broker.before_job)
        self._worker = _core.Worker(
            self.broker.worker_driver(),
            cfg,
            self._runtime.execute,
            Retry,
            execute_async=self._runtime.execute_async,
            log=_log,
        )
        self._runtime.worker = self._worker

    def run(self) -> _core.WorkerStats:
        """Block until the worker stops; returns its counters.

        If ``stats.hard_stopped`` (running jobs outlived ``grace``, or a second SIGINT),
        those jobs were returned to the queue but their threads may still be inside task
        code: the process must exit now (``os._exit``), as ``fastq_worker`` does.
        """
        try:
            return self._worker.run()
        finally:
            close_event_loops()
            stop_async_loop()

    def retired(self, stats: _core.WorkerStats) -> bool:
        """Whether the run ended because it had taken ``max_jobs`` jobs."""
        return bool(self.max_jobs) and stats.claimed - stats.deferred >= self.max_jobs

    def stop(self) -> None:
        """Ask the worker to stop gracefully (thread-safe)."""
        self._worker.stop()

    def stats(self) -> _core.WorkerStats:
        return self._worker.stats()


def _registry_row(row_id: str, supervisor: str) -> dict[str, str]:
    from fastq import __version__

    return {
        "id": row_id,
        "host": socket.gethostname(),
        "version": __version__,
        "supervisor": supervisor,
    }


EX_CONFIG = 78  # a child's exit code for "this setup cannot work": the supervisor stops
EX_RETIRED = 75  # "I ran --max-tasks-per-child jobs: replace me" (fastq::kRetiredExit)

# What a driver says when its database is away for now (an outage: retry after a pause)...
_OUTAGE = (
    "cannot connect",
    "reconnect failed",
    "database is locked",
    "database table is locked",
    "disk I/O error",
)
# ...unless the server answered that this setup cannot work (credentials, names).
_REFUSED = (
    "password authentication failed",
    "no pg_hba.conf entry",
    "does not exist",
    "permission denied",
)


def is_driver_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a broker driver's failure: ``fastq._core.DriverError`` (with the
    core's ``transient`` flag), or a plain ``RuntimeError`` from code that raised one
    itself; a worker's own run raises nothing else (task exceptions end their jobs)."""
    return isinstance(exc, _core.DriverError) or type(exc) is RuntimeError


def is_outage(exc: BaseException) -> bool:
    """A driver error that a later attempt may not meet (the database is unreachable or
    busy), as opposed to a setup error (no fastq tables, wrong credentials, a SQLite file
    that cannot be opened), which the same process would meet again at once."""
    text = str(exc)
    if any(s in text for s in _REFUSED):
        return False  # the core counts a refused login as a failed connection
    transient = getattr(exc, "transient", None)
    if transient is not None:
        return bool(transient)
    return any(s in text for s in _OUTAGE)


def run_supervised(
    broker: Broker,
    make_worker: Callable[[], Worker],
    *,
    processes: int,
    slots_per_child: int,
    grace: float | None = None,
    max_memory_mb: int = 0,
    burst: bool = False,
    on_child_start: Callable[[int], None] | None = None,
    on_child_stop: Callable[[_core.WorkerStats, float], None] | None = None,
    restore_signals: bool = True,
    fork_guard: Any = None,
    lease: float | None = None,
    metrics_port: int | None = None,
    metrics_address: str = "0.0.0.0",
) -> _core.SupervisorStats:
    """Prefork mode: a C++ supervisor forks ``processes`` children that each run
    ``make_worker().run()``, restarts them when they die, kills a child whose job runs past
    its hard ``time_limit``, recycles children above ``max_memory_mb``, and forwards
    SIGTERM/SIGINT. ``on_child_start(index)`` runs in each child before its worker is made,
    ``on_child_stop(stats, seconds)`` after its worker stopped. ``lease``: the workers'
    lease in seconds (the supervisor's registry row says it; default: the worker's).

    Call it once the application is loaded and with no other threads running (the
    children are forks of this process), except a ``fork_guard`` (an object with
    ``pause()`` and ``resume()``, such as ``fastq._core.Scheduler``), which is paused
    between its passes around every fork. Returns when all children stopped; with
    ``restore_signals=False`` SIGINT/SIGTERM stay blocked afterwards (for a program that
    exits next).
    """

    def spawn(index: int) -> int:
        if fork_guard is not None:
            fork_guard.pause()
        try:
            pid = os.fork()
        except BaseException:
            if fork_guard is not None:
                fork_guard.resume()
            raise
        if pid:
            if fork_guard is not None:
                fork_guard.resume()
            return pid
        code = 1
        try:
            _core.enter_child(index)
            if on_child_start is not None:
                on_child_start(index)
            worker = make_worker()
            began = time.monotonic()
            try:
                stats = worker.run()
                if on_child_stop is not None:
                    on_child_stop(stats, time.monotonic() - began)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
            code = EX_RETIRED if worker.retired(stats) else 0
        except RuntimeError as exc:
            if not is_driver_error(exc):
                traceback.print_exc()
            elif is_outage(exc):
                # The supervisor starts a new process after a pause: the outage may end.
                log.error("worker process %d stopped: %s", os.getpid(), exc)
            else:
                # A missing table or refused credentials: a new process would fail the
                # same way, over and over. EX_CONFIG stops the supervisor instead.
                log.error("worker process %d cannot run: %s", os.getpid(), exc)
                code = EX_CONFIG
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)

    # The children's registry rows name this one as their supervisor (the bindings read
    # its id in the child: fastq._core.Supervisor keeps it).
    supervisor_id = f"{socket.gethostname()}:{os.getpid()}:{_core.new_job_id()}"
    supervisor = _core.Supervisor(
        broker.worker_driver(),
        spawn,
        processes=processes,
        slots_per_child=slots_per_child,
        grace_ms=int((_core.WorkerConfig().grace if grace is None else grace) * 1000),
        max_memory_kb=max_memory_mb * 1024,
        burst=burst,
        log=_log,
        restore_signals=restore_signals,
        registry=_registry_row(supervisor_id, ""),
        lease_ms=int((_core.WorkerConfig().lease if lease is None else lease) * 1000),
        metrics_port=-1 if metrics_port is None else metrics_port,
        metrics_address=metrics_address,
    )
    return supervisor.run()

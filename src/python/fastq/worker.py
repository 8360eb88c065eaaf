"""Running tasks: the Python face of the C++ worker."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterable
from typing import Any

from fastq import _core, conf
from fastq.brokers import Broker, get_broker
from fastq.task import Retry, close_event_loops, registry, run_job

log = logging.getLogger("fastq.worker")
_LEVELS = [logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR]


# Called before every job (the Django broker drops unusable or expired connections here,
# as Django does around each request, so a database restart costs one failed job at most).
_before_job: Callable[[], None] | None = None


def execute(
    task_name: str,
    args: list[Any],
    kwargs: dict[str, Any],
    job_id: str,
    attempt: int,
    max_attempts: int,
) -> Any:
    """Called by the C++ executors (with the GIL held) for every job they run."""
    if _before_job is not None:
        _before_job()
    return run_job(registry[task_name], args, kwargs, job_id, attempt, max_attempts)


_active: _core.Worker | None = None


def active_worker() -> _core.Worker | None:
    """The worker running in this process, if any (for ``current_job().cancel_requested``)."""
    return _active


def default_queues() -> list[str]:
    """``FASTQ["QUEUES"]`` if set, else every queue a registered task uses."""
    configured = conf.get("QUEUES")
    if configured:
        return list(configured)
    return sorted({"default", *(t.queue for t in registry.values())})


def _log(level: int, message: str) -> None:
    log.log(_LEVELS[level] if 0 <= level < len(_LEVELS) else logging.ERROR, message)


class Worker:
    """Runs registered tasks from a broker until stopped.

    ``Worker(burst=True).run()`` drains what is runnable and returns; otherwise it runs
    until :meth:`stop` (from another thread), SIGTERM or SIGINT (when ``handle_signals``).
    """

    def __init__(
        self,
        broker: Broker | None = None,
        *,
        queues: Iterable[str] | None = None,
        concurrency: int = 4,
        prefetch: int = 0,
        claim_batch: int = 256,
        lease: float = 30.0,
        burst: bool = False,
        grace: float = 30.0,
        handle_signals: bool = False,
    ) -> None:
        global _before_job
        self.broker = broker or get_broker()
        _before_job = self.broker.before_job
        self.queues = list(queues) if queues else default_queues()
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._worker = _core.Worker(
            self.broker.worker_driver(),
            execute,
            Retry,
            sorted(registry),
            queues=self.queues,
            concurrency=concurrency,
            prefetch=prefetch,
            claim_batch=claim_batch,
            lease_ms=int(lease * 1000),
            max_payload_bytes=int(conf.get("MAX_PAYLOAD_BYTES")),
            burst=burst,
            grace_ms=int(grace * 1000),
            handle_signals=handle_signals,
            name=self.name,
            log=_log,
        )

    def run(self) -> _core.WorkerStats:
        """Block until the worker stops; returns its counters.

        If ``stats.hard_stopped`` (running jobs outlived ``grace``, or a second SIGINT),
        those jobs were returned to the queue but their threads may still be inside task
        code: the process must exit now (``os._exit``), as ``fastq_worker`` does.
        """
        global _active
        _active = self._worker
        try:
            return self._worker.run()
        finally:
            _active = None
            close_event_loops()

    def stop(self) -> None:
        """Ask the worker to stop gracefully (thread-safe)."""
        self._worker.stop()

    def stats(self) -> _core.WorkerStats:
        return self._worker.stats()

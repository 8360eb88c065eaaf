"""Results of enqueued jobs."""

from __future__ import annotations

import builtins
import json
import re
import time
from typing import Any

from fastq.brokers import Broker, JobSnapshot, get_broker

# Job states as the public API names them (the database stores them lower case).
QUEUED = "QUEUED"
RUNNING = "RUNNING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
DEAD = "DEAD"  # given up after its retries (or its workers kept dying), or a bad message
EXPIRED = "EXPIRED"  # not started before its expiry
CANCELLED = "CANCELLED"
UNKNOWN = "UNKNOWN"  # no such job: never enqueued, or its transaction has not committed
WAITING = "WAITING"  # a workflow step whose parents have not all finished
READY_STATES = frozenset({SUCCEEDED, FAILED, DEAD, EXPIRED, CANCELLED})
_FAILED_STATES = ("failed", "dead", "expired", "cancelled")


class TaskFailed(Exception):
    """A task raised (or could not be run). Carries the remote exception's details."""

    def __init__(self, job_id: str, type: str, message: str, traceback: str = "") -> None:
        super().__init__(f"{type}: {message}" if message else type)
        self.job_id = job_id
        self.type = type
        self.message = message
        self.traceback = traceback

    def __reduce__(self) -> tuple[Any, ...]:
        return (TaskFailed, (self.job_id, self.type, self.message, self.traceback))


class TimeoutError(builtins.TimeoutError):
    """``AsyncResult.get(timeout=...)`` ran out of time before the job finished."""


class AsyncResult:
    """A handle on a job: ``AsyncResult(id)`` works from any process sharing the broker."""

    def __init__(self, id: str, broker: Broker | None = None) -> None:
        self.id = str(id)
        self._broker = broker

    def __repr__(self) -> str:
        return f"<AsyncResult {self.id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AsyncResult) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def broker(self) -> Broker:
        return self._broker or get_broker()

    def _snapshot(self) -> JobSnapshot | None:
        return self.broker.fetch(self.id)

    @property
    def status(self) -> str:
        snap = self._snapshot()
        return snap.state.upper() if snap else UNKNOWN

    state = status

    @property
    def result(self) -> Any:
        """The return value once succeeded; the :class:`TaskFailed` once failed; else None."""
        snap = self._snapshot()
        if snap is None:
            return None
        if snap.state == "succeeded":
            return json.loads(snap.result) if snap.result is not None else None
        if snap.state in _FAILED_STATES:
            return _failure(snap, self.broker)
        return None

    def ready(self) -> bool:
        return self.status in READY_STATES

    def successful(self) -> bool:
        return self.status == SUCCEEDED

    def failed(self) -> bool:
        return self.status in (FAILED, DEAD, EXPIRED, CANCELLED)

    def cancel(self) -> str:
        """Cancel the job. A queued job never starts ("cancelled"); a running one is asked
        to stop ("requested": it sees ``fastq.current_job().cancel_requested``); returns
        "finished" or "not_found" otherwise. The cancel is stored in the database, so a
        restart does not forget it."""
        return self.broker.cancel(self.id)

    def get(self, timeout: float | None = None, interval: float = 0.005) -> Any:
        """Wait for the job and return its result; raise :class:`TaskFailed` if it failed,
        :class:`fastq.TimeoutError` if ``timeout`` seconds pass first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = interval
        while True:
            snap = self._snapshot()
            if snap is not None and snap.state == "succeeded":
                return json.loads(snap.result) if snap.result is not None else None
            if snap is not None and snap.state in _FAILED_STATES:
                raise _failure(snap, self.broker)
            if deadline is not None and time.monotonic() >= deadline:
                state = snap.state.upper() if snap else UNKNOWN
                raise TimeoutError(f"job {self.id} still {state} after {timeout} s")
            sleep = delay if deadline is None else min(delay, max(0.0, deadline - time.monotonic()))
            time.sleep(sleep)
            delay = min(delay * 2, 0.25)


class EagerResult(AsyncResult):
    """The result of a task run inline (``FASTQ["EAGER"]``): already finished."""

    def __init__(
        self, id: str, value: Any = None, failure: TaskFailed | None = None, dead: bool = False
    ) -> None:
        super().__init__(id)
        self._value = value
        self._failure = failure
        self._dead = dead

    @property
    def status(self) -> str:
        if self._failure:
            return DEAD if self._dead else FAILED
        return SUCCEEDED

    state = status

    @property
    def result(self) -> Any:
        return self._failure if self._failure else self._value

    def get(self, timeout: float | None = None, interval: float = 0.005) -> Any:
        if self._failure:
            raise self._failure
        return self._value


def _failure(snap: JobSnapshot, broker: Broker | None = None) -> TaskFailed:
    """The failure of a job; for a workflow step cancelled because an upstream step
    failed ("upstream job <id> failed"), the failure of that step, naming it."""
    if snap.error_type == "fastq.Cancelled" and broker is not None:
        m = _UPSTREAM.match(snap.error)
        if m:
            up = broker.fetch(m.group(1))
            if up is not None and up.state in ("failed", "dead"):
                return TaskFailed(
                    up.id,
                    up.error_type or "Error",
                    f"step {up.task} ({up.id}) failed: {up.error}",
                    up.traceback,
                )
    return TaskFailed(snap.id, snap.error_type or "Error", snap.error, snap.traceback)


_UPSTREAM = re.compile(r"^upstream job ([0-9a-f-]{36}) failed$")

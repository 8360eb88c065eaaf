"""``celery.result``: ``AsyncResult`` speaking Celery's states and attributes over a
fastq job, ``EagerResult`` for ``task.apply()``, and ``ResultSet`` and ``GroupResult`` over
the members of a group (fastq's workflows record groups when they are enqueued).

A canvas of Celery tasks (``chain``, ``group``, ``chord``, ``a.s() | b.s()``) returns
these: a chain's result is its last task's ``AsyncResult`` whose ``parent`` is the part
before it (as in Celery), a group's a ``GroupResult`` of its members, a chord's the
body's result whose ``parent`` is the header's ``GroupResult``. ``get()`` follows the
parents (``follow_parents=True``, Celery's default): when an earlier part failed, it
raises that part's exception rather than the revocation of the steps it cancelled."""

from __future__ import annotations

import builtins
import contextlib
import json
import sys
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from fastq import _core
from fastq.brokers import get_broker
from fastq.compat.celery import _jobs, states
from fastq.compat.celery.exceptions import (
    TaskRevokedError,
    TimeLimitExceeded,
    TimeoutError,
    WorkerLostError,
)
from fastq.result import TaskFailed

# fastq's own error types and the Celery exception each one stands for.
_FASTQ_TYPES: dict[str, type[TaskFailed]] = {
    "fastq.TimeLimitExceeded": TimeLimitExceeded,
    "fastq.WorkerLost": WorkerLostError,
    "fastq.Cancelled": TaskRevokedError,
    "fastq.Expired": TaskRevokedError,
}
_made: dict[str, type[TaskFailed]] = {}


def _stand_in(type_name: str) -> type[TaskFailed]:
    """A TaskFailed subclass named like an exception class this process does not have.
    Nothing is ever imported to rebuild an exception (as Celery: only modules already
    loaded are looked in)."""
    short = type_name.rsplit(".", 1)[-1] or "Error"
    if not short.isidentifier():
        short = "Error"
    cls = _made.get(type_name)
    if cls is None:
        cls = type(short, (TaskFailed,), {"__module__": "fastq.compat.celery.exceptions"})
        _made[type_name] = cls
    return cls


def exception_of(row: dict[str, Any]) -> BaseException:
    """The exception a failed (or revoked) job stands for: its own class when that class
    is already loaded in this process, else a :class:`fastq.TaskFailed` subclass of the
    same name (``.type``, ``.message``, ``.traceback`` carry the details)."""
    type_name = row.get("error_type") or "Error"
    message = row.get("error") or ""
    tb = row.get("traceback") or ""
    job_id = str(row.get("id", ""))
    if row.get("state") in ("cancelled", "expired") and type_name not in _FASTQ_TYPES:
        return TaskRevokedError(job_id, type_name, message, tb)
    if type_name in _FASTQ_TYPES:
        return _FASTQ_TYPES[type_name](job_id, type_name, message, tb)
    cls: Any = None
    module_name = type_name.rpartition(".")[0]
    if not module_name:
        cls = getattr(builtins, type_name, None)
    else:
        # The module may hold a nested class: try each split of the dotted name.
        parts = type_name.split(".")
        for i in range(len(parts) - 1, 0, -1):
            module = sys.modules.get(".".join(parts[:i]))
            if module is None:
                continue
            obj: Any = module
            for name in parts[i:]:
                obj = getattr(obj, name, None)
            cls = obj
            break
    if isinstance(cls, type) and issubclass(cls, BaseException):
        try:
            exc = cls(message) if message else cls()
        except Exception:
            exc = None
        if exc is not None:
            exc.__notes__ = [f"raised in fastq job {job_id}"]
            with contextlib.suppress(AttributeError):
                exc.traceback = tb  # type: ignore[attr-defined]
            return exc
    return _stand_in(type_name)(job_id, type_name, message, tb)


class AsyncResult:
    """``AsyncResult(task_id)``: Celery's view of a fastq job. ``state`` is one of
    PENDING, RETRY, STARTED, SUCCESS, FAILURE, REVOKED (fastq.compat.celery.states)."""

    def __init__(
        self,
        id: str,
        backend: Any = None,
        task_name: str | None = None,
        app: Any = None,
        parent: Any = None,
    ) -> None:
        self.id = str(id)
        self._task_name = task_name
        self.app = app
        self.parent = parent
        self.children: list[Any] = []

    @property
    def task_id(self) -> str:
        return self.id

    def __repr__(self) -> str:
        return f"<AsyncResult: {self.id}>"

    def __str__(self) -> str:
        return self.id

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AsyncResult):
            return other.id == self.id
        if isinstance(other, str):
            return other == self.id
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.id)

    def _row(self) -> dict[str, Any] | None:
        return _jobs.job(self.id)

    @staticmethod
    def _state(row: dict[str, Any] | None) -> str:
        if row is None:
            return states.PENDING
        custom = _jobs.custom_state(row)
        if custom is not None:
            return custom[0]  # update_state(state=...), while it stands
        return states.from_job(
            row["state"],
            row.get("attempts") or 0,
            row.get("error_type") or "",
            row.get("started_at") is not None or "worker" not in row,
        )

    @property
    def state(self) -> str:
        return self._state(self._row())

    status = state

    @staticmethod
    def _value(row: dict[str, Any] | None) -> Any:
        if row is None:
            return None
        custom = _jobs.custom_state(row)
        if custom is not None:
            return custom[1]  # update_state(meta=...)
        state = row["state"]
        if state == "succeeded":
            return json.loads(row["result"]) if row.get("result") is not None else None
        if state in _jobs.FINISHED:
            return exception_of(row)
        if state == "queued" and row.get("error_type"):
            return exception_of(row)  # RETRY: the exception of the last attempt
        return None

    @property
    def result(self) -> Any:
        """The return value (SUCCESS), the exception (FAILURE, REVOKED, RETRY), the meta of
        a custom state (``update_state``), else None."""
        return self._value(self._row())

    info = result

    @property
    def traceback(self) -> str | None:
        row = self._row()
        return (row.get("traceback") or None) if row else None

    @property
    def date_done(self) -> datetime | None:
        row = self._row()
        return row.get("finished_at") if row else None

    @property
    def name(self) -> str | None:
        row = self._row()
        return row["task"] if row else self._task_name

    task_name = name

    @property
    def args(self) -> list[Any] | None:
        row = self._row()
        return json.loads(row["args"]) if row and row.get("args") is not None else None

    @property
    def kwargs(self) -> dict[str, Any] | None:
        row = self._row()
        return json.loads(row["kwargs"]) if row and row.get("kwargs") is not None else None

    @property
    def worker(self) -> str | None:
        row = self._row()
        return (row.get("worker") or None) if row else None

    @property
    def queue(self) -> str | None:
        row = self._row()
        return row["queue"] if row else None

    @property
    def retries(self) -> int:
        row = self._row()
        return max(0, (row.get("attempts") or 0) - 1) if row else 0

    # -- parents: the part before this one in a canvas --------------------------------

    def link_parent(self, parent: Any) -> None:
        """Make ``parent`` the parent of the first result of this one's line of parents
        (the canvas builder calls it: chains, chords)."""
        node: Any = self
        while node.parent is not None and node.parent is not parent:
            node = node.parent
        if node is not parent:
            node.parent = parent

    @classmethod
    def group_result(cls, id: str, children: list[Any], root_id: str) -> GroupResult:
        """The result of a group of these results (the canvas builder calls it)."""
        return GroupResult(id, children, root_id=root_id)

    def _parents(self) -> list[Any]:
        out = []
        node = self.parent
        while node is not None:
            out.append(node)
            node = getattr(node, "parent", None)
        return out

    def _throw_if_failed(self, succeeded: set[str]) -> None:
        # The exception of a FAILURE or REVOKED job; ids known to have succeeded are not
        # read again (a succeeded job does not fail later).
        if self.id in succeeded:
            return
        row = self._row()
        state = self._state(row)
        if state == states.SUCCESS:
            succeeded.add(self.id)
        elif state in states.PROPAGATE_STATES:
            raise self._value(row)

    def _maybe_reraise_parent_error(self, succeeded: set[str] | None = None) -> None:
        """Raise the exception of the first failed part before this one (oldest first),
        as Celery's ``get(follow_parents=True)`` does."""
        seen = set() if succeeded is None else succeeded
        for node in reversed(self._parents()):
            _throw_members(node, seen)

    def maybe_throw(self, propagate: bool = True, callback: Any = None) -> None:
        """Raise the job's exception if it ended FAILURE or REVOKED (``propagate``), else
        hand its value to ``callback(id, value)``."""
        row = self._row()
        state = self._state(row)
        value = self._value(row)
        if propagate and state in states.PROPAGATE_STATES:
            raise value
        if callback is not None:
            callback(self.id, value)

    def ready(self) -> bool:
        return self.state in states.READY_STATES

    def successful(self) -> bool:
        return self.state == states.SUCCESS

    def failed(self) -> bool:
        return self.state == states.FAILURE

    def get(
        self,
        timeout: float | None = None,
        propagate: bool = True,
        interval: float = 0.5,
        no_ack: bool = True,
        follow_parents: bool = True,
        callback: Any = None,
        on_message: Any = None,
        on_interval: Any = None,
        disable_sync_subtasks: bool = True,
        **_: Any,
    ) -> Any:
        """Wait until the job is ready and return its value; on FAILURE or REVOKED raise its
        exception (``propagate=False``: return it). ``TimeoutError`` after ``timeout``
        seconds. Polls from 5 ms, backing off to ``interval``. With ``follow_parents`` (and
        ``propagate``), a failed part before this one in its canvas raises its own
        exception, as in Celery."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = min(0.005, interval)
        follow = follow_parents and propagate and self.parent is not None
        succeeded: set[str] = set()
        while True:
            row = self._row()
            state = self._state(row)
            if follow and state != states.SUCCESS:
                # After this job's own read: a part that failed and cancelled this one did
                # both in one transaction, so its failure is visible by now.
                self._maybe_reraise_parent_error(succeeded)
            if state in states.READY_STATES:
                value = self._value(row)
                if state == states.SUCCESS:
                    if callback is not None:
                        callback(self.id, value)
                    return value
                if propagate:
                    raise value
                return value
            if on_interval is not None:
                on_interval()
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError("The operation timed out.")
            pause = delay if deadline is None else min(delay, max(0.0, deadline - time.monotonic()))
            time.sleep(pause)
            delay = min(delay * 2, max(interval, 0.005))

    wait = get

    def revoke(
        self,
        connection: Any = None,
        terminate: bool = False,
        signal: Any = None,
        wait: bool = False,
        timeout: float | None = None,
    ) -> None:
        """Cancel the job: a queued one never runs (REVOKED); a running one is asked to stop
        (``fastq.current_job().cancel_requested``). The revoke is stored in the database,
        so restarts keep it. ``terminate`` cannot kill a running task on fastq."""
        get_broker().cancel(self.id)

    def forget(self) -> None:
        """Delete the finished job's row and its result (queued or running jobs stay)."""
        _jobs.forget(self.id)

    def as_tuple(self) -> tuple[Any, ...]:
        return ((self.id, None), None)


class EagerResult(AsyncResult):
    """The result of ``task.apply()`` (or an eager ``apply_async``): already finished."""

    def __init__(
        self,
        id: str,
        ret_value: Any,
        state: str,
        traceback: str | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(id, task_name=name)
        self._value_ = ret_value
        self._state_ = state
        self._traceback = traceback

    def __repr__(self) -> str:
        return f"<EagerResult: {self.id}>"

    @property
    def state(self) -> str:
        return self._state_

    status = state

    @property
    def result(self) -> Any:
        return self._value_

    info = result

    @property
    def traceback(self) -> str | None:
        return self._traceback

    @property
    def name(self) -> str | None:
        return self._task_name

    task_name = name

    @property
    def date_done(self) -> datetime | None:
        return None

    def get(self, timeout: float | None = None, propagate: bool = True, **_: Any) -> Any:
        if self._state_ == states.SUCCESS:
            return self._value_
        if propagate and isinstance(self._value_, BaseException):
            raise self._value_
        return self._value_

    wait = get

    def revoke(self, *args: Any, **kwargs: Any) -> None:
        self._state_ = states.REVOKED

    def forget(self) -> None:
        return None


def _throw_members(node: Any, succeeded: set[str]) -> None:
    if isinstance(node, ResultSet):
        for child in node.results:
            _throw_members(child, succeeded)
    elif isinstance(node, AsyncResult):
        node._throw_if_failed(succeeded)


class ResultSet:
    """Celery's ``ResultSet``: results waited on together, in order."""

    def __init__(self, results: Iterable[Any] | None = None, app: Any = None, **_: Any) -> None:
        self.results: list[Any] = list(results or [])
        self.app = app
        self.parent: Any = None

    def add(self, result: Any) -> None:
        if result not in self.results:
            self.results.append(result)

    def remove(self, result: Any) -> None:
        if isinstance(result, str):
            result = AsyncResult(result)
        try:
            self.results.remove(result)
        except ValueError:
            raise KeyError(result) from None

    def discard(self, result: Any) -> None:
        with contextlib.suppress(KeyError):
            self.remove(result)

    def update(self, results: Iterable[Any]) -> None:
        self.results.extend(r for r in results if r not in self.results)

    def clear(self) -> None:
        self.results[:] = []

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.results)

    def __getitem__(self, index: int) -> Any:
        return self.results[index]

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: [{', '.join(str(r.id) for r in self.results)}]>"

    @property
    def children(self) -> list[Any]:
        return self.results

    @property
    def supports_native_join(self) -> bool:
        return False

    def ready(self) -> bool:
        return all(r.ready() for r in self.results)

    def successful(self) -> bool:
        return all(r.successful() for r in self.results)

    def failed(self) -> bool:
        return any(r.failed() for r in self.results)

    def waiting(self) -> bool:
        return any(not r.ready() for r in self.results)

    def completed_count(self) -> int:
        """How many members succeeded."""
        return sum(int(r.successful()) for r in self.results)

    def maybe_throw(self, callback: Any = None, propagate: bool = True) -> None:
        for r in self.results:
            r.maybe_throw(callback=callback, propagate=propagate)

    def revoke(
        self,
        connection: Any = None,
        terminate: bool = False,
        signal: Any = None,
        wait: bool = False,
        timeout: float | None = None,
    ) -> None:
        """Revoke every member (see :meth:`AsyncResult.revoke`)."""
        for r in self.results:
            r.revoke(connection=connection, terminate=terminate, signal=signal)

    def forget(self) -> None:
        for r in self.results:
            r.forget()

    def join(
        self,
        timeout: float | None = None,
        propagate: bool = True,
        interval: float = 0.5,
        callback: Any = None,
        no_ack: bool = True,
        on_message: Any = None,
        on_interval: Any = None,
        disable_sync_subtasks: bool = True,
        **_: Any,
    ) -> list[Any]:
        """Wait for each member in order and return their values; the first FAILURE or
        REVOKED member raises its exception (``propagate=False``: it is returned in its
        place). ``callback(id, value)`` receives each value instead of the list.
        ``TimeoutError`` when ``timeout`` seconds pass for the whole set."""
        deadline = None if timeout is None else time.monotonic() + timeout
        out: list[Any] = []
        for r in self.results:
            left = None
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("join operation timed out")
            try:
                value = r.get(
                    timeout=left, propagate=propagate, interval=interval, on_interval=on_interval
                )
            except TimeoutError:
                raise TimeoutError("join operation timed out") from None
            if callback is not None:
                callback(r.id, value)
            else:
                out.append(value)
        return out

    get = join

    def link_parent(self, parent: Any) -> None:
        """As :meth:`AsyncResult.link_parent`, for a group inside a chain."""
        if self.parent is None and parent is not self:
            self.parent = parent


class GroupResult(ResultSet):
    """Celery's ``GroupResult``: a group's id and its members' results. A group sent by a
    canvas is stored with its members, so ``GroupResult.restore(id)`` reads it from any
    process."""

    def __init__(
        self,
        id: str | None = None,
        results: Iterable[Any] | None = None,
        parent: Any = None,
        root_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(results, **kwargs)
        self.id = str(id) if id else _core.new_job_id()
        self.parent = parent
        self.root_id = root_id or self.id

    def __repr__(self) -> str:
        return f"<GroupResult: {self.id} [{', '.join(str(r.id) for r in self.results)}]>"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, GroupResult):
            return other.id == self.id and other.results == self.results
        if isinstance(other, str):
            return other == self.id
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.id)

    @classmethod
    def group_result(cls, id: str, children: list[Any], root_id: str) -> GroupResult:
        """A group of groups (the canvas builder calls it)."""
        return cls(id, children, root_id=root_id)

    @classmethod
    def restore(cls, id: str, backend: Any = None, app: Any = None) -> GroupResult | None:
        """The group enqueued as ``id`` (by a canvas, in any process), its members as
        :class:`AsyncResult`; None if there is no such group."""
        record = get_broker().fetch_workflow(str(id))
        if record is None:
            return None
        root_id, members = record
        return cls(str(id), [AsyncResult(m, app=app) for m in members], root_id=root_id, app=app)

    def as_tuple(self) -> tuple[Any, ...]:
        return ((self.id, None), [r.as_tuple() for r in self.results])


__all__ = ["AsyncResult", "EagerResult", "GroupResult", "ResultSet", "exception_of"]

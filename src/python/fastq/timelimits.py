"""Soft time limits: :class:`SoftTimeLimitExceeded` raised inside a task that runs too long.

Jobs run on the worker's executor threads, so the exception is delivered to that thread
with ``PyThreadState_SetAsyncExc`` by one watchdog thread. Python checks for it between
bytecodes: a task inside one long C call (a ``time.sleep(60)``, a blocking socket read
without a timeout) sees it when that call returns. The hard ``time_limit`` does not
depend on the task's cooperation: the prefork supervisor kills the process.
"""

from __future__ import annotations

import ctypes
import heapq
import itertools
import threading
import time


class SoftTimeLimitExceeded(Exception):
    """The task ran past its ``soft_time_limit``: clean up and return (or re-raise)."""


SoftTimeLimitExceeded.__module__ = "fastq"  # recorded as fastq.SoftTimeLimitExceeded


class _Watchdog:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int]] = []  # (deadline, handle)
        self._armed: dict[int, int] = {}  # handle -> thread ident
        self._fired: set[int] = set()
        self._handles = itertools.count(1)
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float) -> int:
        handle = next(self._handles)
        with self._cond:
            self._armed[handle] = threading.get_ident()
            heapq.heappush(self._heap, (time.monotonic() + seconds, handle))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="fastq-soft-time-limits", daemon=True
                )
                self._thread.start()
            self._cond.notify()
        return handle

    def disarm(self, handle: int) -> None:
        with self._cond:
            entry = self._armed.pop(handle, None)
            if handle in self._fired:
                self._fired.discard(handle)
                if entry is not None:
                    # Fired but perhaps not delivered yet: it must not hit the next job.
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(entry), None)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                deadline, handle = self._heap[0]
                delay = deadline - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                heapq.heappop(self._heap)
                ident = self._armed.get(handle)
                if ident is None:
                    continue
                self._fired.add(handle)
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(ident), ctypes.py_object(SoftTimeLimitExceeded)
                )


_watchdog = _Watchdog()


def arm(seconds: float) -> int:
    """Raise SoftTimeLimitExceeded in this thread after ``seconds`` unless disarmed."""
    return _watchdog.arm(seconds)


def disarm(handle: int) -> None:
    _watchdog.disarm(handle)

"""Tasks of the reliability suite (tests/integration/reliability).

Every execution of a ledger task appends one JSON line when it starts and one when it ends
to the file named by ``FASTQ_LEDGER`` (nothing is written when it is unset). Lines are
written with one ``os.write`` on a descriptor opened with ``O_APPEND``, so lines from
concurrent processes never interleave; the checker (``ledger.py`` in the suite) pairs
them into executions and compares them with the job table.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import fastq

LEDGER_ENV = "FASTQ_LEDGER"


def ledger_write(event: str, **fields: Any) -> None:
    """Appends one line about the current job to the ledger."""
    path = os.environ.get(LEDGER_ENV)
    if not path:
        return
    job = fastq.current_job()
    line = {
        "event": event,
        "job": job.id if job else None,
        "task": job.task if job else None,
        "attempt": job.attempt if job else None,
        # The claim's fencing token, once JobContext carries it.
        "token": getattr(job, "lease_token", None),
        "pid": os.getpid(),
        "pgid": os.getpgid(0),
        "t": time.time(),
        **fields,
    }
    data = (json.dumps(line, separators=(",", ":")) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


@contextmanager
def execution(key: str = "") -> Iterator[None]:
    """Brackets a task body with a start line and an end line (which says how it ended).
    A process that dies inside leaves a start without an end."""
    ledger_write("start", key=key)
    try:
        yield
    except BaseException as exc:
        ledger_write("end", key=key, outcome=type(exc).__name__)
        raise
    ledger_write("end", key=key, outcome="ok")


@fastq.task
def sleep(seconds: float = 0.0, key: str = "") -> str:
    """A ledger task that sleeps: the unit of work of most tests."""
    with execution(key):
        if seconds:
            time.sleep(seconds)
    return key


# Every SIGKILL of a worker spends an attempt of every job it had started (and of one whose
# start it had not recorded yet only after kMaxUnspentHandbacks such losses): the chaos
# test kills a worker every 2 s, so its jobs get attempts to spare.
@fastq.task(max_retries=10)
def chaos_sleep(seconds: float, key: str = "") -> str:
    with execution(key):
        time.sleep(seconds)
    return key


@fastq.task(max_retries=10)
def chord_collect(keys: list[str], key: str = "") -> dict[str, Any]:
    """A chord's callback (test_chord_chaos.py): records, in its ledger lines, how many
    results it received and a digest of them in order."""
    digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()
    with execution(key):
        ledger_write("chord", key=key, received=len(keys), digest=digest)
    return {"received": len(keys), "digest": digest}


@fastq.task(max_retries=0)
def sleep_once(seconds: float = 0.0, key: str = "") -> str:
    """``sleep`` with no retries: one lost attempt makes it dead, so a test sees exactly
    which jobs a crash charged."""
    with execution(key):
        if seconds:
            time.sleep(seconds)
    return key


@fastq.task
def who_ran(seconds: float) -> dict[str, Any]:
    """Sleeps, then returns which attempt and which process produced the result."""
    job = fastq.current_job()
    with execution():
        time.sleep(seconds)
    return {"attempt": job.attempt if job else None, "pid": os.getpid()}


@fastq.task(max_retries=2)
def exit_hard() -> None:
    """A poison pill: the process running it exits on the spot, every time."""
    with execution():
        os._exit(1)


@fastq.task(max_retries=2)
def segfault() -> None:
    """A poison pill: the process running it dies of SIGSEGV, every time."""
    with execution():
        ctypes.string_at(0)


@fastq.task(unique_key=lambda key: key)
def unique(key: str) -> str:
    with execution(key):
        pass
    return key


class _StrSubclass(str):
    """A str subclass, as some libraries hand out; its text may hold surrogate-escaped
    bytes that are not UTF-8."""


def _long_named_error() -> type[Exception]:
    name = "E" * 300
    return type(name, (Exception,), {"__qualname__": name, "__module__": __name__})


# The hostile outcomes of the outcome-isolation tests: each is something a task can raise
# or return that a store cannot take as it is. Keys are kinds; values make the outcome.
def _raise(exc: BaseException) -> Any:
    raise exc


HOSTILE = {
    "nul_message": lambda: _raise(ValueError("before\x00after")),
    "long_type": lambda: _raise(_long_named_error()("a class path past the column")),
    "surrogate_message": lambda: _raise(ValueError("lone \udc80 surrogate")),
    "huge_message": lambda: _raise(ValueError("x" * 10_000_000)),
    "non_utf8_str_subclass": lambda: _raise(
        ValueError(_StrSubclass(b"bytes \xff\xfe here".decode("utf-8", "surrogateescape")))
    ),
    "nul_result": lambda: "a\x00b",
    "surrogate_result": lambda: "x\udc80y",
    "huge_result": lambda: "y" * 10_000_000,
    "refused_message": lambda: _raise(ValueError("refused-by-the-store")),
}


@fastq.task(max_retries=0)
def hostile(kind: str) -> Any:
    """A ledger task ending with one of HOSTILE's outcomes."""
    with execution(kind):
        return HOSTILE[kind]()

"""SQLite's local wake-ups (issue 17; src/cpp/core/wake.hpp): a worker on an SQLite file
listens on a datagram socket in a directory next to it, and the enqueuer pokes every
socket there once its transaction commits. PostgreSQL wakes workers by NOTIFY instead."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import stat
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection, transaction
from fastq import _core
from fastq_django.models import Job, WorkerProcess
from testapp import tasks

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        os.environ.get("FASTQ_TEST_DB", "sqlite") != "sqlite", reason="SQLite's wake-ups"
    ),
]


def _wait_for(predicate: Callable[[], object], timeout: float = 90.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"condition not reached: {what}"
        time.sleep(0.05)


@pytest.fixture
def wake_dir() -> Iterator[Path]:
    name = _core.sqlite_wake_dir(str(connection.settings_dict["NAME"]))
    assert name is not None, "the test database is a file"
    path = Path(name)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _listener(directory: Path, name: str = "listener.sock") -> socket.socket:
    directory.mkdir(exist_ok=True)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(directory / name))
    s.setblocking(False)
    return s


def _pokes(s: socket.socket) -> int:
    n = 0
    with contextlib.suppress(BlockingIOError):
        while True:
            s.recv(64)
            n += 1
    return n


def _hostile(directory: Path) -> list[Path]:
    """A dead worker's socket, and a file and a directory named like sockets."""
    directory.mkdir(exist_ok=True)
    stale = directory / "w999999-0.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dead.bind(str(stale))
    dead.close()
    (directory / "w1-0.sock").write_text("not a socket")
    (directory / "w2-0.sock").mkdir()
    return [stale, directory / "w1-0.sock", directory / "w2-0.sock"]


def test_an_idle_worker_starts_a_new_job_long_before_its_next_poll(worker, wake_dir):
    # Polls at most every 30 s; the registry row beats every lease/3 = 1 s.
    w = worker("--processes", "0", "--no-scheduler", "--lease", "3", "--poll-interval", "30")
    _wait_for(
        lambda: WorkerProcess.objects.filter(pid=w.proc.pid, state="running").exists(),
        what="the worker registered",
    )
    first = WorkerProcess.objects.get(pid=w.proc.pid).last_heartbeat
    assert any(stat.S_ISSOCK(p.lstat().st_mode) for p in wake_dir.iterdir()), "it listens"
    # Two seconds of its own heartbeats: its first claim came back empty long ago, and a
    # worker that can be woken then waits the whole poll interval (30 s) for a wake-up,
    # so only the wake-up can start a job within 2.5 s.
    _wait_for(
        lambda: (
            WorkerProcess.objects.get(pid=w.proc.pid).last_heartbeat - first >= timedelta(seconds=2)
        ),
        what="two seconds of heartbeats",
    )
    stale, file, directory = _hostile(wake_dir)

    result = tasks.add.delay(1, 2)
    assert result.get(timeout=60) == 3
    job = Job.objects.get(pk=result.id)
    waited = (job.started_at - job.created_at).total_seconds()
    assert waited < 2.5, f"started {waited:.3f} s after it was enqueued"
    assert not stale.exists(), "the dead worker's socket was removed"
    assert file.is_file() and directory.is_dir(), "what is not a socket is left alone"

    w.signal(signal.SIGTERM)
    w.finish(60)
    left = [p.name for p in wake_dir.iterdir() if stat.S_ISSOCK(p.lstat().st_mode)]
    assert left == [], "a stopped worker removes its socket"


def test_dead_sockets_and_hostile_entries_do_not_break_enqueue(wake_dir):
    stale, file, directory = _hostile(wake_dir)
    live = _listener(wake_dir)
    try:
        assert tasks.add.delay(1, 2).id
        assert _pokes(live) == 1
        assert not stale.exists()
        assert file.is_file() and directory.is_dir()
    finally:
        live.close()


def test_a_transaction_pokes_once_when_it_commits_and_never_when_it_rolls_back(wake_dir):
    live = _listener(wake_dir)
    try:
        with transaction.atomic():
            tasks.add.delay(1, 2)
            tasks.add.delay(3, 4)
            assert _pokes(live) == 0, "not before the jobs are committed"
        assert _pokes(live) == 1, "once for the transaction"

        with contextlib.suppress(ZeroDivisionError), transaction.atomic():
            tasks.add.delay(5, 6)
            1 / 0  # noqa: B018 - rolls the enqueue back
        assert _pokes(live) == 0
        assert Job.objects.count() == 2

        tasks.add.delay(7, 8)  # autocommit: at once
        assert _pokes(live) == 1
    finally:
        live.close()


def test_resuming_a_queue_wakes_idle_workers(wake_dir):
    from fastq_django import queues

    live = _listener(wake_dir)
    try:
        queues.pause("default")
        assert _pokes(live) == 1
        queues.resume("default")
        assert _pokes(live) == 1, "its waiting jobs can start now"
    finally:
        live.close()

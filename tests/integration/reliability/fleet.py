"""Worker processes the reliability suite can kill, pause and signal as a whole."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from workerproc import HERE, WorkerProcess


def postgres_reachable(host: str | None = None) -> str | None:
    """None when the test PostgreSQL server answers at ``host`` (default
    FASTQ_TEST_PG_HOST or 127.0.0.1), else why not: the suites skip on it locally and
    fail on it under CI=true."""
    import psycopg

    try:
        psycopg.connect(
            host=host or os.environ.get("FASTQ_TEST_PG_HOST", "127.0.0.1"),
            port=os.environ.get("FASTQ_TEST_PG_PORT", "5432"),
            user=os.environ.get("FASTQ_TEST_PG_USER", "postgres"),
            dbname="postgres",
            connect_timeout=3,
        ).close()
    except psycopg.OperationalError as exc:
        return str(exc)
    return None


def _proc_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, process group) for every process, from /proc."""
    table: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields resume after the last ")".
        fields = stat[stat.rfind(")") + 2 :].split()
        table[int(entry)] = (int(fields[1]), int(fields[2]))
    return table


class GroupWorker(WorkerProcess):
    """``manage.py fastq_worker`` as the leader of its own session, so that the worker and
    every process it forks can be signalled together, the way a supervisor (or the kernel's
    OOM killer taking a container) would. ``extra_env`` is added to the environment; output
    goes to ``log_path``. ``prefix`` goes before the command, for a wrapper that ends by
    exec'ing it (``ip netns exec NS``), so the worker keeps the wrapper's pid."""

    def __init__(
        self,
        *args: str,
        log_path: Path,
        extra_env: dict[str, str] | None = None,
        prefix: Sequence[str] = (),
    ):
        from django.db import connection

        env = dict(os.environ)
        env["FASTQ_TEST_DB_NAME"] = str(connection.settings_dict["NAME"])
        env["DJANGO_SETTINGS_MODULE"] = "testproject.settings"
        env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
        env.update(extra_env or {})
        self.args = args
        self.log_path = log_path
        self.log = open(log_path, "w+")  # noqa: SIM115 - closed in wait() or by the fixture
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, str(HERE / "manage.py"), "fastq_worker", *args],
            cwd=HERE,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid = self.proc.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def pids(self) -> set[int]:
        """The worker, every process in its group, and every descendant (in case a child
        moved to a group of its own)."""
        table = _proc_table()
        found = {pid for pid, (_, pgid) in table.items() if pgid == self.pid}
        if self.proc.poll() is None:
            found.add(self.pid)
        grew = True
        while grew:
            grew = False
            for pid, (ppid, _) in table.items():
                if ppid in found and pid not in found:
                    found.add(pid)
                    grew = True
        return found

    def signal_all(self, sig: int) -> set[int]:
        """Sends ``sig`` to the whole process tree; returns the pids it reached."""
        pids = self.pids()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        return pids

    def kill_all(self) -> set[int]:
        """SIGKILL to the whole tree, then reap the leader. Returns the pids killed."""
        pids = self.signal_all(signal.SIGKILL)
        self.proc.wait()
        return pids

    def close(self) -> None:
        """Kills whatever is left of the tree (paused or not) and closes the log."""
        if self.pids():
            self.signal_all(signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.wait()
        if not self.log.closed:
            self.log.close()


def wait_for(
    predicate: Callable[[], bool],
    timeout: float,
    what: str,
    *,
    alive: Sequence[GroupWorker] = (),
    interval: float = 0.05,
) -> None:
    """Polls ``predicate`` until it holds; fails after ``timeout`` s, or at once when a
    worker in ``alive`` has exited (with its output)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        for w in alive:
            assert w.alive(), f"worker {w.pid} exited {w.proc.returncode}:\n{w.output()}"
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(interval)


def unfinished(ids: Iterable[Any] | None = None) -> int:
    """How many jobs (these, or all) are not in a terminal state yet."""
    from fastq_django.models import Job
    from ledger import TERMINAL

    rows = Job.objects.exclude(state__in=TERMINAL)
    if ids is not None:
        rows = rows.filter(pk__in=list(ids))
    return rows.count()

"""Running ``manage.py fastq_worker`` the way a user does, on the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


class WorkerProcess:
    """``manage.py fastq_worker`` in a subprocess, on the test database (``env`` adds to
    or overrides the environment, e.g. ``FASTQ_TEST_DB_NAME`` for another database)."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        from django.db import connection

        environ = dict(os.environ)
        environ["FASTQ_TEST_DB_NAME"] = str(connection.settings_dict["NAME"])
        environ["DJANGO_SETTINGS_MODULE"] = "testproject.settings"
        environ["PYTHONPATH"] = os.pathsep.join([str(HERE), environ.get("PYTHONPATH", "")])
        environ.update(env or {})
        # Output goes to a file: a pipe nobody reads would block a chatty worker.
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in wait()
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "manage.py"), "fastq_worker", *args],
            cwd=HERE,
            env=environ,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def wait(self, timeout: float = 300) -> tuple[int, str]:
        self.proc.wait(timeout=timeout)
        out = self.output()
        self.log.close()
        return self.proc.returncode, out

    def catches(self, sig: int) -> bool:
        """Whether the process has installed a handler for ``sig`` (SigCgt in
        /proc/<pid>/status); False once it has exited."""
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("SigCgt:"):
                        return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
        except (FileNotFoundError, ProcessLookupError):
            pass
        return False

    def signal(self, sig: int) -> None:
        """Sends ``sig``. A SIGTERM waits until the command has taken it over: sent while
        Python and Django are still starting, it would kill the process as systemd's
        default action does, which is not what a test of a graceful stop is about."""
        if sig == signal.SIGTERM:
            deadline = time.monotonic() + 300
            while self.proc.poll() is None and not self.catches(sig):
                assert time.monotonic() < deadline, "the worker never took SIGTERM over"
                time.sleep(0.05)
        self.proc.send_signal(sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)

    def finish(self, timeout: float = 300) -> str:
        code, out = self.wait(timeout)
        assert code == 0, f"worker exited {code}:\n{out}"
        return out


def run_worker(*args: str, timeout: float = 300) -> str:
    """Run a burst worker to completion; returns its output."""
    return WorkerProcess("--burst", *args).finish(timeout)

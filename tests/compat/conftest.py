"""Fixtures of the compatibility tests: the test project (compatproject) on
FASTQ_TEST_DB (sqlite or postgres), and worker subprocesses run as users run them
(``manage.py fastq_worker``, ``python -m fastq.compat.celery``, ``manage.py qcluster``).

PostgreSQL must be reachable at 127.0.0.1: locally its absence skips these tests, under
CI=true it fails them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _postgres_reachable() -> str | None:
    import psycopg

    try:
        psycopg.connect(
            host=os.environ.get("FASTQ_TEST_PG_HOST", "127.0.0.1"),
            port=os.environ.get("FASTQ_TEST_PG_PORT", "5432"),
            user=os.environ.get("FASTQ_TEST_PG_USER", "postgres"),
            dbname="postgres",
            connect_timeout=3,
        ).close()
    except psycopg.OperationalError as exc:
        return str(exc)
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("FASTQ_TEST_DB") != "postgres":
        return
    problem = _postgres_reachable()
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        raise pytest.UsageError(f"PostgreSQL is required in CI but unreachable: {problem}")
    skip = pytest.mark.skip(reason=f"PostgreSQL unreachable: {problem}")
    for item in items:
        item.add_marker(skip)


class Proc:
    """A command of the test project in a subprocess, on the test database."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        from django.db import connection

        environ = dict(os.environ)
        environ["FASTQ_TEST_DB_NAME"] = str(connection.settings_dict["NAME"])
        environ["DJANGO_SETTINGS_MODULE"] = "compatproject.settings"
        environ["PYTHONPATH"] = os.pathsep.join([str(HERE), environ.get("PYTHONPATH", "")])
        environ.update(env or {})
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in wait()
        self.proc = subprocess.Popen(
            [sys.executable, *argv],
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

    def finish(self, timeout: float = 300) -> str:
        code, out = self.wait(timeout)
        assert code == 0, f"exited {code}:\n{out}"
        return out

    def stop(self, timeout: float = 120) -> str:
        self.proc.send_signal(signal.SIGTERM)
        return self.finish(timeout)


@pytest.fixture
def run() -> Iterator[type[Proc]]:
    started: list[Proc] = []

    class Tracked(Proc):
        def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
            super().__init__(argv, env)
            started.append(self)

    yield Tracked
    for p in started:
        if p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait()
        if not p.log.closed:
            p.log.close()


def burst(run: type[Proc], *args: str, env: dict[str, str] | None = None) -> str:
    """``manage.py fastq_worker --burst`` to completion; its output."""
    return run(["manage.py", "fastq_worker", "--burst", *args], env).finish()

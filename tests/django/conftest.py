"""Fixtures for the Django tests. FASTQ_TEST_DB selects SQLite (default) or PostgreSQL.

PostgreSQL must be reachable at 127.0.0.1: locally its absence skips these tests, under
CI=true it fails them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from workerproc import WorkerProcess


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


@pytest.fixture
def worker() -> Iterator[type[WorkerProcess]]:
    started: list[WorkerProcess] = []

    class Tracked(WorkerProcess):
        def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
            super().__init__(*args, env=env)
            started.append(self)

    yield Tracked
    for w in started:
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait()
        w.log.close()

"""Fixtures of the reliability suite. It runs on tests/django's test project (the pytest
settings put tests/django on the path): FASTQ_TEST_DB=sqlite|postgres picks the database,
as for tests/django. PostgreSQL must be reachable at 127.0.0.1: locally its absence skips
these tests, under CI=true it fails them.

Workers run as ``manage.py fastq_worker`` subprocesses, each the leader of its own process
group (``fleet.GroupWorker``); every test's workers are killed, whole trees, at teardown.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fleet import GroupWorker, postgres_reachable


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("FASTQ_TEST_DB") != "postgres":
        return
    problem = postgres_reachable()
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        raise pytest.UsageError(f"PostgreSQL is required in CI but unreachable: {problem}")
    skip = pytest.mark.skip(reason=f"PostgreSQL unreachable: {problem}")
    for item in items:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """A test database of the suite's own on PostgreSQL, so that it can run next to
    tests/django on the same server (SQLite test databases are per process already)."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.postgresql":
        db.setdefault("TEST", {})
        db["TEST"]["NAME"] = f"{db['TEST'].get('NAME') or 'test_' + db['NAME']}_reliability"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The ledger file; workers started afterwards inherit FASTQ_LEDGER."""
    path = tmp_path / "ledger.jsonl"
    monkeypatch.setenv("FASTQ_LEDGER", str(path))
    return path


StartWorker = Callable[..., GroupWorker]


@pytest.fixture
def fleet(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StartWorker]:
    """``fleet(*args, env={...})`` starts a worker; all of them die at teardown. When the
    test failed, the end of each worker's output is printed."""
    started: list[GroupWorker] = []

    def start(*args: str, env: dict[str, str] | None = None) -> GroupWorker:
        log = tmp_path / f"worker-{len(started)}.log"
        w = GroupWorker(*args, log_path=log, extra_env=env)
        started.append(w)
        return w

    yield start
    for w in started:
        w.close()
    if request.node.stash.get(_FAILED, False):
        for w in started:
            tail = "\n".join(w.output().splitlines()[-30:])
            print(f"--- worker {w.pid} {' '.join(w.args)} exited {w.proc.returncode}:\n{tail}")

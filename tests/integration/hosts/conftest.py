"""Fixtures of the hosts suite: fastq workers on separate "machines" (Linux network
namespaces, see netns.py) sharing one PostgreSQL, cut off from it and given skewed
clocks. It runs on tests/django's test project with FASTQ_TEST_DB=postgres and reuses
the reliability suite's worker fleet and ledger (tests/integration/reliability).

It needs root, iproute2, socat and a C compiler (scripts/bootstrap.sh installs them) and
PostgreSQL at 127.0.0.1: locally their absence skips these tests, under CI=true it fails
them. The test process talks to PostgreSQL over 127.0.0.1; the workers only through their
hosts' veths.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "reliability"))

import netns
from fleet import GroupWorker, postgres_reachable

HOSTS = 3


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mine = [i for i in items if Path(str(i.fspath)).parent == Path(__file__).parent]
    if not mine:
        return
    if os.environ.get("FASTQ_TEST_DB") != "postgres":
        problem: str | None = "the hosts suite runs on PostgreSQL (FASTQ_TEST_DB=postgres)"
    else:
        problem = netns.unavailable() or postgres_reachable("127.0.0.1")
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        raise pytest.UsageError(f"the hosts suite cannot run in CI: {problem}")
    skip = pytest.mark.skip(reason=problem)
    for item in mine:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """A test database of the suite's own, so that it can run next to the others."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    db.setdefault("TEST", {})
    db["TEST"]["NAME"] = f"{db['TEST'].get('NAME') or 'test_' + db['NAME']}_hosts"


@pytest.fixture(scope="session")
def network() -> Iterator[list[netns.Host]]:
    """The hosts, made once for the session (leftovers of a crashed run go first) and
    removed at its end, whatever happened."""
    hosts = netns.setup(HOSTS)
    try:
        yield hosts
    finally:
        netns.teardown(hosts)


@pytest.fixture
def hosts(network: list[netns.Host]) -> Iterator[list[netns.Host]]:
    """The hosts, every cable connected at the start and at the end of each test."""
    for h in network:
        h.heal()
    yield network
    for h in network:
        h.heal()


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


StartOn = Callable[..., GroupWorker]


@pytest.fixture
def start_on(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StartOn]:
    """``start_on(host, *args, skew=0)`` starts ``fastq_worker *args`` on a host (its wall
    clock ``skew`` seconds off); every worker dies, whole tree, at teardown. When the test
    failed, the end of each worker's output is printed."""
    started: list[GroupWorker] = []

    def start(host: netns.Host, *args: str, skew: int = 0) -> GroupWorker:
        log = tmp_path / f"worker-{len(started)}-{host.ns}.log"
        w = GroupWorker(*args, log_path=log, extra_env=host.env(skew), prefix=host.prefix())
        started.append(w)
        return w

    yield start
    for w in started:
        w.close()
    if request.node.stash.get(_FAILED, False):
        for w in started:
            tail = "\n".join(w.output().splitlines()[-40:])
            print(f"--- worker {w.pid} {' '.join(w.args)} exited {w.proc.returncode}:\n{tail}")

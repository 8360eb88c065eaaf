"""``--max-tasks-per-child``: the supervisor replaces its worker process after that many
jobs; every job still runs exactly once."""

from __future__ import annotations

import signal

import ledger as ledger_check
import pytest
from fleet import unfinished, wait_for
from testapp import reliability_tasks

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.slow
def test_three_hundred_jobs_fifty_per_child(fleet, ledger):
    ids = [r.id for r in reliability_tasks.sleep.map([(0.001, f"m{i}") for i in range(300)])]
    w = fleet("--processes", "1", "--max-tasks-per-child", "50", "--concurrency", "4")
    wait_for(lambda: unfinished() == 0, 180, "every job to run", alive=[w], interval=0.2)
    w.signal(signal.SIGTERM)
    w.finish(60)
    report = ledger_check.check(ledger, ids)
    children = {e.pid for e in report.executions}
    print(f"\n300 jobs in {len(children)} worker processes\n{report.summary()}")
    assert report.states() == {"succeeded": 300}, report.summary()
    assert not report.duplicated, report.summary()
    report.assert_clean()
    assert {e.pgid for e in report.executions} == {w.pid}
    assert len(children) >= 6
    assert w.pid not in children, "jobs run in children, not in the supervisor"

"""A PostgreSQL restart in the middle of a load: the workers reconnect, every job
completes once, nothing is lost."""

from __future__ import annotations

import signal
import subprocess
import time

import ledger as ledger_check
import pytest
from django.db import connection
from fleet import unfinished, wait_for
from testapp import reliability_tasks

pytestmark = pytest.mark.django_db(transaction=True)

JOBS = 2000
RESTART = ["pg_ctlcluster", "--skip-systemctl-redirect", "15", "main", "restart"]


def _completed(ledger) -> int:
    return sum(e.completed for e in ledger_check.read(ledger))


@pytest.mark.slow
@pytest.mark.postgres
def test_a_server_restart_mid_load_loses_nothing(fleet, ledger):
    if connection.vendor != "postgresql":
        pytest.skip("restarts the PostgreSQL server")
    ids = [r.id for r in reliability_tasks.sleep.map([(0.01, f"p{i}") for i in range(JOBS)])]
    # One executor each, so that the load lasts long enough to restart the server inside it.
    workers = [fleet("--processes", "1", "--concurrency", "1") for _ in range(2)]
    wait_for(lambda: _completed(ledger) >= JOBS // 5, 120, "a fifth of the jobs", alive=workers)

    connection.close()
    restarted = time.time()
    subprocess.run(RESTART, check=True, timeout=120, capture_output=True)
    back = time.time()
    wait_for(lambda: unfinished() == 0, 300, "every job to finish", alive=workers, interval=0.5)
    for w in workers:
        w.signal(signal.SIGTERM)
    for w in workers:
        w.finish(120)

    report = ledger_check.check(ledger, ids)
    after = sum(e.started > back for e in report.executions)
    print(
        f"\nrestart took {back - restarted:.1f} s; {after} executions started after it\n"
        f"{report.summary()}"
    )
    assert after > 0, "the load ended before the restart: nothing was tested"
    assert report.states() == {"succeeded": JOBS}, report.summary()
    assert not report.duplicated, report.summary()  # nothing was killed
    report.assert_clean()

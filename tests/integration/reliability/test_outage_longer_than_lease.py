"""A PostgreSQL outage longer than the workers' lease: a worker that finished jobs while
the database was away still holds their outcomes, and its leases have expired on the
database's clock. When the database returns, no worker may rescue those jobs before
their outcomes are written: every job runs exactly once (nothing was killed)."""

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

JOBS = 400
LEASE = 5.0
CLUSTER = ["pg_ctlcluster", "--skip-systemctl-redirect", "15", "main"]


def _started(ledger) -> int:
    return len(ledger_check.read(ledger))


@pytest.mark.slow
@pytest.mark.postgres
def test_outcomes_held_through_an_outage_are_written_not_rerun(fleet, ledger):
    if connection.vendor != "postgresql":
        pytest.skip("stops the PostgreSQL server")
    ids = [r.id for r in reliability_tasks.sleep.map([(1.0, f"o{i}") for i in range(JOBS)])]
    workers = [
        fleet("--processes", "1", "--concurrency", "8", "--lease", str(LEASE)) for _ in range(2)
    ]
    wait_for(lambda: _started(ledger) >= 40, 120, "the load to start", alive=workers)

    connection.close()
    stopped = time.time()
    subprocess.run([*CLUSTER, "stop", "-m", "fast"], check=True, timeout=120, capture_output=True)
    try:
        # The outage itself: several leases long, so every lease held has expired on the
        # database's clock when it returns (the server's clock kept running).
        time.sleep(2.5 * LEASE)
    finally:
        subprocess.run([*CLUSTER, "start"], check=True, timeout=120, capture_output=True)
    back = time.time()
    wait_for(lambda: unfinished() == 0, 300, "every job to finish", alive=workers, interval=0.5)
    for w in workers:
        w.signal(signal.SIGTERM)
    for w in workers:
        w.finish(120)

    report = ledger_check.check(ledger, ids)
    during = sum(stopped < e.ended < back for e in report.executions if e.completed)
    print(
        f"\noutage {back - stopped:.1f} s; {during} executions ended during it\n{report.summary()}"
    )
    assert during > 0, "no job finished while the database was away: nothing was tested"
    assert report.states() == {"succeeded": JOBS}, report.summary()
    assert not report.duplicated, report.summary()
    report.assert_clean()

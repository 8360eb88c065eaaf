"""A job that runs several times longer than the lease is never rescued while its worker
lives: the worker renews the lease every third of it."""

from __future__ import annotations

import json
import signal

import ledger as ledger_check
import pytest
from fastq_django.models import Job
from fleet import wait_for
from testapp import reliability_tasks

pytestmark = pytest.mark.django_db(transaction=True)

LEASE = 2.0


def test_a_job_three_times_its_lease_runs_once(fleet, ledger):
    job = reliability_tasks.who_ran.delay(3.5 * LEASE)
    a = fleet("--concurrency", "1", "--lease", str(LEASE))
    wait_for(lambda: ledger_check.read(ledger), 60, "worker A to start the job", alive=[a])
    # Another worker alongside, whose rescuer runs at its start and every 5 s.
    b = fleet("--concurrency", "2", "--lease", str(LEASE))
    # And while the job runs, one short-lived worker after another: each runs the rescuer
    # as it starts, then exits (--burst: nothing is queued).
    probes = 0
    while Job.objects.get(pk=job.id).state == "running":
        assert a.alive() and b.alive()
        fleet("--burst", "--lease", str(LEASE)).finish(60)
        probes += 1

    assert probes >= 2, "the rescuer should have looked at the running job"
    # Had it been rescued, let the rerun happen so that the ledger shows it.
    wait_for(
        lambda: Job.objects.get(pk=job.id).state in ledger_check.TERMINAL, 60, "the job to end"
    )
    row = Job.objects.get(pk=job.id)
    runs = ledger_check.read(ledger)
    assert len(runs) == 1, [str(e) for e in runs]
    assert runs[0].completed and runs[0].pgid == a.pid
    assert (row.state, row.attempts) == ("succeeded", 1)
    assert json.loads(row.result) == {"attempt": 1, "pid": runs[0].pid}
    for w in (a, b):
        w.signal(signal.SIGTERM)
        w.finish(60)

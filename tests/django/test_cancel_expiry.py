"""Cancel and expiry, stored in the database: a restart does not forget them."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import fastq
import pytest
from fastq_django.models import Job
from testapp import tasks
from testapp.models import Execution
from workerproc import run_worker

pytestmark = pytest.mark.django_db(transaction=True)


def test_cancelled_queued_job_never_starts():
    doomed = tasks.record.delay("never")
    kept = tasks.record.delay("kept")
    assert doomed.cancel() == "cancelled"
    run_worker()
    assert doomed.status == "CANCELLED"
    with pytest.raises(fastq.TaskFailed, match="cancelled before it started"):
        doomed.get(timeout=1)
    assert kept.get(timeout=10) == "kept"
    assert not Execution.objects.filter(key="never").exists()
    assert doomed.cancel() == "finished"
    assert fastq.AsyncResult("0190a2b3-0000-7000-8000-000000000000").cancel() == "not_found"


def test_running_job_sees_cancel_requested(worker):
    r = tasks.cooperative.delay("long")
    w = worker("--lease", "1.5")  # leases renew (and bring cancels) every 0.5 s
    deadline = time.monotonic() + 60
    while not Execution.objects.filter(key="long").exists():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert r.cancel() == "requested"
    assert r.get(timeout=20) == "stopped early"
    w.signal(15)
    w.finish(30)


def test_expired_jobs_never_run():
    stale = tasks.record.apply_async(args=("stale",), expires=datetime.now(UTC) - timedelta(1))
    fresh = tasks.record.apply_async(args=("fresh",), expires=3600)
    run_worker()
    assert stale.status == "EXPIRED"
    assert Job.objects.get(pk=stale.id).error_type == "fastq.Expired"
    assert fresh.get(timeout=10) == "fresh"
    assert not Execution.objects.filter(key="stale").exists()

"""Retries and dead jobs on a real database, with the worker as a subprocess."""

from __future__ import annotations

import time

import fastq
import pytest
from fastq_django.models import Job
from testapp import tasks
from testapp.models import Execution
from workerproc import run_worker

pytestmark = pytest.mark.django_db(transaction=True)


def test_autoretry_then_success_and_exhaustion():
    ok = tasks.flaky.delay("ok", 2)
    exhausted = tasks.flaky.delay("bad", 5)
    out = run_worker()
    assert ok.get(timeout=10) == 3
    assert Job.objects.get(pk=ok.id).attempts == 3
    with pytest.raises(fastq.TaskFailed) as info:
        exhausted.get(timeout=10)
    assert info.value.type == "ConnectionError"
    assert "attempt 3" in info.value.message
    assert exhausted.status == "DEAD"  # retried as asked, attempts spent: given up
    assert Execution.objects.filter(key="bad").count() == 3
    assert tasks.fail.delay("once").status == "QUEUED"
    assert "fastq worker" in out


def test_worker_death_past_max_retries_is_dead(worker):
    r = tasks.record.apply_async(args=("doomed", 30), max_retries=0)
    first = worker("--lease", "1")
    deadline = time.monotonic() + 60
    while not Execution.objects.filter(key="doomed").exists():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(1.5)  # past the lease: only heartbeats keep the job alive now
    assert Job.objects.get(pk=r.id).state == "running", "heartbeats renew a live lease"
    first.kill()
    first.proc.wait()
    time.sleep(1.2)  # let the lease expire
    run_worker()
    job = Job.objects.get(pk=r.id)
    assert job.state == "dead"
    assert job.error_type == "fastq.WorkerLost"
    assert r.status == "DEAD"
    with pytest.raises(fastq.TaskFailed, match="worker running it was lost"):
        r.get(timeout=1)
    assert Execution.objects.filter(key="doomed").count() == 1

"""Time limits. A hard limit (``time_limit``) stops a job that sleeps past it: the job ends
with fastq.TimeLimitExceeded, and a sibling running in the same worker at the same moment
still completes (returned to the queue and run again, not failed). A soft limit
(``soft_time_limit``) raises fastq.SoftTimeLimitExceeded inside the task, which can clean
up and return normally."""

from __future__ import annotations

import json
import signal

import ledger as ledger_check
import pytest
from fastq_django.models import Job
from fleet import wait_for
from testapp import reliability_tasks

pytestmark = pytest.mark.django_db(transaction=True)

ENV = {"FASTQ_TEST_IMPORTS": "testapp.time_limit_tasks"}


def _ended(job_id: str) -> bool:
    return Job.objects.get(pk=job_id).state in ledger_check.TERMINAL


def test_a_hard_time_limit_stops_the_job_and_spares_its_sibling(fleet, ledger):
    from testapp import time_limit_tasks

    sibling = reliability_tasks.sleep.delay(3.0, "sibling")
    limited = time_limit_tasks.hard_limited.delay(30.0)  # time_limit=1, max_retries=0
    w = fleet("--processes", "1", "--concurrency", "2", "--lease", "5", env=ENV)
    wait_for(lambda: _ended(limited.id), 60, "the limited job to end", alive=[w])
    wait_for(lambda: _ended(sibling.id), 60, "the sibling to end", alive=[w])

    row = Job.objects.get(pk=limited.id)
    assert (row.state, row.error_type, row.attempts) == ("dead", "fastq.TimeLimitExceeded", 1)
    report = ledger_check.check(ledger, [sibling.id, limited.id])
    (stopped,) = report.of(limited.id)
    assert not stopped.completed
    first = report.of(sibling.id)[0]
    assert first.pgid == stopped.pgid and first.started < stopped.started + 1.0, (
        "the sibling was not running next to the limited job"
    )
    sib = Job.objects.get(pk=sibling.id)
    assert (sib.state, sib.error_type) == ("succeeded", ""), (sib.error_type, sib.error)
    assert [e.completed for e in report.of(sibling.id)].count(True) == 1
    assert json.loads(sib.result) == "sibling"

    assert w.alive(), w.output()
    w.signal(signal.SIGTERM)
    w.finish(60)


def test_a_soft_time_limit_lets_the_task_clean_up_and_return(fleet, ledger):
    from testapp import time_limit_tasks

    job = time_limit_tasks.soft_limited.delay(10.0)  # soft_time_limit=0.5
    w = fleet("--concurrency", "2", env=ENV)
    wait_for(lambda: _ended(job.id), 60, "the job to end", alive=[w])
    row = Job.objects.get(pk=job.id)
    assert (row.state, row.error_type) == ("succeeded", ""), (row.error_type, row.error)
    assert job.get(timeout=5) == "cleaned up"
    (run,) = ledger_check.read(ledger)
    assert run.completed and run.outcome == "ok"
    (cleanup,) = [n for n in run.notes if n["event"] == "cleanup"]
    assert cleanup["t"] - run.started >= 0.5
    w.signal(signal.SIGTERM)
    w.finish(60)

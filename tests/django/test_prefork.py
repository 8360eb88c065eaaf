"""Prefork mode: the supervisor restarts dead children, settles their jobs, enforces hard
time limits and recycles children."""

from __future__ import annotations

import time

import pytest
from fastq_django.models import Job
from testapp import tasks
from testapp.models import Execution
from workerproc import run_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_hard_time_limit_kills_the_process_and_spares_the_sibling_job():
    over = tasks.overrun.delay("over")
    sibling = tasks.record.delay("sibling", sleep=2.0)
    out = run_worker("--processes", "1", "--concurrency", "2")
    job = Job.objects.get(pk=over.id)
    assert job.state == "dead", out
    assert job.error_type == "fastq.TimeLimitExceeded"
    assert "timeout" in job.error
    assert job.attempts == 1
    # The sibling was interrupted by the kill through no fault of its own: it went back
    # to the queue without spending an attempt, and ran again to the end.
    sib = Job.objects.get(pk=sibling.id)
    assert sib.state == "succeeded", out
    runs = Execution.objects.filter(key="sibling").count()
    assert sib.attempts == 1 and runs in (1, 2), (sib.attempts, runs)


def test_soft_time_limit_raises_inside_the_task():
    r = tasks.cleans_up.delay("soft")
    run_worker("--processes", "1")
    assert r.get(timeout=10) == "cleaned up"
    assert Execution.objects.filter(key="soft").count() == 1


def test_poison_pill_is_dead_after_its_attempts_and_others_flow():
    pill = tasks.poison.delay()
    normal = tasks.add.map([(i, i) for i in range(200)])
    out = run_worker("--processes", "1", "--concurrency", "2")
    job = Job.objects.get(pk=pill.id)
    assert job.state == "dead", out
    assert job.error_type == "fastq.WorkerLost"
    assert "worker_lost" in job.error
    assert job.attempts == 3
    assert Job.objects.filter(pk__in=[r.id for r in normal], state="succeeded").count() == 200


def test_max_tasks_per_child_recycles_processes():
    tasks.record.map([(f"r{i}",) for i in range(120)])
    out = run_worker("--processes", "1", "--max-tasks-per-child", "25")
    assert Job.objects.filter(state="succeeded").count() == 120, out
    pids = set(Execution.objects.values_list("pid", flat=True))
    assert len(pids) >= 5, pids


def test_rate_limit_holds_across_processes():
    tasks.limited.map([(f"l{i}",) for i in range(40)])
    started = time.monotonic()
    run_worker("--processes", "2")
    assert Job.objects.filter(state="succeeded").count() == 40
    # 40 starts at 20/s take at least 39 intervals of 50 ms.
    assert time.monotonic() - started >= 1.9

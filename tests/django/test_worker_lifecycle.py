"""A long-running worker as deployed: woken by new work, stopped by SIGTERM."""

from __future__ import annotations

import re
import signal
import time

import pytest
from fastq_django.models import Job
from testapp import tasks
from testapp.models import Execution

pytestmark = pytest.mark.django_db(transaction=True)


def _wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_idle_worker_picks_up_new_jobs(worker):
    w = worker("--concurrency", "2")
    time.sleep(1.0)  # let it go idle (LISTEN on PostgreSQL, polling on SQLite)
    results = [tasks.add.delay(i, i) for i in range(20)]
    assert [r.get(timeout=30) for r in results] == [2 * i for i in range(20)]
    w.signal(signal.SIGTERM)
    out = w.finish(30)
    # One line per worker process; together they ran the 20 jobs.
    assert sum(int(n) for n in re.findall(r"stopped after .*?: (\d+) succeeded", out)) == 20, out


def test_sigterm_finishes_running_jobs_and_returns_the_rest(worker):
    tasks.record.map([(f"k{i}", 0.5) for i in range(40)])
    w = worker("--concurrency", "2")
    _wait_for(lambda: Execution.objects.count() >= 2)
    w.signal(signal.SIGTERM)
    out = w.finish(60)
    assert "released" in out
    started = set(Execution.objects.values_list("job_id", flat=True))
    assert Job.objects.filter(state="running").count() == 0, "nothing left claimed"
    for job in Job.objects.all():
        if str(job.id).replace("-", "") in {s.replace("-", "") for s in started}:
            assert job.state == "succeeded", "a job that started was finished"
        else:
            assert job.state == "queued", job.state
            assert job.attempts == 0, "returned without spending an attempt"
    assert Job.objects.filter(state="queued").count() > 0


def test_a_lost_task_connection_costs_one_job_not_the_thread():
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("needs a server that can drop a connection")
    from workerproc import run_worker

    lost = tasks.lose_connection.delay()
    later = [tasks.record.delay(f"after{i}") for i in range(5)]
    run_worker("--concurrency", "1")  # one executor thread: the same Django connection
    assert Job.objects.get(pk=lost.id).state == "failed"
    assert [r.get(timeout=10) for r in later] == [f"after{i}" for i in range(5)]


def _started(key: str) -> bool:
    return Execution.objects.filter(key=key).exists()


@pytest.mark.parametrize("how", ["grace", "second-sigint"])
def test_running_jobs_outliving_the_stop_go_back_unspent(worker, how):
    r = tasks.record.delay("slow", 30)
    w = worker("--grace", "1" if how == "grace" else "60")
    _wait_for(lambda: _started("slow"))
    if how == "grace":
        w.signal(signal.SIGTERM)
    else:
        w.signal(signal.SIGINT)
        time.sleep(0.3)
        w.signal(signal.SIGINT)
    out = w.finish(30)  # exit code 0, well before the task's 30 s
    assert "1 released" in out
    job = Job.objects.get(pk=r.id)
    assert job.state == "queued"
    assert job.attempts == 0, "returned without spending an attempt"

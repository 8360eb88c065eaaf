"""``fastq_worker --prefetch 0`` holds no job beyond the ones it runs, so a second worker
gets the jobs a busy first one could not start; without it a worker holds a claim batch.
Judged from the rows (which worker claimed what), with generous deadlines."""

from __future__ import annotations

import signal
import time

import pytest
from fastq_django.models import Job
from testapp import tasks

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _wait_for(predicate, *workers, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        states = list(Job.objects.values_list("state", "worker"))
        assert time.monotonic() < deadline, (states, [w.output() for w in workers])
        time.sleep(0.05)


def _running() -> list[Job]:
    return list(Job.objects.filter(state="running"))


def test_prefetch_0_leaves_waiting_jobs_to_other_workers(worker):
    first = worker("--processes", "0", "--concurrency", "1", "--prefetch", "0", "--no-scheduler")
    jobs = [tasks.cooperative.delay(f"long-{i}", limit=60) for i in range(3)]
    _wait_for(lambda: len(_running()) == 1, first)
    time.sleep(1.0)  # a worker that prefetched would have claimed the others by now
    assert len(_running()) == 1
    assert Job.objects.filter(state="queued").count() == 2

    second = worker("--processes", "0", "--concurrency", "1", "--prefetch", "0", "--no-scheduler")
    _wait_for(lambda: len(_running()) == 2, first, second)
    holders = {job.worker for job in _running()}
    assert len(holders) == 2  # one job each: neither hoards
    assert Job.objects.filter(state="queued").count() == 1

    for job in jobs:
        job.cancel()
    for w in (first, second):
        w.signal(signal.SIGTERM)
        assert w.wait(timeout=120)[0] == 0


def test_default_prefetch_holds_a_claim_batch(worker):
    w = worker("--processes", "0", "--concurrency", "1", "--no-scheduler")
    jobs = [tasks.cooperative.delay(f"held-{i}", limit=60) for i in range(3)]
    _wait_for(lambda: len(_running()) == 3, w)  # one runs, two are held by the same worker
    assert len({job.worker for job in _running()}) == 1
    for job in jobs:
        job.cancel()
    w.signal(signal.SIGTERM)
    assert w.wait(timeout=120)[0] == 0

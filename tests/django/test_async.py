"""async def tasks run on the worker's event loop, many at once per process."""

from __future__ import annotations

import pytest
from fastq_django.models import Job
from testapp import tasks
from workerproc import run_worker

pytestmark = pytest.mark.django_db(transaction=True)


def test_many_async_jobs_run_at_once_on_one_executor_thread():
    results = tasks.async_sleep.map([(0.3,) for _ in range(40)])
    run_worker("--processes", "1", "--concurrency", "1")
    spans = [r.get(timeout=10) for r in results]
    # The most jobs in flight at one instant: one executor thread, yet they overlapped.
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    peak = running = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    assert peak >= 10, spans


def test_async_soft_time_limit_ends_the_attempt():
    r = tasks.async_overrun.delay()
    run_worker("--processes", "1")
    job = Job.objects.get(pk=r.id)
    assert job.state == "failed"
    assert job.error_type == "fastq.SoftTimeLimitExceeded"
    assert "soft_time_limit" in job.error

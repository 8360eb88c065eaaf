"""kill -9 of a worker in the middle of 2,000 jobs, then a restart: every job completes."""

from __future__ import annotations

import time

import pytest
from fastq_django.models import Job
from testapp import tasks
from testapp.models import Execution

pytestmark = pytest.mark.django_db(transaction=True)


def test_sigkill_mid_run_then_restart_completes_everything(worker):
    tasks.record.map([(f"k{i}", 0.002) for i in range(2000)])
    # A short lease so the restarted worker rescues the killed one's jobs quickly.
    first = worker("--concurrency", "4", "--lease", "2")
    deadline = time.monotonic() + 120
    while Execution.objects.count() < 300:
        assert time.monotonic() < deadline, "first worker made no progress"
        assert first.proc.poll() is None, first.output()
        time.sleep(0.05)
    first.kill()  # SIGKILL: no cleanup, leases left behind
    first.proc.wait()
    time.sleep(2.5)  # let the leases expire
    # Counted once the leases expired: a claim its worker process sent just before the
    # kill (the children die with the supervisor) may reach the database after it.
    stranded = Job.objects.filter(state="running").count()
    assert stranded > 0, "the kill should leave claimed jobs behind"
    worker("--burst", "--concurrency", "4").finish()

    assert Job.objects.filter(state="succeeded").count() == 2000
    assert Execution.objects.values("key").distinct().count() == 2000
    # A job ran more than once only if the kill stranded it. A stranded job is charged
    # for the kill only if its start had been recorded: a claim that never started goes
    # back unspent, and so does a run the kill cut off within the few milliseconds
    # between its start and the flush that records it (that rerun repeats the attempt
    # number).
    attempts_by_job: dict[str, list[int]] = {}
    for job_id, attempt in Execution.objects.values_list("job_id", "attempt"):
        attempts_by_job.setdefault(job_id, []).append(attempt)
    assert len(attempts_by_job) == 2000
    for attempts in attempts_by_job.values():
        assert len(attempts) <= 2 and max(attempts) <= 2, attempts
    reran = sum(1 for a in attempts_by_job.values() if len(a) > 1)
    assert reran <= stranded
    assert Job.objects.filter(attempts__gt=1).count() <= stranded

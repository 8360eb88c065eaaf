"""Poison pills: a task that kills the process running it, on every attempt. The
supervisor restarts its worker process each time, the job ends DEAD with fastq.WorkerLost
once its attempts are spent, and the jobs around it all succeed."""

from __future__ import annotations

import signal

import ledger as ledger_check
import pytest
from fastq_django.models import Job
from fleet import unfinished, wait_for
from testapp import reliability_tasks

pytestmark = pytest.mark.django_db(transaction=True)

NORMAL = 200


@pytest.mark.slow
@pytest.mark.parametrize("poison", ["exit_hard", "segfault"])
def test_a_poison_pill_dies_alone(fleet, ledger, poison):
    task = getattr(reliability_tasks, poison)  # max_retries=2: three attempts
    first = reliability_tasks.sleep.map([(0.002, f"n{i}") for i in range(NORMAL // 2)])
    pill = task.delay()
    second = reliability_tasks.sleep.map([(0.002, f"n{i}") for i in range(NORMAL // 2, NORMAL)])
    normal = [r.id for r in first + second]
    w = fleet("--processes", "1", "--lease", "2")

    wait_for(lambda: unfinished() == 0, 180, "every job to end", alive=[w], interval=0.2)
    row = Job.objects.get(pk=pill.id)
    # Each run of the pill takes its worker process down, and with it the outcomes of
    # neighbours that had finished but were not written yet: those may run again.
    died = {e.pid for e in ledger_check.read(ledger) if e.job == ledger_check.job_key(pill.id)}
    report = ledger_check.check(ledger, [*normal, pill.id], killed_pids=died)
    print(f"\n{poison}: {row.state} {row.error_type} after {row.attempts}\n{report.summary()}")
    assert (row.state, row.error_type, row.attempts) == ("dead", "fastq.WorkerLost", 3)
    runs = report.of(pill.id)
    assert [e.attempt for e in runs] == [1, 2, 3], [str(e) for e in runs]
    assert not any(e.completed for e in runs)
    assert len({e.pid for e in runs}) == 3, "each attempt killed its own worker process"
    assert report.states(normal) == {"succeeded": NORMAL}, report.summary()
    report.assert_clean()

    assert w.alive(), w.output()
    after = reliability_tasks.sleep.delay(0.0, "after")
    assert after.get(timeout=60) == "after"
    w.signal(signal.SIGTERM)
    w.finish(60)

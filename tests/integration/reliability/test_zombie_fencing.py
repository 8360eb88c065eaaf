"""Fencing: a worker paused past its lease (SIGSTOP: a long GC pause, a frozen VM) loses
its job to another worker, and when it wakes up its outcome changes nothing."""

from __future__ import annotations

import json
import signal
import time

import ledger as ledger_check
import pytest
from fastq_django.models import Job
from fleet import wait_for
from testapp import reliability_tasks

pytestmark = pytest.mark.django_db(transaction=True)


def _row(job_id: str) -> dict[str, object]:
    return Job.objects.filter(pk=job_id).values(
        "state", "attempts", "result", "worker", "error_type", "finished_at", "lease_token"
    )[0]


def test_a_paused_worker_cannot_overwrite_the_attempt_that_replaced_it(fleet, ledger):
    job = reliability_tasks.who_ran.delay(3.0)
    a = fleet("--concurrency", "1", "--lease", "1")
    wait_for(lambda: ledger_check.read(ledger), 60, "worker A to start the job", alive=[a])
    # A's completer writes the start mark with its next flush. Paused before that, A would
    # leave a job the rescuer cannot tell from one never started, which goes back with its
    # attempt returned (the rescue statement's rule): wait until the row says it started.
    wait_for(
        lambda: Job.objects.filter(pk=job.id, started_at__isnull=False).exists(),
        60,
        "A's start mark",
        alive=[a],
    )
    a.signal_all(signal.SIGSTOP)
    # A's lease (1 s) runs out; B's rescuer (at B's start, then every 5 s) returns the job
    # to the queue and B runs it as attempt 2.
    time.sleep(1.5)
    b = fleet("--concurrency", "1", "--lease", "5")
    wait_for(lambda: _row(job.id)["state"] == "succeeded", 60, "B to finish the job", alive=[b])
    by_b = _row(job.id)
    runs = ledger_check.read(ledger)
    assert [(e.pgid, e.attempt) for e in runs] == [(a.pid, 1), (b.pid, 2)], runs
    assert json.loads(by_b["result"]) == {"attempt": 2, "pid": runs[1].pid}
    assert by_b["attempts"] == 2

    a.signal_all(signal.SIGCONT)
    wait_for(lambda: ledger_check.read(ledger)[0].completed, 30, "A's execution to end")
    a.signal(signal.SIGTERM)  # a graceful stop flushes A's outcome before it exits
    out_a = a.finish(60)
    assert " 1 fenced" in out_a, out_a  # A's outcome was refused
    assert _row(job.id) == by_b, "A's late outcome changed the job"
    assert job.get(timeout=5) == {"attempt": 2, "pid": runs[1].pid}

    b.signal(signal.SIGTERM)
    b.finish(60)
    report = ledger_check.check(ledger, [job.id], killed_pgids=[a.pid])
    assert report.states() == {"succeeded": 1}


def test_a_resumed_worker_does_not_start_the_jobs_it_lost(fleet, ledger):
    """Fencing keeps a late outcome out of the table, but not a task's side effects: a
    worker waking up past its lease must not start the jobs it had claimed and not
    started yet, since another worker has them now."""
    running = reliability_tasks.sleep.delay(3.0, "running")
    held = [reliability_tasks.sleep.delay(0.0, f"held{i}").id for i in range(3)]
    a = fleet("--concurrency", "1", "--lease", "1")  # claims all four, runs one at a time
    wait_for(lambda: ledger_check.read(ledger), 60, "worker A to start a job", alive=[a])
    assert Job.objects.filter(pk__in=held, state="running").count() == 3, "A holds them"
    a.signal_all(signal.SIGSTOP)
    time.sleep(1.5)
    b = fleet("--concurrency", "2", "--lease", "5")
    wait_for(
        lambda: Job.objects.filter(state="succeeded").count() == 4, 60, "B to run them", alive=[b]
    )
    resumed = time.time()
    a.signal_all(signal.SIGCONT)
    wait_for(lambda: ledger_check.read(ledger)[0].completed, 30, "A's running job to end")
    time.sleep(1.0)  # room for A to start what it still holds, if it would
    a.signal(signal.SIGTERM)
    a.finish(60)
    b.signal(signal.SIGTERM)
    b.finish(60)

    report = ledger_check.check(ledger, [running.id, *held])
    late = [str(e) for e in report.executions if e.pgid == a.pid and e.started > resumed]
    assert not late, f"A started jobs it no longer held:\n{report.summary()}"
    for job_id in held:
        assert [e.pgid for e in report.of(job_id)] == [b.pid]
    assert report.states() == {"succeeded": 4}

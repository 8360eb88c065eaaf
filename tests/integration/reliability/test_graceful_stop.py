"""Stopping a worker: SIGTERM (sent to the worker's pid, as ``kill`` and container
runtimes do) stops claims within 1 s and lets the running job finish within --grace; a job
that outlives the grace period goes back to the queue counted as interrupted, without
spending an attempt the first times and charged after that; a second SIGTERM stays
graceful; SIGINT twice (sent to the whole process group, as Ctrl-C in a terminal does)
stops now and still returns the running job. The worker exits 0 in every case."""

from __future__ import annotations

import signal
import time

import ledger as ledger_check
import pytest
from fastq_django.models import Job
from fleet import wait_for
from testapp import reliability_tasks

pytestmark = pytest.mark.django_db(transaction=True)


def _started(ledger, key: str) -> bool:
    return any(e.key == key for e in ledger_check.read(ledger))


def _enqueue(prefix: str, n: int) -> list[str]:
    return [reliability_tasks.sleep.delay(0.0, f"{prefix}{i}").id for i in range(n)]


def _returned_unspent(job_ids: list[str]) -> None:
    rows = list(Job.objects.filter(pk__in=job_ids).values_list("state", "attempts", "worker"))
    assert rows == [("queued", 0, "")] * len(job_ids), rows


def test_sigterm_stops_claiming_and_the_running_job_finishes(fleet, ledger):
    long = reliability_tasks.sleep.delay(3.0, "long")
    queued = _enqueue("before", 5)
    w = fleet("--concurrency", "1", "--grace", "30")
    wait_for(lambda: _started(ledger, "long"), 60, "the 3 s job to start", alive=[w])
    signalled = time.time()
    w.signal(signal.SIGTERM)
    after = _enqueue("after", 5)
    time.sleep(1.0)
    later = _enqueue("later", 5)

    code, out = w.wait(120)
    assert code == 0, out
    runs = ledger_check.read(ledger)
    # A job enqueued in the signal's instant may still be claimed before the supervisor
    # takes the signal (and then runs to the end). The "before" jobs the first process
    # held and hands back when it stops are not run by its sibling: the supervisor raises
    # its stop word before it relays the signal, and from then on no process claims or
    # starts a job. Nothing starts 1 s after the signal.
    keys = [e.key for e in runs]
    assert keys[0] == "long" and set(keys[1:]) <= {f"after{i}" for i in range(5)}, keys
    assert runs[0].completed and runs[0].outcome == "ok"
    assert all(e.completed for e in runs), [str(e) for e in runs]
    assert all(e.started < signalled + 1.0 for e in runs), "a job started 1 s after SIGTERM"
    assert Job.objects.get(pk=long.id).state == "succeeded"
    ran = {e.job for e in runs}
    _returned_unspent([j for j in queued + after if ledger_check.job_key(j) not in ran] + later)


def test_a_job_outliving_the_grace_period_goes_back_unspent(fleet, ledger):
    slow = reliability_tasks.sleep.delay(30.0, "slow")
    w = fleet("--concurrency", "1", "--grace", "1")
    wait_for(lambda: _started(ledger, "slow"), 60, "the 30 s job to start", alive=[w])
    w.signal(signal.SIGTERM)
    code, out = w.wait(60)
    assert code == 0, out
    (run,) = ledger_check.read(ledger)
    assert not run.completed, "the job cannot have finished its 30 s"
    _returned_unspent([slow.id])
    assert Job.objects.get(pk=slow.id).interrupted == 1, "the cut-off run leaves a trace"


def test_a_job_cut_off_at_every_grace_end_is_charged_after_the_bound(fleet, ledger):
    """Deploy after deploy the same long job is cut off: each run counts in ``interrupted``,
    the first MAX_UNSPENT_HANDBACKS go back unspent, then the attempt is charged: with no
    retries left the job ends dead instead of running forever."""
    from fastq_django.models import MAX_UNSPENT_HANDBACKS

    slow = reliability_tasks.sleep_once.delay(30.0, "slow")
    for cut in range(1, MAX_UNSPENT_HANDBACKS + 2):
        w = fleet("--processes", "1", "--concurrency", "1", "--grace", "1")
        wait_for(
            lambda n=cut: len(ledger_check.read(ledger)) == n,
            60,
            f"run {cut} of the 30 s job to start",
            alive=[w],
        )
        w.signal(signal.SIGTERM)
        code, out = w.wait(60)
        assert code == 0, out
        row = Job.objects.get(pk=slow.id)
        if cut <= MAX_UNSPENT_HANDBACKS:
            assert (row.state, row.attempts, row.interrupted) == ("queued", 0, cut), cut
        else:
            assert (row.state, row.attempts, row.interrupted) == ("dead", 1, cut)
            assert row.error_type == "fastq.Interrupted"
            assert f" {cut} time(s)" in row.error and "--grace" in row.error, row.error
    runs = ledger_check.read(ledger)
    assert len(runs) == MAX_UNSPENT_HANDBACKS + 1 and not any(e.completed for e in runs)


def test_a_second_sigterm_stays_graceful(fleet, ledger):
    long = reliability_tasks.sleep.delay(3.0, "long")
    w = fleet("--concurrency", "1", "--grace", "30")
    wait_for(lambda: _started(ledger, "long"), 60, "the 3 s job to start", alive=[w])
    w.signal(signal.SIGTERM)
    time.sleep(0.3)
    w.signal(signal.SIGTERM)
    code, out = w.wait(120)
    assert code == 0, out
    (run,) = ledger_check.read(ledger)
    assert run.completed and run.outcome == "ok"
    row = Job.objects.get(pk=long.id)
    assert (row.state, row.attempts) == ("succeeded", 1)


def test_two_sigints_stop_now_and_return_the_running_job(fleet, ledger):
    slow = reliability_tasks.sleep.delay(30.0, "slow")
    w = fleet("--concurrency", "1", "--grace", "60")
    wait_for(lambda: _started(ledger, "slow"), 60, "the 30 s job to start", alive=[w])
    w.signal_all(signal.SIGINT)
    time.sleep(0.3)
    w.signal_all(signal.SIGINT)
    code, out = w.wait(60)
    assert code == 0, out
    (run,) = ledger_check.read(ledger)
    assert not run.completed
    _returned_unspent([slow.id])
    assert Job.objects.get(pk=slow.id).interrupted == 1

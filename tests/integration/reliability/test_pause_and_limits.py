"""Pausing a queue and fleet-wide concurrency limits, judged from the ledger.

* A fleet-wide limit (``FASTQ["QUEUES"] = {"limited": {"concurrency": 3}}``) holds over
  three worker subprocesses (two processes each): the ledger's executions never overlap
  more than three deep, and reach three (else the test proves nothing). Lowered to one at
  run time, the next batch never overlaps at all.
* A pause stops every start of the queue within 1 s on every worker, including a worker
  started after the pause (the pause is a row); jobs running at the pause finish; other
  queues keep running; enqueueing into the paused queue still works; after the resume
  every job runs exactly once.

A ledger line is written inside the task body, so an execution's interval lies within
its job's running interval in the database: an overlap seen in the ledger is one the
database had too.
"""

from __future__ import annotations

import json
import signal
import time

import ledger as ledger_check
import pytest
from fleet import unfinished, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

ENV = {
    "FASTQ_TEST_IMPORTS": "testapp.queue_control_tasks",
    "FASTQ_TEST_QUEUES": json.dumps(
        {"limited": {"concurrency": 3}, "pausable": {}, "steady": {}, "default": {}}
    ),
}


def deepest_overlap(executions: list[ledger_check.Execution]) -> int:
    """The most executions running at one instant (an end at t comes before a start at t)."""
    events = []
    for e in executions:
        assert e.ended is not None, f"unfinished execution {e}"
        events.append((e.started, 1))
        events.append((e.ended, -1))
    depth = best = 0
    for _, step in sorted(events, key=lambda ev: (ev[0], ev[1])):
        depth += step
        best = max(best, depth)
    return best


def _start(fleet, n: int, queues: str) -> list:
    workers = [
        fleet("--queues", queues, "--concurrency", "4", "--prefetch", "4", env=ENV)
        for _ in range(n)
    ]
    for w in workers:
        wait_for(lambda w=w: "fastq worker" in w.output(), 60, "the worker to start", alive=[w])
    return workers


def _stop(workers) -> None:
    for w in workers:
        w.signal(signal.SIGTERM)
    for w in workers:
        w.finish(60)


@pytest.mark.slow
def test_a_concurrency_limit_holds_across_three_workers_and_changes_at_run_time(fleet, ledger):
    from fastq_django import queues
    from fastq_django.models import Queue
    from testapp import queue_control_tasks as tasks

    workers = _start(fleet, 3, "limited")
    row = Queue.objects.get(name="limited")
    assert (row.concurrency, row.settings_concurrency) == (3, 3), "synced from FASTQ['QUEUES']"

    first = [r.id for r in tasks.limited_slot.map([(i, 0.1) for i in range(60)])]
    wait_for(lambda: unfinished(first) == 0, 180, "the first batch", alive=workers, interval=0.1)
    report = ledger_check.check(ledger, first)
    assert report.states() == {"succeeded": 60}, report.summary()
    report.assert_clean()
    assert deepest_overlap(report.executions) == 3, "the limit of 3 was exceeded or never reached"
    assert len({e.pgid for e in report.executions}) > 1, "one worker ran everything: vacuous"

    # Lowered at run time (as the admin does): the next batch runs one at a time.
    queues.set_concurrency("limited", 1, by="test")
    ledger.unlink()
    second = [r.id for r in tasks.limited_slot.map([(i, 0.05) for i in range(100, 120)])]
    wait_for(lambda: unfinished(second) == 0, 180, "the second batch", alive=workers, interval=0.1)
    report = ledger_check.check(ledger, second)
    assert report.states() == {"succeeded": 20}, report.summary()
    report.assert_clean()
    assert deepest_overlap(report.executions) == 1
    # A worker restart keeps the run-time value: the setting itself did not change.
    _stop(workers)
    _start(fleet, 1, "limited")
    assert Queue.objects.get(name="limited").concurrency == 1


@pytest.mark.slow
def test_a_pause_stops_every_start_within_a_second_and_survives_restarts(fleet, ledger):
    from fastq_django import queues
    from fastq_django.models import Job
    from testapp import queue_control_tasks as tasks

    workers = _start(fleet, 2, "pausable,steady")
    paused_ids = [r.id for r in tasks.pausable.map([(i, 0.2) for i in range(300)])]
    wait_for(
        lambda: len(ledger_check.read(ledger)) >= 10,
        120,
        "pausable jobs to start",
        alive=workers,
    )
    queues.pause("pausable", by="test")
    paused_at = time.time()  # the pause has committed by now

    # Enqueueing into a paused queue still works; the job waits.
    late = tasks.pausable.delay(999, 0.0).id
    steady_ids = [r.id for r in tasks.steady.map([(i, 0.05) for i in range(200)])]
    # A worker started while the queue is paused does not start its jobs either.
    workers += _start(fleet, 1, "pausable,steady")
    wait_for(
        lambda: not Job.objects.filter(queue="pausable", state="running").exists(),
        60,
        "the pausable jobs running at the pause to finish or go back",
        alive=workers,
    )
    wait_for(lambda: unfinished(steady_ids) == 0, 120, "the steady queue", alive=workers)
    # Look for a while longer than the bound, so that a late start would show.
    wait_for(lambda: time.time() > paused_at + 3, 10, "three seconds to pass", alive=workers)

    executions = ledger_check.read(ledger)
    pausable_runs = [e for e in executions if e.task == tasks.pausable.name]
    late_starts = [e for e in pausable_runs if e.started > paused_at + 1.0]
    assert not late_starts, f"started after the pause: {[str(e) for e in late_starts[:5]]}"
    assert pausable_runs, "nothing ran before the pause: vacuous"
    assert all(e.completed for e in pausable_runs), "running jobs finish"
    assert Job.objects.get(pk=late).state == "queued"
    held = Job.objects.filter(pk__in=paused_ids, state="queued").count()
    assert held > 0, "every job ran before the pause: vacuous"

    queues.resume("pausable", by="test")
    everything = [*paused_ids, late, *steady_ids]
    try:
        wait_for(
            lambda: unfinished(everything) == 0, 240, "every job after the resume", alive=workers
        )
    except AssertionError:
        from django.db.models import Count, Max, Min

        left = (
            Job.objects.filter(pk__in=everything)
            .exclude(state="succeeded")
            .values("state", "queue", "worker")
            .annotate(n=Count("id"), a=Max("attempts"), r=Min("run_at"), i=Max("interrupted"))
        )
        print("UNFINISHED", list(left), "now", time.time())
        for w in workers:
            print("WORKER", w.pid, w.output()[-3000:])
        raise
    report = ledger_check.check(ledger, everything)
    assert report.states() == {"succeeded": len(everything)}, report.summary()
    report.assert_clean()
    _stop(workers)

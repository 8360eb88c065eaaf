"""SIGKILL chaos: three workers, one of them killed (its whole process tree) every 2 s and
restarted, over 20,000 jobs of 1-50 ms. Nothing is lost, every job succeeds, and a job
that ran twice did so only because a kill interrupted an earlier execution."""

from __future__ import annotations

import random
import signal
import time
from collections import Counter

import ledger as ledger_check
import pytest
from fleet import unfinished, wait_for
from testapp import reliability_tasks

pytestmark = pytest.mark.django_db(transaction=True)

JOBS = 20_000
# One worker process per supervisor, eight executor threads, a 2 s lease so the rescue of
# a killed worker's jobs is quick.
WORKER_ARGS = ("--processes", "1", "--concurrency", "8", "--lease", "2")
KILL_EVERY = 2.0
# Kills stop once this share of the jobs is finished; the survivors then drain the rest,
# rescuing what the last kills stranded.
CHAOS_UNTIL = 0.9


@pytest.mark.slow
def test_a_worker_killed_every_two_seconds_loses_nothing(fleet, ledger):
    rng = random.Random(3)
    results = reliability_tasks.chaos_sleep.map(
        [(rng.randint(1, 50) / 1000, f"c{i}") for i in range(JOBS)]
    )
    ids = [r.id for r in results]
    began = time.monotonic()

    workers = [fleet(*WORKER_ARGS) for _ in range(3)]
    killed_pids: set[int] = set()
    killed_pgids: set[int] = set()
    kills = 0
    while unfinished() > JOBS * (1 - CHAOS_UNTIL):
        assert time.monotonic() - began < 900, "the chaos phase made no headway"
        time.sleep(KILL_EVERY)
        victim = kills % len(workers)
        for w in workers:
            assert w.alive(), f"worker {w.pid} exited by itself:\n{w.output()}"
        killed_pgids.add(workers[victim].pid)
        killed_pids |= workers[victim].kill_all()
        kills += 1
        workers[victim] = fleet(*WORKER_ARGS)
    chaos_done = time.monotonic()

    wait_for(lambda: unfinished() == 0, 300, "the survivors to finish every job", alive=workers)
    for w in workers:
        w.signal(signal.SIGTERM)
    for w in workers:
        w.finish(120)
    elapsed = time.monotonic() - began

    report = ledger_check.check(ledger, ids, killed_pids=killed_pids, killed_pgids=killed_pgids)
    attempts = [report.rows[k].attempts for k in report.enqueued]
    runs = Counter(e.job for e in report.executions)
    unstarted = sum(report.rows[k].attempts - runs[k] for k in report.enqueued)
    print(
        f"\n{JOBS} jobs, {kills} kills: chaos {chaos_done - began:.1f} s, total {elapsed:.1f} s; "
        f"{len(report.duplicated)} ran twice, max attempts {max(attempts)}, "
        f"{unstarted} attempts spent by kills on jobs not started yet\n{report.summary()}"
    )
    assert kills >= 5, "too few kills to call this chaos"
    assert not report.lost, report.summary()
    assert report.states() == {"succeeded": JOBS}, report.summary()
    assert report.duplicates_traceable, report.summary()
    report.assert_clean()

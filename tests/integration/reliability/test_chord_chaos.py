"""A chord under SIGKILL chaos: 10,000 members run by three workers, one of them killed
(its whole process tree) every 2 s and restarted. The callback is released once, by the
completion that finishes the last member, and completes exactly once in a live worker
with the 10,000 results in order (a run a kill cut off before its outcome was written is
the only other run allowed); no member is lost (ledger checked against the job table)."""

from __future__ import annotations

import hashlib
import json
import random
import signal
import time

import fastq
import ledger as ledger_check
import pytest
from fastq_django.models import Dependency, Job
from fleet import unfinished, wait_for
from testapp import reliability_tasks

pytestmark = pytest.mark.django_db(transaction=True)

MEMBERS = 10_000
WORKER_ARGS = ("--processes", "1", "--concurrency", "8", "--lease", "2")
KILL_EVERY = 2.0
# Kills stop once this share of the members is finished; the survivors drain the rest.
CHAOS_UNTIL = 0.9


@pytest.mark.slow
def test_a_chord_under_sigkill_chaos_calls_back_once_with_every_result(fleet, ledger):
    rng = random.Random(13)
    keys = [f"m{i}" for i in range(MEMBERS)]
    result = fastq.chord(
        (reliability_tasks.chaos_sleep.s(rng.randint(10, 60) / 1000, key) for key in keys),
        reliability_tasks.chord_collect.s(key="callback"),
    ).delay()
    callback = result.id
    members = [
        str(p)
        for p in Dependency.objects.filter(child_id=callback)
        .order_by("position")
        .values_list("parent_id", flat=True)
    ]
    assert len(members) == MEMBERS
    began = time.monotonic()

    workers = [fleet(*WORKER_ARGS) for _ in range(3)]
    killed_pids: set[int] = set()
    killed_pgids: set[int] = set()
    kills = 0
    while unfinished(members) > MEMBERS * (1 - CHAOS_UNTIL):
        assert time.monotonic() - began < 900, "the chaos phase made no headway"
        time.sleep(KILL_EVERY)
        if unfinished(members) <= MEMBERS * (1 - CHAOS_UNTIL):
            break  # the members got there during the sleep: no kill near the callback
        victim = kills % len(workers)
        for w in workers:
            assert w.alive(), f"worker {w.pid} exited by itself:\n{w.output()}"
        killed_pgids.add(workers[victim].pid)
        killed_pids |= workers[victim].kill_all()
        kills += 1
        workers[victim] = fleet(*WORKER_ARGS)

    wait_for(
        lambda: unfinished([*members, callback]) == 0,
        300,
        "the survivors to finish the members and the callback",
        alive=workers,
    )
    for w in workers:
        w.signal(signal.SIGTERM)
    for w in workers:
        w.finish(120)

    report = ledger_check.check(
        ledger, [*members, callback], killed_pids=killed_pids, killed_pgids=killed_pgids
    )
    print(f"\nchord of {MEMBERS}, {kills} kills\n{report.summary()}")
    assert kills >= 3, "too few kills to call this chaos"
    assert report.states() == {"succeeded": MEMBERS + 1}, report.summary()
    report.assert_clean()

    # The callback: one job, released once, with every result in member order. It ran to
    # completion once in a live worker; another run can only be one a kill cut off before
    # its outcome was written (execution is at least once; the release is exactly once).
    killed = {e.pid for e in report.executions if e.pid in killed_pids or e.pgid in killed_pgids}
    runs = report.of(callback)
    live = [e for e in runs if e.completed and e.pid not in killed]
    assert len(live) == 1, [str(e) for e in runs]
    chord_lines = [n for e in runs for n in e.notes if n.get("event") == "chord"]
    want = hashlib.sha256("\n".join(keys).encode()).hexdigest()
    assert chord_lines, [str(e) for e in runs]
    assert {(n["received"], n["digest"]) for n in chord_lines} == {(MEMBERS, want)}
    row = Job.objects.get(pk=callback)
    assert row.parents_pending == 0
    assert json.loads(row.result) == {"received": MEMBERS, "digest": want}
    assert result.get(timeout=10)["received"] == MEMBERS

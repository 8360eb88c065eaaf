"""A host cut off from the database in the middle of a load, for longer than its lease:
the other hosts rescue its jobs and finish them, nothing is lost; when its cable comes
back, the outcomes it wrote down meanwhile are refused by fencing, and it goes back to
work without a restart."""

from __future__ import annotations

import random
import re
import signal
import time

import ledger as ledger_check
import pytest
from fastq_django.models import Job
from fleet import unfinished, wait_for
from ledger import job_key
from testapp import reliability_tasks

pytestmark = pytest.mark.django_db(transaction=True)

LEASE = 3.0
WORKER_ARGS = (
    *("--processes", "1", "--concurrency", "4", "--prefetch", "4"),
    *("--lease", str(LEASE), "--no-scheduler"),
)
FIRST, SECOND = 1500, 1000


def _children(worker) -> set[int]:
    return worker.pids() - {worker.pid}


def _held_by(pids: set[int]) -> set[str]:
    """Jobs the table says these worker processes hold."""
    rows = Job.objects.filter(state="running").values_list("id", "worker")
    return {job_key(pk) for pk, who in rows if int(who.rsplit(":", 1)[1]) in pids}


@pytest.mark.slow
def test_a_host_cut_off_past_its_lease_is_rescued_fenced_and_rejoins(hosts, start_on, ledger):
    rng = random.Random(7)
    first = reliability_tasks.sleep.map(
        [(rng.randint(20, 200) / 1000, f"a{i}") for i in range(FIRST)]
    )
    ids = [r.id for r in first]
    workers = [start_on(h, *WORKER_ARGS) for h in hosts]
    cut_host, cut_worker, others = hosts[0], workers[0], workers[1:]
    wait_for(
        lambda: sum(e.completed for e in ledger_check.read(ledger)) >= FIRST // 5,
        120,
        "a fifth of the first batch",
        alive=workers,
    )
    children = _children(cut_worker)
    assert children, "the cut-off host has no worker process"

    cut_host.cut()
    cut_at = time.time()
    held = _held_by(children)  # what the table says it holds: its claims before the cut
    assert held, "the host held no job when it was cut off: nothing was tested"
    # The outage lasts until the others have rescued every job it held and finished them
    # (which takes its lease running out on the database's clock first).
    wait_for(
        lambda: Job.objects.filter(pk__in=list(held)).exclude(state="succeeded").count() == 0,
        90,
        "the other hosts to rescue and finish the cut-off host's jobs",
        alive=workers,
        interval=0.2,
    )
    # And for three leases at least, past the TCP timeouts of its connections (about 4 s):
    # the host has to notice they are dead and make new ones.
    time.sleep(max(0.0, cut_at + 3 * LEASE - time.time()))
    outage = time.time() - cut_at
    cut_host.heal()
    healed_at = time.time()

    second = reliability_tasks.sleep.map([(0.05, f"b{i}") for i in range(SECOND)])
    ids += [r.id for r in second]

    def rejoined() -> int:
        return sum(
            e.completed and e.key.startswith("b")
            for e in ledger_check.read(ledger)
            if e.pgid == cut_worker.pid
        )

    wait_for(
        lambda: rejoined() >= 20 and unfinished() == 0,
        180,
        "the healed host to run jobs again and every job to finish",
        alive=workers,
        interval=0.2,
    )
    for w in workers:
        w.signal(signal.SIGTERM)
    out = {w.pid: w.finish(120) for w in workers}

    report = ledger_check.check(ledger, ids)
    mine = [e for e in report.executions if e.pgid == cut_worker.pid]
    during = [e for e in mine if e.completed and cut_at < e.ended < healed_at]
    after = [e for e in mine if e.started > healed_at]
    fenced = sum(int(n) for n in re.findall(r"(\d+) fenced", out[cut_worker.pid]))
    print(
        f"\noutage {outage:.1f} s (lease {LEASE} s); the cut-off host held {len(held)} jobs, "
        f"finished {len(during)} executions during the outage, {fenced} outcome writes "
        f"fenced, ran {len(after)} jobs after it healed\n{report.summary()}"
    )
    assert outage >= 3 * LEASE
    # Nothing lost, everything ran to success once: a job ran twice only when the cut-off
    # host ran it before it healed and another host after it had been rescued.
    assert report.states() == {"succeeded": FIRST + SECOND}, report.summary()
    assert not (report.lost or report.unexpected or report.phantom), report.summary()
    for k, runs in report.duplicated.items():
        extra = [e for e in runs if not (e.pgid == cut_worker.pid and e.started < healed_at)]
        assert len(extra) == 1 and k in held, f"{k} ran twice: {[str(e) for e in runs]}"
    # Its jobs were rescued and finished by the others: the table's outcome is theirs.
    others_pgids = {w.pid for w in others}
    for k in held:
        assert any(e.completed and e.pgid in others_pgids for e in report.of(k)), (k, held)
    rows = dict(Job.objects.filter(pk__in=list(held)).values_list("id", "worker"))
    assert not [w for w in rows.values() if int(w.rsplit(":", 1)[1]) in children], rows
    # What it finished while cut off was refused by fencing, not written.
    assert during, "the cut-off host finished nothing during the outage: nothing was tested"
    assert {e.job for e in during} <= held
    assert fenced >= len(during), out[cut_worker.pid]
    # It went back to work in the same processes: no restart.
    assert after, "the healed host ran nothing"
    assert {e.pid for e in after} <= children
    for w in others:
        assert sum(int(n) for n in re.findall(r"(\d+) fenced", out[w.pid])) == 0, out[w.pid]

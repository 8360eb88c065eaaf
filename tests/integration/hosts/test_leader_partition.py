"""The scheduler's leader cut off from the database: another host leads within the lease,
no slot fires twice, and none is skipped beyond the catch-up policy (``all`` fires every
missed slot, ``latest`` one run for them); when the old leader's cable comes back it
stays a follower."""

from __future__ import annotations

import itertools
import json
import signal
import time
from datetime import timedelta

import ledger as ledger_check
import pytest
from fastq_django.models import Leader, Schedule, ScheduleRun
from fleet import unfinished, wait_for
from testapp import reliability_tasks

pytestmark = pytest.mark.django_db(transaction=True)

LEASE = 3.0  # the scheduler's lease (and the jobs')
WORKER_ARGS = (
    *("--processes", "1", "--concurrency", "2", "--prefetch", "2"),
    *("--lease", str(LEASE), "--scheduler-lease", str(LEASE)),
)
SCHEDULES = ("tick-all", "tick-latest")
SECOND = timedelta(seconds=1)


def _leader() -> tuple[int | None, float]:
    row = Leader.objects.filter(name="scheduler").first()
    if row is None:
        return None, 0.0
    return int(row.holder.rsplit(":", 1)[1]), row.lease_expires_at.timestamp()


def _runs(name: str | None = None) -> list[ScheduleRun]:
    rows = ScheduleRun.objects.filter(schedule__in=SCHEDULES).order_by("schedule", "slot")
    return list(rows.filter(schedule=name) if name else rows)


@pytest.mark.slow
def test_the_leader_cut_off_is_replaced_within_the_lease(hosts, start_on, ledger):
    for name in SCHEDULES:
        Schedule.objects.create(
            name=name,
            task=reliability_tasks.sleep.name,
            kwargs=json.dumps({"key": name}),
            every=1.0,
            max_instances=0,
            catch_up=name.split("-")[1],
        )
    workers = [start_on(h, *WORKER_ARGS) for h in hosts]
    by_pid = {w.pid: (h, w) for h, w in zip(hosts, workers, strict=True)}
    wait_for(lambda: len(_runs("tick-all")) >= 3, 120, "3 slots fired", alive=workers)
    old, _ = _leader()
    assert old in by_pid, f"the leader {old} is none of the hosts {list(by_pid)}"
    old_host, old_worker = by_pid[old]

    # Cut it just after it fired a slot, not inside the transaction of a fire.
    fired = len(_runs())
    wait_for(lambda: len(_runs()) > fired, 30, "the leader to fire a slot", alive=workers)
    old_host.cut()
    cut_at = time.time()
    _, expires = _leader()  # the last renewal that reached the database
    took_over_at = 0.0

    def new_leader() -> bool:
        nonlocal took_over_at
        pid, _ = _leader()
        if pid is not None and pid != old:
            took_over_at = time.time()
            return True
        return False

    wait_for(new_leader, 60, "another host to lead", alive=workers, interval=0.02)
    new, _ = _leader()
    renew = LEASE / 3
    print(
        f"\nleader {old} cut off; its lease ran out {expires - cut_at:.2f} s after the cut, "
        f"{new} led {took_over_at - cut_at:.2f} s after the cut"
    )
    # Within the lease: once the old lease expired, at the next try of a follower (they
    # try every lease/3), with 0.5 s for this test's own polling.
    assert took_over_at <= expires + renew + 0.5
    assert took_over_at - cut_at <= LEASE + renew + 0.5

    after_takeover = len(_runs("tick-all"))
    wait_for(
        lambda: len(_runs("tick-all")) >= after_takeover + 4,
        60,
        "the new leader to fire",
        alive=workers,
    )
    old_host.heal()
    healed = len(_runs("tick-all"))
    wait_for(
        lambda: len(_runs("tick-all")) >= healed + 4,
        60,
        "slots after the old leader is back",
        alive=workers,
    )
    assert _leader()[0] == new, "the healed host took the lead back from a live leader"
    wait_for(lambda: unfinished() == 0, 120, "every fired job to finish", alive=workers)
    for w in workers:
        w.signal(signal.SIGTERM)
    for w in workers:
        w.finish(120)

    runs = {name: _runs(name) for name in SCHEDULES}
    jobs = [r.job_id for rs in runs.values() for r in rs]
    assert None not in jobs and len(set(jobs)) == len(jobs), "a slot without its own job"
    for name, rs in runs.items():
        slots = [r.slot for r in rs]
        assert len(set(slots)) == len(slots), f"{name}: a slot fired twice"
        gaps = [b - a for a, b in itertools.pairwise(slots)]
        assert all(g >= SECOND and g % SECOND == timedelta(0) for g in gaps), (name, gaps)
        if name == "tick-all":
            # catch_up="all": every missed slot fired, by the new leader when it took over.
            assert set(gaps) == {SECOND}, (name, [str(g) for g in gaps if g != SECOND])
            caught_up = [
                r for r in rs if r.slot.timestamp() < took_over_at <= r.created_at.timestamp() + 0.5
            ]
            assert caught_up, "no slot was missed during the failover: nothing was tested"
        else:
            # catch_up="latest": one run for the slots missed while nobody led, no more.
            long_gaps = [g for g in gaps if g > SECOND]
            assert len(long_gaps) <= 1, (name, [str(g) for g in long_gaps])
            assert all(g.total_seconds() <= took_over_at - cut_at + 2 for g in long_gaps)

    report = ledger_check.check(ledger, jobs)
    assert report.states() == {"succeeded": len(jobs)}, report.summary()
    assert not (report.lost or report.unexpected or report.phantom), report.summary()
    for k, rs in report.duplicated.items():  # only the cut-off host may have run a job twice
        assert sum(e.pgid != old_worker.pid for e in rs) == 1, (k, [str(e) for e in rs])

"""A scheduler leader whose wall clock is two minutes off. Its lease is judged on the
database's clock (see test_clock_skew.py for job leases), and so are the slots: the
scheduler (src/cpp/core/scheduler.cpp, ``loop``) measures the database's clock
(``Driver::database_now``) at each lease renewal and judges what is due on it. Before
that, a leader ahead fired slots two minutes early (and left next_run_at two minutes
ahead, so a correct leader after it fired nothing for two minutes); a leader behind fired
nothing for two minutes."""

from __future__ import annotations

import json
import signal

import pytest
from fastq_django.models import Leader, Schedule, ScheduleRun
from fleet import wait_for
from testapp import reliability_tasks

pytestmark = pytest.mark.django_db(transaction=True)

LEASE = 2.0
ARGS = ("--processes", "0", "--scheduler-lease", str(LEASE), "--queues", "nobody")


def _leader_pid() -> int | None:
    row = Leader.objects.filter(name="scheduler").first()
    return int(row.holder.rsplit(":", 1)[1]) if row else None


def _runs() -> list[ScheduleRun]:
    return list(ScheduleRun.objects.filter(schedule="tick").order_by("slot"))


@pytest.mark.slow
@pytest.mark.parametrize("skew", [120, -120], ids=["ahead", "behind"])
def test_a_leader_with_a_skewed_clock_fires_slots_on_time(hosts, start_on, skew):
    Schedule.objects.create(
        name="tick",
        task=reliability_tasks.sleep.name,
        kwargs=json.dumps({"key": "tick"}),
        every=1.0,
        max_instances=0,
    )
    # A leader with a true clock first: the schedule runs on time.
    right = start_on(hosts[2], *ARGS)
    wait_for(lambda: len(_runs()) >= 2, 60, "the first leader to fire", alive=[right])
    right.signal(signal.SIGTERM)  # hands the lease back
    right.finish(60)
    before = len(_runs())

    skewed = start_on(hosts[0], *ARGS, skew=skew)
    wait_for(lambda: _leader_pid() == skewed.pid, 30, "the skewed host to lead", alive=[skewed])
    wait_for(lambda: len(_runs()) >= before + 3, 15, "the skewed leader to fire", alive=[skewed])
    late = [
        (r.slot, r.created_at)
        for r in _runs()[before:]
        if not -2.0 <= (r.created_at - r.slot).total_seconds() <= 2.0
    ]
    assert not late, f"slots fired off their time (slot, fired at): {late}"

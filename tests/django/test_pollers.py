"""Batch pollers: declaring, one cycle in process (walk, spread, one pending check per
row, stale alerts once), and a real worker tracking rows until they leave the queryset."""

from __future__ import annotations

import dataclasses
import json
import signal
import time
from datetime import timedelta
from io import StringIO
from typing import Any

import fastq
import pytest
from django.core.management import call_command
from django.utils import timezone
from fastq import pollers, schedules
from fastq_django.models import Job, PollerMark, Schedule
from fastq_django.schedules import run_now, sync_schedules
from testapp.models import Parcel, ParcelAlert

pytestmark = pytest.mark.django_db(transaction=True)

_saved: dict[str, Any] = {}


@pytest.fixture
def poller():
    """testapp.poller_tasks' poller, declared for this test only (other tests count the
    schedules declared in code)."""
    from testapp import poller_tasks

    name = poller_tasks.track_parcel.name
    _saved.setdefault("poller", pollers.declared.get(name))
    _saved.setdefault("schedule", schedules.declared.get(name))
    pollers.declared[name] = _saved["poller"]
    schedules.declared[name] = _saved["schedule"]
    yield _saved["poller"]
    pollers.declared.pop(name, None)
    schedules.declared.pop(name, None)


def _wait_for(predicate, timeout: float = 120.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not reached"
        time.sleep(0.1)


def _parcels(n: int, *, status: str = "in_transit", age: timedelta = timedelta(0), **kw):
    sent = timezone.now() - age
    return Parcel.objects.bulk_create(Parcel(status=status, sent_at=sent, **kw) for _ in range(n))


def test_declaring_a_poller_checks_its_options():
    from testapp.tasks import noop

    with pytest.raises(TypeError, match="callable"):
        fastq.poller(queryset=None, every=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="go together"):
        fastq.poller(queryset=Parcel.objects.all, every=1, stale_after=timedelta(hours=1))
    with pytest.raises(ValueError, match="exactly one of cron= or every="):
        fastq.poller(queryset=Parcel.objects.all)(noop)
    with pytest.raises(fastq.CronError, match="minute"):
        fastq.poller(queryset=Parcel.objects.all, cron="61 * * * *")(noop)
    with pytest.raises(ValueError, match="set rate_limit and other task options"):
        fastq.poller(queryset=Parcel.objects.all, every=1, rate_limit="1/s")(noop)
    assert noop.name not in pollers.declared


def test_a_cycle_enqueues_one_spread_check_per_row_and_alerts_once(poller):
    tracked = _parcels(25)
    stale = _parcels(5, age=timedelta(hours=2))
    _parcels(10, status="delivered", age=timedelta(hours=2))
    sync_schedules()
    row = Schedule.objects.get(name=poller.name)
    assert (row.task, json.loads(row.kwargs), row.every) == (
        "fastq.poll",
        {"poller": poller.name},
        1.0,
    )

    stats = pollers.poll(poller.name)
    assert (stats["rows"], stats["enqueued"], stats["pending"]) == (30, 30, 0)
    assert (stats["stale"], stats["alerted"]) == (5, 5)
    assert stats["pages"] == 5 + 1  # ceil(30 / 7) pages of keys, one page of stale keys
    checks = Job.objects.filter(task=poller.task.name).order_by("run_at")
    assert sorted(json.loads(j.args)[0] for j in checks) == sorted(p.pk for p in tracked + stale)
    # Spread over the 1 s interval: 30 checks 33.3 ms apart (the 200/s limit allows 5 ms).
    assert stats["gap_us"] == 1_000_000 // 30
    times = [j.run_at for j in checks]
    span = (times[-1] - times[0]).total_seconds()
    assert span == pytest.approx(29 * stats["gap_us"] / 1e6, abs=0.002)
    alerts = Job.objects.filter(task="testapp.poller_tasks.alert_late")
    assert sorted(json.loads(j.args)[0] for j in alerts) == sorted(p.pk for p in stale)
    assert PollerMark.objects.filter(poller=poller.name).count() == 5

    # Nothing ran: the next cycle finds every check pending and alerts nobody again.
    again = pollers.poll(poller.name)
    assert (again["enqueued"], again["pending"], again["alerted"]) == (0, 30, 0)
    assert Job.objects.filter(task=poller.task.name).count() == 30
    assert Schedule.objects.get(name=poller.name).last_outcome == (
        "polled 30: 0 new, 30 pending, 0 alerts"
    )

    listing = StringIO()
    call_command("fastq_schedules", stdout=listing)
    line = next(x for x in listing.getvalue().splitlines() if x.startswith(poller.name))
    assert line.split()[1:4] == ["poller", "code", "yes"], line
    assert "polled 30: 0 new, 30 pending, 0 alerts" in line

    # "Run now" (admin, fastq_schedules --run) enqueues a cycle.
    job_id = run_now(row)
    job = Job.objects.get(id=job_id)
    assert (job.task, json.loads(job.kwargs)) == ("fastq.poll", {"poller": poller.name})


def test_a_cycle_refuses_a_sliced_queryset(poller, monkeypatch):
    sliced = dataclasses.replace(poller, queryset=lambda: Parcel.objects.all()[:10])
    monkeypatch.setitem(pollers.declared, poller.name, sliced)
    with pytest.raises(ValueError, match="sliced"):
        pollers.poll(poller.name)


def test_a_worker_tracks_rows_until_they_leave_the_queryset(poller, worker, monkeypatch):
    monkeypatch.setenv("FASTQ_TEST_IMPORTS", "testapp.poller_tasks")
    fresh = _parcels(12, deliver_on_check=1) + _parcels(8, deliver_on_check=3)
    late = _parcels(4, age=timedelta(hours=3), deliver_on_check=2)
    w = worker("--processes", "2", "--scheduler-lease", "2")
    _wait_for(
        lambda: not Parcel.objects.filter(status="in_transit").exists(),
        what="every parcel delivered",
    )
    w.signal(signal.SIGTERM)
    code, out = w.wait(60)
    assert code == 0, out
    # One pending check per row at a time: a parcel is checked exactly until delivered.
    for p in Parcel.objects.filter(pk__in=[x.pk for x in fresh + late]):
        assert p.checks == p.deliver_on_check, (p.pk, p.checks, out)
    # Each late parcel alerted once, over however many cycles saw it.
    assert sorted(ParcelAlert.objects.values_list("parcel_id", flat=True)) == sorted(
        p.pk for p in late
    )
    cycles = Job.objects.filter(task="fastq.poll")
    assert cycles.count() >= 3
    assert not Job.objects.exclude(state="succeeded").exclude(task="fastq.poll").exists()
    assert Schedule.objects.get(name=poller.name).last_outcome.startswith("polled ")

"""Periodic schedules: declaring (code, settings), syncing, firing from real workers with
one leader, failover after SIGKILL, catch-up and overlap policies, the admin and the
fastq_schedules command."""

from __future__ import annotations

import itertools
import json
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from io import StringIO

import fastq
import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import transaction
from django.urls import reverse
from fastq.schedules import from_settings
from fastq_django.models import Job, Leader, Schedule, ScheduleRun
from fastq_django.schedules import REMOVED_FROM_CODE, run_now, sync_schedules
from testapp import tasks
from testapp.models import Execution

pytestmark = pytest.mark.django_db(transaction=True)


def _wait_for(predicate, timeout: float = 120.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not reached"
        time.sleep(0.05)


@pytest.fixture
def admin_client(client):
    user = User.objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(user)
    return client


def _tick_schedule(name: str, **fields) -> Schedule:
    options = {
        "task": tasks.tick.name,
        "kwargs": json.dumps({"key": name}),
        "every": 1.0,
        "max_instances": 0,
    }
    options.update(fields)
    return Schedule.objects.create(name=name, **options)


def _jobs_of(name: str) -> list[Job]:
    ids = ScheduleRun.objects.filter(schedule=name, job_id__isnull=False).values_list(
        "job_id", flat=True
    )
    return list(Job.objects.filter(id__in=list(ids)))


# Declaring -------------------------------------------------------------------------------


def test_declared_schedules_sync_by_name():
    Schedule.objects.create(name="by-hand", task=tasks.noop.name, cron="* * * * *")
    Schedule.objects.create(
        name="dropped", task=tasks.noop.name, every=60, source="code", enabled=True
    )
    created, updated, disabled = sync_schedules()
    assert (created, updated, disabled) == (4, 0, 1)
    rows = {s.name: s for s in Schedule.objects.all()}
    weekly = rows[tasks.weekly_report.name]
    assert (weekly.source, weekly.cron, weekly.timezone) == ("code", "0 3 * * 0", "Asia/Tehran")
    assert json.loads(weekly.kwargs) == {"key": "weekly"}
    assert rows["six-hourly"].every == 6 * 3600
    assert rows["six-hourly"].task == "testapp.tasks.six_hourly"
    assert "testapp.tasks.six_hourly" in fastq.registry  # @periodic registered the task
    assert rows["nightly-noop"].cron == "0 3 * * *"
    assert json.loads(rows["hourly-add"].args) == [1, 2]
    # Removed from code: disabled, not deleted. Made by hand: left alone.
    assert not rows["dropped"].enabled and rows["dropped"].last_outcome == REMOVED_FROM_CODE
    assert rows["by-hand"].enabled and rows["by-hand"].source == "admin"
    # Idempotent; an operator's disable of a code schedule survives a restart.
    Schedule.objects.filter(name="nightly-noop").update(enabled=False)
    assert sync_schedules() == (0, 0, 0)
    assert not Schedule.objects.get(name="nightly-noop").enabled


def test_bad_declarations_are_rejected_naming_the_field():
    with pytest.raises(fastq.CronError, match=r"cron: cron \"\*/5 25 \* \* \*\": hour field"):
        fastq.periodic(cron="*/5 25 * * *")(lambda: None)
    with pytest.raises(fastq.CronError, match="timezone: unknown time zone"):
        fastq.periodic(cron="0 3 * * *", timezone="Europe/Berln")(lambda: None)
    with pytest.raises(ValueError, match="every: must be a positive"):
        fastq.periodic(every=timedelta(0))(lambda: None)
    with pytest.raises(ValueError, match="exactly one of cron= or every="):
        fastq.periodic(cron="* * * * *", every=5)(lambda: None)
    with pytest.raises(fastq.CronError, match=r'FASTQ\["SCHEDULE"\]: schedule .x.: cron: '):
        from_settings({"x": {"task": "a.b", "cron": "61 * * * *"}})
    with pytest.raises(ValueError, match="catch_up: must be one of"):
        from_settings({"x": {"task": "a.b", "every": 5, "catch_up": "some"}})


def test_bad_cron_is_rejected_on_save_with_the_field_name(admin_client):
    bad = Schedule(name="bad", task=tasks.noop.name, cron="*/5 25 * * *")
    with pytest.raises(ValidationError) as info:
        bad.full_clean()
    assert "hour field: 25 is out of range" in info.value.message_dict["cron"][0]
    zone = Schedule(name="zone", task=tasks.noop.name, cron="0 3 * * *", timezone="Mars/Base")
    with pytest.raises(ValidationError) as info:
        zone.full_clean()
    assert "timezone" in info.value.message_dict

    response = admin_client.post(
        reverse("admin:fastq_django_schedule_add"),
        {
            "name": "bad",
            "task": tasks.noop.name,
            "enabled": "on",
            "cron": "0 0 30 2 *",
            "timezone": "UTC",
            "catch_up": "latest",
            "max_instances": "1",
            "args": "[]",
            "kwargs": "{}",
            "queue": "",
            "priority": "0",
        },
    )
    assert response.status_code == 200  # the form again, with the error
    errors = response.context["adminform"].form.errors
    assert "never fire" in errors["cron"][0]
    assert not Schedule.objects.filter(name="bad").exists()


def test_schedule_once_is_apply_async_with_eta():
    at = datetime.now(UTC) + timedelta(hours=2)
    result = fastq.schedule_once(tasks.add, at=at, args=(1, 2))
    job = Job.objects.get(id=result.id)
    assert abs((job.run_at - at).total_seconds()) < 0.001
    assert json.loads(job.args) == [1, 2]
    by_name = fastq.schedule_once(tasks.add.name, at=at, kwargs={"a": 1, "b": 1})
    assert Job.objects.get(id=by_name.id).task == tasks.add.name
    naive = datetime(2031, 1, 2, 3, 4, 5)  # read in TIME_ZONE (UTC here), like an eta
    job = Job.objects.get(id=fastq.schedule_once(tasks.add, at=naive, args=(1, 2)).id)
    assert job.run_at == naive.replace(tzinfo=UTC)


# Admin and command --------------------------------------------------------------------


def test_run_now_of_a_task_this_process_does_not_know_enqueues_it_as_described():
    """The web server may import fewer task modules than the worker: "Run now" still makes
    the job the schedule describes, through the same enqueue as every other job."""
    s = _tick_schedule(
        "elsewhere",
        task="reports.tasks.nightly_not_imported_here",
        args=json.dumps([1, "\u00e9"]),
        kwargs=json.dumps({"k": None}),
        queue="reports",
        priority=7,
    )
    job_id = run_now(s)
    job = Job.objects.get(pk=job_id)
    assert (job.task, job.queue, job.priority, job.state) == (
        "reports.tasks.nightly_not_imported_here",
        "reports",
        7,
        "queued",
    )
    assert (json.loads(job.args), json.loads(job.kwargs)) == ([1, "\u00e9"], {"k": None})
    assert job.max_attempts == 4
    s.refresh_from_db()
    assert s.last_job_id == job.id and s.last_outcome == "queued"


def test_run_now_records_each_run_with_its_job_in_the_callers_transaction():
    """Two runs in one transaction (one instant on PostgreSQL's clock) take two slots;
    a run rolled back with its caller leaves neither its job nor its slot."""
    s = _tick_schedule("twice", every=None, cron="0 4 * * *")
    with transaction.atomic():
        first = run_now(s)
        second = run_now(s)
    runs = list(ScheduleRun.objects.filter(schedule="twice").order_by("slot"))
    assert [str(r.job_id) for r in runs] == [first, second]
    assert runs[0].slot < runs[1].slot
    s.refresh_from_db()
    assert (str(s.last_job_id), s.last_outcome) == (second, "queued")
    assert s.last_run_at is not None and s.next_run_at is None  # no slot of its own skipped
    with pytest.raises(LookupError), transaction.atomic():
        gone = run_now(s)
        raise LookupError("the caller changed its mind")
    assert not Job.objects.filter(pk=gone).exists()
    assert ScheduleRun.objects.filter(schedule="twice").count() == 2
    s.refresh_from_db()
    assert str(s.last_job_id) == second


def test_admin_lists_and_runs_now_and_toggles(admin_client):
    s = _tick_schedule("ticker", every=None, cron="0 4 * * *", timezone="Europe/Berlin")
    url = reverse("admin:fastq_django_schedule_changelist")
    page = admin_client.get(url)
    assert page.status_code == 200
    body = page.content.decode()
    assert "ticker" in body and "0 4 * * * (Europe/Berlin)" in body

    admin_client.post(url, {"action": "run_now_action", "_selected_action": [s.pk]})
    s.refresh_from_db()
    job = Job.objects.get(task=tasks.tick.name)
    assert s.last_job_id == job.id and s.last_outcome == "queued"
    assert json.loads(job.kwargs) == {"key": "ticker"}
    assert ScheduleRun.objects.filter(schedule="ticker", job_id=job.id).exists()

    admin_client.post(url, {"action": "disable_schedules", "_selected_action": [s.pk]})
    assert not Schedule.objects.get(pk=s.pk).enabled
    Schedule.objects.filter(pk=s.pk).update(next_run_at=datetime(2020, 1, 1, tzinfo=UTC))
    admin_client.post(url, {"action": "enable_schedules", "_selected_action": [s.pk]})
    s.refresh_from_db()
    assert s.enabled and s.next_run_at is None  # from the next slot, no backlog


def test_fastq_schedules_command():
    _tick_schedule("cmd", every=None, cron="30 2 * * *", timezone="Europe/Berlin")
    out = StringIO()
    call_command("fastq_schedules", stdout=out)
    text = out.getvalue()
    assert "cmd" in text and "30 2 * * * (Europe/Berlin)" in text and "admin" in text
    expected = fastq.Cron("30 2 * * *", timezone="Europe/Berlin").next_after(datetime.now(UTC))
    assert expected.astimezone(UTC).strftime("%Y-%m-%d %H:%M") in text

    out = StringIO()
    call_command("fastq_schedules", "--run", "cmd", stdout=out)
    assert Job.objects.filter(task=tasks.tick.name).count() == 1
    call_command("fastq_schedules", "--disable", "cmd", stdout=StringIO())
    assert not Schedule.objects.get(name="cmd").enabled
    call_command("fastq_schedules", "--enable", "cmd", stdout=StringIO())
    assert Schedule.objects.get(name="cmd").enabled


# Firing from real workers -------------------------------------------------------------


def _leader_pid() -> int | None:
    row = Leader.objects.filter(name="scheduler").first()
    return int(row.holder.rsplit(":", 1)[1]) if row else None


def test_every_second_fires_each_slot_once_with_two_workers_and_fails_over(worker):
    _tick_schedule("tick")
    first = worker("--processes", "1", "--scheduler-lease", "2")
    _wait_for(lambda: _leader_pid() == first.proc.pid, what="first worker leads")
    second = worker("--processes", "0", "--scheduler-lease", "2")
    _wait_for(lambda: len(_jobs_of("tick")) >= 4, what="4 slots fired")
    assert _leader_pid() == first.proc.pid

    first.kill()  # SIGKILL: no lease hand-over; the second worker waits out the lease
    first.proc.wait()
    fired_before = len(_jobs_of("tick"))
    _wait_for(lambda: _leader_pid() == second.proc.pid, what="second worker leads")
    _wait_for(lambda: len(_jobs_of("tick")) >= fired_before + 4, what="4 more slots fired")
    second.signal(signal.SIGTERM)
    out = second.finish(60)
    assert "Traceback" not in out

    runs = list(ScheduleRun.objects.filter(schedule="tick").order_by("slot"))
    jobs = _jobs_of("tick")
    assert len(jobs) == len(runs) >= 8  # each run is one job: no slot fired twice
    slots = [r.slot for r in runs]
    assert len(set(slots)) == len(slots)
    # Anchored to the previous slot: every gap is a whole number of seconds (the gap over
    # the failover is one catch-up run for the missed slots, catch_up="latest").
    for a, b in itertools.pairwise(slots):
        gap = (b - a).total_seconds()
        assert gap >= 1 and abs(gap - round(gap)) < 1e-3, (a, b)
    assert sum(1 for a, b in itertools.pairwise(slots) if b - a == timedelta(seconds=1)) >= 6
    # The survivor ran what was fired (the killed one's claimed jobs wait for its lease).
    assert Execution.objects.filter(key="tick").count() >= len(jobs) - 4
    assert Schedule.objects.get(name="tick").last_run_at is not None
    # Code-declared schedules were synced at start.
    assert Schedule.objects.filter(name="nightly-noop", source="code").exists()


def test_catch_up_policies_after_downtime(worker):
    # Hourly at a minute half an hour away from now: the latest slot is ~30 min late
    # (beyond the 60 s grace of catch_up="none") and the next ~30 min ahead.
    hour = timedelta(hours=1)
    now = datetime.now(UTC)
    minute = (now.minute + 30) % 60
    cron = f"{minute} * * * *"
    latest = now.replace(minute=minute, second=0, microsecond=0)
    if latest > now:
        latest -= hour
    for policy in ("latest", "all", "none"):
        _tick_schedule(
            policy, every=None, cron=cron, catch_up=policy, next_run_at=latest - 4 * hour
        )
    w = worker("--processes", "0")
    _wait_for(
        lambda: all(s.next_run_at > datetime.now(UTC) for s in Schedule.objects.filter(cron=cron)),
        what="all three schedules moved to the next slot",
    )
    w.signal(signal.SIGTERM)
    w.finish(60)
    assert len(_jobs_of("latest")) == 1
    assert len(_jobs_of("all")) == 5  # latest - 4h, -3h, -2h, -1h, latest
    assert len(_jobs_of("none")) == 0
    assert "missed" in Schedule.objects.get(name="none").last_outcome
    assert {s.next_run_at for s in Schedule.objects.filter(cron=cron)} == {latest + hour}


def test_max_instances_skips_while_the_last_run_is_queued(worker):
    # Nobody consumes queue "parked", so the first run stays queued.
    _tick_schedule("parked", queue="parked", max_instances=1)
    w = worker("--processes", "0", "--queues", "default")
    _wait_for(
        lambda: Schedule.objects.get(name="parked").last_outcome == "skipped: still running",
        what="a skipped slot",
    )
    w.signal(signal.SIGTERM)
    w.finish(60)
    jobs = _jobs_of("parked")
    assert len(jobs) == 1 and jobs[0].state == "queued" and jobs[0].queue == "parked"
    assert ScheduleRun.objects.filter(schedule="parked", job_id__isnull=True).count() >= 1


def test_admin_edit_takes_effect_without_restart(worker):
    s = _tick_schedule("edited", every=None, cron="0 0 1 1 *")  # next year
    w = worker("--processes", "0")
    _wait_for(lambda: Schedule.objects.get(pk=s.pk).next_run_at is not None, what="computed")
    s.refresh_from_db()
    s.cron, s.every = "", 1.0
    s.save()  # as the admin form does
    _wait_for(lambda: len(_jobs_of("edited")) >= 2, what="the edited schedule firing")
    w.signal(signal.SIGTERM)
    w.finish(60)
    assert os.getpid()  # the worker was never restarted: one process served it all


def test_no_scheduler_worker_stays_out_of_the_election(worker):
    _tick_schedule("tick")
    bystander = worker("--processes", "0", "--no-scheduler")
    tasks.add.delay(1, 1).get(timeout=120)  # it is up and running jobs
    leader = worker("--processes", "0", "--scheduler-lease", "2")
    _wait_for(lambda: len(_jobs_of("tick")) >= 2, what="2 slots fired")
    assert _leader_pid() == leader.proc.pid
    for w in (bystander, leader):
        w.signal(signal.SIGTERM)
    assert "scheduler:" not in bystander.finish(60)
    leader.finish(60)


def test_bad_settings_schedule_fails_at_startup(settings):
    from django.apps import apps
    from django.core.exceptions import ImproperlyConfigured

    settings.FASTQ = {"SCHEDULE": {"backup": {"task": "a.b", "cron": "0 3 * * MONDAY"}}}
    with pytest.raises(ImproperlyConfigured, match=r"schedule 'backup': cron: cron \"0 3"):
        apps.get_app_config("fastq_django").ready()

"""Settings users hit: FASTQ["TIMEZONE"] (default Django's TIME_ZONE) is the zone of every
cron schedule that names none; FASTQ["TASK_DEFAULTS"] sets fleet-wide task options that a
task's own override; a naive eta or expires is read in TIME_ZONE; a save or update that
changes a schedule's timing (update_or_create included) recomputes next_run_at; the system
checks report a bad TIMEZONE or TASK_DEFAULTS (fastq.E002)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import fastq
import pytest
from django.conf import settings as django_settings
from django.core.checks import run_checks
from django.test import override_settings
from fastq import conf
from fastq.schedules import PeriodicSchedule, from_settings
from fastq.task import registry
from fastq_django.models import Job, Schedule
from fastq_django.schedules import sync_schedules
from testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)


def fastq_with(**keys: object) -> dict:
    value = copy.deepcopy(django_settings.FASTQ)
    value.update(keys)
    return value


def fastq_errors() -> list:
    return [m for m in run_checks(tags=["fastq"], databases=[]) if m.id.startswith("fastq.")]


# ---- TIMEZONE ------------------------------------------------------------------------------


def test_the_default_zone_is_django_time_zone_then_fastq_timezone():
    with override_settings(TIME_ZONE="Europe/Paris"):
        assert conf.timezone() == "Europe/Paris"
        with override_settings(FASTQ=fastq_with(TIMEZONE="Asia/Tehran")):
            assert conf.timezone() == "Asia/Tehran"


def test_cron_schedules_without_a_zone_take_the_default_zone():
    declared = PeriodicSchedule(name="no-zone", task=tasks.noop.name, cron="0 9 * * *")
    explicit = PeriodicSchedule(
        name="zoned", task=tasks.noop.name, cron="0 9 * * *", timezone="UTC"
    )
    from_conf = from_settings({"s": {"task": tasks.noop.name, "cron": "0 9 * * *"}})["s"]
    with override_settings(TIME_ZONE="America/New_York"):
        assert declared.fields()["timezone"] == "America/New_York"
        assert from_conf.fields()["timezone"] == "America/New_York"
        assert explicit.fields()["timezone"] == "UTC"
        assert Schedule(name="admin-made", task=tasks.noop.name, cron="0 9 * * *").timezone == (
            "America/New_York"
        )
        with override_settings(FASTQ=fastq_with(TIMEZONE="Asia/Tokyo")):
            assert declared.fields()["timezone"] == "Asia/Tokyo"
            assert Schedule(name="x", cron="0 9 * * *").timezone == "Asia/Tokyo"


def test_synced_code_schedules_move_with_the_default_zone():
    sync_schedules()
    assert Schedule.objects.get(name="nightly-noop").timezone == "UTC"  # as declared
    with override_settings(
        TIME_ZONE="Asia/Kolkata",
        FASTQ=fastq_with(SCHEDULE={"plain": {"task": tasks.noop.name, "cron": "0 3 * * *"}}),
    ):
        sync_schedules()
        row = Schedule.objects.get(name="plain")
        assert row.timezone == "Asia/Kolkata"
    # The weekly report names its zone: untouched by TIME_ZONE.
    assert Schedule.objects.get(name=tasks.weekly_report.name).timezone == "Asia/Tehran"


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", 3])
def test_a_bad_timezone_is_an_error(zone):
    with override_settings(FASTQ=fastq_with(TIMEZONE=zone)):
        (message,) = fastq_errors()
    assert message.id == "fastq.E002"
    assert 'FASTQ["TIMEZONE"]' in message.msg


# ---- TASK_DEFAULTS ---------------------------------------------------------------------------


def _declare(name: str, **options):
    def fn(x=None):
        return x

    fn.__module__, fn.__qualname__ = "testapp.defaults_probe", name
    registry.pop(f"testapp.defaults_probe.{name}", None)
    return fastq.task(**options)(fn)


def test_task_defaults_apply_and_a_task_overrides_them():
    defaults = {"time_limit": 120, "soft_time_limit": 100, "max_retries": 7, "queue": "bulk"}
    try:
        with override_settings(FASTQ=fastq_with(TASK_DEFAULTS=defaults, QUEUES=["bulk"])):
            plain = _declare("plain")
            own = _declare("own", max_retries=1, queue="default", time_limit=5)
            assert fastq_errors() == []
            job = plain.delay(1)
        assert (plain.time_limit, plain.soft_time_limit, plain.max_retries, plain.queue) == (
            120,
            100,
            7,
            "bulk",
        )
        assert (own.time_limit, own.soft_time_limit, own.max_retries, own.queue) == (
            5,
            100,
            1,
            "default",
        )
        row = Job.objects.get(pk=job.id)
        assert (row.queue, row.max_attempts, row.time_limit) == ("bulk", 8, 120)
    finally:
        registry.pop("testapp.defaults_probe.plain", None)
        registry.pop("testapp.defaults_probe.own", None)


def test_without_task_defaults_the_built_in_defaults_hold():
    t = _declare("builtin")
    try:
        assert (t.time_limit, t.max_retries, t.queue) == (None, 3, "default")
    finally:
        registry.pop("testapp.defaults_probe.builtin", None)


@pytest.mark.parametrize(
    ("defaults", "expected"),
    [
        ({"time_limt": 5}, "'time_limt'; did you mean 'time_limit'?"),
        ({"name": "x"}, "cannot set: 'name'"),
        ({"unique": True}, "cannot set: 'unique'"),
        ({"max_retries": -1}, 'FASTQ["TASK_DEFAULTS"]["max_retries"]: '),
        ({"time_limit": "slow"}, 'FASTQ["TASK_DEFAULTS"]["time_limit"]: '),
        ({"rate_limit": "often"}, 'FASTQ["TASK_DEFAULTS"]["rate_limit"]: '),
        ({"queue": ""}, 'FASTQ["TASK_DEFAULTS"]["queue"]: '),
    ],
)
def test_bad_task_defaults_are_errors(defaults, expected):
    with override_settings(FASTQ=fastq_with(TASK_DEFAULTS=defaults)):
        messages = fastq_errors()
    assert [m.id for m in messages] == ["fastq.E002"], messages
    assert expected in messages[0].msg
    assert "fastq.checks.task_defaults_probe" not in registry


def test_task_defaults_of_the_wrong_type_are_an_error():
    with override_settings(FASTQ=fastq_with(TASK_DEFAULTS=[("queue", "x")])):
        (message,) = fastq_errors()
    assert message.id == "fastq.E002"
    assert 'FASTQ["TASK_DEFAULTS"] must be' in message.msg


# ---- naive eta -------------------------------------------------------------------------------


def test_a_naive_eta_and_expires_are_read_in_time_zone():
    naive = datetime(2031, 3, 4, 5, 6, 7)
    with override_settings(TIME_ZONE="Asia/Tehran"):
        job = tasks.add.apply_async(args=(1, 2), eta=naive, expires=naive + timedelta(hours=1))
    row = Job.objects.get(pk=job.id)
    tehran = naive.replace(tzinfo=ZoneInfo("Asia/Tehran"))
    assert row.run_at == tehran
    assert row.expires_at == tehran + timedelta(hours=1)
    assert row.run_at.astimezone(UTC) == datetime(2031, 3, 4, 1, 36, 7, tzinfo=UTC)


# ---- Schedule timing -------------------------------------------------------------------------


def test_update_or_create_that_changes_the_timing_recomputes_next_run():
    slot = datetime(2030, 1, 1, tzinfo=UTC)
    Schedule.objects.create(name="refresh", task=tasks.noop.name, every=3600, next_run_at=slot)
    row, created = Schedule.objects.update_or_create(name="refresh", defaults={"every": 60})
    assert not created
    assert row.next_run_at is None
    assert Schedule.objects.get(name="refresh").next_run_at is None
    # A change that does not move the schedule keeps the slot.
    Schedule.objects.filter(name="refresh").update(next_run_at=slot)
    Schedule.objects.update_or_create(name="refresh", defaults={"priority": 3})
    assert Schedule.objects.get(name="refresh").next_run_at == slot
    # Saving the same timing keeps it too.
    Schedule.objects.update_or_create(name="refresh", defaults={"every": 60})
    assert Schedule.objects.get(name="refresh").next_run_at == slot


def test_a_queryset_update_of_the_timing_recomputes_next_run():
    slot = datetime(2030, 1, 1, tzinfo=UTC)
    Schedule.objects.create(name="cron", task=tasks.noop.name, cron="0 3 * * *", next_run_at=slot)
    Schedule.objects.filter(name="cron").update(cron="0 4 * * *")
    assert Schedule.objects.get(name="cron").next_run_at is None
    Schedule.objects.filter(name="cron").update(next_run_at=slot, last_outcome="x")
    Schedule.objects.filter(name="cron").update(priority=2)
    assert Schedule.objects.get(name="cron").next_run_at == slot
    row = Schedule.objects.get(name="cron")
    row.timezone = "Europe/Paris"
    row.save(update_fields=["timezone"])
    assert Schedule.objects.get(name="cron").next_run_at is None


# ---- the worker's banner -----------------------------------------------------------------


def test_the_banner_says_when_no_tasks_are_registered(monkeypatch):
    import io

    from fastq.pollers import POLL_TASK
    from fastq_django.broker import default_broker
    from fastq_django.management.commands.fastq_worker import Command

    monkeypatch.setattr(fastq, "registry", {POLL_TASK: registry[POLL_TASK]})
    out = io.StringIO()
    command = Command(stdout=io.StringIO(), stderr=out)
    options = {
        "processes": 2,
        "concurrency": 4,
        "prefetch": 0,
        "claim_batch": 256,
        "log_jobs": False,
    }
    command._banner(default_broker(), ["default"], options)
    text = out.getvalue()
    assert "2 process(es) x concurrency 4, prefetch 0" in text
    assert "no tasks registered" in text and "FASTQ['IMPORTS']" in text
    assert POLL_TASK not in text

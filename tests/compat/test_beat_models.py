"""fastq.compat.django_celery_beat: django-celery-beat's models over fastq's schedules,
fired by a worker subprocess."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from fastq.compat.celery.result import AsyncResult
from fastq.compat.django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)
from fastq_django.models import Job
from fastq_django.models import Schedule as FastqSchedule

pytestmark = pytest.mark.django_db(transaction=True)


def test_code_that_creates_beat_entries_runs_unchanged():
    every, created = IntervalSchedule.objects.get_or_create(
        every=10, period=IntervalSchedule.SECONDS
    )
    assert not created and every.seconds == 10
    PeriodicTask.objects.create(
        interval=every,
        name="import contacts",
        task="compatapp.tasks.add",
        args=json.dumps([1, 2]),
        kwargs=json.dumps({}),
    )
    cron, _ = CrontabSchedule.objects.get_or_create(
        minute="30",
        hour="*",
        day_of_week="mon-fri",
        day_of_month="*",
        month_of_year="*",
        timezone=ZoneInfo("Canada/Pacific"),
    )
    PeriodicTask.objects.update_or_create(
        name="half past",
        defaults={
            "crontab": cron,
            "task": "compatapp.tasks.add",
            "kwargs": json.dumps({"x": 1, "y": 2}),
        },
    )
    rows = {s.name: s for s in FastqSchedule.objects.all()}
    assert rows["import contacts"].every == 10 and rows["import contacts"].cron == ""
    assert json.loads(rows["import contacts"].args) == [1, 2]
    assert rows["half past"].cron == "30 * * * 1-5"
    assert rows["half past"].timezone == "Canada/Pacific" and rows["half past"].enabled
    task = PeriodicTask.objects.get(name="half past")
    assert task.crontab == cron and task.interval is None
    assert PeriodicTask.objects.get(name="import contacts").interval == every
    PeriodicTask.objects.filter(name="half past").update(enabled=False)
    assert not FastqSchedule.objects.get(name="half past").enabled
    task = PeriodicTask.objects.get(name="import contacts")
    task.interval = IntervalSchedule(every=2, period=IntervalSchedule.MINUTES)
    task.save()
    assert FastqSchedule.objects.get(name="import contacts").every == 120
    PeriodicTask.objects.get(name="half past").delete()
    assert not FastqSchedule.objects.filter(name="half past").exists()
    with pytest.raises(ValidationError):
        PeriodicTask.objects.create(name="neither", task="compatapp.tasks.add")
    with pytest.raises(ValidationError):
        PeriodicTask.objects.create(
            name="bad", task="compatapp.tasks.add", interval=every, args="not json"
        )
    with pytest.raises(ValidationError):
        CrontabSchedule(minute="61")
    with pytest.raises(ValidationError):
        SolarSchedule("sunset", 0, 0)


def test_the_worker_fires_periodic_and_one_off_tasks(run):
    PeriodicTask.objects.create(
        name="often",
        task="compatapp.tasks.add",
        args="[2, 3]",
        interval=IntervalSchedule(every=1, period="seconds"),
    )
    PeriodicTask.objects.create(
        name="once",
        task="compatapp.tasks.add",
        kwargs='{"x": 5, "y": 5}',
        one_off=True,
        start_time=datetime.now(UTC) - timedelta(seconds=1),
    )
    clocked = ClockedSchedule.objects.create(clocked_time=datetime.now(UTC))
    PeriodicTask.objects.create(
        name="clocked", task="compatapp.tasks.add", args="[1, 1]", clocked=clocked
    )
    worker = run(["manage.py", "fastq_worker", "--processes", "0", "--queues", "celery"])
    deadline = time.monotonic() + 120
    while (
        Job.objects.filter(task="compatapp.tasks.add", state="succeeded").count() < 4
        or not Job.objects.filter(result="10").exists()
        or not Job.objects.filter(result="2").exists()
    ):
        assert time.monotonic() < deadline, worker.output()
        time.sleep(0.2)
    time.sleep(3)  # more slots of "often"; "once" and "clocked" must not fire again
    worker.stop()
    assert Job.objects.filter(result="10").count() == 1
    assert Job.objects.filter(result="2").count() == 1
    often = PeriodicTask.objects.get(name="often")
    assert often.total_run_count >= 2 and often.last_run_at is not None
    assert AsyncResult(str(Job.objects.filter(result="5").first().pk)).get(timeout=1) == 5

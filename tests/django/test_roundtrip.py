"""The vertical slice as a user runs it: .delay() in Django, manage.py fastq_worker in a
subprocess, results read back through AsyncResult."""

from __future__ import annotations

import re

import fastq
import pytest
from django.db import connection
from fastq_django.models import Job
from testapp import tasks
from testapp.models import Execution
from workerproc import run_worker

pytestmark = pytest.mark.django_db(transaction=True)


def test_round_trip():
    ok = tasks.add.delay(2, 3)
    failed = tasks.fail.delay("bad input")
    assert ok.status == "QUEUED"
    err = run_worker()
    assert not re.search(r"\b2 task", err)  # the banner lists tasks by name
    assert tasks.add.name in err
    assert ok.get(timeout=10) == 5
    assert ok.status == "SUCCEEDED"
    assert failed.status == "FAILED"
    with pytest.raises(fastq.TaskFailed) as info:
        failed.get(timeout=10)
    assert info.value.type == "ValueError"
    assert info.value.message == "bad input"
    assert "raise ValueError(message)" in info.value.traceback
    job = Job.objects.get(pk=ok.id)
    assert job.attempts == 1
    assert job.started_at is not None and job.finished_at is not None
    assert job.finished_at >= job.started_at >= job.created_at


def test_imports_setting_registers_extra_modules():
    from testapp import extra_tasks  # the web process imports what it calls

    r = extra_tasks.echo.delay({"x": [1, 2]})
    out = run_worker()
    assert "extra.echo" in out  # the worker found it through FASTQ["IMPORTS"] alone
    assert r.get(timeout=10) == {"x": [1, 2]}


def test_queues_option_and_priority():
    other = tasks.on_other_queue.delay()
    default = tasks.add.delay(1, 1)
    run_worker("--queues", "other")
    assert other.get(timeout=10) == "other"
    assert default.status == "QUEUED"
    assert Job.objects.get(pk=other.id).priority == 5


def test_ten_thousand_jobs_each_executed_exactly_once():
    results = tasks.record.map([(f"k{i}",) for i in range(10_000)])
    assert Job.objects.filter(state="queued").count() == 10_000
    run_worker("--concurrency", "4")
    assert Job.objects.filter(state="succeeded").count() == 10_000
    assert Execution.objects.count() == 10_000
    assert Execution.objects.values("key").distinct().count() == 10_000
    assert Execution.objects.values("job_id").distinct().count() == 10_000
    assert results[1234].get(timeout=10) == "k1234"


def test_countdown_job_is_not_run_early():
    later = tasks.add.apply_async(args=(1, 2), countdown=3600)
    run_worker()
    assert later.status == "QUEUED"


def test_job_rows_written_by_django_and_by_the_worker_agree():
    """The C++ driver reads rows the ORM wrote (and vice versa), including timestamps."""
    job = Job.objects.create(task=tasks.add.name, args="[40, 2]")
    run_worker()
    job.refresh_from_db()
    assert job.state == "succeeded"
    assert job.result_value == 42
    assert fastq.AsyncResult(str(job.id)).get() == 42
    assert connection.vendor in ("sqlite", "postgresql")


def test_async_def_task():
    results = tasks.async_add.map([(i, 1) for i in range(10)])
    run_worker()
    assert [r.get(timeout=10) for r in results] == list(range(1, 11))

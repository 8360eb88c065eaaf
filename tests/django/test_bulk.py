"""task.map through Django's connection: COPY on PostgreSQL, one INSERT over a JSON array on
SQLite, both inside the caller's transaction."""

from __future__ import annotations

import json
from datetime import timedelta

import fastq
import pytest
from django.db import connection, transaction
from django.utils import timezone
from fastq_django import broker as broker_module
from fastq_django.models import Job
from testapp import tasks
from workerproc import run_worker

pytestmark = pytest.mark.django_db(transaction=True)


@fastq.task(
    name="test_bulk.configured",
    queue="bulk",
    priority=4,
    max_retries=1,
    expires=600,
    time_limit=30,
    soft_time_limit=20,
)
def configured(x):
    return x


class Rollback(Exception):
    pass


def test_map_in_a_rolled_back_transaction_leaves_no_jobs():
    with pytest.raises(Rollback), transaction.atomic():
        results = tasks.add.map([(i, i) for i in range(3000)])
        assert Job.objects.count() == 3000  # visible inside its own transaction
        assert results[0].status == "QUEUED"
        raise Rollback
    assert Job.objects.count() == 0
    assert results[0].status == "UNKNOWN"
    with transaction.atomic():
        tasks.add.map([(i, i) for i in range(10)])
    assert Job.objects.count() == 10


def test_a_map_split_in_several_statements_is_all_or_nothing(monkeypatch):
    monkeypatch.setattr(broker_module, "_COPY_ROWS", 100)  # PostgreSQL: three COPYs
    with pytest.raises(Rollback), transaction.atomic():
        tasks.add.map([(i, i) for i in range(250)])
        raise Rollback
    assert Job.objects.count() == 0
    results = tasks.add.map([(i, 1) for i in range(250)])  # autocommit: one transaction
    assert Job.objects.count() == 250
    assert len({r.id for r in results}) == 250
    run_worker()
    assert [r.result for r in results[:3]] == [1, 2, 3]
    assert results[-1].result == 250


def test_map_writes_the_task_options_and_arguments():
    before = timezone.now()
    calls = [(i,) for i in range(5)] + [('tab\tnew\nline \\ é 日本 "q"',), ({"a": [1.5, None]},)]
    results = configured.map(calls)
    after = timezone.now()
    jobs = {str(j.id): j for j in Job.objects.all()}
    assert set(jobs) == {r.id for r in results}
    for result, call in zip(results, calls, strict=True):
        job = jobs[result.id]
        assert job.task == "test_bulk.configured"
        assert job.queue == "bulk"
        assert job.priority == 4
        assert job.state == "queued"
        assert job.attempts == 0
        assert job.max_attempts == 2
        assert json.loads(job.args) == json.loads(json.dumps(list(call)))
        assert job.kwargs == "{}"
        assert job.time_limit == 30.0
        assert job.soft_time_limit == 20.0
        assert job.unique_key is None
        assert not job.cancel_requested
        assert job.envelope == fastq._core.ENVELOPE_VERSION
        slack = timedelta(seconds=2)
        assert before - slack <= job.run_at <= after + slack
        assert before - slack <= job.created_at <= after + slack
        assert (
            before + timedelta(seconds=600) - slack
            <= job.expires_at
            <= after + timedelta(seconds=600) + slack
        )


def test_map_jobs_run_with_their_arguments():
    results = tasks.add.map([(i, 0.5) for i in range(100)] + [("a", "b"), ([1], [2])])
    run_worker()
    assert [r.result for r in results[:3]] == [0.5, 1.5, 2.5]
    assert results[-2].result == "ab"
    assert results[-1].result == [1, 2]


def test_unique_keys_still_resolve_to_the_job_holding_them():
    first = tasks.check_order.delay(1)
    results = tasks.check_order.map([(1,), (2,), (2,), (3,)])
    assert results[0].id == first.id
    assert results[1].id == results[2].id != results[3].id
    assert Job.objects.count() == 3


def test_a_non_json_argument_enqueues_nothing():
    with pytest.raises(TypeError, match=r"positional argument 0 of type object"):
        tasks.add.map([(1, 2), (object(), 1)])
    assert Job.objects.count() == 0


def test_map_wakes_a_listening_worker_at_commit():
    if connection.vendor != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    import psycopg

    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        dbname=settings["NAME"],
        autocommit=True,
    ) as listener:
        listener.execute("LISTEN fastq")
        with transaction.atomic():
            tasks.add.map([(1, 1)] * 10)
            assert not list(listener.notifies(timeout=0.2, stop_after=1)), "before commit"
        assert len(list(listener.notifies(timeout=5, stop_after=1))) == 1

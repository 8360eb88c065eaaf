"""The core's job operations on the connection Django lends (fastq_django/broker.py):
the cases of tests/cpp/test_operations.cpp, through Django on the configured database."""

from __future__ import annotations

import fastq
import pytest
from django.db import connection, transaction
from fastq import _core
from fastq_django.broker import default_broker
from fastq_django.models import Job

pytestmark = pytest.mark.django_db(transaction=True)


class Rollback(Exception):
    pass


def _job(task: str = "t.op", **fields: object) -> fastq.NewJob:
    return fastq.NewJob(
        id=_core.new_job_id(),
        task=task,
        queue="default",
        priority=0,
        args='[1,"two"]',
        kwargs='{"k":"v\\"q"}',
        **fields,
    )


def test_enqueued_jobs_exist_only_if_the_callers_transaction_commits():
    broker = default_broker()
    kept, dropped = _job("t.kept"), _job("t.dropped")
    with pytest.raises(Rollback), transaction.atomic():
        assert broker.enqueue([dropped]) == [dropped.id]
        assert broker.fetch(dropped.id).state == "queued"  # inside its own transaction
        raise Rollback
    with transaction.atomic():
        assert broker.enqueue([kept]) == [kept.id]
    assert list(Job.objects.values_list("task", flat=True)) == ["t.kept"]
    assert broker.fetch(dropped.id) is None


def test_the_lent_connection_goes_on_as_before():
    """No result left pending, the transaction state Django expects: the ORM carries on
    in the same transaction and in autocommit afterwards."""
    broker = default_broker()
    with transaction.atomic():
        broker.enqueue([_job()])
        assert Job.objects.count() == 1
        with transaction.atomic():  # a savepoint after the core's statement
            broker.enqueue([_job()])
        assert Job.objects.count() == 2
    broker.enqueue([_job()])  # autocommit
    assert connection.get_autocommit()
    assert Job.objects.count() == 3


def test_every_field_is_stored():
    broker = default_broker()
    from datetime import UTC, datetime, timedelta

    run_at = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    job = _job(
        "t.fields",
        run_at=run_at,
        max_attempts=9,
        expires_at=run_at + timedelta(hours=1),
        time_limit=12.5,
        soft_time_limit=10.25,
        rate_key="acct:1",
    )
    broker.enqueue([job])
    row = Job.objects.get(pk=job.id)
    assert (row.task, row.queue, row.max_attempts, row.rate_key) == (
        "t.fields",
        "default",
        9,
        "acct:1",
    )
    assert row.run_at == run_at
    assert row.expires_at == run_at + timedelta(hours=1)
    assert (row.time_limit, row.soft_time_limit) == (12.5, 10.25)
    assert (row.args, row.kwargs) == ('[1,"two"]', '{"k":"v\\"q"}')


def test_unique_keys_yield_the_holder_inside_one_transaction():
    broker = default_broker()
    first, again, other = (
        _job(unique_key="k:1"),
        _job(unique_key="k:1"),
        _job(unique_key="k:2"),
    )
    with transaction.atomic():
        assert broker.enqueue([first]) == [first.id]
        assert broker.enqueue([again, other]) == [first.id, other.id]
    assert Job.objects.filter(unique_key="k:1").count() == 1
    assert broker.worker_driver().enqueue([again]) == [first.id]


def test_cancel_and_fetch():
    broker = default_broker()
    queued = _job()
    broker.enqueue([queued])
    with transaction.atomic():
        assert broker.cancel(queued.id) == "cancelled"
    snap = broker.fetch(queued.id)
    assert (snap.state, snap.error_type) == ("cancelled", "fastq.Cancelled")
    assert broker.cancel(queued.id) == "finished"
    assert broker.cancel(_core.new_job_id()) == "not_found"
    assert broker.cancel("not-a-uuid") == "not_found"
    assert broker.fetch("not-a-uuid") is None
    assert broker.fetch(_core.new_job_id()) is None


def test_a_failed_statement_is_a_django_database_error():
    from django.db import DatabaseError

    broker = default_broker()
    job = _job()
    broker.enqueue([job])
    with pytest.raises(DatabaseError), transaction.atomic():
        broker.enqueue([_job(), job])  # the same id again: a primary key violation
    assert Job.objects.count() == 1

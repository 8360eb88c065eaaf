"""Transactional enqueue: a job exists only if the caller's transaction commits."""

from __future__ import annotations

import fastq
import pytest
from django.db import transaction
from fastq_django.models import Job
from testapp import tasks
from testapp.models import Execution
from workerproc import run_worker

pytestmark = pytest.mark.django_db(transaction=True)


class Rollback(Exception):
    pass


def test_rolled_back_enqueues_never_run_committed_ones_do():
    committed: list[str] = []
    rolled_back: list[str] = []
    for i in range(200):
        key = f"t{i}"
        try:
            with transaction.atomic():
                tasks.record.delay(key)
                if i % 3 == 0:
                    raise Rollback
            committed.append(key)
        except Rollback:
            rolled_back.append(key)
    assert Job.objects.count() == len(committed)
    run_worker()
    executed = set(Execution.objects.values_list("key", flat=True))
    assert executed == set(committed)
    assert not executed & set(rolled_back)


def test_result_of_a_rolled_back_enqueue_is_unknown():
    try:
        with transaction.atomic():
            r = tasks.add.delay(1, 1)
            assert r.status == "QUEUED"  # visible inside its own transaction
            raise Rollback
    except Rollback:
        pass
    assert r.status == "UNKNOWN"
    assert fastq.AsyncResult(r.id).result is None

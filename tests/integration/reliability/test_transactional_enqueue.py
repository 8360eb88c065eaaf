"""Transactional enqueue under a running worker: 1,000 enqueues in transactions that
commit or roll back at random (seeded), some inside savepoints that roll back on their
own. What runs is exactly what committed."""

from __future__ import annotations

import random
import signal

import ledger as ledger_check
import pytest
from django.db import transaction
from fastq_django.models import Job
from fleet import unfinished, wait_for
from testapp import reliability_tasks

pytestmark = pytest.mark.django_db(transaction=True)

ENQUEUES = 1000


class Rollback(Exception):
    pass


def _enqueue(key: str) -> str:
    return reliability_tasks.sleep.delay(0.0, key).id


@pytest.mark.slow
def test_what_runs_is_exactly_what_committed(fleet, ledger):
    rng = random.Random(9)
    # Running from the start: it races every transaction below.
    w = fleet("--concurrency", "4")
    committed: set[str] = set()
    rolled_back: set[str] = set()
    n = 0
    while n < ENQUEUES:
        kept: list[str] = []
        try:
            with transaction.atomic():
                for _ in range(min(rng.randint(1, 5), ENQUEUES - n)):
                    n += 1
                    if rng.random() < 0.2:
                        try:
                            with transaction.atomic():  # a savepoint
                                rolled_back.add(_enqueue(f"t{n}"))
                                raise Rollback
                        except Rollback:
                            continue
                    kept.append(_enqueue(f"t{n}"))
                if rng.random() < 0.5:
                    raise Rollback
            committed.update(kept)
        except Rollback:
            rolled_back.update(kept)
    assert committed and rolled_back

    wait_for(lambda: unfinished() == 0, 120, "the committed jobs to run", alive=[w])
    w.signal(signal.SIGTERM)
    w.finish(60)
    ids = {ledger_check.job_key(pk) for pk in Job.objects.values_list("id", flat=True)}
    assert ids == {ledger_check.job_key(j) for j in committed}
    report = ledger_check.check(ledger, committed)
    executed = {e.job for e in report.executions if e.completed}
    assert executed == report.enqueued, report.summary()
    assert not executed & {ledger_check.job_key(j) for j in rolled_back}
    assert report.states() == {"succeeded": len(committed)}
    assert not report.duplicated, report.summary()
    report.assert_clean()

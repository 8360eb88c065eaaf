"""Celery's canvas through fastq.compat.celery (group, chain, chord, signature, link and
link_error on apply_async) on fastq's workflows, run by a real fastq_worker."""

from __future__ import annotations

import pytest
from compatapp import tasks
from fastq.compat.celery import chain, chord, group, signature, states
from fastq.compat.celery.result import AsyncResult, GroupResult
from fastq_django.models import Job

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def worker(run):
    w = run(["manage.py", "fastq_worker", "--queues", "celery", "--processes", "0"])
    yield w
    w.stop()


def test_group_chain_and_chord_as_celery_writes_them(worker):
    g = group(tasks.add.s(i, i) for i in range(5)).apply_async()
    c = chain(tasks.add.s(1, 2), tasks.add.s(10), tasks.add.s(100)).apply_async()
    piped = (tasks.add.s(2, 2) | tasks.add.s(4)).delay()
    ch = chord([tasks.add.s(i, 1) for i in range(4)])(tasks.tsum.s())
    by_name = signature("compatapp.tasks.add", args=(20, 22)).delay()

    assert g.get(timeout=120) == [0, 2, 4, 6, 8]
    assert g.ready() and g.completed_count() == 5 and not g.failed()
    assert GroupResult.restore(g.id).get(timeout=30) == [0, 2, 4, 6, 8]
    assert c.get(timeout=120) == 113
    assert piped.get(timeout=120) == 8
    assert ch.get(timeout=120) == 1 + 2 + 3 + 4
    assert by_name.get(timeout=120) == 42


def test_link_and_link_error_on_apply_async(worker):
    ok = tasks.add.apply_async((1, 2), link=tasks.add.s(100))
    assert isinstance(ok, AsyncResult)
    assert ok.get(timeout=120) == 3  # the result is the task's own, as in Celery
    (child,) = Job.objects.filter(workflow_id=Job.objects.get(pk=ok.id).workflow_id).exclude(
        pk=ok.id
    )
    assert AsyncResult(str(child.pk)).get(timeout=120) == 103

    bad = tasks.boom.apply_async(link=tasks.add.s(1), link_error=tasks.failed_note.s("seen"))
    with pytest.raises(ValueError, match="boom"):
        bad.get(timeout=120)
    assert bad.state == states.FAILURE
    steps = {
        j.task: j
        for j in Job.objects.filter(workflow_id=Job.objects.get(pk=bad.id).workflow_id).exclude(
            pk=bad.id
        )
    }
    handler = AsyncResult(str(steps["compatapp.tasks.failed_note"].pk))
    assert handler.get(timeout=120) == f"seen:{bad.id}"
    # Cancelled in the transaction that stored the failure (fastq's workflows).
    skipped = steps["compatapp.tasks.add"]
    assert skipped.state == "cancelled"
    assert f"upstream job {bad.id} failed" in skipped.error


def test_a_step_waiting_for_its_parent_is_pending():
    r = chain(tasks.add.s(1, 2), tasks.add.s(3)).apply_async()
    step = Job.objects.get(pk=r.id)
    assert step.state == "waiting"
    assert AsyncResult(r.id).state == states.PENDING

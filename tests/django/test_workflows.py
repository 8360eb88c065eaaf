"""Workflows as users run them: a canvas enqueued from Django (in the caller's
transaction), ``manage.py fastq_worker`` subprocesses running it, outcomes read back from
the database. SQLite and PostgreSQL (FASTQ_TEST_DB)."""

from __future__ import annotations

import fastq
import pytest
from django.db import transaction
from fastq_django.models import Dependency, Job, Workflow
from testapp import workflow_tasks as wt
from testapp.models import Execution
from workerproc import run_worker

pytestmark = pytest.mark.django_db(transaction=True)


def test_chain_passes_results_and_steps_wait_in_the_database():
    r = (wt.add.s(1, 2) | wt.add.s(10) | wt.add.s(100)).delay()
    steps = list(Job.objects.filter(workflow_id=r.workflow_id).order_by("created_at", "id"))
    assert sorted(s.state for s in steps) == ["queued", "waiting", "waiting"]
    assert Dependency.objects.filter(workflow_id=r.workflow_id).count() == 2
    run_worker()
    assert r.get(timeout=10) == 113
    assert set(Job.objects.filter(workflow_id=r.workflow_id).values_list("state", flat=True)) == {
        "succeeded"
    }


def test_group_results_come_back_in_order_and_restore_from_another_handle():
    g = fastq.group(wt.add.s(i, 1000) for i in range(30)).delay()
    run_worker("--concurrency", "4")
    assert g.get(timeout=10) == [i + 1000 for i in range(30)]
    assert g.ready() and g.completed_count() == 30 and not g.failed()
    again = fastq.GroupResult.restore(g.id)
    assert again is not None and again.get(timeout=10) == g.get(timeout=10)
    assert Workflow.objects.get(pk=g.id).kind == "group"


def test_chord_callback_runs_once_with_every_result_across_workers(worker):
    n = 300
    r = fastq.chord((wt.add.s(i, 0) for i in range(n)), wt.collect.s("chord-once")).delay()
    # Three workers finish the members concurrently; the last completion releases the
    # callback, in the same transaction.
    procs = [worker("--burst", "--concurrency", "4", "--processes", "0") for _ in range(3)]
    for p in procs:
        p.finish()
    assert r.get(timeout=30) == list(range(n))
    assert Execution.objects.filter(key="chord-once").count() == 1
    cb = Job.objects.get(pk=r.id)
    assert cb.parents_pending == 0 and cb.attempts == 1


def test_a_group_label_goes_in_with_every_step_and_hostile_ones_are_refused():
    flow = fastq.chain(wt.add.s(1, 2), fastq.group(wt.add.s(10), wt.add.s(20).set(group_label="b")))
    r = flow.apply_async(group_label="batch-7")
    labels = sorted(Job.objects.values_list("group_label", flat=True))
    assert labels == ["b", "batch-7", "batch-7"]  # the step's own wins
    for bad in ("", "x" * 101, "nul\x00", "lone \udc80", 7):
        with pytest.raises(ValueError, match="group_label"):
            wt.add.s(1, 1).set(group_label=bad).delay()
    assert Job.objects.count() == 3
    run_worker()
    assert r.get(timeout=10) == [13, 23]
    assert set(Job.objects.filter(group_label="batch-7").values_list("state", flat=True)) == {
        "succeeded"
    }


def test_nested_canvas():
    flow = fastq.chain(
        wt.add.s(1, 1),
        fastq.group(wt.add.s(10), wt.add.s(20)),  # each member gets 2
        wt.total.s(),  # chord over the group: 12 + 22
        wt.add.s(1000),
    )
    r = flow.delay()
    g = fastq.group(wt.add.s(1, 1) | wt.add.s(1), fastq.chain(wt.add.s(2, 2), wt.add.s(2))).delay()
    run_worker()
    assert r.get(timeout=10) == 1034
    assert g.get(timeout=10) == [3, 6]


def test_failure_cancels_downstream_naming_the_step_and_runs_link_error():
    flow = (wt.add.s(1, 1) | wt.boom.s() | wt.add.s(1) | wt.add.s(1)).on_error(
        wt.on_error.s("handled")
    )
    r = flow.delay()
    run_worker()
    failed = Job.objects.get(workflow_id=r.workflow_id, task="wf.boom")
    assert failed.state == "failed"
    last = Job.objects.get(pk=r.id)
    assert last.state == "cancelled"
    assert last.error == f"upstream job {failed.id} failed"
    with pytest.raises(fastq.TaskFailed) as info:
        r.get(timeout=10)
    assert info.value.job_id == str(failed.id)
    assert info.value.type == "ValueError"
    assert "wf.boom" in info.value.message
    # The error handler ran exactly once, with the failed job's id.
    assert list(Execution.objects.values_list("key", flat=True)) == [f"handled:{failed.id}"]


def test_retries_stay_inside_a_step():
    r = (wt.flaky.s(7) | wt.add.s(1)).delay()
    run_worker()
    assert r.get(timeout=10) == 8
    assert Execution.objects.filter(key="flaky:7").count() == 2
    assert Job.objects.get(workflow_id=r.workflow_id, task="wf.flaky").attempts == 2


def test_chord_allow_failures():
    r = fastq.chord(
        [wt.add.s(1, 1), wt.boom.s(), wt.add.s(2, 2)], wt.collect.s("tolerant"), allow_failures=True
    ).delay()
    run_worker()
    values = r.get(timeout=10)
    assert values[0] == 2 and values[2] == 4
    assert fastq.is_failure(values[1])
    assert values[1]["__fastq_failed__"]["error_type"] == "ValueError"


def test_cancel_stops_every_unfinished_step():
    r = (wt.add.s(1, 1) | wt.add.s(1) | wt.add.s(1)).delay()
    g = fastq.group(wt.add.s(i, i) for i in range(5)).delay()
    assert r.cancel() == "cancelled"
    assert g.cancel() == 5
    run_worker()
    states = Job.objects.filter(workflow_id__in=[r.workflow_id, g.root_id]).values_list(
        "state", flat=True
    )
    assert set(states) == {"cancelled"}
    assert r.status == "CANCELLED"
    # Cancelling one waiting step cancels what depends on it, naming it.
    r2 = (wt.add.s(1, 1) | wt.add.s(1) | wt.add.s(1)).delay()
    middle = Job.objects.filter(workflow_id=r2.workflow_id, state="waiting").exclude(pk=r2.id)
    (mid,) = middle
    assert fastq.AsyncResult(str(mid.id)).cancel() == "cancelled"
    assert Job.objects.get(pk=r2.id).error == f"upstream job {mid.id} was cancelled"
    run_worker()
    assert fastq.AsyncResult(r2.id).status == "CANCELLED"


def test_workflow_dag_with_diamonds():
    w = fastq.workflow()
    a = w.add(wt.add.s(1, 1))
    b = w.add(wt.add.s(10), after=[a])
    c = w.add(wt.add.s(20), after=[a])
    d = w.add(wt.total.s(), after=[b, c])
    e = w.add(wt.add.s(1), after=[d])
    f = w.add(wt.total.s(), after=[b, e])  # a second diamond over b
    res = w.apply_async()
    run_worker()
    assert res.get(timeout=10) == [2, 12, 22, 34, 35, 47]
    assert fastq.AsyncResult(f.id).get(timeout=10) == 47


def test_enqueue_is_in_the_callers_transaction():
    with pytest.raises(RuntimeError), transaction.atomic():
        r = (wt.add.s(1, 1) | wt.add.s(1)).delay()
        raise RuntimeError("roll back")
    assert not Job.objects.filter(workflow_id=r.workflow_id).exists()
    assert not Dependency.objects.filter(workflow_id=r.workflow_id).exists()
    assert not Workflow.objects.filter(root_id=r.workflow_id).exists()


def test_large_group_goes_in_by_bulk_and_hostile_values_are_refused():
    g = fastq.group(wt.add.s(i, i) for i in range(2000)) | wt.total.s()
    r = g.delay()
    assert Job.objects.filter(workflow_id=r.workflow_id).count() == 2001
    run_worker("--concurrency", "4")
    assert r.get(timeout=60) == sum(2 * i for i in range(2000))
    with pytest.raises(ValueError):
        (wt.add.s(1, 1) | wt.add.s(2**70)).delay()
    with pytest.raises(ValueError):
        (wt.add.s("\ud800", 1) | wt.add.s(1)).delay()
    with pytest.raises(TypeError):
        fastq.chain(wt.add.s(1, 1), "not a signature")  # type: ignore[arg-type]


def test_a_refused_workflow_leaves_the_callers_transaction_usable():
    """The core's workflow operation runs on Django's connection inside a savepoint of the
    caller's transaction: a write that fails (a step id already taken) rolls back to it, a
    graph the core refuses writes nothing, and the caller's own work commits."""
    from django.db import DatabaseError
    from fastq import _core
    from fastq_django.broker import default_broker

    def step(job_id: str = "") -> _core.NewJob:
        return _core.NewJob(
            id=job_id or _core.new_job_id(),
            task=wt.add.name,
            queue="default",
            priority=0,
            args="[1, 1]",
            kwargs="{}",
            workflow_id=workflow_id,
        )

    workflow_id = _core.new_job_id()
    taken = wt.add.delay(1, 1)
    fresh, clash = step(), step(str(taken.id))
    records = [(workflow_id, workflow_id, "chain", "c", [clash.id])]
    broker = default_broker()
    with transaction.atomic():
        kept = wt.add.delay(2, 2)
        with pytest.raises(DatabaseError):
            broker.enqueue_workflow([fresh, clash], [(fresh.id, clash.id, 0)], records)
        a, b = step(), step()
        with pytest.raises(ValueError, match="cycle"):
            broker.enqueue_workflow([a, b], [(a.id, b.id, 0), (b.id, a.id, 0)], records)
    assert Job.objects.filter(pk=kept.id).exists()
    assert not Job.objects.filter(workflow_id=workflow_id).exists()
    assert not Dependency.objects.exists() and not Workflow.objects.exists()

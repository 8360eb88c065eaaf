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
    assert isinstance(r, AsyncResult)
    assert r.state == r.status == states.PENDING
    assert AsyncResult(r.id).state == states.PENDING
    assert r.parent.state == states.PENDING and r.parent.parent is None
    with pytest.raises(TimeoutError):
        r.get(timeout=0.05)
    # No group by these ids: None, whatever the text.
    for bad in ["nope\x00", "x" * 100_000, "\ud800", "", "-1", r.id]:
        assert GroupResult.restore(bad) is None


def test_canvas_results_speak_celery(worker):
    """What a canvas of Celery tasks returns is Celery's: its states, its parent links
    (a chain's last result, then each part before it; a chord's body, then its header),
    its GroupResult."""
    c = chain(tasks.add.s(1, 2), tasks.add.s(10), tasks.add.s(100)).apply_async()
    piped = (tasks.add.s(2, 2) | tasks.add.s(4)).delay()
    g = group(tasks.add.s(i, i) for i in range(3)).apply_async()
    ch = chord([tasks.add.s(i, 1) for i in range(3)])(tasks.tsum.s())
    lone = tasks.add.s(20, 22).apply_async()

    assert isinstance(c, AsyncResult) and isinstance(piped, AsyncResult)
    assert c.get(timeout=120) == 113
    assert c.state == states.SUCCESS and c.successful() and c.ready()
    assert c.name == "compatapp.tasks.add"
    assert c.parent.get(timeout=30) == 13 and c.parent.state == states.SUCCESS
    assert c.parent.parent.get(timeout=30) == 3 and c.parent.parent.parent is None
    assert piped.get(timeout=120) == 8 and piped.parent.result == 4

    assert isinstance(g, GroupResult)
    assert all(isinstance(r, AsyncResult) for r in g.results)
    assert g.get(timeout=120) == [0, 2, 4] and g.join(timeout=30) == [0, 2, 4]
    assert g.successful() and not g.waiting() and g.completed_count() == 3
    assert [r.state for r in g] == [states.SUCCESS] * 3 and len(g) == 3
    seen = {}
    g.get(timeout=30, callback=lambda i, v: seen.__setitem__(i, v))
    assert seen == {g[0].id: 0, g[1].id: 2, g[2].id: 4}
    restored = GroupResult.restore(g.id)
    assert isinstance(restored, GroupResult) and restored == g
    assert all(isinstance(r, AsyncResult) for r in restored)
    assert GroupResult.restore("00000000-0000-0000-0000-000000000000") is None

    assert isinstance(ch, AsyncResult)
    assert ch.get(timeout=120) == 1 + 2 + 3 and ch.state == states.SUCCESS
    assert isinstance(ch.parent, GroupResult) and ch.parent.get(timeout=30) == [1, 2, 3]

    assert isinstance(lone, AsyncResult) and lone.get(timeout=120) == 42
    assert lone.state == states.SUCCESS and lone.parent is None

    # A group inside a chain has the part before it as its parent.
    mixed = chain(tasks.add.s(1, 1), group(tasks.add.s(10), tasks.add.s(20))).apply_async()
    assert isinstance(mixed, GroupResult)
    assert mixed.get(timeout=120) == [12, 22] and mixed.parent.get(timeout=30) == 2


def test_a_chain_raises_the_exception_of_the_part_that_failed(worker):
    """As Celery's get(follow_parents=True): the part that failed raises its own
    exception, not the revocation of the steps it cancelled."""
    from fastq.compat.celery.exceptions import TaskRevokedError

    r = chain(tasks.boom.s(), tasks.add.s(1), tasks.add.s(2)).apply_async()
    with pytest.raises(ValueError, match="boom"):
        r.get(timeout=120)
    assert r.parent.parent.state == states.FAILURE
    assert r.parent.state == states.REVOKED
    assert r.state == states.REVOKED and r.ready() and not r.successful()
    # Without following the parents (or without propagating), the step's own outcome.
    with pytest.raises(TaskRevokedError):
        r.get(timeout=30, follow_parents=False)
    assert isinstance(r.get(timeout=30, propagate=False), TaskRevokedError)

    # A chord whose header failed: the header's exception, from the body's result.
    ch = chord([tasks.add.s(1, 1), tasks.boom.si()])(tasks.tsum.s())
    with pytest.raises(ValueError, match="boom"):
        ch.get(timeout=120)
    assert ch.parent.failed() and not ch.parent.successful()
    values = ch.parent.get(timeout=30, propagate=False)
    assert values[0] == 2 and isinstance(values[1], ValueError)
    with pytest.raises(ValueError, match="boom"):
        ch.parent.get(timeout=30)


def test_map_starmap_and_chunks_as_celery_defines_them(worker):
    from fastq.compat.celery import chunks, xmap, xstarmap

    m = tasks.square.map([1, 2, 3])
    assert isinstance(m, xmap) and repr(m) == "[compatapp.tasks.square(x) for x in [1, 2, 3]]"
    mapped = m.delay()
    assert isinstance(mapped, AsyncResult)
    starred = tasks.add.starmap([(1, 2), (3, 4)]).apply_async()
    assert isinstance(tasks.add.starmap([]), xstarmap)
    parts = tasks.add.chunks(zip(range(10), range(10), strict=True), 3)
    assert isinstance(parts, chunks) and len(parts.group().tasks) == 4
    chunked = parts.apply_async()
    by_name = xmap("compatapp.tasks.square", range(4)).apply_async()
    # Map operations are signatures: members of a group, steps of a chain.
    grouped = group(tasks.square.map([5]), tasks.add.starmap([(1, 1), (2, 2)])).apply_async()
    sent = chain(tasks.add.si(0, 0), tasks.add.chunks([(1, 2), (3, 4)], 1)).apply_async()

    assert mapped.get(timeout=120) == [1, 4, 9]  # one job, the calls in order
    assert starred.get(timeout=120) == [3, 7]
    assert chunked.get(timeout=120) == [[0, 2, 4], [6, 8, 10], [12, 14, 16], [18]]
    assert by_name.get(timeout=120) == [0, 1, 4, 9]
    assert grouped.get(timeout=120) == [[25], [2, 4]]
    # Sent as a step, chunks is the task celery.chunks: it enqueues the group and
    # returns its id.
    assert GroupResult.restore(sent.get(timeout=120)).get(timeout=120) == [[3], [7]]

    assert Job.objects.filter(pk=mapped.id, task="celery.map", queue="celery").exists()
    assert Job.objects.filter(pk__in=[c.id for c in chunked], task="celery.starmap").count() == 4
    # Routed as the mapped task: route_me's route sends its map to "routed".
    routed = tasks.route_me.map([]).apply_async()
    assert Job.objects.get(pk=routed.id).queue == "routed"


def test_map_operations_refuse_what_celery_would_not_run(worker):
    from fastq.compat.celery import chunks, xmap, xstarmap

    with pytest.raises(TypeError, match="sequence of arguments"):
        tasks.add.starmap([1, 2])
    with pytest.raises(ValueError, match="positive integer"):
        tasks.add.chunks([(1, 2)], 0)
    with pytest.raises(TypeError, match="cannot map itself"):
        xmap("celery.map", [1])
    with pytest.raises(TypeError):
        xstarmap(None, [])
    # A name the worker has not registered: the map job fails naming it; nothing is
    # imported from the message.
    unknown = xmap("os.system", ["true"]).apply_async()
    with pytest.raises(Exception, match="not registered in this worker"):
        unknown.get(timeout=120)
    assert unknown.state == states.FAILURE
    # A failing call fails the map job with its exception (Celery: the map task fails).
    bad = xstarmap(tasks.boom, [[]]).apply_async()
    with pytest.raises(Exception, match="boom"):
        bad.get(timeout=120)
    assert chunks(tasks.add, [], 2).apply_async().get(timeout=5) == []

"""Workflows on the in-memory broker: the canvas compiles to the jobs and dependencies the
core settles (the same state machine the SQL drivers run; tests/cpp/test_workflow.cpp)."""

from __future__ import annotations

import fastq
import pytest

from .conftest import run_burst


@fastq.task(name="wf.add")
def add(x: int, y: int) -> int:
    return x + y


@fastq.task(name="wf.tsum")
def tsum(values: list[int]) -> int:
    return sum(values)


@fastq.task(name="wf.ident")
def ident(x: object) -> object:
    return x


@fastq.task(name="wf.boom", max_retries=0)
def boom(*args: object) -> None:
    raise ValueError("boom")


NOTES: list[str] = []


@fastq.task(name="wf.note")
def note(failed_id: str, tag: str) -> str:
    NOTES.append(f"{tag}:{failed_id}")
    return f"{tag}:{failed_id}"


def drain(until: object, rounds: int = 50) -> None:
    """Burst workers until `until()` is true: a released step is claimed by the next
    burst when the previous one ended first."""
    for _ in range(rounds):
        run_burst()
        if until():  # type: ignore[operator]
            return
    raise AssertionError("the workflow did not finish")


def test_chain_passes_each_result_on(broker):
    r = (add.s(1, 2) | add.s(10) | add.s(100)).delay()
    assert isinstance(r, fastq.WorkflowResult)
    drain(r.ready)
    assert r.get() == 113


def test_immutable_signature_ignores_the_previous_result(broker):
    r = fastq.chain(add.s(1, 2), add.si(5, 5)).delay()
    drain(r.ready)
    assert r.get() == 10


def test_group_results_in_order_and_restore(broker):
    g = fastq.group(add.s(i, i) for i in range(10)).delay()
    assert isinstance(g, fastq.GroupResult)
    drain(g.ready)
    assert g.get() == [2 * i for i in range(10)]
    assert g.completed_count() == 10
    assert not g.failed()
    again = fastq.GroupResult.restore(g.id)
    assert again is not None
    assert [c.id for c in again.children] == [c.id for c in g.children]
    assert again.get() == g.get()
    assert fastq.GroupResult.restore(fastq._core.new_job_id()) is None


def test_chord_runs_the_callback_once_with_every_result(broker):
    r = fastq.chord((add.s(i, 0) for i in range(25)), tsum.s()).delay()
    drain(r.ready)
    assert r.get() == sum(range(25))
    # `group | callback` is a chord too.
    r2 = (fastq.group(add.s(i, 1) for i in range(3)) | tsum.s()).delay()
    drain(r2.ready)
    assert r2.get() == 1 + 2 + 3


def test_nested_canvas(broker):
    # a chain of a group and a chord, then a chain inside a group.
    flow = fastq.chain(
        add.s(1, 1),
        fastq.group(add.s(10), add.s(20)),  # each member receives 2
        tsum.s(),  # chord: [12, 22]
        add.s(1000),
    )
    r = flow.delay()
    drain(r.ready)
    assert r.get() == 1034
    g = fastq.group(add.s(1, 1) | add.s(1), fastq.chain(add.s(2, 2), add.s(2))).delay()
    drain(g.ready)
    assert g.get() == [3, 6]


def test_a_failure_cancels_downstream_and_get_names_the_failed_step(broker):
    r = (add.s(1, 1) | boom.s() | add.s(1) | add.s(1)).delay()
    drain(r.ready)
    with pytest.raises(fastq.TaskFailed) as info:
        r.get()
    snap = broker.fetch(r.id)
    assert snap.state == "cancelled"
    assert snap.error.startswith("upstream job ") and snap.error.endswith(" failed")
    assert info.value.type == "ValueError"
    assert "wf.boom" in str(info.value)
    assert info.value.job_id in snap.error


def test_link_error_runs_with_the_failed_id(broker):
    flow = (add.s(1, 1) | boom.s()).on_error(note.s("handled"))
    NOTES.clear()
    r = flow.delay()
    drain(lambda: bool(NOTES))
    assert broker.fetch(r.id).state == "failed"
    assert [f"handled:{r.id}"] == NOTES
    # Nothing failed: the handler never runs.
    NOTES.clear()
    ok = (add.s(1, 1) | add.s(1)).on_error(note.s("unused")).delay()
    drain(ok.ready)
    run_burst()
    assert ok.get() == 3
    assert NOTES == []


def test_chord_allow_failures_marks_the_failures(broker):
    r = fastq.chord([add.s(1, 1), boom.s(), add.s(2, 2)], ident.s(), allow_failures=True).delay()
    drain(r.ready)
    values = r.get()
    assert values[0] == 2 and values[2] == 4
    assert fastq.is_failure(values[1])
    assert values[1]["__fastq_failed__"]["error_type"] == "ValueError"


def test_workflow_dag_with_a_diamond(broker):
    w = fastq.workflow()
    a = w.add(add.s(1, 1))
    b = w.add(add.s(10), after=[a])
    c = w.add(add.s(20), after=[a])
    d = w.add(tsum.s(), after=[b, c])
    res = w.apply_async()
    drain(res.ready)
    assert broker.fetch(d.id).result == "34"
    assert res.get() == [2, 12, 22, 34]


def test_cancel_cancels_every_unfinished_step(broker):
    r = (add.s(1, 1) | add.s(1) | add.s(1)).delay()
    assert r.cancel() == "cancelled"
    drain(r.ready)
    assert r.status == fastq.result.CANCELLED
    g = fastq.group(add.s(i, i) for i in range(5)).delay()
    assert g.cancel() == 5
    assert all(c.status == "CANCELLED" for c in g.children)


def test_bad_canvas_is_refused_before_anything_is_written(broker):
    with pytest.raises(TypeError):
        fastq.chain(add.s(1, 1), 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        add.s(1, 2).set(bogus=1)
    with pytest.raises(ValueError):
        fastq.chord([add.s(1, 1)]).delay()
    with pytest.raises(TypeError):
        (add.s(1, 1) | add.s(object())).delay()  # not JSON: refused at enqueue
    with pytest.raises(ValueError):
        add.s(1, 2**70).delay()


def test_signature_by_name_and_options(broker):
    sig = fastq.signature("wf.add", (2, 3), queue="default", priority=5)
    r = (sig | add.s(1)).delay()
    drain(r.ready)
    assert r.get() == 6


@fastq.task(name="wf.big")
def big(n: int) -> str:
    return "x" * n


def test_results_past_the_payload_limit_end_the_callback_clearly(broker):
    # 4 members of 300 bytes: the callback's argument list passes 1 KiB.
    fastq.configure(MAX_PAYLOAD_BYTES=1024)
    r = fastq.chord((big.s(300) for _ in range(4)), ident.s()).delay()
    drain(r.ready)
    snap = broker.fetch(r.id)
    assert snap.state == "dead"
    assert snap.error_type == "fastq.PayloadTooLarge"
    with pytest.raises(fastq.TaskFailed):
        r.get()


def test_a_step_s_arguments_are_checked_at_the_call_with_the_result_in_front(broker):
    # add.s(10) runs as add(<previous result>, 10): it binds. add.s(1, 2) after a step
    # would run as add(<result>, 1, 2): one argument too many, refused before any job.
    with pytest.raises(TypeError, match=r"wf\.add\(\): too many positional arguments"):
        (ident.s(1) | add.s(1, 2)).delay()
    with pytest.raises(TypeError, match=r"wf\.add\(\): missing a required argument: 'y'"):
        (ident.s(1) | add.si(1)).delay()
    with pytest.raises(TypeError, match=r"wf\.tsum\(\): too many positional arguments"):
        fastq.chord([ident.s(1), ident.s(2)], tsum.s([0])).delay()
    r = (ident.s(1) | add.s(10)).delay()
    drain(r.ready)
    assert r.get() == 11

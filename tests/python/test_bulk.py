"""task.map's batch built in C++: arguments encoded as Python's json would, the task's
options on every job, and the per-job path for what needs Python per call."""

import enum
import json
import math
from datetime import UTC, datetime
from decimal import Decimal

import fastq
import pytest
from fastq import _core, signals
from fastq.brokers import to_micros

from .conftest import run_burst


@fastq.task
def echo(*args):
    return list(args)


@fastq.task(
    queue="bulk",
    priority=4,
    max_retries=1,
    expires=600,
    time_limit=30,
    soft_time_limit=20,
)
def configured(x):
    return x


class Colour(enum.IntEnum):
    RED = 1


class Tagged(dict):
    pass


PLAIN = [
    (),
    (1, -2, 0, 2**63 - 1, -(2**63)),
    (1.5, -0.0, 1e300, 5e-324, 0.1, 1e16, 123456789.125),
    (True, False, None),
    ("", "plain", 'quote " and \\ backslash', "tab\tnew\nline\rcr\b\f", "\x00\x01\x1f\x7f"),
    ("é ü 日本 \u2028 \U0001f600",),
    ([1, [2, [3, []]]], {"a": {"b": [None, {}]}}, {"": 0, "k\n": "v\t"}),
    ([{"x": (1, 2)}],),
]


def _encode(call):
    batch = _core.job_batch("t", "q", 0, 1, None, None, None, None, [call])
    return batch.rows()[0][4]


def dumps(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


@pytest.mark.parametrize("call", PLAIN)
def test_arguments_encode_exactly_as_the_python_encoder(call):
    assert _encode(call) == dumps(list(call))
    assert _encode(list(call)) == dumps(list(call))


def test_subclasses_encode_as_the_python_encoder_does():
    assert _encode((Colour.RED,)) == dumps([Colour.RED]) == "[1]"
    assert _encode((Tagged(a=1),)) == '[{"a":1}]'
    assert _encode(iter([1, 2])) == "[1,2]"  # any iterable of arguments
    deep = []
    for _ in range(200):
        deep = [deep]
    assert _encode((deep,)) == dumps([deep])


def test_a_bad_value_names_the_call_and_the_argument():
    with pytest.raises(
        ValueError,
        match=r"^t\(\): call 1, positional argument 0\['n'\] is 18446744073709551616, an integer",
    ):
        _core.job_batch("t", "q", 0, 1, None, None, None, None, [(1,), ({"n": 2**64},)])


@pytest.mark.parametrize(
    "bad", [math.nan, math.inf, Decimal("1.5"), object(), "\ud800", 2**63, {1: "int key"}]
)
def test_values_json_cannot_take_are_refused_before_anything_is_enqueued(broker, bad):
    with pytest.raises((TypeError, ValueError)):
        echo.map([(1,), (2, bad)])
    assert run_burst().succeeded == 0


def test_map_applies_the_task_options_to_every_job(broker):
    results = configured.map([(i,) for i in range(3)])
    rows = broker._driver.get(results[0].id)
    assert rows["queue"] == "bulk"
    assert rows["priority"] == 4
    assert rows["max_attempts"] == 2
    assert rows["args"] == "[0]"
    assert rows["kwargs"] == "{}"
    assert len({r.id for r in results}) == 3
    assert run_burst(queues=["default"]).succeeded == 0
    assert run_burst(queues=["bulk"]).succeeded == 3
    assert [r.result for r in results] == [0, 1, 2]


def test_an_aware_datetime_as_the_tasks_expiry(broker):
    past = datetime(2020, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)

    @fastq.task(name="test_bulk.expiring", expires=past)  # type: ignore[arg-type]
    def expiring():
        return None

    batch = _core.job_batch("t", "q", 0, 1, None, to_micros(past), None, None, [()])
    assert batch.rows()[0][8] == to_micros(past)
    (result,) = expiring.map([()])
    assert result.status == "QUEUED"
    run_burst(queues=["default"])
    assert result.status == "EXPIRED"


def test_batch_rows_carry_the_options():
    batch = _core.job_batch("t", "q", 7, 3, 1_000_000, 2_000_000, 1.5, 0.5, [(1,), ("x",)])
    assert len(batch) == 2
    ids = batch.ids()
    assert ids[0] != ids[1] and all(len(i) == 36 and i[14] == "7" for i in ids)
    assert batch.rows()[1] == (
        ids[1],
        "t",
        "q",
        7,
        '["x"]',
        "{}",
        1_000_000,
        3,
        2_000_000,
        "",
        1.5,
        0.5,
        "",
    )


def test_ids_are_time_ordered():
    ids = _core.job_batch("t", "q", 0, 1, None, None, None, None, [()] * 1000).ids()
    assert [i[:13] for i in ids] == sorted(i[:13] for i in ids)  # the millisecond prefix


def test_pg_copy_text_escapes_and_columns():
    batch = _core.job_batch("t", "q", 0, 4, None, None, None, None, [("a\tb\\c\nd",), ()])
    columns, data = batch.pg_copy(0, 10)
    assert columns == "id, task, queue, priority, args, kwargs, max_attempts, envelope"
    first, second = data.decode().splitlines()
    assert first.split("\t")[1:] == ["t", "q", "0", '["a\\\\tb\\\\\\\\c\\\\nd"]', "{}", "4", "1"]
    assert second.endswith("\t[]\t{}\t4\t1")
    columns, data = _core.job_batch("t", "q", 0, 4, None, 1_000_000, 2.5, None, [()]).pg_copy(0, 1)
    assert columns.endswith("envelope, expires_at, time_limit")
    assert data.decode().endswith("\t1970-01-01 00:00:01.000000+00\t2.5\n")


def test_empty_map_enqueues_nothing(broker):
    assert echo.map([]) == []


def test_enqueued_signal_gets_every_id(broker):
    seen = []

    def listener(sender, job_ids, **_):
        seen.extend(job_ids)

    signals.task_enqueued.connect(listener, sender=echo)
    try:
        results = echo.map([(i,) for i in range(10)])
    finally:
        signals.task_enqueued.disconnect(listener, sender=echo)
    assert seen == [r.id for r in results]


def test_eager_map_still_runs_inline(broker):
    fastq.configure(EAGER=True)
    assert [r.get() for r in echo.map([(1,), (2, "x")])] == [[1], [2, "x"]]
    assert json.loads(_encode((1,))) == [1]

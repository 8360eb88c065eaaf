"""Validation at the call site: every value a job cannot carry raises at ``.delay()``,
``.apply_async()``, ``.map()`` or the declaration, naming the argument, and nothing is
enqueued. Values at the edge of each bound are accepted and come back unchanged.

The cases (tests/django/validation_cases.py) run against the Django broker on SQLite and
PostgreSQL too, in tests/django/test_call_validation.py.
"""

from __future__ import annotations

import functools
import importlib
import math
import re
import sys
from collections.abc import Iterator

import fastq
import pytest
from fastq import limits
from fastq.task import registry
from validation_cases import (
    BAD_ARGUMENTS,
    BAD_DECLARATIONS,
    BAD_OPTIONS,
    BAD_RESULTS,
    EDGE_ARGUMENTS,
    EDGE_OPTIONS,
    RESULT_MESSAGES,
    nested,
    on_every_path,
)

from .conftest import run_burst


@fastq.task(name="test_validation.echo")
def echo(*args, **kwargs):
    return [list(args), kwargs]


@fastq.task(name="test_validation.echo_unique", unique=True)
def echo_unique(*args):
    return list(args)


@fastq.task(name="test_validation.identity")
def identity(value):
    return value


@fastq.task(name="test_validation.returns")
def returns(kind):
    return BAD_RESULTS[kind]


class RecordingBroker(fastq.MemoryBroker):
    """A memory broker that counts the jobs handed to it."""

    def __init__(self) -> None:
        super().__init__()
        self.received = 0

    def enqueue(self, jobs):
        self.received += len(jobs)
        return super().enqueue(jobs)

    def enqueue_batch(self, batch):
        self.received += len(batch)
        return super().enqueue_batch(batch)


@pytest.fixture
def broker() -> Iterator[RecordingBroker]:
    b = RecordingBroker()
    fastq.set_broker(b)
    yield b
    fastq.set_broker(None)
    fastq.configure()


def _enqueue(path: str, args: tuple, kwargs: dict) -> object:
    if path == "delay":
        return echo.delay(*args, **kwargs)
    if path == "apply_async":
        return echo.apply_async(args=args, kwargs=kwargs)
    if path == "map":
        return echo.map([(1,), args])
    if path == "map-unique":  # the per-job path of map()
        return echo_unique.map([(1,), args])
    raise AssertionError(path)


@pytest.mark.parametrize(("path", "args", "kwargs", "exc", "message"), on_every_path(BAD_ARGUMENTS))
def test_a_bad_argument_raises_at_the_call_naming_it(broker, path, args, kwargs, exc, message):
    with pytest.raises(exc, match=message) as info:
        _enqueue(path, args, kwargs)
    name = echo_unique.name if path == "map-unique" else echo.name
    assert str(info.value).startswith(f"{name}(): ")
    if path == "map":
        assert str(info.value).startswith(f"{name}(): call 1, ")
    assert broker.received == 0


@pytest.mark.parametrize(("options", "exc", "message"), BAD_OPTIONS)
def test_a_bad_option_raises_at_the_call_naming_it(broker, options, exc, message):
    with pytest.raises(exc, match=message) as info:
        echo.apply_async(args=(1,), **options)
    assert str(info.value).startswith(f"{echo.name}(): ")
    assert broker.received == 0


def test_eager_mode_refuses_the_same(broker):
    fastq.configure(EAGER=True)
    with pytest.raises(ValueError, match=r"positional argument 0 is nan"):
        echo.delay(math.nan)
    with pytest.raises(ValueError, match=r"priority must be from -32768 to 32767"):
        echo.apply_async(args=(1,), priority=10**9)
    with pytest.raises(TypeError, match=r"has the key 1 of type int"):
        echo.map([({1: 2},)])


@pytest.mark.parametrize(("options", "exc", "message"), BAD_DECLARATIONS)
def test_a_bad_task_option_raises_at_the_declaration(options, exc, message):
    def declared():
        return None

    with pytest.raises(exc, match=f"^task test_validation.bad_option: {message}"):
        fastq.task(name="test_validation.bad_option", **options)(declared)
    assert "test_validation.bad_option" not in registry


def test_a_dict_subclass_changing_what_holds_it_while_encoded_is_safe(broker):
    class Shifty(dict):
        def items(self):
            outer.clear()  # drops the list the encoder is inside
            keys[1:] = []
            return super().items()

    outer: list = [[1, Shifty(a=1)], "never read"]
    keys = [None, {"k": [outer]}]
    r = echo.delay(keys)
    assert broker.received == 1
    assert run_burst().succeeded == 1
    assert r.get(timeout=1) == [[[None, {"k": [[[1, {"a": 1}]]]}]], {}]


def test_a_keyword_name_that_is_not_a_string_raises(broker):
    with pytest.raises(TypeError, match=r"keyword names must be strings, got 1 of type int"):
        echo.apply_async(args=(), kwargs={1: "x"})
    with pytest.raises(ValueError, match=r"keyword name '\\ud800' is a string with a lone"):
        echo.apply_async(args=(), kwargs={"\ud800": "x"})
    assert broker.received == 0


def test_a_schedule_refuses_the_same_arguments_and_priority():
    with pytest.raises(ValueError, match=r"^schedule 'nan': positional argument 0 is nan"):
        fastq.PeriodicSchedule(name="nan", task="t", every=60, args=[math.nan])
    with pytest.raises(TypeError, match=r"^schedule 'key': argument 'm' has the key 1"):
        fastq.PeriodicSchedule(name="key", task="t", every=60, kwargs={"m": {1: 2}})
    with pytest.raises(ValueError, match=r"^schedule 'big': priority must be from"):
        fastq.PeriodicSchedule(name="big", task="t", every=60, priority=40_000)


@pytest.mark.parametrize(("path", "args", "kwargs"), on_every_path(EDGE_ARGUMENTS))
def test_edge_arguments_are_accepted_and_come_back_unchanged(broker, path, args, kwargs):
    result = _enqueue(path, args, kwargs)
    if isinstance(result, list):
        result = result[1]
    assert run_burst().succeeded >= 1
    got = result.get(timeout=1)
    if path == "map-unique":
        assert got == list(args)
    else:
        assert got == [list(args), kwargs]


def test_the_deepest_nesting_is_accepted(broker):
    deepest = nested(limits.MAX_JSON_DEPTH - 1)  # inside the arguments array: 1000 levels
    r = identity.delay(deepest)
    assert run_burst().succeeded == 1
    assert r.get(timeout=1) == deepest


@pytest.mark.parametrize("options", EDGE_OPTIONS)
def test_edge_options_are_accepted(broker, options):
    r = echo.apply_async(args=(1,), **options)
    row = broker._driver.get(r.id)
    if "priority" in options:
        assert row["priority"] == options["priority"]
    if "max_retries" in options:
        assert row["max_attempts"] == options["max_retries"] + 1
    assert run_burst().succeeded == 1
    assert r.get(timeout=1) == [[1], {}]


def test_edge_options_are_accepted_at_the_declaration():
    t = fastq.task(
        name="test_validation.edges",
        priority=-32768,
        max_retries=999_999,
        time_limit=1e9,
        soft_time_limit=1e9,
    )(lambda: None)
    try:
        assert (t.priority, t.max_retries, t.time_limit) == (-32768, 999_999, 1e9)
        assert t.max_retries + 1 == limits.MAX_ATTEMPTS_MAX
    finally:
        registry.pop(t.name)


@pytest.mark.parametrize("eager", [False, True], ids=["worker", "eager"])
@pytest.mark.parametrize("kind", sorted(BAD_RESULTS))
def test_a_result_json_cannot_carry_fails_the_job_naming_it(broker, kind, eager):
    fastq.configure(EAGER=eager)
    r = returns.delay(kind)
    if not eager:
        assert run_burst().failed == 1
    with pytest.raises(fastq.TaskFailed) as info:
        r.get(timeout=1)
    assert info.value.type == "fastq.ResultNotSerializable"
    assert info.value.message.startswith("the task returned a value JSON cannot encode: ")
    assert re.search(RESULT_MESSAGES[kind], info.value.message)
    assert r.status == "FAILED"


# Task names: one function a name.


def _module_function(source: str, module: str = "test_validation_dup"):
    namespace = {"__name__": module}
    exec(compile(source, f"{module}.py", "exec"), namespace)
    return namespace["f"]


def test_another_function_cannot_take_a_registered_name():
    first = _module_function("def f(): return 1\n")
    second = _module_function("\n\ndef f(): return 2\n")  # redefined further down
    t = fastq.task(first)
    try:
        assert t.name == "test_validation_dup.f"
        with pytest.raises(ValueError, match=r"task name 'test_validation_dup.f' is taken"):
            fastq.task(second)
        with pytest.raises(ValueError, match=r"task name 'test_validation_dup.f' is taken"):
            fastq.task(name="test_validation_dup.f")(echo.fn)
        assert registry[t.name] is t
    finally:
        registry.pop(t.name)


def test_an_explicit_name_clash_raises_naming_both_functions():
    def one():
        return 1

    def two():
        return 2

    t = fastq.task(name="test_validation.clash")(one)
    try:
        with pytest.raises(ValueError) as info:
            fastq.task(name="test_validation.clash")(two)
        message = str(info.value)
        assert "'test_validation.clash' is taken" in message
        assert ".one (" in message and ".two (" in message
        assert registry["test_validation.clash"] is t
    finally:
        registry.pop(t.name)


def test_the_same_function_declared_again_replaces_its_task():
    def same():
        return None

    first = fastq.task(name="test_validation.same")(same)
    try:
        second = fastq.task(name="test_validation.same", queue="other")(same)
        assert registry["test_validation.same"] is second
        # The same definition executed again (a module reload) is the same declaration.
        again = _module_function("def f(): return 1\n")
        fastq.task(again)
        fastq.task(_module_function("def f(): return 1\n"))
    finally:
        registry.pop(first.name)
        registry.pop("test_validation_dup.f", None)


def test_decorators_are_seen_through():
    def wraps(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            return fn(*args, **kwargs)

        return wrapper

    def one():
        return 1

    def two():
        return 2

    t = fastq.task(name="test_validation.wrapped")(wraps(one))
    try:
        # Both wrappers share the decorator's code; the functions under them differ.
        with pytest.raises(ValueError, match=r"'test_validation.wrapped' is taken"):
            fastq.task(name="test_validation.wrapped")(wraps(two))
        # A task decorated as a task again is the same function.
        again = fastq.task(name="test_validation.wrapped")(t)
        assert registry["test_validation.wrapped"] is again
    finally:
        registry.pop(t.name)


def test_reloading_a_task_module_is_not_a_clash(tmp_path, monkeypatch):
    (tmp_path / "reloaded_tasks.py").write_text(
        "import fastq\n\n@fastq.task\ndef ping():\n    return 'pong'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("reloaded_tasks")
    try:
        before = registry["reloaded_tasks.ping"]
        importlib.reload(module)
        assert registry["reloaded_tasks.ping"] is module.ping is not before
    finally:
        registry.pop("reloaded_tasks.ping", None)
        sys.modules.pop("reloaded_tasks", None)

"""The cases of call-site validation, shared by tests/python/test_validation.py (the
in-memory broker) and tests/django/test_call_validation.py (the Django broker on SQLite
and PostgreSQL): values a job cannot carry, each with the exception and the message
naming it, and values at the edge of each bound, accepted and round-tripped.

Bounds: fastq.limits (and the job table's CHECK constraints).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from fastq import limits


def nested(levels: int) -> list:
    value: list = []
    for _ in range(levels - 1):
        value = [value]
    return value


def circular() -> list:
    loop: list = []
    loop.append(loop)
    return loop


# (positional arguments, keyword arguments, exception, message naming the argument)
BAD_ARGUMENTS = [
    pytest.param(
        (2**63,),
        {},
        ValueError,
        r"positional argument 0 is 9223372036854775808, an integer outside the signed "
        r"64-bit range",
        id="int-2**63",
    ),
    pytest.param(
        (1, -(2**63) - 1),
        {},
        ValueError,
        r"positional argument 1 is -9223372036854775809, an integer outside",
        id="int-below-int64",
    ),
    pytest.param(
        (10**5000,),
        {},
        ValueError,
        r"positional argument 0 is an integer of 16610 bits, an integer outside",
        id="int-too-long-to-print",
    ),
    pytest.param(
        (),
        {"n": 2**64},
        ValueError,
        r"argument 'n' is 18446744073709551616, an integer outside",
        id="kwarg-int",
    ),
    pytest.param(
        ([1, {"deep": [2**63]}],),
        {},
        ValueError,
        r"positional argument 0\[1\]\['deep'\]\[0\] is 9223372036854775808",
        id="nested-int",
    ),
    pytest.param(
        (math.nan,),
        {},
        ValueError,
        r"positional argument 0 is nan; JSON has no NaN or infinity",
        id="nan",
    ),
    pytest.param(
        (),
        {"x": math.inf},
        ValueError,
        r"argument 'x' is inf; JSON has no NaN or infinity",
        id="inf-kwarg",
    ),
    pytest.param(
        ({"a": (1.0, -math.inf)},),
        {},
        ValueError,
        r"positional argument 0\['a'\]\[1\] is -inf",
        id="nested-minus-inf",
    ),
    pytest.param(
        ("ok", "abc\ud800"),
        {},
        ValueError,
        r"positional argument 1 is a string with a lone surrogate \(U\+D800 at index 3\), "
        r"which UTF-8 cannot encode",
        id="lone-surrogate",
    ),
    pytest.param(
        (),
        {"s": ["\udcff"]},
        ValueError,
        r"argument 's'\[0\] is a string with a lone surrogate \(U\+DCFF at index 0\)",
        id="lone-surrogate-kwarg",
    ),
    pytest.param(
        ({"\ud83d": 1},),
        {},
        ValueError,
        r"positional argument 0 has a key with a lone surrogate \(U\+D83D at index 0\)",
        id="lone-surrogate-key",
    ),
    pytest.param(
        ({1: "one"},),
        {},
        TypeError,
        r"positional argument 0 has the key 1 of type int; JSON object keys must be strings",
        id="int-key",
    ),
    pytest.param(
        (),
        {"m": {"a": {(1, 2): 3}}},
        TypeError,
        r"argument 'm'\['a'\] has the key \(1, 2\) of type tuple",
        id="tuple-key",
    ),
    pytest.param(
        ({None: 1},),
        {},
        TypeError,
        r"positional argument 0 has the key None of type NoneType",
        id="none-key",
    ),
    pytest.param(
        (object(),),
        {},
        TypeError,
        r"positional argument 0 of type object is not JSON serializable",
        id="object",
    ),
    pytest.param(
        ([Decimal("1.5")],),
        {},
        TypeError,
        r"positional argument 0\[0\] of type Decimal is not JSON serializable",
        id="decimal",
    ),
    pytest.param(
        (),
        {"when": datetime.now(UTC)},
        TypeError,
        r"argument 'when' of type datetime is not JSON serializable",
        id="datetime",
    ),
    pytest.param(
        ({1, 2},), {}, TypeError, r"positional argument 0 of type set is not JSON", id="set"
    ),
    pytest.param(
        (b"raw",), {}, TypeError, r"positional argument 0 of type bytes is not JSON", id="bytes"
    ),
    pytest.param(
        (nested(limits.MAX_JSON_DEPTH),),
        {},
        ValueError,
        r"positional argument 0\[0\]\[0\].*\[0\] is nested more than 1000 levels deep",
        id="too-deep",
    ),
    pytest.param(
        (circular(),),
        {},
        ValueError,
        r"is nested more than 1000 levels deep \(a circular reference\?\)",
        id="circular",
    ),
]

# Options of apply_async: (options, exception, message naming the option)
BAD_OPTIONS = [
    pytest.param(
        {"priority": 10**9},
        ValueError,
        r"priority must be from -32768 to 32767, got 1000000000",
        id="priority-1e9",
    ),
    pytest.param({"priority": 32768}, ValueError, r"priority must be from", id="priority-32768"),
    pytest.param({"priority": -32769}, ValueError, r"priority must be from", id="priority-low"),
    pytest.param(
        {"priority": True}, TypeError, r"priority must be an int, not bool", id="priority-bool"
    ),
    pytest.param(
        {"priority": 1.0}, TypeError, r"priority must be an int, not float", id="priority-float"
    ),
    pytest.param(
        {"priority": "5"}, TypeError, r"priority must be an int, not str", id="priority-str"
    ),
    pytest.param(
        {"max_retries": 10**10},
        ValueError,
        r"max_retries must be from 0 to 999999, got 10000000000",
        id="max_retries-1e10",
    ),
    pytest.param(
        {"max_retries": 1_000_000}, ValueError, r"max_retries must be from", id="max_retries-1e6"
    ),
    pytest.param(
        {"max_retries": -1}, ValueError, r"max_retries must be from", id="max_retries-neg"
    ),
    pytest.param(
        {"max_retries": False},
        TypeError,
        r"max_retries must be an int, not bool",
        id="max_retries-bool",
    ),
    pytest.param(
        {"max_retries": 2.0},
        TypeError,
        r"max_retries must be an int, not float",
        id="max_retries-float",
    ),
    pytest.param(
        {"time_limit": math.nan},
        ValueError,
        r"time_limit must be a finite number of seconds, got nan",
        id="time_limit-nan",
    ),
    pytest.param(
        {"time_limit": math.inf}, ValueError, r"time_limit must be a finite", id="time_limit-inf"
    ),
    pytest.param(
        {"time_limit": 0},
        ValueError,
        r"time_limit must be above 0 and at most 1e\+09 seconds, got 0.0",
        id="time_limit-0",
    ),
    pytest.param(
        {"time_limit": -1}, ValueError, r"time_limit must be above 0", id="time_limit-neg"
    ),
    pytest.param(
        {"time_limit": 1e9 + 1}, ValueError, r"time_limit must be above 0", id="time_limit-big"
    ),
    pytest.param(
        {"time_limit": True},
        TypeError,
        r"time_limit must be a number of seconds, not bool",
        id="time_limit-bool",
    ),
    pytest.param(
        {"time_limit": "30"},
        TypeError,
        r"time_limit must be a number of seconds, not str",
        id="time_limit-str",
    ),
    pytest.param(
        {"soft_time_limit": math.nan},
        ValueError,
        r"soft_time_limit must be a finite number of seconds, got nan",
        id="soft_time_limit-nan",
    ),
    pytest.param(
        {"soft_time_limit": -0.5},
        ValueError,
        r"soft_time_limit must be above 0",
        id="soft_time_limit-neg",
    ),
    pytest.param(
        {"countdown": math.nan},
        ValueError,
        r"countdown must be a finite number of seconds, got nan",
        id="countdown-nan",
    ),
    pytest.param(
        {"countdown": -math.inf}, ValueError, r"countdown must be a finite", id="countdown-inf"
    ),
    pytest.param(
        {"countdown": 1e300},
        ValueError,
        r"countdown of 1e\+300 seconds reaches past the dates a job can hold",
        id="countdown-huge",
    ),
    pytest.param(
        {"countdown": True},
        TypeError,
        r"countdown must be a number of seconds, not bool",
        id="countdown-bool",
    ),
    pytest.param(
        {"countdown": "10"},
        TypeError,
        r"countdown must be a number of seconds, not str",
        id="countdown-str",
    ),
    pytest.param(
        {"eta": "2030-01-01T00:00:00Z"},
        TypeError,
        r"eta must be a datetime, not str",
        id="eta-str",
    ),
    pytest.param(
        {"countdown": 5, "eta": datetime(2030, 1, 1, tzinfo=UTC)},
        ValueError,
        r"pass countdown or eta, not both",
        id="countdown-and-eta",
    ),
    pytest.param(
        {"expires": math.nan},
        ValueError,
        r"expires must be a finite number of seconds, got nan",
        id="expires-nan",
    ),
    pytest.param(
        {"expires": "soon"},
        TypeError,
        r"expires must be a number of seconds, not str",
        id="expires-str",
    ),
]

# Task options at the declaration: (options, exception, message naming the option)
BAD_DECLARATIONS = [
    pytest.param({"priority": 10**9}, ValueError, r"priority must be from", id="priority"),
    pytest.param({"priority": False}, TypeError, r"priority must be an int", id="priority-bool"),
    pytest.param({"max_retries": 10**10}, ValueError, r"max_retries must be from", id="retries"),
    pytest.param({"max_retries": -1}, ValueError, r"max_retries must be from", id="retries-neg"),
    pytest.param(
        {"time_limit": math.nan}, ValueError, r"time_limit must be a finite", id="time_limit"
    ),
    pytest.param(
        {"soft_time_limit": 0}, ValueError, r"soft_time_limit must be above 0", id="soft_limit"
    ),
    pytest.param({"expires": math.inf}, ValueError, r"expires must be a finite", id="expires"),
]

# Arguments at the edge of what a job may carry: (args, kwargs).
EDGE_ARGUMENTS = [
    pytest.param((2**63 - 1, -(2**63)), {}, id="int64-bounds"),
    pytest.param((0, -1, 1, 2**31, -(2**31) - 1), {}, id="ints"),
    pytest.param((5e-324, 1.7976931348623157e308, -0.0, 0.1), {}, id="floats"),
    pytest.param(("a\x00b", "\x7f\x1f", "é 日本 \U0001f600 \u2028"), {}, id="strings-nul"),
    pytest.param((), {"n": 2**63 - 1, "key with spaces": {"": [None, True, False]}}, id="kwargs"),
]

# Options of apply_async at the edge of their bounds.
EDGE_OPTIONS = [
    pytest.param({"priority": -32768}, id="priority-min"),
    pytest.param({"priority": 32767}, id="priority-max"),
    pytest.param({"max_retries": 999_999}, id="max_retries-max"),
    pytest.param({"max_retries": 0}, id="max_retries-0"),
    pytest.param({"time_limit": 1e9, "soft_time_limit": 1e9}, id="time_limits-max"),
    pytest.param({"time_limit": 1, "soft_time_limit": 0.001}, id="time_limits-small"),
    pytest.param({"countdown": -5}, id="countdown-negative-is-now"),
    pytest.param({"countdown": 0}, id="countdown-0"),
    pytest.param({"expires": 3600}, id="expires-seconds"),
    pytest.param({"eta": datetime.now(UTC) - timedelta(seconds=1)}, id="eta-past"),
]

# What a task may not return (the job fails: fastq.ResultNotSerializable).
BAD_RESULTS = {
    "nan": [1, math.nan],
    "big-int": {"n": 2**64},
    "int-key": {1: "one"},
    "surrogate": "\udc80",
    "object": object(),
}
RESULT_MESSAGES = {
    "nan": r"result\[1\] is nan; JSON has no NaN or infinity",
    "big-int": r"result\['n'\] is 18446744073709551616, an integer outside",
    "int-key": r"result has the key 1 of type int; JSON object keys must be strings",
    "surrogate": r"result is a string with a lone surrogate \(U\+DC80 at index 0\)",
    "object": r"result of type object is not JSON serializable",
}


def on_every_path(params: list) -> list:
    """Each case on each enqueue path that takes it (map() takes positional arguments)."""
    out = []
    for p in params:
        paths = ["delay", "apply_async"] + ([] if p.values[1] else ["map", "map-unique"])
        out += [pytest.param(path, *p.values, id=f"{p.id}-{path}") for path in paths]
    return out

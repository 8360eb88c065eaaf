"""The bounds of a job's options, checked where a task is declared or called.

A value out of bounds raises ``TypeError`` (wrong type) or ``ValueError`` (out of range)
naming the option, before anything is written, whatever the broker: the database would
refuse it later (or, on SQLite, store it and a worker dead-letter it). The job table's
CHECK constraints use these same bounds.

Arguments and results are checked by the JSON encoder of the C++ core
(``src/cpp/bindings/json_encode.hpp``): integers within signed 64 bits, no NaN or
infinity, strings UTF-8 can encode, str dict keys, at most ``MAX_JSON_DEPTH`` levels.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, tzinfo
from numbers import Real
from typing import Any

from fastq import _core

# fastq_job.priority is a SmallIntegerField.
PRIORITY_MIN = -32768
PRIORITY_MAX = 32767
# fastq_job.max_attempts = max_retries + 1.
MAX_ATTEMPTS_MAX = 1_000_000
MAX_RETRIES_MAX = MAX_ATTEMPTS_MAX - 1
# time_limit and soft_time_limit, seconds (about 31 years).
TIME_LIMIT_MAX = 1e9
# Integers in arguments and results.
JSON_INT_MIN = -(2**63)
JSON_INT_MAX = 2**63 - 1
MAX_JSON_DEPTH: int = _core.MAX_JSON_DEPTH


def _int(where: str, option: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{where}{option} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{where}{option} must be from {low} to {high}, got {value}")
    return int(value)


def priority(value: Any, where: str = "") -> int:
    """An int from -32768 to 32767 (higher runs first)."""
    return _int(where, "priority", value, PRIORITY_MIN, PRIORITY_MAX)


def max_retries(value: Any, where: str = "") -> int:
    """An int from 0 to 999999 (a job gets max_retries + 1 attempts)."""
    return _int(where, "max_retries", value, 0, MAX_RETRIES_MAX)


def seconds(option: str, value: Any, where: str = "") -> float:
    """A finite number of seconds (an int, a float or a ``timedelta``; not a bool)."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{where}{option} must be a number of seconds, not {type(value).__name__}")
    s = float(value)
    if not math.isfinite(s):
        raise ValueError(f"{where}{option} must be a finite number of seconds, got {s}")
    return s


def time_limit(option: str, value: Any, where: str = "") -> float | None:
    """None, or seconds above 0 and at most 1e9."""
    if value is None:
        return None
    s = seconds(option, value, where)
    if not 0 < s <= TIME_LIMIT_MAX:
        raise ValueError(
            f"{where}{option} must be above 0 and at most {TIME_LIMIT_MAX:.0e} seconds, got {s}"
        )
    return s


def aware_datetime(option: str, value: Any, where: str = "") -> datetime:
    """``value`` as an aware datetime. A naive one is read in the project's zone, as
    Django reads naive datetimes: settings.TIME_ZONE in a Django project, else the
    system's local zone (at a DST change, the first of two readings)."""
    if not isinstance(value, datetime):
        raise TypeError(f"{where}{option} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        zone = _default_zone()
        if zone is None:
            return value.replace(tzinfo=None).astimezone()
        return value.replace(tzinfo=zone)
    return value


def _default_zone() -> tzinfo | None:
    """Django's default time zone (settings.TIME_ZONE) when Django is configured."""
    from fastq import conf

    if conf.django_settings() is None:
        return None
    from django.utils import timezone

    return timezone.get_default_timezone()

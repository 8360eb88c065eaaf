"""Task options and their defaults: the defaults of ``@fastq.task``, what
``FASTQ["TASK_DEFAULTS"]`` may set fleet-wide, and rate-limit text."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fastq import conf

DEFAULT_MAX_RETRIES = 3  # so a job gets 4 attempts, worker deaths included
DEFAULT_RETRY_DELAY = 180.0  # seconds, for self.retry() without countdown or backoff

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$")
_UNIT_SECONDS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60}


def parse_rate_limit(text: str) -> float:
    """``"20/s"``, ``"100/m"``, ``"3/h"`` -> seconds between two starts."""
    m = _RATE.match(text)
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"rate_limit {text!r}: expected a count per s, m or h, like '20/s'")
    return _UNIT_SECONDS.get(m.group(2), 3600) / float(m.group(1))


# The options FASTQ["TASK_DEFAULTS"] may set: those that make sense fleet-wide (a name,
# bind, uniqueness or a rate-limit key belong to one task).
TASK_DEFAULT_OPTIONS = (
    "queue",
    "priority",
    "max_retries",
    "autoretry_for",
    "retry_backoff",
    "retry_backoff_max",
    "retry_jitter",
    "default_retry_delay",
    "expires",
    "time_limit",
    "soft_time_limit",
    "rate_limit",
    "rate_limit_burst",
)


def with_task_defaults(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` over ``FASTQ["TASK_DEFAULTS"]``: what a task declared with these options
    gets. Read when the task is declared (its module imported)."""
    defaults = conf.get("TASK_DEFAULTS") or {}
    if not defaults:
        return dict(options)
    unknown = sorted(set(defaults) - set(TASK_DEFAULT_OPTIONS))
    if unknown:
        raise ValueError(
            f"FASTQ['TASK_DEFAULTS'] has option(s) a fleet-wide default cannot set: "
            f"{', '.join(map(str, unknown))} (allowed: {', '.join(TASK_DEFAULT_OPTIONS)})"
        )
    return {**defaults, **options}

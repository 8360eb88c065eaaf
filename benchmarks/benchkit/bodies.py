"""Task bodies, identical for every system; each project wraps them in its own task
decorator under the names bench.tasks.noop, bench.tasks.io_get and bench.tasks.probe."""

from __future__ import annotations

import time
import urllib.request


def noop() -> None:
    return None


def io_get(url: str) -> int:
    """One HTTP GET to the harness' stub, which answers after a fixed delay."""
    with urllib.request.urlopen(url, timeout=30) as response:
        response.read()
        return int(response.status)


def probe(enqueued_at: float) -> float:
    """Returns the start time; the caller knows the enqueue time (it is the argument)."""
    return time.time()

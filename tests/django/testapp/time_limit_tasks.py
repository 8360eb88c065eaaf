"""Tasks with time limits, for the reliability suite. The worker imports this module only
when FASTQ_TEST_IMPORTS names it (see testproject/settings.py)."""

from __future__ import annotations

import time

import fastq

from testapp.reliability_tasks import execution, ledger_write


@fastq.task(time_limit=1, max_retries=0)
def hard_limited(seconds: float = 30.0) -> str:
    """Sleeps far past its 1 s hard limit: the worker must stop it."""
    with execution():
        time.sleep(seconds)
    return "ran to the end"


@fastq.task(soft_time_limit=0.5)
def soft_limited(limit: float = 10.0) -> str:
    """Works in short steps until told its soft limit is up, then cleans up and returns."""
    with execution():
        deadline = time.monotonic() + limit
        try:
            while time.monotonic() < deadline:
                time.sleep(0.05)
        except fastq.SoftTimeLimitExceeded:
            ledger_write("cleanup")
            return "cleaned up"
    return "ran to the end"

"""Ledger tasks on their own queues, for the pause and fleet-wide limit tests
(tests/integration/reliability/test_pause_and_limits.py). The worker imports this module
only when FASTQ_TEST_IMPORTS names it (see testproject/settings.py)."""

from __future__ import annotations

import time

import fastq

from testapp.reliability_tasks import execution


@fastq.task(queue="limited")
def limited_slot(n: int, seconds: float) -> int:
    with execution(str(n)):
        time.sleep(seconds)
    return n


@fastq.task(queue="pausable")
def pausable(n: int, seconds: float) -> int:
    with execution(str(n)):
        time.sleep(seconds)
    return n


@fastq.task(queue="steady")
def steady(n: int, seconds: float) -> int:
    with execution(str(n)):
        time.sleep(seconds)
    return n

"""Tasks of the round trip: arithmetic, and a cron fire time computed inside the worker."""

from datetime import UTC, datetime

import fastq


@fastq.task
def add(a: int, b: int) -> int:
    return a + b


@fastq.task
def next_fire(expression: str, timezone: str, after: str) -> str:
    """The schedule's next fire time after an ISO instant, as the worker's core sees it."""
    start = datetime.fromisoformat(after).astimezone(UTC)
    return fastq.Cron(expression, timezone).next_after(start).isoformat()

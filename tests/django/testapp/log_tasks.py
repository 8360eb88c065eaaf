"""Tasks of the failure-log tests (tests/django/test_failure_logs.py). Not imported by the
test app itself: FASTQ_TEST_IMPORTS names it for the worker (see testproject/settings.py),
and the tests import it to enqueue."""

import time

import fastq

HUGE = 10 * 1024 * 1024


@fastq.task(name="logs.fails", max_retries=0)
def fails(message):
    raise ValueError(message)


@fastq.task(
    name="logs.flaky", autoretry_for=(ConnectionError,), max_retries=1, default_retry_delay=0
)
def flaky():
    """Fails twice with ConnectionError: one retry, then dead."""
    raise ConnectionError(f"provider down on attempt {fastq.current_job().attempt}")


@fastq.task(name="logs.hostile", max_retries=0)
def hostile(kind):
    """Raises with a message no log line may carry as it is."""
    messages = {
        "nul": "before\x00after",
        "surrogate": "lone \udc80 surrogate",
        "newlines": "line one\nERROR forged line\r\n\x1b[31mred",
        "huge": "x" * HUGE,
    }
    raise ValueError(messages[kind])


class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("no text for you")


@fastq.task(name="logs.unprintable", max_retries=0)
def unprintable():
    raise Unprintable()


@fastq.task(name="logs.ok")
def ok(value):
    return value


@fastq.task(name="logs.overrun", time_limit=1, max_retries=0)
def overrun():
    time.sleep(60)


@fastq.task(name="logs.async_fails", max_retries=0)
async def async_fails(message):
    raise KeyError(message)

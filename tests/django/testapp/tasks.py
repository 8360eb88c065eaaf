import os
import time
from datetime import timedelta

import fastq
from django.db import transaction

from testapp import (
    reliability_tasks,  # noqa: F401 - the reliability suite's tasks
    workflow_tasks,  # noqa: F401 - the workflow tests' tasks
)
from testapp.models import Execution


@fastq.task
def add(a, b):
    return a + b


@fastq.task
def record(key, sleep=0.0):
    """Records this execution, then optionally sleeps (to be killed mid-run)."""
    job = fastq.current_job()
    with transaction.atomic():
        Execution.objects.create(job_id=job.id, key=key, attempt=job.attempt, pid=os.getpid())
    if sleep:
        time.sleep(sleep)
    return key


@fastq.task
def fail(message):
    raise ValueError(message)


@fastq.task(queue="other", priority=5)
def on_other_queue():
    return "other"


@fastq.task
def noop():
    return None


@fastq.task(autoretry_for=(ConnectionError,), max_retries=2, default_retry_delay=0)
def flaky(key, failures):
    """Fails with ConnectionError on its first `failures` attempts."""
    job = fastq.current_job()
    Execution.objects.create(job_id=job.id, key=key, attempt=job.attempt, pid=os.getpid())
    if job.attempt <= failures:
        raise ConnectionError(f"provider down on attempt {job.attempt}")
    return job.attempt


@fastq.task(priority=9)
def lose_connection():
    """Has PostgreSQL drop this thread's connection, as a database restart would."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")


@fastq.task
def cooperative(key, limit=30.0):
    """Works until cancelled (or `limit` seconds), checking as long tasks should."""
    job = fastq.current_job()
    Execution.objects.create(job_id=job.id, key=key, attempt=job.attempt, pid=os.getpid())
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if job.cancel_requested:
            return "stopped early"
        time.sleep(0.05)
    return "ran to the end"


@fastq.task(unique_key=lambda order_id: f"order-{order_id}")
def check_order(order_id):
    return order_id


@fastq.task
async def async_add(a, b):
    import asyncio

    await asyncio.sleep(0.001)
    return a + b


@fastq.task(time_limit=1, max_retries=0)
def overrun(key):
    """Sleeps far past its hard time limit."""
    job = fastq.current_job()
    Execution.objects.create(job_id=job.id, key=key, attempt=job.attempt, pid=os.getpid())
    time.sleep(60)


@fastq.task(soft_time_limit=0.3)
def cleans_up(key):
    """Loops until its soft time limit interrupts it, then cleans up and returns."""
    job = fastq.current_job()
    try:
        while True:
            time.sleep(0.01)
    except fastq.SoftTimeLimitExceeded:
        Execution.objects.create(job_id=job.id, key=key, attempt=job.attempt, pid=os.getpid())
        return "cleaned up"


@fastq.task(max_retries=2)
def poison():
    """Takes its worker process down on every run."""
    os._exit(1)


@fastq.task(rate_limit="20/s")
def limited(key):
    job = fastq.current_job()
    Execution.objects.create(job_id=job.id, key=key, attempt=job.attempt, pid=os.getpid())


@fastq.task
async def async_sleep(seconds):
    """Returns when it ran: [start, end] (tests measure how many ran at once)."""
    import asyncio

    start = time.time()
    await asyncio.sleep(seconds)
    return [start, time.time()]


@fastq.task(soft_time_limit=0.2, max_retries=0)
async def async_overrun():
    import asyncio

    await asyncio.sleep(30)


@fastq.periodic(cron="0 3 * * 0", timezone="Asia/Tehran", kwargs={"key": "weekly"})
@fastq.task
def weekly_report(key):
    return key


@fastq.periodic(every=timedelta(hours=6), name="six-hourly")
def six_hourly():
    """A plain function: @fastq.periodic registers the task too."""
    return "ok"


@fastq.task
def tick(key, sleep=0.0):
    """Fired by schedules in the tests: records each run with its job id."""
    job = fastq.current_job()
    Execution.objects.create(job_id=job.id, key=key, attempt=job.attempt, pid=os.getpid())
    if sleep:
        time.sleep(sleep)
    return key


@fastq.task
def echo_call(*args, **kwargs):
    """Returns its call as it arrived (tests/django/test_call_validation.py)."""
    return [list(args), kwargs]


@fastq.task(unique=True)
def echo_unique(*args):
    return list(args)


@fastq.task
def bad_result(kind):
    """Returns a value JSON must not carry (validation_cases.BAD_RESULTS[kind])."""
    from validation_cases import BAD_RESULTS

    return BAD_RESULTS[kind]

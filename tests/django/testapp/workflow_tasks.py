"""Tasks of the workflow tests (tests/django/test_workflows.py). Each run of a ledger
task is recorded in Execution, so the tests count executions from the database."""

import os

import fastq
from django.db import transaction

from testapp.models import Execution


def _note(key: str) -> None:
    job = fastq.current_job()
    assert job is not None
    with transaction.atomic():
        Execution.objects.create(job_id=job.id, key=key, attempt=job.attempt, pid=os.getpid())


@fastq.task(name="wf.add")
def add(a, b):
    return a + b


@fastq.task(name="wf.collect")
def collect(values, tag="collect"):
    """A chord callback: records its run and returns what it received."""
    _note(tag)
    return values


@fastq.task(name="wf.total")
def total(values):
    return sum(values)


@fastq.task(name="wf.boom", max_retries=0)
def boom(*args):
    raise ValueError("boom in a step")


@fastq.task(name="wf.flaky", max_retries=2, default_retry_delay=0, bind=True)
def flaky(self, value):
    """Fails its first attempt: a retry stays inside the step."""
    _note(f"flaky:{value}")
    if self.request.attempt == 1:
        raise self.retry(countdown=0)
    return value


@fastq.task(name="wf.on_error")
def on_error(failed_job_id, tag):
    _note(f"{tag}:{failed_job_id}")
    return failed_job_id


@fastq.task(name="wf.noop")
def noop(*args):
    return None

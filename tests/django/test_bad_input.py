"""Bad input ends DEAD with a clear reason, never crashes the worker, never imports."""

from __future__ import annotations

import sys

import pytest
from fastq_django.models import Job
from testapp import tasks
from workerproc import run_worker

pytestmark = pytest.mark.django_db(transaction=True)


def test_bad_rows_are_dead_with_reasons_and_the_rest_run():
    good_before = tasks.add.delay(1, 2)
    invalid_json = Job.objects.create(task=tasks.add.name, args="[1, 2", kwargs="{}")
    not_array = Job.objects.create(task=tasks.add.name, args='{"a": 1}')
    unknown = Job.objects.create(task="os.system", args='["touch /tmp/pwned"]')
    future = Job.objects.create(task=tasks.add.name, args="[1, 2]", envelope=99)
    raising = tasks.fail.delay("boom")
    good_after = tasks.add.delay(3, 4)

    run_worker()

    for job in (invalid_json, not_array, unknown, future):
        job.refresh_from_db()
        assert job.state == "dead", job
    assert invalid_json.error_type == "fastq.InvalidPayload"
    assert "args is not valid JSON" in invalid_json.error
    assert not_array.error == "args must be a JSON array"
    assert unknown.error_type == "fastq.UnknownTask"
    assert '"os.system" is not registered' in unknown.error
    assert future.error_type == "fastq.UnknownEnvelope"
    assert "envelope version 99" in future.error
    assert raising.status == "FAILED"
    assert good_before.get(timeout=10) == 3
    assert good_after.get(timeout=10) == 7
    # A message never makes the worker import anything (this process never did either).
    assert "pwned" not in sys.modules


def test_oversized_payload_is_refused(settings):
    big = tasks.add.delay("x" * (2 << 20), "y")
    run_worker()
    job = Job.objects.get(pk=big.id)
    assert job.state == "dead"
    assert job.error_type == "fastq.PayloadTooLarge"
    assert "exceeds the limit" in job.error

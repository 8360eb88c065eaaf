"""Bad messages (an unknown task name, args that are not JSON, a payload over
MAX_PAYLOAD_BYTES, an envelope version this worker does not know) end DEAD with a reason,
never run, never make the worker import anything, and leave the worker serving."""

from __future__ import annotations

import signal
import sys
import uuid

import ledger as ledger_check
import pytest
from django.db import connection
from fastq_django.models import Job
from fleet import wait_for
from testapp import reliability_tasks

pytestmark = pytest.mark.django_db(transaction=True)

PAYLOAD_LIMIT = 1024
EXPECTED = {
    "unknown_task": "fastq.UnknownTask",
    "invalid_json": "fastq.InvalidPayload",
    "oversized": "fastq.PayloadTooLarge",
    "unknown_envelope": "fastq.UnknownEnvelope",
}
MARKER_MODULE = "testapp.must_not_import"


def _update(job_id: str, column: str, value: object) -> None:
    """Rewrites one column of a stored job behind fastq's back, as a bug or an attacker
    with database access might."""
    pk = Job._meta.pk.get_db_prep_value(uuid.UUID(job_id), connection)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE fastq_job SET {column} = %s WHERE id = %s", [value, pk])
        assert cursor.rowcount == 1


def _forge(kind: str) -> str:
    if kind == "unknown_task":
        # A name that a worker importing what messages name would import.
        return str(Job.objects.create(task=f"{MARKER_MODULE}.run", args="[]").id)
    if kind == "oversized":
        return reliability_tasks.sleep.delay(0.0, "x" * 4 * PAYLOAD_LIMIT).id
    job_id = reliability_tasks.sleep.delay(0.0, kind).id
    if kind == "invalid_json":
        _update(job_id, "args", "not json")
    else:
        _update(job_id, "envelope", 99)
    return job_id


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_a_bad_message_ends_dead_with_a_reason(fleet, ledger, tmp_path, kind):
    marker = tmp_path / "imported"
    bad = _forge(kind)
    w = fleet(
        "--concurrency",
        "2",
        env={
            "FASTQ_TEST_MAX_PAYLOAD_BYTES": str(PAYLOAD_LIMIT),
            "FASTQ_IMPORT_MARKER": str(marker),
        },
    )
    wait_for(
        lambda: Job.objects.get(pk=bad).state in ledger_check.TERMINAL,
        60,
        "the bad message to end",
        alive=[w],
    )
    row = Job.objects.get(pk=bad)
    assert (row.state, row.error_type) == ("dead", EXPECTED[kind]), (row.error_type, row.error)
    assert row.error.strip(), "a dead message says why"
    assert not ledger_check.read(ledger), "a bad message never reaches the task"
    assert not marker.exists(), marker.read_text()
    assert MARKER_MODULE not in sys.modules

    assert w.alive(), w.output()
    good = reliability_tasks.sleep.delay(0.0, "good")
    assert good.get(timeout=60) == "good"
    w.signal(signal.SIGTERM)
    w.finish(60)
    assert not marker.exists(), marker.read_text()

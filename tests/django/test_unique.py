"""Unique jobs hold under concurrent enqueues from many processes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.db import connection
from fastq_django.models import Job
from testapp import tasks
from workerproc import HERE, run_worker

pytestmark = pytest.mark.django_db(transaction=True)

ENQUEUE_50 = """
import django, sys
django.setup()
from testapp import tasks
ids = {tasks.check_order.delay(42).id for _ in range(50)}
print(*ids)
"""


def test_eight_processes_fifty_enqueues_each_make_one_job():
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="testproject.settings",
        FASTQ_TEST_DB_NAME=str(connection.settings_dict["NAME"]),
        PYTHONPATH=str(HERE),
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", ENQUEUE_50],
            cwd=HERE,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    seen: set[str] = set()
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        seen.update(out.split())
    assert len(seen) == 1
    assert Job.objects.filter(task=tasks.check_order.name).count() == 1
    (job_id,) = seen
    run_worker()
    assert tasks.check_order.delay(42).id != job_id  # finished: the key is free again
    assert Job.objects.filter(task=tasks.check_order.name).count() == 2

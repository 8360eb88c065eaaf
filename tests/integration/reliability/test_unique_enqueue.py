"""Unique jobs under contention: 8 processes enqueue one unique key 50 times each, all at
once (5 threads per process, each with its own database connection), and exactly one job
exists and runs."""

from __future__ import annotations

import os
import subprocess
import sys

import ledger as ledger_check
import pytest
from django.db import connection
from fastq_django.models import Job
from testapp import reliability_tasks
from workerproc import HERE

pytestmark = pytest.mark.django_db(transaction=True)

PROCESSES = 8
PER_PROCESS = 50
THREADS = 5  # 8 x 5 connections at once stays well inside PostgreSQL's default 100

ENQUEUE = """
import os, sys, threading, time
import django
django.setup()
from django.db import connection
from testapp import reliability_tasks

go, per_thread = sys.argv[1], int(sys.argv[2])
ids, lock = set(), threading.Lock()

def enqueue():
    while not os.path.exists(go):
        time.sleep(0.001)
    try:
        for _ in range(per_thread):
            job_id = reliability_tasks.unique.delay("the-key").id
            with lock:
                ids.add(job_id)
    finally:
        connection.close()

threads = [threading.Thread(target=enqueue) for _ in range(int(sys.argv[3]))]
for t in threads:
    t.start()
print("ready", flush=True)
for t in threads:
    t.join()
print(*ids)
"""


@pytest.mark.slow
def test_400_concurrent_enqueues_of_one_key_make_one_job(fleet, ledger, tmp_path):
    go = tmp_path / "go"
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="testproject.settings",
        FASTQ_TEST_DB_NAME=str(connection.settings_dict["NAME"]),
        PYTHONPATH=str(HERE),
    )
    args = [str(go), str(PER_PROCESS // THREADS), str(THREADS)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", ENQUEUE, *args],
            cwd=HERE,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    try:
        for p in procs:  # every process imported Django and waits at the line
            assert p.stdout is not None
            assert p.stdout.readline().strip() == "ready", p.communicate(timeout=60)
        go.touch()
        seen: set[str] = set()
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            seen.update(out.split())
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert len(seen) == 1, seen
    assert Job.objects.filter(task=reliability_tasks.unique.name).count() == 1

    fleet("--burst").finish(120)
    report = ledger_check.check(ledger, seen)
    assert report.states() == {"succeeded": 1}
    assert len(report.executions) == 1
    report.assert_clean()
    # The key is free once the job finished.
    again = reliability_tasks.unique.delay("the-key").id
    assert again not in seen

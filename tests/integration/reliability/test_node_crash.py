"""A whole node dies: SIGKILL of the supervisor and every worker process at once, while
they hold hundreds of claimed jobs (a large prefetch), most of them not started yet. Once
the leases expired another worker rescues them. A job that never started must go back
unspent and run exactly once; only a job that had started may be charged for the crash
(with max_retries=0: dead as fastq.WorkerLost)."""

from __future__ import annotations

import signal
from collections import Counter

import ledger as ledger_check
import pytest
from django.utils import timezone
from fastq_django.models import Job
from fleet import unfinished, wait_for
from testapp import reliability_tasks

pytestmark = pytest.mark.django_db(transaction=True)

JOBS = 600
SECONDS = 0.5
LEASE = "2"
NODE_ARGS = ("--processes", "2", "--concurrency", "4", "--prefetch", "256", "--lease", LEASE)


def _running() -> int:
    return Job.objects.filter(state="running").count()


def test_a_node_crash_charges_only_the_jobs_that_started(fleet, ledger):
    ids = [
        r.id for r in reliability_tasks.sleep_once.map([(SECONDS, f"n{i}") for i in range(JOBS)])
    ]

    node = fleet(*NODE_ARGS)
    # Mid-load: both processes hold their claims and the first jobs have ended.
    wait_for(
        lambda: sum(e.completed for e in ledger_check.read(ledger)) >= 16 and _running() >= 300,
        120,
        "the node to claim its jobs and finish a few",
        alive=[node],
    )
    killed_pids = node.kill_all()
    held = _running()
    at_crash = ledger_check.read(ledger)
    started = {e.job for e in at_crash}
    cut_off = {e.job for e in at_crash if not e.completed}
    # Ended, but killed before the completer wrote the outcome (a few milliseconds' worth):
    # the row is still running although the run is over, so it is charged like a cut-off run.
    running_rows = {
        ledger_check.job_key(pk)
        for pk in Job.objects.filter(state="running").values_list("pk", flat=True)
    }
    unwritten = {e.job for e in at_crash if e.completed} & running_rows
    never_started = {ledger_check.job_key(j) for j in ids} - started

    # Let the leases run out, then a fresh worker rescues and runs what the node held.
    wait_for(
        lambda: (
            not Job.objects.filter(state="running", lease_expires_at__gt=timezone.now()).exists()
        ),
        60,
        "the crashed node's leases to expire",
    )
    survivor = fleet("--processes", "2", "--concurrency", "8", "--lease", LEASE)
    wait_for(lambda: unfinished(ids) == 0, 300, "every job to end", alive=[survivor])
    survivor.signal(signal.SIGTERM)
    survivor.finish(120)

    report = ledger_check.check(ledger, ids, killed_pgids={node.pid}, killed_pids=killed_pids)
    runs = Counter(e.job for e in report.executions)
    held_never_started = never_started & running_rows
    dead = {k for k in report.enqueued if report.rows[k].state == "dead"}
    charged_never_started = dead & never_started
    print(
        f"\nnode held {held} jobs at the crash: {len(held_never_started)} never started, "
        f"{len(cut_off)} cut off mid-run, {len(unwritten)} ended but unwritten; "
        f"after the rescue: states {dict(report.states())}, "
        f"{len(charged_never_started)} never-started jobs dead, "
        f"{len(dead & cut_off)} cut-off jobs dead\n{report.summary()}"
    )
    for k in never_started:
        assert runs[k] == 1, (k, [str(e) for e in report.of(k)], report.rows[k])
        assert report.rows[k].state == "succeeded", (k, report.rows[k])
    assert not charged_never_started, f"{len(charged_never_started)} jobs that never ran are dead"
    assert dead <= cut_off | unwritten, sorted(dead - cut_off - unwritten)[:5]
    for k in dead:
        assert report.rows[k].error_type == "fastq.WorkerLost", report.rows[k]
    assert not report.lost and not report.unexpected and not report.phantom, report.summary()
    assert not report.reused_tokens, report.summary()
    assert held >= 300 and len(held_never_started) >= 200, "the crash did not hit a loaded node"

"""Failures are visible where operators look: ``fastq_worker`` run as users run it writes
one line per failed, retried, dead, expired or time-limited job (logger fastq.worker,
WARNING/ERROR) with the job id, task, attempt n/m, exception type and message, and for a
retry the next run time; the traceback only at DEBUG (always in the row); INFO lines per
started and succeeded job only with --log-jobs. Hostile messages (NUL, lone surrogates,
control characters, 10 MB) neither lose a line, nor split or bloat one, nor stop the
worker. The test project's LOGGING routes fastq at WARNING to stderr, bare messages."""

from __future__ import annotations

import re

import pytest
from fastq_django.models import Job
from testapp import log_tasks

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ENV = {"FASTQ_TEST_IMPORTS": "testapp.log_tasks"}
WHEN = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z"


def _run(worker, *args: str) -> str:
    """A burst worker's whole output, checked to be valid UTF-8 (a line with a bad byte
    would fail here)."""
    w = worker("--burst", *args, env=ENV)
    code = w.proc.wait(timeout=300)
    w.log.flush()
    w.log.buffer.seek(0)
    out = w.log.buffer.read().decode("utf-8")
    assert code == 0, out
    assert "\x00" not in out
    return out


def _lines(out: str, job_id: str) -> list[str]:
    return [line for line in out.splitlines() if job_id in line]


@pytest.mark.parametrize("processes", ["0", "1"])
def test_one_line_per_failed_retried_dead_and_expired_job(worker, processes):
    failed = log_tasks.fails.delay("card declined")
    flaky = log_tasks.flaky.delay()
    expired = log_tasks.ok.apply_async(args=[1], expires=-1)
    async_failed = log_tasks.async_fails.delay("no such order")
    fine = log_tasks.ok.delay(2)
    out = _run(worker, "--processes", processes)

    assert _lines(out, failed.id) == [
        f"job {failed.id} logs.fails failed (attempt 1/1): ValueError: card declined"
    ], out
    retry, dead = _lines(out, flaky.id)
    assert re.fullmatch(
        rf"job {flaky.id} logs\.flaky will retry at {WHEN} \(attempt 1/2\): "
        r"ConnectionError: provider down on attempt 1",
        retry,
    ), out
    assert dead == (
        f"job {flaky.id} logs.flaky is dead (attempt 2/2): "
        "ConnectionError: provider down on attempt 2"
    ), out
    assert _lines(out, expired.id) == [
        f"job {expired.id} logs.ok expired (attempt 1/4): fastq.Expired: "
        "not started before its expiry"
    ], out
    assert _lines(out, async_failed.id) == [
        f"job {async_failed.id} logs.async_fails failed (attempt 1/1): KeyError: 'no such order'"
    ], out
    # Success is quiet, and tracebacks wait for DEBUG; the row has the traceback.
    assert _lines(out, fine.id) == [], out
    assert "Traceback (most recent call last)" not in out
    row = Job.objects.get(pk=failed.id)
    assert row.state == "failed" and "raise ValueError(message)" in row.traceback
    assert Job.objects.get(pk=flaky.id).state == "dead"
    assert Job.objects.get(pk=expired.id).state == "expired"


def test_a_job_past_its_time_limit_is_logged(worker):
    over = log_tasks.overrun.delay()
    out = _run(worker, "--processes", "1")
    lines = [line for line in _lines(out, over.id) if "logs.overrun" in line]
    assert lines == [
        f"job {over.id} logs.overrun ran past its time limit and is dead (attempt 1/1): "
        "fastq.TimeLimitExceeded: timeout: ran longer than its time_limit of 1.000000 s; the "
        "worker process running it was killed (attempt 1 of 1)"
    ], out
    assert Job.objects.get(pk=over.id).state == "dead"


def test_hostile_messages_keep_one_bounded_line_each_and_the_worker_going(worker):
    jobs = {
        kind: log_tasks.hostile.delay(kind) for kind in ("nul", "surrogate", "newlines", "huge")
    }
    unprintable = log_tasks.unprintable.delay()
    after = log_tasks.ok.delay("still running")
    out = _run(worker, "--processes", "0")

    for kind, job in jobs.items():
        (line,) = _lines(out, job.id)
        assert line.startswith(f"job {job.id} logs.hostile failed (attempt 1/1): ValueError: ")
        assert len(line.encode()) < 2500, (kind, len(line))
    assert _lines(out, jobs["nul"].id)[0].endswith("before\ufffdafter")
    assert _lines(out, jobs["surrogate"].id)[0].endswith("lone \\udc80 surrogate")
    assert _lines(out, jobs["newlines"].id)[0].endswith(
        "line one\\nERROR forged line\\r\\n\\x1b[31mred"
    )
    assert not any(line.startswith("ERROR forged line") for line in out.splitlines())
    assert "bytes in all]" in _lines(out, jobs["huge"].id)[0]
    assert _lines(out, unprintable.id) == [
        f"job {unprintable.id} logs.unprintable failed (attempt 1/1): "
        "testapp.log_tasks.Unprintable: <unprintable exception>"
    ], out
    assert after.get(timeout=10) == "still running"
    assert Job.objects.filter(state="failed").count() == 5


def test_tracebacks_are_logged_at_debug(worker):
    failed = log_tasks.fails.delay("with traceback")
    out = _run(worker, "--processes", "0", "-l", "debug")
    start = out.index(f"job {failed.id} logs.fails traceback (attempt 1/1):\n")
    block = out[start:]
    assert "Traceback (most recent call last):" in block
    assert "raise ValueError(message)" in block
    assert "ValueError: with traceback" in block


def test_log_jobs_adds_started_and_succeeded_lines(worker):
    quiet = log_tasks.ok.delay("quiet")
    _run_out = _run(worker, "--processes", "0", "-l", "info")
    assert _lines(_run_out, quiet.id) == [], _run_out

    loud = log_tasks.ok.delay("loud")
    out = _run(worker, "--processes", "0", "-l", "info", "--log-jobs")
    started, succeeded = _lines(out, loud.id)
    assert started == f"job {loud.id} logs.ok started (attempt 1/4)"
    assert re.fullmatch(
        rf"job {loud.id} logs\.ok succeeded in \d+\.\d{{3}}s \(attempt 1/4\)", succeeded
    )
    assert "logging every job" in out
    # The banner lists the project's tasks, not fastq's own (the poller's cycle task).
    (tasks_line,) = [line for line in out.splitlines() if " task(s): " in line]
    assert "logs.ok" in tasks_line and "testapp.tasks.add" in tasks_line
    assert "fastq.poll" not in tasks_line

"""Retention (FASTQ["RETENTION"]): the setting and its checks, ``fastq_prune`` on the test
database, the admin's "retention in force", and a real worker's leader pruning as it runs.
The batch statement itself is tested on every driver in tests/cpp/test_retention.cpp."""

from __future__ import annotations

import signal
import time
import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.checks import run_checks
from django.core.management import CommandError, call_command
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone
from fastq import conf
from fastq_django.models import Dependency, Job, PollerMark, ScheduleRun, Workflow
from test_checks import fastq_with
from testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)

DAY = 86400.0


def _fastq_errors() -> list:
    return [m for m in run_checks(tags=["fastq"], databases=[]) if m.id.startswith("fastq.")]


# ---- the setting ----------------------------------------------------------------------


def test_defaults_keep_successes_a_day_and_the_rest_two_weeks() -> None:
    assert conf.retention() == {
        "succeeded": DAY,
        "failed": 14 * DAY,
        "dead": 14 * DAY,
        "expired": 14 * DAY,
        "cancelled": 14 * DAY,
    }


def test_seconds_timedelta_and_none_override_state_by_state() -> None:
    value = {"succeeded": timedelta(hours=2), "failed": 60, "dead": None}
    with override_settings(FASTQ=fastq_with(RETENTION=value)):
        assert _fastq_errors() == []
        assert conf.retention() == {
            "succeeded": 7200.0,
            "failed": 60.0,
            "dead": None,
            "expired": 14 * DAY,
            "cancelled": 14 * DAY,
        }


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ({"succeded": 60}, "unknown state 'succeded'; did you mean 'succeeded'?"),
        ({"queued": 60}, "unknown state 'queued'"),
        ({"failed": "14d"}, "['failed'] must be seconds (a number), a timedelta or None"),
        ({"failed": True}, "['failed'] must be seconds"),
        ({"dead": -1}, "['dead'] must be 0 or more seconds"),
        ({"expired": timedelta(days=-1)}, "['expired'] must be 0 or more seconds"),
        ({"cancelled": float("nan")}, "['cancelled'] must be 0 or more seconds"),
        ([("succeeded", 60)], 'FASTQ["RETENTION"] must be'),
    ],
)
def test_a_bad_retention_is_an_error_saying_what_is_wrong(value, says) -> None:
    with override_settings(FASTQ=fastq_with(RETENTION=value)):
        messages = _fastq_errors()
        assert [m.id for m in messages] == ["fastq.E002"], messages
        assert says in messages[0].msg
        assert messages[0].msg.startswith('FASTQ["RETENTION"]')
        with pytest.raises(ValueError, match="RETENTION"):
            conf.retention()


# ---- fastq_prune ----------------------------------------------------------------------


def _finished(state: str, *, ago: timedelta, **fields: object) -> Job:
    now = timezone.now()
    return Job.objects.create(
        task=tasks.noop.name,
        state=state,
        run_at=now - ago - timedelta(seconds=1),
        finished_at=now - ago,
        **fields,
    )


def _prune(*args: str) -> str:
    out = StringIO()
    call_command("fastq_prune", *args, stdout=out)
    return out.getvalue()


def _alive(*jobs: Job) -> list[bool]:
    ids = set(Job.objects.filter(pk__in=[j.pk for j in jobs]).values_list("pk", flat=True))
    return [j.pk in ids for j in jobs]


def test_prune_deletes_what_is_past_each_state_s_retention_and_says_how_many() -> None:
    old_ok = [_finished("succeeded", ago=timedelta(days=2)) for _ in range(3)]
    young_ok = _finished("succeeded", ago=timedelta(hours=1))
    old_failed = _finished("failed", ago=timedelta(days=15))
    young_failed = _finished("failed", ago=timedelta(days=3))
    old_dead = _finished("dead", ago=timedelta(days=20))
    queued = tasks.noop.delay()

    dry = _prune("--dry-run")
    assert "succeeded: would delete 3 (finished over 1 day ago)" in dry
    assert "failed: would delete 1 (finished over 14 days ago)" in dry
    assert "dead: would delete 1" in dry
    assert "total: would delete 5" in dry
    assert Job.objects.count() == 8, "a dry run deletes nothing"

    out = _prune()
    assert "succeeded: deleted 3" in out
    assert "failed: deleted 1" in out
    assert "dead: deleted 1" in out
    assert "expired: deleted 0" in out
    assert "total: deleted 5" in out
    assert _alive(*old_ok, old_failed, old_dead) == [False] * 5
    assert _alive(young_ok, young_failed) == [True, True]
    assert Job.objects.get(pk=queued.id).state == "queued"


def test_prune_by_state_and_age_in_small_batches() -> None:
    ok = [_finished("succeeded", ago=timedelta(minutes=10)) for _ in range(5)]
    failed = _finished("failed", ago=timedelta(minutes=10))
    out = _prune("--state", "succeeded", "--older-than", "60", "--batch", "2")
    assert "succeeded: deleted 5 (finished over 1 minute ago)" in out
    assert "failed" not in out
    assert _alive(*ok) == [False] * 5
    assert _alive(failed) == [True]
    assert "failed: deleted 1" in _prune("--state", "failed", "--older-than", "0")


def test_prune_judges_age_on_the_database_s_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine's clock two hours ahead: on PostgreSQL the server's clock decides, so a
    job finished ten minutes ago stays within an hour's retention; on SQLite this machine's
    clock is the database's, and the job is past it."""
    from django.db import connection
    from fastq_django.management.commands import fastq_prune

    job = _finished("succeeded", ago=timedelta(minutes=10))
    ahead = time.time() + 7200

    class _Skewed:
        @staticmethod
        def time() -> float:
            return ahead

    monkeypatch.setattr(fastq_prune, "time", _Skewed)
    out = _prune("--state", "succeeded", "--older-than", "3600")
    if connection.vendor == "postgresql":
        assert "succeeded: deleted 0" in out
        assert _alive(job) == [True]
    else:
        assert "succeeded: deleted 1" in out
        assert _alive(job) == [False]


def test_a_state_kept_for_ever_is_left_alone() -> None:
    old = _finished("succeeded", ago=timedelta(days=400))
    with override_settings(FASTQ=fastq_with(RETENTION={"succeeded": None})):
        out = _prune()
    assert "succeeded: kept for ever" in out
    assert _alive(old) == [True]


def test_prune_refuses_bad_arguments_and_a_bad_setting() -> None:
    with pytest.raises(CommandError, match="--older-than"):
        _prune("--older-than", "-5")
    with (
        override_settings(FASTQ=fastq_with(RETENTION={"succeeded": "1d"})),
        pytest.raises(CommandError, match="RETENTION"),
    ):
        _prune()


def test_what_something_still_depends_on_is_kept() -> None:
    long_ago = timedelta(days=30)
    # A schedule run names its job: kept while the run is.
    fired = _finished("succeeded", ago=long_ago)
    ScheduleRun.objects.create(schedule="tick", slot=timezone.now() - long_ago, job_id=fired.pk)
    # A poller mark names the alert it enqueued: kept while the mark is.
    alert = _finished("succeeded", ago=long_ago)
    PollerMark.objects.create(poller="tracker", key="42", job_id=alert.pk)
    # A workflow whose last step still waits: its finished steps are kept.
    wf = uuid.uuid4()
    done_step = _finished("succeeded", ago=long_ago, workflow_id=wf)
    waiting = Job.objects.create(task=tasks.noop.name, state="waiting", workflow_id=wf)
    Dependency.objects.create(workflow_id=wf, parent_id=done_step.pk, child_id=waiting.pk)
    Workflow.objects.create(id=wf, root_id=wf, kind="chain")
    # A finished workflow goes whole: steps, edges, its row.
    wf2 = uuid.uuid4()
    a = _finished("succeeded", ago=long_ago, workflow_id=wf2)
    b = _finished("failed", ago=long_ago, workflow_id=wf2)
    Dependency.objects.create(workflow_id=wf2, parent_id=a.pk, child_id=b.pk)
    Workflow.objects.create(id=wf2, root_id=wf2, kind="chain")
    free = _finished("succeeded", ago=long_ago)

    assert "succeeded: would delete 2" in _prune("--dry-run", "--state", "succeeded")
    out = _prune()
    assert "succeeded: deleted 2" in out and "failed: deleted 1" in out
    assert _alive(fired, alert, done_step, waiting) == [True] * 4
    assert _alive(a, b, free) == [False] * 3
    assert list(Dependency.objects.values_list("workflow_id", flat=True)) == [wf]
    assert list(Workflow.objects.values_list("id", flat=True)) == [wf]

    # Once the run and the mark are gone, so are their jobs.
    ScheduleRun.objects.all().delete()
    PollerMark.objects.all().delete()
    assert "succeeded: deleted 2" in _prune()
    assert _alive(fired, alert) == [False, False]


# ---- the admin ------------------------------------------------------------------------


def test_the_dashboard_shows_the_retention_in_force() -> None:
    client = Client()
    client.force_login(User.objects.create_superuser("admin", password="pw"))
    value = {"succeeded": timedelta(hours=6), "cancelled": None}
    with override_settings(FASTQ=fastq_with(RETENTION=value)):
        page = client.get(reverse("admin:fastq_django_dashboard_changelist")).content.decode()
    assert "Retention in force" in page
    assert "<td>succeeded</td><td>6 hours</td>" in page
    assert "<td>failed</td><td>14 days</td>" in page
    assert "<td>cancelled</td><td>for ever</td>" in page


# ---- the worker -----------------------------------------------------------------------


def test_a_running_worker_s_leader_prunes_finished_jobs(worker) -> None:
    old = _finished("succeeded", ago=timedelta(minutes=5))
    kept = _finished("failed", ago=timedelta(minutes=5))
    w = worker(env={"FASTQ_TEST_RETENTION": '{"succeeded": 2, "failed": null}'})
    ran = [tasks.noop.delay() for _ in range(20)]
    deadline = time.monotonic() + 300
    # The old job goes first; the new ones once they finished more than 2 s ago.
    while Job.objects.filter(state__in=["queued", "running", "succeeded"]).exists():
        assert time.monotonic() < deadline, w.output()
        assert w.proc.poll() is None, w.output()
        time.sleep(0.2)
    assert _alive(old) == [False]
    assert not Job.objects.filter(pk__in=[r.id for r in ran]).exists()
    assert _alive(kept) == [True], "failed jobs are kept for ever here"
    w.signal(signal.SIGTERM)
    w.finish()

"""fastq.compat.django_q on a real database: Django-Q2's API in the test project
(compatproject), tasks run by fastq_worker and qcluster subprocesses."""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from compatapp import jobs
from conftest import burst
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from fastq.compat.django_q import tasks as q
from fastq.compat.django_q.conf import Conf
from fastq.compat.django_q.models import CALL, Failure, OrmQ, Schedule, Success, Task
from fastq.compat.django_q.paths import ForbiddenPath
from fastq_django.models import Job
from fastq_django.models import Schedule as FastqSchedule

pytestmark = pytest.mark.django_db(transaction=True)


def hook_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_async_task_by_path_and_function_with_hook_and_group(run, tmp_path: Path):
    log = tmp_path / "hooks.jsonl"
    a = q.async_task("compatapp.jobs.multiply", 6, 7, hook="compatapp.jobs.record", group="sums")
    b = q.async_task(
        jobs.greet, "ada", greeting="hi", q_options={"group": "sums", "hook": jobs.record}
    )
    c = q.async_task("math.copysign", 2, -1, group="sums", task_name="signed")
    assert len(a) == 32 and uuid.UUID(a)
    # Queued: OrmQ shows them, Task/Success do not yet.
    queued = {o.task_id(): o for o in OrmQ.objects.all()}
    assert set(queued) == {a, b, c}
    assert queued[a].func() == "compatapp.jobs.multiply" and queued[a].args() == (6, 7)
    assert queued[a].group() == "sums" and queued[a].q_options()["hook"] == "compatapp.jobs.record"
    assert queued[a].key == "compat"  # Q_CLUSTER name: the queue
    assert q.result(a) is None and q.fetch(a) is None and q.count_group("sums") == 0
    assert q.queue_size() == 3

    burst(run, "--processes", "0", env={"COMPAT_HOOK_LOG": str(log)})

    assert q.result(a, wait=5000) == 42
    assert q.result(b) == "hi ada"
    assert q.result(c) == -2.0
    task = q.fetch(a)
    assert task.success and task.func == "compatapp.jobs.multiply" and task.args == (6, 7)
    assert task.group == "sums" and task.hook == "compatapp.jobs.record"
    assert task.attempt_count == 1 and task.time_taken() >= 0 and task.cluster == "compat"
    assert q.fetch(c).name == "signed"
    assert sorted(map(str, q.result_group("sums"))) == ["-2.0", "42", "hi ada"]
    assert q.count_group("sums") == 3 and q.count_group("sums", failures=True) == 0
    assert {t.id.hex for t in Success.objects.all()} == {a, b, c}
    assert not OrmQ.objects.exists()
    # The hooks ran after their tasks, in the worker, with the Task Django-Q2 passes.
    lines = {line["id"].replace("-", ""): line for line in hook_lines(log)}
    assert set(lines) == {a, b}
    assert lines[a]["result"] == 42 and lines[a]["success"] is True
    assert lines[a]["func"] == "compatapp.jobs.multiply" and lines[a]["args"] == [6, 7]
    assert lines[b]["kwargs"] == {"greeting": "hi"} and lines[b]["group"] == "sums"

    assert q.delete_group("sums") == 3  # the label goes, the tasks stay
    assert q.count_group("sums") == 0 and Task.objects.count() == 3
    d = q.async_task("compatapp.jobs.multiply", 1, 1, group="again")
    burst(run, "--processes", "0")
    assert q.result_group("again", count=1, wait=5000) == [1]
    q.delete_group("again", tasks=True)
    assert not Job.objects.filter(pk=uuid.UUID(d)).exists()


def test_failures_retry_after_retry_seconds_then_hook_and_failure(run, tmp_path: Path):
    log = tmp_path / "hooks.jsonl"
    f = q.async_task("compatapp.jobs.fail", "no luck", hook="compatapp.jobs.record", group="bad")
    once = q.async_task("compatapp.jobs.fail", "once", ack_failure=True)
    w = run(["manage.py", "fastq_worker", "--processes", "0"], env={"COMPAT_HOOK_LOG": str(log)})
    deadline = time.monotonic() + 120
    while Task.objects.filter(pk__in=[uuid.UUID(f), uuid.UUID(once)]).count() < 2:
        assert time.monotonic() < deadline, w.output()
        time.sleep(0.1)
    w.stop()
    failed = q.fetch(f)
    # Q_CLUSTER max_attempts 2, retry 1 s: two attempts, then dead with the exception.
    assert not failed.success and failed.attempt_count == 2
    assert failed.state == "dead" and "no luck" in failed.result
    assert "RuntimeError" in failed.result  # "message : traceback", as Django-Q2
    assert q.fetch(once).attempt_count == 1 and q.fetch(once).state == "failed"
    assert {t.id.hex for t in Failure.objects.all()} == {f, once}
    assert q.count_group("bad", failures=True) == 1
    assert q.result_group("bad") is None
    assert len(q.result_group("bad", failures=True)) == 1
    (line,) = hook_lines(log)  # the hook ran once, after the last attempt
    assert line["success"] is False and "no luck" in line["result"]


def test_the_hook_runs_once_after_the_final_attempt_not_after_each(run, tmp_path: Path):
    """A task that fails once and then succeeds: its hook runs once, after the attempt
    that succeeded, with the success; a task whose every attempt fails: once, after the
    last, with the failure (Q_CLUSTER max_attempts 2)."""
    log = tmp_path / "hooks.jsonl"
    retried = q.async_task(
        "compatapp.jobs.fail_once", str(tmp_path / "marker"), hook="compatapp.jobs.record"
    )
    spent = q.async_task("compatapp.jobs.fail", "every time", hook="compatapp.jobs.record")
    w = run(["manage.py", "fastq_worker", "--processes", "0"], env={"COMPAT_HOOK_LOG": str(log)})
    ids = [uuid.UUID(retried), uuid.UUID(spent)]
    deadline = time.monotonic() + 120
    while Task.objects.filter(pk__in=ids).count() < 2:
        assert time.monotonic() < deadline, w.output()
        time.sleep(0.1)
    w.stop()
    assert q.fetch(retried).success and q.fetch(retried).attempt_count == 2
    assert not q.fetch(spent).success and q.fetch(spent).attempt_count == 2
    lines = {line["id"].replace("-", ""): line for line in hook_lines(log)}
    assert len(hook_lines(log)) == 2  # one each, not one per attempt
    assert lines[retried]["success"] is True and lines[retried]["result"] == "second run"
    assert lines[spent]["success"] is False and "every time" in lines[spent]["result"]


HOSTILE = [
    "os.system",
    "builtins.eval",
    "subprocess.run",
    "compatapp.tasks.os.system",  # os imported into an allowed module
    "compatapp.jobs.json.loads",
    "compatapp.jobs._private",
    "compatapp.jobs.__class__",
    "django.core.mail.send_mail",  # the framework, not the project
    "fastq.compat.django_q.call",
    "fastq_django.models.Job.objects.all",
    "math.floor",  # DOTTED_PATHS lists math.copysign only
    "compatapp.jobs.multiply\x00",
    "compatapp.\x00jobs.multiply",
    "compatapp.jobs.mult\udcffiply",
    "compatapp." + "a" * 10_000,
    "compatapp",
    "",
    "compatapp..jobs",
    "compatapp.jobs.multiply ",
]


@pytest.mark.parametrize("path", HOSTILE)
def test_hostile_paths_are_refused_at_the_call(path):
    with pytest.raises(ForbiddenPath):
        q.async_task(path, "echo pwned")
    with pytest.raises(ForbiddenPath):
        q.async_task("compatapp.jobs.multiply", 1, 2, hook=path)
    assert not Job.objects.exists()


def test_hostile_rows_written_behind_our_back_end_dead(run, tmp_path: Path):
    marker = tmp_path / "pwned"
    rows = {
        "os.system": ["os.system", [f"touch {marker}"], {}, {}],
        "hidden os": ["compatapp.tasks.os.system", [f"touch {marker}"], {}, {}],
        "builtins": ["builtins.exec", ["open('x','w')"], {}, {}],
        "nul": ["compatapp.jobs.multiply\u0000", [1, 2], {}, {}],
        "huge": ["compatapp." + "x" * 100_000, [], {}, {}],
        "not a str": [["os", "system"], [], {}, {}],
        "hook": ["compatapp.jobs.multiply", [2, 3], {}, {"hook": "os.system"}],
    }
    ids = {}
    for name, args in rows.items():
        job = Job.objects.create(task=CALL, queue="compat", args=json.dumps(args), max_attempts=2)
        ids[name] = job.pk
    ok = q.async_task("compatapp.jobs.multiply", 3, 3)
    out = burst(run, "--processes", "0")
    for name, pk in ids.items():
        job = Job.objects.get(pk=pk)
        if name == "hook":
            # The task ran; its hook was refused and logged, the worker went on.
            assert job.state == "succeeded", (name, job.error)
            continue
        assert job.state in ("dead", "failed"), (name, job.state)
        assert job.error_type.endswith("ForbiddenPath") or job.error_type == "TypeError", (
            name,
            job.error_type,
        )
        assert job.attempts == 1, name
    assert Job.objects.get(pk=ids["os.system"]).state == "dead"
    assert "not inside the project's installed apps" in Job.objects.get(pk=ids["os.system"]).error
    assert "comes from os," in Job.objects.get(pk=ids["hidden os"]).error
    assert not marker.exists()
    assert q.result(ok) == 9
    assert "fastq worker" in out


def test_schedule_types_become_fastq_schedules():
    at = datetime(2030, 3, 31, 9, 15, tzinfo=UTC)
    expected = {
        Schedule.MINUTES: ("", 300.0),
        Schedule.HOURLY: ("", 3600.0),
        Schedule.DAILY: ("15 9 * * *", None),
        Schedule.WEEKLY: ("15 9 * * 0", None),  # 2030-03-31 is a Sunday
        Schedule.BIWEEKLY: ("", 14 * 86400.0),
        Schedule.MONTHLY: ("15 9 31 * *", None),
        Schedule.BIMONTHLY: ("15 9 31 1,3,5,7,9,11 *", None),
        Schedule.QUARTERLY: ("15 9 31 3,6,9,12 *", None),
        Schedule.YEARLY: ("15 9 31 3 *", None),
    }
    for kind, (cron, every) in expected.items():
        s = q.schedule(
            "compatapp.jobs.greet",
            "bob",
            name=f"t-{kind}",
            schedule_type=kind,
            minutes=5,
            next_run=at,
            greeting="yo",
        )
        row = FastqSchedule.objects.get(name=f"t-{kind}")
        assert (row.cron, row.every) == (cron, every), kind
        assert row.timezone == "UTC" and row.task == CALL and row.enabled
        assert row.next_run_at == at
        assert (
            s.func == "compatapp.jobs.greet" and s.args == "'bob'" and s.kwargs == "greeting='yo'"
        )
        assert (
            s.schedule_type == kind and Schedule.objects.get(name=f"t-{kind}").schedule_type == kind
        )
    cron = q.schedule("compatapp.jobs.greet", "x", schedule_type=Schedule.CRON, cron="*/5 * * * *")
    row = FastqSchedule.objects.get(name=cron.name)
    assert row.cron == "*/5 * * * *" and row.next_run_at is None  # the scheduler computes it
    with pytest.raises(IntegrityError):
        q.schedule("compatapp.jobs.greet", name="t-I")
    with pytest.raises(ValidationError):
        q.schedule("os.system", "rm -rf /", schedule_type=Schedule.DAILY)
    with pytest.raises(ValidationError):
        q.schedule("compatapp.jobs.greet", schedule_type=Schedule.CRON, cron="61 * * * *")
    # Created through the model as Django-Q2 code does.
    made = Schedule.objects.create(
        func="compatapp.jobs.multiply",
        args="2, 3",
        schedule_type=Schedule.HOURLY,
        name="model-made",
    )
    assert FastqSchedule.objects.get(name="model-made").every == 3600
    assert json.loads(FastqSchedule.objects.get(name="model-made").args)[1] == [2, 3]
    assert made.repeats == -1


def test_schedules_fire_on_the_worker_once_repeats_and_intended_date(run, tmp_path: Path):
    log = tmp_path / "hooks.jsonl"
    past = datetime.now(UTC) - timedelta(seconds=1)
    q.schedule(
        "compatapp.jobs.multiply", 2, 5, name="once", hook="compatapp.jobs.record", next_run=past
    )
    q.schedule(
        "compatapp.jobs.multiply",
        3,
        3,
        name="twice",
        schedule_type=Schedule.MINUTES,
        minutes=1,
        repeats=1,
        next_run=past,
    )
    q.schedule(
        "compatapp.jobs.stamp",
        name="dated",
        schedule_type=Schedule.DAILY,
        next_run=past,
        intended_date_kwarg="when",
        repeats=1,
    )
    w = run(["manage.py", "fastq_worker", "--processes", "0"], env={"COMPAT_HOOK_LOG": str(log)})
    deadline = time.monotonic() + 120
    while Success.objects.count() < 3 or Schedule.objects.filter(name="once").exists():
        assert time.monotonic() < deadline, w.output()
        time.sleep(0.2)
    time.sleep(3)  # the scheduler re-reads every 2 s: a second fire would show now
    w.stop()
    results = sorted(str(t.result) for t in Success.objects.all())
    assert len(results) == 3, results
    assert "10" in results and "9" in results
    # ONCE with repeats -1 is deleted after its run; repeats=1 leaves a disabled schedule.
    assert not Schedule.objects.filter(name="once").exists()
    twice = Schedule.objects.get(name="twice")
    assert twice.repeats == 0 and not twice.enabled
    dated = next(t for t in Success.objects.all() if t.func == "compatapp.jobs.stamp")
    assert datetime.fromisoformat(dated.result) <= datetime.now(UTC)
    assert [line["result"] for line in hook_lines(log)] == [10]
    assert Schedule.objects.get(name="twice").task is not None


def test_conf_async_task_class_sync_and_qcluster(run, settings):
    assert Conf.TIMEOUT == 60 and Conf.RETRY == 1 and Conf.MAX_ATTEMPTS == 2
    assert Conf.CLUSTER_NAME == "compat" and Conf.ORM == "default"
    with pytest.raises(AttributeError, match="no meaning"):
        Conf.REDIS  # noqa: B018
    t = q.AsyncTask("compatapp.jobs.multiply", 4, 4, group="at")
    tid = t.run()
    assert t.started and tid == t.id
    assert q.async_task("compatapp.jobs.multiply", 5, 5, sync=True)
    assert Success.objects.count() == 1  # sync ran at once, in this process
    run(["manage.py", "qcluster", "--run-once"]).finish()
    assert t.result(wait=1000) == 16 and t.fetch().success
    assert t.result_group(count=1) == [16]
    # A time limit per task: timeout= is the job's hard time_limit.
    tl = q.async_task("compatapp.jobs.multiply", 1, 1, timeout=5)
    assert Job.objects.get(pk=uuid.UUID(tl)).time_limit == 5


def test_save_limit_keeps_the_newest_successes(run, settings):
    ids = [q.async_task("compatapp.jobs.multiply", i, 1) for i in range(5)]
    failing = q.async_task("compatapp.jobs.fail", "kept", ack_failure=True)
    burst(run, "--processes", "0")
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "save_limit": 2}
    assert q.prune_successes() == 3
    assert Success.objects.count() == 2 and Failure.objects.count() == 1
    assert q.fetch(failing) is not None
    assert {t.id.hex for t in Success.objects.all()} < set(ids)
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "orm": "other"}
    from django.core.exceptions import ImproperlyConfigured
    from fastq.compat.django_q.conf import check_settings

    with pytest.raises(ImproperlyConfigured, match="orm"):
        check_settings()
    _ = os.environ


@pytest.mark.parametrize(
    "option",
    [
        {"group": "g\x00"},
        {"group": "g" * 101},
        {"group": "\udcff"},
        {"cluster": "q\x00"},
        {"cluster": "q" * 1000},
        {"task_name": "\udcff"},
    ],
)
def test_hostile_labels_are_refused_at_the_call(option):
    with pytest.raises(ValueError, match="async_task"):
        q.async_task("compatapp.jobs.multiply", 1, 2, **option)
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    "args",
    [
        (1 << 64,),
        (float("nan"),),
        ("\udcff",),
    ],
)
def test_hostile_arguments_are_refused_at_the_call(args):
    with pytest.raises((TypeError, ValueError)):
        q.async_task("compatapp.jobs.multiply", *args)
    assert not Job.objects.exists()


def test_chain_and_async_chain_run_in_order_on_fastq_s_workflows(run, tmp_path: Path):
    order = tmp_path / "order.jsonl"
    chain = q.Chain()
    chain.append("compatapp.jobs.multiply", 2, 3)
    chain.append(jobs.greet, "ada", greeting="hi")
    chain.append("compatapp.jobs.multiply", 4, 5, hook="compatapp.jobs.record")
    group = chain.run()
    assert chain.length() == 3
    other = q.async_chain([("compatapp.jobs.multiply", (1, 1)), ("compatapp.jobs.fail", ("no",))])
    # Steps after the first wait in the database until their parent finished, each
    # labelled with its chain's group from its enqueue on.
    assert Job.objects.filter(group_label=group, state="waiting").count() == 2
    assert Job.objects.filter(group_label=other, state="waiting").count() == 1
    assert Job.objects.filter(group_label=group).count() == 3
    assert q.count_group(group) == 0  # Django-Q2 counts finished tasks only

    w = run(
        ["manage.py", "fastq_worker", "--processes", "0"],
        env={"COMPAT_HOOK_LOG": str(order)},
    )
    try:
        assert q.result_group(group, count=3, wait=120_000) == [6, "hi ada", 20]
        deadline = time.monotonic() + 120
        while q.count_group(other, failures=True) < 1:
            assert time.monotonic() < deadline, "the second chain's failing step never ran"
            time.sleep(0.05)
    finally:
        w.stop()
    assert chain.result() == [6, "hi ada", 20]
    assert [t.func for t in chain.fetch()] == [
        "compatapp.jobs.multiply",
        "compatapp.jobs.greet",
        "compatapp.jobs.multiply",
    ]
    # Django-Q2 counts every task of the group, or with failures=True the failed ones.
    assert q.count_group(other) == 2 and q.count_group(other, failures=True) == 1
    (line,) = hook_lines(order)
    assert line["result"] == 20 and line["group"] == group


def test_sync_runs_are_recorded_finished_with_their_group_and_hostile_errors():
    ok = q.async_task("compatapp.jobs.multiply", 6, 7, sync=True, group="inline")
    bad = q.async_task("compatapp.jobs.fail", "nul\x00 here", sync=True, group="inline")
    good, failed = Job.objects.get(pk=uuid.UUID(ok)), Job.objects.get(pk=uuid.UUID(bad))
    assert (good.state, good.attempts, good.group_label, good.result) == (
        "succeeded",
        1,
        "inline",
        "42",
    )
    assert good.started_at <= good.finished_at
    assert failed.state == "failed" and failed.error_type == "RuntimeError"
    assert "\x00" not in failed.error and failed.error.startswith("nul")
    assert failed.result is None and "RuntimeError" in failed.traceback
    assert q.count_group("inline") == 2 and q.count_group("inline", failures=True) == 1
    assert q.result(ok) == 42

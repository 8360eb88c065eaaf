"""Django's Tasks API on fastq (fastq_django.backends.FastqTaskBackend): the behaviours
of Django's own tests/tasks (enqueue, results, validation, context, signals) with the
tasks run by ``manage.py fastq_worker`` subprocesses, on SQLite and PostgreSQL, on
Django 6 (django.tasks) and Django 5.2 (the django_tasks backport)."""

from __future__ import annotations

import logging
import math
import os
import pickle
from datetime import timedelta

import fastq
import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone
from fastq_django.models import Job
from testapp import tasks
from testapp.models import Execution
from workerproc import WorkerProcess, run_worker

if not getattr(settings, "TASKS_API", None):
    if os.environ.get("CI") == "true":
        raise RuntimeError("CI needs Django's Tasks API (django.tasks or django_tasks)")
    pytest.skip("no Django Tasks API installed", allow_module_level=True)

from fastq_django import backends, task_errors
from fastq_django.backends import (
    FastqTaskBackend,
    InvalidTask,
    TaskResultDoesNotExist,
    TaskResultStatus,
    task_backends,
    task_enqueued,
)
from testapp import tasks_api as api

if backends.TASKS_API == "django.tasks":
    from django.tasks import default_task_backend
    from django.tasks.exceptions import TaskResultMismatch
else:
    from django_tasks import default_task_backend
    from django_tasks.exceptions import TaskResultMismatch

pytestmark = pytest.mark.django_db(transaction=True)

READY, RUNNING = TaskResultStatus.READY, TaskResultStatus.RUNNING
SUCCESSFUL, FAILED = TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED


def test_backend_is_configured_with_its_capabilities():
    backend = task_backends["default"]
    assert isinstance(backend, FastqTaskBackend)
    assert default_task_backend.alias == "default"
    assert backend.supports_defer is True
    assert backend.supports_async_task is True
    assert backend.supports_get_result is True
    assert backend.supports_priority is True
    assert backend.queues == {"default", "api-ordered", "api-extra", "api-other"}
    assert api.add.get_backend() is backend
    assert backend.check() == []


def test_validate_task_as_django_does():
    with pytest.raises(InvalidTask, match="Queue 'unknown' is not valid for backend"):
        api.add.using(queue_name="unknown")
    with pytest.raises(InvalidTask, match="priority must be a whole number between -100"):
        api.add.using(priority=101)
    with pytest.raises(InvalidTask, match="priority must be a whole number"):
        api.add.using(priority=-101)
    with pytest.raises(InvalidTask, match="run_after must be an aware datetime"):
        api.add.using(run_after=timezone.now().replace(tzinfo=None))
    assert api.add.using(priority=100).priority == 100
    assert api.add.using(priority=-100).priority == -100
    # An empty QUEUES skips queue validation, as in Django.
    assert api.on_secondary.using(queue_name="anything").queue_name == "anything"
    task_cls = type(api.add)

    def no_context() -> None: ...

    no_context.__qualname__ = "no_context"
    with pytest.raises(InvalidTask, match="first argument of 'context'"):
        task_cls(func=no_context, takes_context=True)

    def long_name() -> None: ...

    long_name.__qualname__ = "x" * 300
    with pytest.raises(InvalidTask, match="longer than 255"):
        task_cls(func=long_name)


def test_bad_options_fail_at_configuration_naming_the_setting():
    with pytest.raises(
        ImproperlyConfigured, match=r"unknown option .max_retry.*did you mean .max_retries."
    ):
        FastqTaskBackend("x", {"OPTIONS": {"max_retry": 3}})
    with pytest.raises(ImproperlyConfigured, match="max_retries must be from 0"):
        FastqTaskBackend("x", {"OPTIONS": {"max_retries": -1}})
    with pytest.raises(ImproperlyConfigured, match="rate_limit"):
        FastqTaskBackend("x", {"OPTIONS": {"rate_limit": "fast"}})
    with pytest.raises(ImproperlyConfigured, match="is not an exception"):
        FastqTaskBackend("x", {"OPTIONS": {"autoretry_for": ["os.path.join"]}})
    with pytest.raises(ImproperlyConfigured, match="unknown option 'queue'"):
        FastqTaskBackend("x", {"OPTIONS": {"tasks": {"a.b": {"queue": "x"}}}})
    with pytest.raises(ImproperlyConfigured, match="unknown option 'bind'"):
        backends.task_options(bind=True)
    ok = FastqTaskBackend("x", {"OPTIONS": {"autoretry_for": ["builtins.ConnectionError"]}})
    assert ok.defaults["autoretry_for"] == (ConnectionError,)


def test_enqueue_writes_one_job_and_returns_a_ready_result(caplog):
    seen = []

    def receiver(sender, task_result, **kwargs):
        seen.append((sender, task_result))

    task_enqueued.connect(receiver)
    try:
        with caplog.at_level("DEBUG", logger=backends._task_log.name):
            result = api.add.enqueue(2, b=3)
    finally:
        task_enqueued.disconnect(receiver)
    assert any("enqueued" in m and result.id in m for m in caplog.messages)
    assert result.status == READY
    assert result.is_finished is False
    assert result.args == [2] and result.kwargs == {"b": 3}
    assert result.backend == "default"
    assert result.enqueued_at is not None
    assert result.started_at is None and result.finished_at is None
    assert result.attempts == 0 and result.errors == []
    with pytest.raises(ValueError, match="Task has not finished yet"):
        result.return_value  # noqa: B018
    assert seen == [(FastqTaskBackend, result)]
    job = Job.objects.get(pk=result.id)
    assert job.task == "testapp.tasks_api.add" == api.add.module_path
    assert (job.queue, job.priority, job.state) == ("default", 0, "queued")
    assert job.args == "[2]" and job.kwargs == '{"b":3}'
    stored = api.add.get_result(result.id)
    assert stored.status == READY and stored.id == result.id
    assert stored.args == [2] and stored.kwargs == {"b": 3}
    assert stored.enqueued_at == job.created_at
    assert stored.task == api.add


def test_priority_queue_and_run_after_are_stored_as_fastq_reads_them():
    later = timezone.now() + timedelta(hours=1)
    r = api.add.using(priority=-100, queue_name="api-other", run_after=later).enqueue(1, 1)
    job = Job.objects.get(pk=r.id)
    assert (job.priority, job.queue, job.run_at) == (-100, "api-other", later)
    back = default_task_backend.get_result(r.id)
    assert back.task.priority == -100
    assert back.task.queue_name == "api-other"
    assert back.task.run_after == later
    assert default_task_backend.get_result(api.add.enqueue(0, 0).id).task.run_after is None


def test_arguments_json_cannot_carry_are_refused_at_enqueue():
    with pytest.raises(TypeError, match="Unsupported type"):
        api.noop.enqueue(timezone.now())
    with pytest.raises(TypeError, match="Unsupported type"):
        api.noop.enqueue(x={1, 2})
    with pytest.raises(ValueError, match="64"):
        api.noop.enqueue(2**70)
    with pytest.raises(ValueError):
        api.noop.enqueue(math.nan)
    with pytest.raises(ValueError):
        api.noop.enqueue("lone \udc80 surrogate")
    assert not Job.objects.exists()


def test_round_trip_on_the_worker():
    ok = api.add.enqueue(2, 3)
    ok_async = api.add_async.enqueue(20, b=22)
    failed = api.fail.enqueue("bad input")
    nested = api.complex_exception.enqueue()
    exited = api.system_exit.enqueue()
    bad_return = api.complex_return_value.enqueue()
    huge_return = api.huge_return_value.enqueue()
    text = "NUL \x00 and \u2603 and " + "x" * 100_000
    echoed = api.echo.enqueue(text, [1, [2, {"k": None}]], flag=True)
    native = tasks.add.delay(40, 2)  # a @fastq.task beside them
    out = run_worker()
    assert api.add.module_path in out and tasks.add.name in out  # both kinds registered

    r = api.add.get_result(ok.id)
    assert r.status == SUCCESSFUL and r.is_finished
    assert r.return_value == 5
    assert r.attempts == 1
    job = Job.objects.get(pk=ok.id)
    assert r.worker_ids == [job.worker] and job.worker
    assert r.enqueued_at <= r.started_at <= r.finished_at
    assert r.last_attempted_at == r.started_at
    assert r.errors == []
    assert api.add_async.get_result(ok_async.id).return_value == 42
    assert native.get(timeout=10) == 42
    assert api.echo.get_result(echoed.id).return_value == {
        "args": [text, [1, [2, {"k": None}]]],
        "kwargs": {"flag": True},
    }

    f = api.fail.get_result(failed.id)
    assert f.status == FAILED and f.is_finished
    with pytest.raises(ValueError, match="Task failed"):
        f.return_value  # noqa: B018
    assert len(f.errors) == 1
    assert f.errors[0].exception_class_path == "builtins.ValueError"
    assert f.errors[0].exception_class is ValueError
    assert f.errors[0].traceback.endswith("ValueError: bad input\n")
    assert "raise ValueError(message)" in f.errors[0].traceback
    assert f.started_at <= f.finished_at

    n = default_task_backend.get_result(nested.id)
    assert n.errors[0].exception_class is ValueError
    assert "This task failed" in n.errors[0].traceback
    e = default_task_backend.get_result(exited.id)
    assert e.status == FAILED and e.errors[0].exception_class is SystemExit
    b = default_task_backend.get_result(bad_return.id)
    assert b.status == FAILED and b.errors[0].exception_class is TypeError
    assert "Unsupported type" in b.errors[0].traceback
    h = default_task_backend.get_result(huge_return.id)
    assert h.status == FAILED and h.errors[0].exception_class is ValueError

    # A TaskResult pickles as Django's do (the task by its module path; the django_tasks
    # backport's Task has no __reduce__ and pickles on no backend).
    if backends.TASKS_API == "django.tasks":
        assert pickle.loads(pickle.dumps(r)) == r

    # refresh() and the async API read the same row.
    ok.refresh()
    assert ok.status == SUCCESSFUL and ok.return_value == 5 and ok.attempts == 1
    again = async_to_sync(api.add.aget_result)(ok.id)
    assert again.return_value == 5 and again.finished_at == r.finished_at
    queued = async_to_sync(api.add.aenqueue)(1, 2)
    assert queued.status == READY and Job.objects.filter(pk=queued.id).exists()
    async_to_sync(ok.arefresh)()
    assert ok.status == SUCCESSFUL


def test_get_result_of_unknown_or_foreign_ids():
    for bad in ("123", 123, "", "\x00", "\udc80", "f" * 10_000):
        with pytest.raises(TaskResultDoesNotExist):
            default_task_backend.get_result(bad)
    native = tasks.add.delay(1, 1)  # a job, but not a Django task's
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result(native.id)
    other = api.fail.enqueue("x")
    with pytest.raises(TaskResultMismatch, match="Task does not match"):
        api.add.get_result(other.id)
    with pytest.raises(TaskResultDoesNotExist):
        async_to_sync(api.add.aget_result)("0190c5a8-0000-7000-8000-000000000000")
    # A job of the default alias is not the secondary backend's.
    with pytest.raises(TaskResultDoesNotExist):
        task_backends["secondary"].get_result(other.id)


def test_context_carries_fastq_attempt_and_the_stored_result():
    ok = api.flaky.enqueue("ok", 2)
    spent = api.flaky.enqueue("spent", 5)
    info = api.context_info.using(priority=7).enqueue("t", extra=1)
    run_worker()
    r = api.flaky.get_result(ok.id)
    assert r.status == SUCCESSFUL and r.return_value == 3
    assert r.attempts == 3 and len(r.worker_ids) == 3 and all(r.worker_ids)
    # One error per failed attempt, in order, though the task succeeded in the end.
    assert [e.exception_class for e in r.errors] == [ConnectionError, ConnectionError]
    assert ["attempt 1" in r.errors[0].traceback, "attempt 2" in r.errors[1].traceback] == [
        True,
        True,
    ]
    # started_at is the first attempt's start, last_attempted_at the last one's.
    assert r.started_at < r.last_attempted_at <= r.finished_at
    attempts = list(Execution.objects.filter(key="ok").order_by("attempt").values_list("attempt"))
    assert attempts == [(1,), (2,), (3,)]
    s = api.flaky.get_result(spent.id)
    assert s.status == FAILED and s.attempts == 3  # max_retries=2 from task_options
    assert [e.exception_class for e in s.errors] == [ConnectionError] * 3
    assert [f"attempt {n}" in e.traceback for n, e in enumerate(s.errors, 1)] == [True] * 3
    assert Execution.objects.filter(key="spent").count() == 3

    v = api.context_info.get_result(info.id).return_value
    job = Job.objects.get(pk=info.id)
    assert v["id"] == info.id and v["attempt"] == 1
    assert v["status"] == "RUNNING"
    assert v["enqueued_at"] == job.created_at.isoformat()
    assert v["args"] == ["t"] and v["kwargs"] == {"extra": 1}
    assert v["backend"] == "default" and v["priority"] == 7
    assert v["worker_ids"] == [job.worker]


def test_a_retried_attempt_leaves_a_ready_result_with_its_error():
    r = api.flaky.enqueue("later", 1)
    # A worker that takes one job: the first attempt fails and is retried at once.
    run_worker("--processes", "0", "--concurrency", "1", "--max-tasks-per-child", "1")
    mid = default_task_backend.get_result(r.id)
    assert mid.status == READY  # the retry is queued, not yet run
    assert mid.attempts == 1
    assert mid.errors[0].exception_class is ConnectionError
    assert "provider down on attempt 1" in mid.errors[0].traceback
    assert mid.started_at is not None and mid.finished_at is None
    run_worker()
    done = default_task_backend.get_result(r.id)
    assert done.status == SUCCESSFUL and done.attempts == 2
    # The failed first attempt stays in the result's errors (Django: one per failure).
    assert [e.exception_class for e in done.errors] == [ConnectionError]
    # started_at stays the first attempt's (logged by the worker, on its clock).
    assert abs((done.started_at - mid.started_at).total_seconds()) < 1
    assert done.started_at < done.last_attempted_at


def test_priorities_run_in_order_beside_native_tasks():
    for key, priority in (("p0", 0), ("p100", 100), ("m100", -100), ("p5", 5)):
        api.ordered.using(priority=priority).enqueue(key)
    # A native task on the same queue at priority 50 runs between 100 and 5.
    tasks.record.apply_async(args=("native50",), queue="api-ordered", priority=50)
    run_worker(
        "--queues", "api-ordered", "--processes", "0", "--concurrency", "1", "--claim-batch", "1"
    )
    order = list(Execution.objects.order_by("id").values_list("key", flat=True))
    assert order == ["p100", "native50", "p5", "p0", "m100"]


def test_run_after_defers_and_queues_follow_the_backend():
    later = api.add.using(run_after=timezone.now() + timedelta(hours=1)).enqueue(1, 2)
    past = api.add.using(run_after=timezone.now() - timedelta(hours=1)).enqueue(2, 2)
    extra = api.on_extra_queue.enqueue()  # no registered fastq task uses api-extra
    run_worker()
    assert default_task_backend.get_result(later.id).status == READY
    assert default_task_backend.get_result(past.id).return_value == 4
    assert default_task_backend.get_result(extra.id).return_value == "extra"


def test_transaction_rollback_leaves_no_task():
    with pytest.raises(RuntimeError), transaction.atomic():
        doomed = api.add.enqueue(1, 2)
        assert Job.objects.filter(pk=doomed.id).exists()
        raise RuntimeError("roll back")
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result(doomed.id)


def test_fastq_options_reach_the_jobs():
    one = api.unique_call.enqueue("k")
    two = api.unique_call.enqueue("k")
    assert one.id == two.id and Job.objects.filter(task=api.unique_call.module_path).count() == 1
    assert api.unique_call.enqueue("other").id != one.id
    limited = api.limited_by_settings.enqueue("x")
    assert Job.objects.get(pk=limited.id).max_attempts == 1  # OPTIONS["tasks"]
    ft = fastq.registry[api.limited_by_settings.module_path]
    assert ft.rate_limit == "1000/s"
    sleepy = api.sleepy.enqueue(30)
    assert Job.objects.get(pk=sleepy.id).soft_time_limit == 0.5
    expiring = api.expiring.enqueue()
    assert Job.objects.get(pk=expiring.id).expires_at is not None
    secondary = api.on_secondary.enqueue(21)
    job = Job.objects.get(pk=secondary.id)
    assert job.task == "testapp.tasks_api.on_secondary@secondary"
    assert job.max_attempts == 2  # the secondary backend's OPTIONS
    run_worker()
    assert api.unique_call.get_result(one.id).return_value == "k"
    assert api.limited_by_settings.get_result(limited.id).return_value == "x"
    s = api.sleepy.get_result(sleepy.id)
    assert s.status == FAILED
    assert s.errors[0].exception_class_path == "fastq.SoftTimeLimitExceeded"
    assert s.errors[0].exception_class is fastq.SoftTimeLimitExceeded
    x = api.expiring.get_result(expiring.id)
    assert x.status == FAILED and x.errors[0].exception_class is task_errors.Expired
    assert x.started_at is None  # claimed (fastq counts the attempt) but never run
    sec = api.on_secondary.get_result(secondary.id)
    assert sec.return_value == 42 and sec.backend == "secondary"


def test_fastq_reasons_map_to_importable_exceptions():
    r = api.noop.enqueue()
    Job.objects.filter(pk=r.id).update(
        state="dead", attempts=4, error_type="fastq.WorkerLost", error="lost", traceback=""
    )
    d = default_task_backend.get_result(r.id)
    assert d.status == FAILED
    assert d.errors[0].exception_class is task_errors.WorkerLost
    assert d.errors[0].traceback == "fastq.WorkerLost: lost\n"
    assert d.attempts == 4


def test_oversized_arguments_end_as_payload_too_large():
    big = api.noop.enqueue("x" * (settings.FASTQ.get("MAX_PAYLOAD_BYTES", 1 << 20) + 10))
    run_worker()
    r = default_task_backend.get_result(big.id)
    assert r.status == FAILED
    assert r.errors[0].exception_class is task_errors.PayloadTooLarge


def test_signals_in_the_worker():
    ok = api.add.enqueue(1, 2)
    bad = api.fail.enqueue("no")
    retried = api.flaky.enqueue("sig", 1)
    WorkerProcess("--burst", env={"FASTQ_TEST_TASK_SIGNALS": "1"}).finish()

    def keys(result_id):
        return sorted(Execution.objects.filter(job_id=result_id).values_list("key", "attempt"))

    assert keys(ok.id) == [
        ("finished:SUCCESSFUL:", 1),
        ("started:RUNNING:True:FastqTaskBackend", 1),
    ]
    assert keys(bad.id) == [
        ("finished:FAILED:builtins.ValueError", 1),
        ("started:RUNNING:True:FastqTaskBackend", 1),
    ]
    # Two attempts, one finish (the retried attempt does not finish the task); the second
    # start sees the first attempt's error in the stored result.
    assert keys(retried.id) == [
        ("finished:SUCCESSFUL:builtins.ConnectionError", 2),
        ("sig", 1),
        ("sig", 2),
        ("started:RUNNING:True:FastqTaskBackend", 1),
        ("started:RUNNING:True:FastqTaskBackend", 2),
    ]


def test_runner_in_process_sends_what_is_observed(caplog):
    """The runner the worker calls, run here inside a job context: Django's logging
    receivers get their records while a handler emits them; a project's receiver gets
    the result as stored; nothing is built while nothing would observe it."""
    from fastq.task import run_job

    ft = default_task_backend.fastq_task(api.add)
    r = api.add.enqueue(1, 2)
    with caplog.at_level("INFO", logger=backends._task_log.name):
        assert run_job(ft, [1, 2], {}, r.id, 1, 4) == 3
    lines = [m for m in caplog.messages if r.id in m]
    assert any("state=RUNNING" in m for m in lines)
    assert any("state=SUCCESSFUL" in m for m in lines)

    seen = []

    def receiver(sender, task_result, **kwargs):
        seen.append((task_result.status, task_result.enqueued_at, task_result.attempts))

    backends.task_finished.connect(receiver)
    try:
        assert backends._signal_plan().others is True
        assert run_job(ft, [1, 2], {}, r.id, 1, 4) == 3
    finally:
        backends.task_finished.disconnect(receiver)
    stored = Job.objects.get(pk=r.id)
    assert seen == [(SUCCESSFUL, stored.created_at, 1)]

    logging.disable(logging.CRITICAL)
    try:
        plan = backends._signal_plan()
        assert (plan.others, plan.started, plan.finished, plan.failed) == (False,) * 4
    finally:
        logging.disable(logging.NOTSET)


def test_worker_loglevel_applies_to_djangos_task_loggers():
    """Django's receivers log every task's start and end (INFO) from the worker;
    ``fastq_worker -l WARNING`` quiets them as it quiets fastq's own lines."""
    from fastq_django.management.commands.fastq_worker import configure_logging

    loggers = [logging.getLogger(n) for n in ("fastq", "django.tasks", "django_tasks")]
    before = [lg.level for lg in loggers]
    try:
        configure_logging("WARNING")
        assert [lg.level for lg in loggers] == [logging.WARNING] * 3
        assert backends._signal_plan().started is False  # no INFO record is built
    finally:
        for lg, level in zip(loggers, before, strict=True):
            lg.setLevel(level)


def test_errors_list_every_attempt_including_those_fastq_ended():
    """A first attempt killed at its hard time limit (no Python code sees it end) is in
    the errors of the attempt that succeeds after it; identical errors of successive
    attempts are each listed."""
    slow = api.slow_once.enqueue("slow")
    same = api.same_error.enqueue("same")
    run_worker("--processes", "1")
    r = api.slow_once.get_result(slow.id)
    assert r.status == SUCCESSFUL and r.return_value == 2 and r.attempts == 2
    assert [e.exception_class for e in r.errors] == [task_errors.TimeLimitExceeded]
    assert "attempt 1 of 2" in r.errors[0].traceback
    s = api.same_error.get_result(same.id)
    assert s.status == FAILED and s.attempts == 4
    assert [e.exception_class for e in s.errors] == [LookupError] * 4
    assert all("always the same" in e.traceback for e in s.errors)
    assert len(set(s.worker_ids)) >= 1 and all(s.worker_ids)


def test_attempt_log_folds_what_fastq_wrote_and_lost_workers_in_process():
    """The runner at the start of a retried attempt, run here: the previous attempt's
    error written by fastq is logged once; a row that still holds an earlier attempt's
    error means the attempt before was lost."""
    from fastq.task import run_job

    ft = default_task_backend.fastq_task(api.add)
    r = api.add.enqueue(1, 2)
    Job.objects.filter(pk=r.id).update(
        state="running",
        attempts=2,
        lease_token=77,
        error_type="fastq.TimeLimitExceeded",
        error="timeout: ran longer than its time_limit of 1 s (attempt 1 of 4)",
    )
    assert run_job(ft, [1, 2], {}, r.id, 2, 4, lease_token=77) == 3
    log = task_errors.load(Job.objects.get(pk=r.id).attempt_log)
    assert [(e["attempt"], e["error_type"]) for e in log] == [(1, "fastq.TimeLimitExceeded")]
    # Attempt 2 was lost without an error: attempt 3 finds attempt 1's error in the row.
    Job.objects.filter(pk=r.id).update(attempts=3)
    assert run_job(ft, [1, 2], {}, r.id, 3, 4, lease_token=77) == 3
    log = task_errors.load(Job.objects.get(pk=r.id).attempt_log)
    assert [(e["attempt"], e["error_type"]) for e in log] == [
        (1, "fastq.TimeLimitExceeded"),
        (2, "fastq.WorkerLost"),
    ]
    # A write fenced off (the lease is another worker's now) changes nothing.
    Job.objects.filter(pk=r.id).update(attempts=4, lease_token=78)
    assert run_job(ft, [1, 2], {}, r.id, 4, 4, lease_token=77) == 3
    assert len(task_errors.load(Job.objects.get(pk=r.id).attempt_log)) == 2
    Job.objects.filter(pk=r.id).update(state="succeeded", result="3", error_type="")
    done = default_task_backend.get_result(r.id)
    assert [e.exception_class for e in done.errors] == [
        task_errors.TimeLimitExceeded,
        task_errors.WorkerLost,
    ]


def test_attempt_log_keeps_an_error_with_a_nul_and_a_lone_surrogate():
    """An exception message with a NUL and a lone surrogate (an undecodable file name
    read with surrogateescape) is logged as it was: no database refuses the log's text."""
    from fastq.task import run_job

    ft = default_task_backend.fastq_task(api.fail)
    r = api.fail.enqueue("placeholder")
    Job.objects.filter(pk=r.id).update(state="running", attempts=1, lease_token=91)
    message = "nul\x00here, lone \udcff, é"
    # Django's receivers would log the message, and pytest-xdist cannot send a captured
    # log with a lone surrogate back to its controller.
    logging.disable(logging.CRITICAL)
    try:
        with pytest.raises(ValueError):
            run_job(ft, [message], {}, r.id, 1, 4, lease_token=91)
    finally:
        logging.disable(logging.NOTSET)
    log = task_errors.load(Job.objects.get(pk=r.id).attempt_log)
    assert [(e["attempt"], e["error_type"], e["error"]) for e in log] == [
        (1, "ValueError", message)
    ]


def test_attempt_log_rules():
    """task_errors' pure functions: what is folded, merged, and kept."""
    e = task_errors.entry
    one = e(1, "ValueError", "bad", "tb1", worker="h:1")
    # The row's error is the latest attempt's when the log lacks it.
    assert task_errors.merged([], "ValueError", "bad", "tb", 1) == [e(1, "ValueError", "bad", "tb")]
    assert task_errors.merged([one], "ValueError", "bad", "tb", 1) == [one]
    # A cancellation after a logged failure: last, though it has the same attempt number.
    merged = task_errors.merged([one], "fastq.Cancelled", "cancelled", "", 1)
    assert [m["error_type"] for m in merged] == ["ValueError", "fastq.Cancelled"]
    # A stale error (an earlier attempt's, still in the row) is not listed twice.
    two = e(2, "KeyError", "k", "tb2")
    assert task_errors.merged([one, two], "ValueError", "bad", "tb1", 3) == [one, two]
    # Folding at the start of attempt 2.
    assert task_errors.fold_previous([one], 2, "ValueError", "bad", "tb1") is None
    folded = task_errors.fold_previous([], 2, "fastq.TimeLimitExceeded", "t (attempt 1 of 2)", "")
    assert [(f["attempt"], f["error_type"]) for f in folded] == [(1, "fastq.TimeLimitExceeded")]
    lost = task_errors.fold_previous([one], 3, "ValueError", "bad", "tb1")
    assert [(f["attempt"], f["error_type"]) for f in lost] == [
        (1, "ValueError"),
        (2, "fastq.WorkerLost"),
    ]
    lost_first = task_errors.fold_previous([], 2, "", "", "")
    assert [(f["attempt"], f["error_type"]) for f in lost_first] == [(1, "fastq.WorkerLost")]
    assert task_errors.fold_previous([], 1, "", "", "") is None
    # Bounded: the first entry and the latest ones; texts clipped, a traceback's end kept.
    entries: list = []
    for n in range(1, 101):
        entries = task_errors.append(entries, e(n, "E", "m" * 10_000, "x" * 10_000 + "END"))
    assert len(entries) == task_errors.LOG_KEEP
    assert [x["attempt"] for x in entries] == [1, *range(101 - task_errors.LOG_KEEP + 1, 101)]
    assert all(len(x["error"]) == task_errors.MESSAGE_CHARS for x in entries)
    assert all(x["traceback"].endswith("END") for x in entries)
    assert all(len(x["traceback"]) <= task_errors.TRACEBACK_CHARS for x in entries)
    assert len(task_errors.dump(entries)) < 200_000
    # A damaged log reads as empty.
    assert task_errors.load("not json") == [] and task_errors.load('{"a": 1}') == []
    assert task_errors.load('[1, {"attempt": "x"}, {"attempt": 2}]') == [{"attempt": 2}]

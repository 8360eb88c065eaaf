"""Tasks declared with Django's Tasks API (``django.tasks``, or the ``django_tasks``
backport on Django 5.2), run by fastq_worker through fastq_django.backends
(tests/django/test_tasks_backend*.py). Imported through FASTQ["IMPORTS"] when the API is
there; executions are recorded in testapp.models.Execution."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import datetime

from fastq_django.backends import TaskContext, task_finished, task_options, task_started

try:
    from django.tasks import task
except ImportError:
    from django_tasks import task

from testapp.models import Execution


def _record(job_id: str, key: str, attempt: int = 0) -> None:
    Execution.objects.create(job_id=job_id, key=key, attempt=attempt, pid=os.getpid())


@task
def add(a: int, b: int) -> int:
    return a + b


@task()
async def add_async(a: int, b: int) -> int:
    await asyncio.sleep(0)
    return a + b


@task
def noop(*args: object, **kwargs: object) -> None:
    return None


@task
def echo(*args: object, **kwargs: object) -> dict[str, object]:
    return {"args": list(args), "kwargs": kwargs}


@task
def fail(message: str) -> None:
    raise ValueError(message)


@task
def complex_exception() -> None:
    raise ValueError(ValueError("This task failed"))


@task
def system_exit() -> None:
    raise SystemExit("This task failed due to SystemExit")


@task
def complex_return_value() -> object:
    return datetime.now()


@task
def huge_return_value() -> int:
    return 2**70


@task(takes_context=True)
def context_info(context: TaskContext, tag: str, **extra: object) -> dict[str, object]:
    r = context.task_result
    _record(r.id, f"ctx:{tag}", context.attempt)
    return {
        "id": r.id,
        "attempt": context.attempt,
        "status": str(r.status),
        "enqueued_at": r.enqueued_at.isoformat() if r.enqueued_at else None,
        "started_at": r.started_at.isoformat() if r.started_at else None,
        "args": r.args,
        "kwargs": r.kwargs,
        "backend": r.backend,
        "queue_name": r.task.queue_name,
        "priority": r.task.priority,
        "worker_ids": r.worker_ids,
        "errors": [e.exception_class_path for e in r.errors],
    }


@task(takes_context=True)
@task_options(max_retries=2, autoretry_for=(ConnectionError,), default_retry_delay=0)
def flaky(context: TaskContext, key: str, failures: int) -> int:
    """Fails with ConnectionError on its first ``failures`` attempts."""
    _record(context.task_result.id, key, context.attempt)
    if context.attempt <= failures:
        raise ConnectionError(f"provider down on attempt {context.attempt}")
    return context.attempt


@task(takes_context=True)
@task_options(max_retries=1, time_limit=1)
def slow_once(context: TaskContext, key: str) -> int:
    """Runs past its hard time limit on its first attempt (the worker process is killed);
    answers on the second."""
    _record(context.task_result.id, key, context.attempt)
    if context.attempt == 1:
        time.sleep(30)
    return context.attempt


@task(takes_context=True)
@task_options(max_retries=3, autoretry_for=(LookupError,), default_retry_delay=0)
def same_error(context: TaskContext, key: str) -> int:
    """Fails with the same LookupError on every attempt."""
    _record(context.task_result.id, key, context.attempt)
    raise LookupError("always the same")


@task(takes_context=True, queue_name="api-ordered")
def ordered(context: TaskContext, key: str) -> None:
    _record(context.task_result.id, key, context.attempt)


@task
@task_options(unique=True)
def unique_call(key: str) -> str:
    return key


@task
@task_options(soft_time_limit=0.5, max_retries=0)
def sleepy(seconds: float) -> None:
    # Short sleeps: the soft limit's exception lands between them, not after all of them.
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)


@task
@task_options(expires=0.01)
def expiring() -> None:
    return None


@task
def limited_by_settings(key: str) -> str:
    """OPTIONS["tasks"] of the test settings gives it max_retries=0 and a rate limit."""
    return key


@task(queue_name="api-extra")
def on_extra_queue() -> str:
    return "extra"


@task(backend="secondary")
def on_secondary(value: int) -> int:
    return value * 2


# Signal receivers: only in a worker started with FASTQ_TEST_TASK_SIGNALS=1 (without
# receivers of its own the backend sends Django's signals with a lighter TaskResult).
def _on_started(sender: type, task_result: object, **kwargs: object) -> None:
    r = task_result
    _record(
        r.id,  # type: ignore[attr-defined]
        f"started:{r.status}:{r.enqueued_at is not None}:{sender.__name__}",  # type: ignore[attr-defined]
        r.attempts,  # type: ignore[attr-defined]
    )


def _on_finished(sender: type, task_result: object, **kwargs: object) -> None:
    r = task_result
    errors = ",".join(e.exception_class_path for e in r.errors)  # type: ignore[attr-defined]
    _record(
        r.id,  # type: ignore[attr-defined]
        f"finished:{r.status}:{errors}"[:100],  # type: ignore[attr-defined]
        r.attempts,  # type: ignore[attr-defined]
    )


if os.environ.get("FASTQ_TEST_TASK_SIGNALS") == "1":
    task_started.connect(_on_started, dispatch_uid="testapp.tasks_api.started")
    task_finished.connect(_on_finished, dispatch_uid="testapp.tasks_api.finished")

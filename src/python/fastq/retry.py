"""The retry policy: whether an attempt that raised ends the job or asks for another,
and the retry outcome's fields (when, and the error of this attempt). "Was this the
last attempt?" is the core's answer (``_core.is_last_attempt``), the one the supervisor
and the rescue give for attempts that Python never saw end."""

from __future__ import annotations

import contextlib
import time
import traceback
from typing import TYPE_CHECKING, Any

import fastq.task as _task
from fastq import _core, signals

if TYPE_CHECKING:
    from fastq.runtime import JobContext
    from fastq.task import Retry, Task

from fastq.options import DEFAULT_MAX_RETRIES, DEFAULT_RETRY_DELAY  # noqa: F401 - re-exported


def ending(task: Task[Any, Any], job: JobContext, exc: BaseException) -> BaseException:
    """The exception an attempt that raised ``exc`` ends with: a filled-in :class:`Retry`
    while attempts remain and the task asks for one, else the final error."""
    attempt, max_attempts = job.attempt, job.max_attempts
    last = _core.is_last_attempt(attempt, max_attempts)  # the core's one answer
    if isinstance(exc, _task.Retry):
        if last:
            final = exc.exc or _task.MaxRetriesExceededError(
                f"{task.name}: retry requested with no attempts left ({attempt} of {max_attempts})"
            )
            final.__suppress_context__ = True
            _mark_gave_up(final)
            if signals.task_failed.has_listeners(task):
                signals.task_failed.send(sender=task, job=job, exception=final)
            return final
        _fill_retry(task, exc, attempt, exc.exc or exc)
        _send_retried(task, job, exc)
        return exc
    if task.autoretry_for and isinstance(exc, task.autoretry_for) and not last:
        retry = _task.Retry(exc=exc)
        retry.__cause__ = exc
        _fill_retry(task, retry, attempt, exc)
        _send_retried(task, job, retry)
        return retry
    if task.autoretry_for and isinstance(exc, task.autoretry_for):
        _mark_gave_up(exc)  # a retryable error, but no attempts are left
    if signals.task_failed.has_listeners(task):
        signals.task_failed.send(sender=task, job=job, exception=exc)
    return exc


def _mark_gave_up(exc: BaseException) -> None:
    """The job ends DEAD, not FAILED: it was retried as asked and its attempts are spent."""
    with contextlib.suppress(AttributeError, TypeError):
        exc._fastq_gave_up = True  # type: ignore[attr-defined]


def _send_retried(task: Task[Any, Any], job: JobContext, retry: Retry) -> None:
    if signals.task_retried.has_listeners(task):
        countdown = max(0.0, retry.eta_us / 1_000_000 - time.time())
        signals.task_retried.send(
            sender=task, job=job, exception=retry.exc or retry, countdown=countdown
        )


def _fill_retry(task: Task[Any, Any], retry: Retry, attempt: int, cause: BaseException) -> None:
    delay = retry.countdown if retry.countdown is not None else task.retry_delay(attempt)
    retry.eta_us = int((time.time() + max(0.0, delay)) * 1_000_000)
    retry.error_type = type_name(type(cause))
    retry.error = str(cause)
    retry.traceback = "".join(traceback.format_exception(cause))


def type_name(t: type) -> str:
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"

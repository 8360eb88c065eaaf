"""``celery.exceptions``: the exceptions a Celery task raises or catches, as fastq's."""

from __future__ import annotations

from fastq.result import TaskFailed
from fastq.result import TimeoutError as TimeoutError
from fastq.task import MaxRetriesExceededError, Retry
from fastq.timelimits import SoftTimeLimitExceeded


class CeleryError(Exception):
    """Base of the errors this compatibility layer raises itself."""


class ImproperlyConfigured(CeleryError):
    """A setting fastq refuses (``pickle``), or a value it cannot read."""


class TimeLimitExceeded(TaskFailed):
    """A job whose hard ``time_limit`` passed: fastq kills the process running it and the
    attempt fails with the type ``fastq.TimeLimitExceeded``; ``AsyncResult.get()`` raises
    this class for it."""


class WorkerLostError(TaskFailed):
    """The worker process running the job died (``fastq.WorkerLost``)."""


class TaskRevokedError(TaskFailed):
    """The job was revoked (cancelled) or expired before it started."""


class NotRegistered(KeyError, CeleryError):
    """No task of that name is registered in this process."""


class Ignore(Exception):
    """Raised in a task to end it without a result; fastq records it as succeeded with
    no value."""


class Reject(Exception):
    """Celery's message rejection; fastq records the job as failed with this reason."""


__all__ = [
    "CeleryError",
    "Ignore",
    "ImproperlyConfigured",
    "MaxRetriesExceededError",
    "NotRegistered",
    "Reject",
    "Retry",
    "SoftTimeLimitExceeded",
    "TaskRevokedError",
    "TimeLimitExceeded",
    "TimeoutError",
    "WorkerLostError",
]

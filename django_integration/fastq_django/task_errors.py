"""Exception classes for the reasons fastq itself ends a job with.

fastq records these reasons by name (``fastq.WorkerLost``, ``fastq.TimeLimitExceeded``,
...; see docs/architecture.md, "Job lifecycle"): the C++ core writes them, no Python
exception is raised. The Django Tasks backend (:mod:`fastq_django.backends`) reports them
in ``TaskResult.errors`` under the paths of the classes below, so that
``TaskError.exception_class`` imports a real exception class, as Django's API promises.
"""

from __future__ import annotations


class FastqJobError(Exception):
    """Base class of the reasons fastq ends a job with; none is raised by fastq itself."""


class WorkerLost(FastqJobError):
    """The worker process running the job died (or its lease expired) and no attempt was
    left."""


class TimeLimitExceeded(FastqJobError):
    """The job ran past its hard ``time_limit``: its process was killed."""


class Interrupted(FastqJobError):
    """The job was cut off at the end of ``--grace`` more often than the hand-back bound."""


class Cancelled(FastqJobError):
    """The job was cancelled before it started."""


class Expired(FastqJobError):
    """The job was not started before its expiry."""


class UnknownTask(FastqJobError):
    """The worker that claimed the job had no task registered under its name."""


class UnknownEnvelope(FastqJobError):
    """The job's row layout version is not one this worker reads."""


class InvalidPayload(FastqJobError):
    """The job's arguments are not valid JSON of the right shape."""


class PayloadTooLarge(FastqJobError):
    """The job's arguments exceed ``FASTQ["MAX_PAYLOAD_BYTES"]``."""


class InvalidJob(FastqJobError):
    """The job's row holds values outside a job's bounds."""


class InvalidRetry(FastqJobError):
    """A retry was asked for with a time a job cannot hold."""


class ResultNotSerializable(FastqJobError):
    """The task returned a value JSON cannot encode."""


class ResultTooLarge(FastqJobError):
    """The task's return value exceeds ``FASTQ["MAX_PAYLOAD_BYTES"]``."""


class OutcomeNotStored(FastqJobError):
    """The job's outcome could not be written as it was (for example, text the database
    refuses); a placeholder outcome was stored instead."""


BY_NAME: dict[str, type[FastqJobError]] = {
    f"fastq.{cls.__name__}": cls
    for cls in (
        WorkerLost,
        TimeLimitExceeded,
        Interrupted,
        Cancelled,
        Expired,
        UnknownTask,
        UnknownEnvelope,
        InvalidPayload,
        PayloadTooLarge,
        InvalidJob,
        InvalidRetry,
        ResultNotSerializable,
        ResultTooLarge,
        OutcomeNotStored,
    )
}


def exception_class_path(error_type: str) -> str:
    """The importable path of the exception a job's stored ``error_type`` names.

    fastq stores builtins by bare name (``ValueError``), other classes by
    ``module.QualName`` and its own reasons as ``fastq.Reason``.
    """
    own = BY_NAME.get(error_type)
    if own is not None:
        return f"{own.__module__}.{own.__qualname__}"
    if "." not in error_type:
        return f"builtins.{error_type}"
    return error_type

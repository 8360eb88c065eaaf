"""Exception classes for the reasons fastq itself ends a job with.

fastq records these reasons by name (``fastq.WorkerLost``, ``fastq.TimeLimitExceeded``,
...; see docs/architecture.md, "Job lifecycle"): the C++ core writes them, no Python
exception is raised. The Django Tasks backend (:mod:`fastq_django.backends`) reports them
in ``TaskResult.errors`` under the paths of the classes below, so that
``TaskError.exception_class`` imports a real exception class, as Django's API promises.
"""

from __future__ import annotations

import re


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


# -- the attempt log (fastq_job.attempt_log, migration 0015) -----------------------------
#
# fastq's row keeps the error of the latest attempt only (error_type, error, traceback);
# Django's TaskResult.errors lists one error per failed attempt. The Django Tasks
# backend's runner keeps the earlier ones in the row's ``attempt_log``, a JSON array of
# entries ``{"attempt", "worker", "started_at", "error_type", "error", "traceback"}``:
#
# - when the task raises, the runner appends the attempt's error (it knows the attempt,
#   its worker and its start);
# - when an attempt after the first starts, the runner folds in what the previous attempt
#   ended with if no Python code saw it: an error fastq wrote itself (time limit, lost
#   worker process), or, when the row still holds an error already logged, a worker lost
#   without a trace (its lease expired; fastq writes no error when attempts remain);
# - ``TaskResult.errors`` is the log plus the row's own error when that error is not
#   already in the log (a final error fastq wrote: time limit, lost worker, expiry,
#   cancellation, a result it could not store).
#
# The errors fastq writes itself carry the attempt or a count in their message, and the
# runner logs every error Python raised, so "already in the log" is a comparison of
# (type, message): a row error equal to a logged one is that one, not a new one.
#
# Bounded: the first entry and the latest ones, LOG_KEEP in all; each message and
# traceback clipped (the end of a traceback kept: it names the exception).

LOG_KEEP = 20
MESSAGE_CHARS = 2_000
TRACEBACK_CHARS = 6_000
LOST = "fastq.WorkerLost"


def _clip_end(text: str, most: int) -> str:
    if len(text) <= most:
        return text
    return "...\n" + text[len(text) - (most - 4) :]


def entry(
    attempt: int,
    error_type: str,
    error: str,
    traceback: str,
    worker: str = "",
    started_at: str | None = None,
) -> dict[str, object]:
    """One attempt's entry, clipped to the log's bounds."""
    return {
        "attempt": int(attempt),
        "worker": str(worker)[:255],
        "started_at": started_at,
        "error_type": str(error_type)[:255],
        "error": str(error)[:MESSAGE_CHARS],
        "traceback": _clip_end(str(traceback), TRACEBACK_CHARS),
    }


def load(text: str | None) -> list[dict[str, object]]:
    """The log's entries (a missing or damaged log reads as empty)."""
    import json

    if not text:
        return []
    try:
        value = json.loads(text)
    except ValueError:
        return []
    if not isinstance(value, list):
        return []
    return [e for e in value if isinstance(e, dict) and isinstance(e.get("attempt"), int)]


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def dump(entries: list[dict[str, object]]) -> str:
    """The log as JSON text any database stores: a NUL is escaped by the encoder, and a
    lone surrogate (an exception message decoded with ``surrogateescape``) as JSON's own
    ``\\uXXXX`` escape, which reads back as the same text: UTF-8 cannot hold it raw."""
    import json

    text = json.dumps(entries, ensure_ascii=False, separators=(",", ":"))
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def append(entries: list[dict[str, object]], new: dict[str, object]) -> list[dict[str, object]]:
    """``entries`` with ``new`` (replacing an entry of the same attempt), sorted by
    attempt, bounded to the first entry and the latest ones."""
    out = [e for e in entries if e.get("attempt") != new["attempt"]]
    out.append(new)
    out.sort(key=lambda e: int(e["attempt"]))  # type: ignore[call-overload]
    if len(out) > LOG_KEEP:
        out = [out[0], *out[len(out) - (LOG_KEEP - 1) :]]
    return out


def _same(e: dict[str, object], error_type: str, error: str) -> bool:
    return e.get("error_type") == error_type[:255] and e.get("error") == error[:MESSAGE_CHARS]


def logged(entries: list[dict[str, object]], error_type: str, error: str) -> bool:
    """Whether the row's error (type, message) is one the log already holds."""
    return any(_same(e, error_type, error) for e in entries)


def fold_previous(
    entries: list[dict[str, object]], attempt: int, error_type: str, error: str, traceback: str
) -> list[dict[str, object]] | None:
    """At the start of ``attempt`` (> 1): the log with the previous attempt's end added
    when no Python code logged it, else None (nothing to write).

    ``error_type``/``error``/``traceback`` are the row's as the attempt was claimed."""
    previous = attempt - 1
    if previous < 1 or any(e.get("attempt") == previous for e in entries):
        return None
    if error_type and not logged(entries, error_type, error):
        # fastq ended it with an error of its own (time limit, lost process...).
        return append(entries, entry(previous, error_type, error, traceback))
    # The row holds no error, or an earlier attempt's: the previous attempt was charged
    # without an outcome (its worker was lost and its lease expired, or it was cut off
    # once too often); an attempt handed back unspent would run again under its own
    # number.
    return append(
        entries,
        entry(
            previous,
            LOST,
            f"attempt {previous} ended without an outcome: the worker running it was lost "
            "or stopped before it finished",
            "",
        ),
    )


def merged(
    entries: list[dict[str, object]], error_type: str, error: str, traceback: str, attempt: int
) -> list[dict[str, object]]:
    """Every attempt's error: the log, plus the row's error when the log does not hold it
    (then it is the latest attempt's, ``attempt``)."""
    if not error_type:
        return list(entries)
    for e in entries:
        if e.get("attempt") == attempt and e.get("error_type") == error_type[:255]:
            return list(entries)  # the latest attempt's, as the runner logged it
    if logged(entries, error_type, error):
        return list(entries)  # an earlier attempt's, still in the row
    # Written by fastq after the logged ones (a cancellation or expiry of the retry
    # itself has the number of the attempt it followed): last, whatever its number.
    return [*entries, entry(max(1, attempt), error_type, error, traceback)]

"""``celery.states``: Celery's state names, and how fastq's job states map onto them.

============  =========================================================================
Celery        fastq
============  =========================================================================
PENDING       queued (never tried), claimed but not started, or no such job
RETRY         queued again after a failed attempt that is to be retried
STARTED       running
SUCCESS       succeeded
FAILURE       failed (not retried) or dead (retries spent, worker lost, bad message)
REVOKED       cancelled, or expired before it started
============  =========================================================================

RECEIVED, REJECTED and IGNORED exist as names; fastq never reports them.
"""

from __future__ import annotations

PENDING = "PENDING"
RECEIVED = "RECEIVED"
STARTED = "STARTED"
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
REVOKED = "REVOKED"
REJECTED = "REJECTED"
RETRY = "RETRY"
IGNORED = "IGNORED"

READY_STATES = frozenset({SUCCESS, FAILURE, REVOKED})
UNREADY_STATES = frozenset({PENDING, RECEIVED, STARTED, REJECTED, RETRY})
EXCEPTION_STATES = frozenset({RETRY, FAILURE, REVOKED})
PROPAGATE_STATES = frozenset({FAILURE, REVOKED})
ALL_STATES = frozenset(
    {PENDING, RECEIVED, STARTED, SUCCESS, FAILURE, RETRY, REVOKED, REJECTED, IGNORED}
)


def from_job(
    state: str | None, attempts: int = 0, error_type: str = "", started: bool = True
) -> str:
    """The Celery state of a fastq job (``state`` lower case as stored, None: no job)."""
    if state is None:
        return PENDING
    if state == "waiting":  # a workflow step whose parents have not all finished
        return PENDING
    if state == "queued":
        return RETRY if attempts > 0 and error_type else PENDING
    if state == "running":
        return STARTED if started else PENDING
    if state == "succeeded":
        return SUCCESS
    if state in ("failed", "dead"):
        return FAILURE
    return REVOKED  # cancelled, expired

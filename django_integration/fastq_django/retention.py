"""The retention in force (``FASTQ["RETENTION"]``), as the admin dashboard and
``fastq_prune`` show it. The pruning itself is the scheduler leader's (C++ core,
src/cpp/core/include/fastq/retention.hpp)."""

from __future__ import annotations

from fastq import conf


def describe(seconds: float | None) -> str:
    """A retention for people: "for ever", "1 day", "14 days", "60 seconds"."""
    if seconds is None:
        return "for ever"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds:g} seconds"


def in_force() -> list[tuple[str, str]]:
    """(final state, how long its jobs are kept) for each final state; a bad setting
    (reported by the system checks) shows as such rather than failing the page."""
    try:
        keep = conf.retention()
    except ValueError as exc:
        return [("error", str(exc))]
    return [(state, describe(keep[state])) for state in conf.FINAL_STATES]

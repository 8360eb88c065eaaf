"""Settings: ``settings.FASTQ`` in a Django project, or :func:`configure` without Django.

Known keys (:data:`KNOWN`: default and expected type of each, in one table):

``DATABASE``   the Django database alias used as the broker (default ``"default"``).
``EAGER``      run tasks inline at ``.delay()`` (for a project's own tests).
``IMPORTS``    extra modules the worker imports to register tasks.
``QUEUES``     queues a worker consumes when ``--queues`` is not given: a list of names,
               or a dict name -> options, where ``{"concurrency": N}`` lets at most N jobs
               of that queue run at once across every worker (:func:`queue_options`).
``MAX_PAYLOAD_BYTES``  largest args+kwargs JSON a worker will run (default 1 MiB).
``SCHEDULE``   periodic schedules: name -> {"task", "cron"/"every", ...} (docs/scheduling.md).
``METRICS_TOKEN``  bearer token that may read ``/fastq/metrics`` without a staff login
               (None: staff login only).
``DOTTED_PATHS``  modules or callables (dotted) that a task given by dotted path (Django-Q2's
               ``async_task("app.module.func")``, fastq.compat.django_q) may run besides the
               code of the project's installed apps.
``ADMIN_REDACT``  argument names, or a callable (name, value) -> bool, whose values the
               Django admin masks in job arguments and results (fastq_django/redact.py).
``TIMEZONE``   the zone of cron schedules that name none (default: Django's TIME_ZONE,
               else UTC); see :func:`timezone`.
``TASK_DEFAULTS``  fleet-wide defaults of task options (``time_limit``, ``max_retries``,
               ``queue``...), which a task's own options override.
``RETENTION``  how long finished jobs are kept, per final state (seconds or a timedelta;
               None keeps them for ever); see :func:`retention`.

fastq_django's system checks (``manage.py check``) report unknown keys and values of the
wrong type from this table.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

_overrides: dict[str, Any] = {}


def _names(value: Any) -> bool:
    return isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)


# Largest fleet-wide concurrency a queue may be given (the column is an int).
MAX_QUEUE_CONCURRENCY = 1_000_000
_QUEUE_OPTIONS = ("concurrency",)


def _concurrency_ok(v: Any) -> bool:
    return v is None or (
        isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_QUEUE_CONCURRENCY
    )


def _queues(value: Any) -> bool:
    if value is None or _names(value):
        return True
    if not isinstance(value, Mapping):
        return False
    for name, options in value.items():
        if not isinstance(name, str) or not name or len(name) > 100 or "\x00" in name:
            return False
        if options is None:
            continue
        if not isinstance(options, Mapping) or set(options) - set(_QUEUE_OPTIONS):
            return False
        if not _concurrency_ok(options.get("concurrency")):
            return False
    return True


def queue_names(value: Any) -> list[str]:
    """The queue names of a ``QUEUES`` value (a list, or a dict's keys)."""
    if not value:
        return []
    return list(value)


def queue_options(value: Any) -> dict[str, dict[str, Any]]:
    """name -> options of a ``QUEUES`` value (every queue of a list has none)."""
    if isinstance(value, Mapping):
        return {name: dict(options or {}) for name, options in value.items()}
    return {name: {} for name in queue_names(value)}


@dataclass(frozen=True)
class Setting:
    """A known key: its default, what a value must be (in words, for error messages),
    and the test a value must pass."""

    default: Any
    expected: str
    valid: Callable[[Any], bool]


KNOWN: dict[str, Setting] = {
    "DATABASE": Setting("default", "a database alias (str)", lambda v: isinstance(v, str)),
    "EAGER": Setting(False, "a bool", lambda v: isinstance(v, bool)),
    "IMPORTS": Setting([], "a list of module names (str)", _names),
    "QUEUES": Setting(
        None,
        'a list of queue names (str), a dict of name -> {"concurrency": int from 1 to '
        f"{MAX_QUEUE_CONCURRENCY}}}, or None",
        _queues,
    ),
    "MAX_PAYLOAD_BYTES": Setting(
        1 << 20,
        "a positive int (bytes)",
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0,
    ),
    "SCHEDULE": Setting({}, "a dict of name -> options", lambda v: isinstance(v, Mapping)),
    "METRICS_TOKEN": Setting(
        None, "a non-empty str, or None", lambda v: v is None or (isinstance(v, str) and v != "")
    ),
    "DOTTED_PATHS": Setting((), "a list of dotted module or callable names (str)", _names),
    "ADMIN_REDACT": Setting(
        (),
        "a list of argument names (str) or a callable (name, value) -> bool",
        lambda v: (
            v is None
            or callable(v)
            or (
                isinstance(v, list | tuple | set | frozenset) and all(isinstance(n, str) for n in v)
            )
        ),
    ),
    "TIMEZONE": Setting(
        None,
        "an IANA time zone name (str), or None for settings.TIME_ZONE",
        lambda v: v is None or (isinstance(v, str) and bool(v)),
    ),
    "TASK_DEFAULTS": Setting(
        {}, "a dict of task option -> default value", lambda v: isinstance(v, Mapping)
    ),
    "RETENTION": Setting(
        {},
        "a dict of final state -> seconds, timedelta or None",
        lambda v: isinstance(v, Mapping),
    ),
}

# The final states a job can end in, and how long each is kept by default (seconds).
FINAL_STATES = ("succeeded", "failed", "dead", "expired", "cancelled")
DEFAULT_RETENTION: dict[str, float | None] = {
    "succeeded": 86400.0,
    "failed": 14 * 86400.0,
    "dead": 14 * 86400.0,
    "expired": 14 * 86400.0,
    "cancelled": 14 * 86400.0,
}


def retention_problems(value: Any) -> list[str]:
    """What is wrong with a ``FASTQ["RETENTION"]`` value (empty: nothing)."""
    if not isinstance(value, Mapping):
        return [f"must be a dict of final state -> seconds, not {type(value).__name__}"]
    problems = []
    for state, keep in value.items():
        if state not in FINAL_STATES:
            guess = difflib.get_close_matches(str(state), FINAL_STATES, n=1)
            problems.append(
                f"has an unknown state {state!r}"
                + (f"; did you mean {guess[0]!r}?" if guess else "")
                + f" (final states: {', '.join(FINAL_STATES)})"
            )
            continue
        if keep is None:
            continue
        if isinstance(keep, timedelta):
            seconds = keep.total_seconds()
        elif isinstance(keep, int | float) and not isinstance(keep, bool):
            seconds = float(keep)
        else:
            problems.append(
                f"[{state!r}] must be seconds (a number), a timedelta or None, "
                f"not {type(keep).__name__} {keep!r}"
            )
            continue
        if not seconds >= 0 or seconds == float("inf"):
            problems.append(f"[{state!r}] must be 0 or more seconds, not {keep!r}")
    return problems


def retention() -> dict[str, float | None]:
    """The retention in force: for each final state, the seconds a finished job is kept
    (None: for ever). ``FASTQ["RETENTION"]`` overrides the defaults state by state
    (succeeded 1 day, the others 14 days). Raises ValueError for a bad value."""
    value = get("RETENTION")
    problems = retention_problems(value)
    if problems:
        raise ValueError('FASTQ["RETENTION"] ' + "; ".join(problems))
    out = dict(DEFAULT_RETENTION)
    for state, keep in value.items():
        out[state] = (
            None
            if keep is None
            else keep.total_seconds()
            if isinstance(keep, timedelta)
            else float(keep)
        )
    return out


DEFAULTS: dict[str, Any] = {name: s.default for name, s in KNOWN.items()}


def timezone() -> str:
    """The zone of a cron schedule that names none: ``FASTQ["TIMEZONE"]``, else Django's
    ``TIME_ZONE``, else ``"UTC"``."""
    configured = get("TIMEZONE")
    if configured:
        return str(configured)
    if django_settings() is not None:
        from django.conf import settings

        return str(getattr(settings, "TIME_ZONE", None) or "UTC")
    return "UTC"


def closest(name: str) -> str | None:
    """The known key ``name`` was most likely meant to be (``EAGERR`` -> ``EAGER``)."""
    if not isinstance(name, str):
        return None
    matches = difflib.get_close_matches(name.upper(), KNOWN, n=1, cutoff=0.6)
    return matches[0] if matches else None


def type_problem(name: str, value: Any) -> str | None:
    """Why ``value`` cannot be the value of the known key ``name``, or None."""
    setting = KNOWN[name]
    if setting.valid(value):
        return None
    return f"must be {setting.expected}, not {type(value).__name__} {value!r}"


def configure(**options: Any) -> None:
    """Override settings in this process (takes precedence over ``settings.FASTQ``).

    ``fastq.configure(EAGER=True)``; ``fastq.configure()`` with no arguments clears all
    overrides.
    """
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        described = [
            f"{name} (did you mean {guess}?)" if (guess := closest(name)) else name
            for name in unknown
        ]
        raise ValueError(f"unknown fastq setting(s): {', '.join(described)}")
    if options:
        _overrides.update(options)
    else:
        _overrides.clear()


# settings.FASTQ as last read (None: not read yet, or Django not configured then). Read
# on every .delay(), where going through Django's lazy settings cost ~8 us a call; Django's
# setting_changed signal (override_settings, pytest-django's settings fixture) drops it.
_django_cached: dict[str, Any] | None = None
_listening = False


def _setting_changed(*, setting: str, **_: Any) -> None:
    global _django_cached
    if setting == "FASTQ":
        _django_cached = None


def django_settings() -> dict[str, Any] | None:
    """``settings.FASTQ`` if Django is installed and configured, else None."""
    global _django_cached, _listening
    cached = _django_cached
    if cached is not None:
        return cached
    if "django.conf" not in sys.modules:
        # Nothing has configured Django's settings yet (configuring them imports
        # django.conf): don't import Django just to learn that (``import fastq`` stays
        # free of Django).
        return None
    try:
        from django.conf import settings
    except ImportError:
        return None
    if not settings.configured:
        return None
    value = getattr(settings, "FASTQ", {})
    if not isinstance(value, dict):
        raise TypeError("settings.FASTQ must be a dict")
    if not _listening:
        from django.core.signals import setting_changed

        setting_changed.connect(_setting_changed, dispatch_uid="fastq.conf.setting_changed")
        _listening = True
    _django_cached = value
    return value


def get(name: str) -> Any:
    if name in _overrides:
        return _overrides[name]
    from_django = django_settings()
    if from_django is not None and name in from_django:
        return from_django[name]
    return DEFAULTS[name]

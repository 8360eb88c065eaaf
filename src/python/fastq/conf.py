"""Settings: ``settings.FASTQ`` in a Django project, or :func:`configure` without Django.

Known keys:

``DATABASE``   the Django database alias used as the broker (default ``"default"``).
``EAGER``      run tasks inline at ``.delay()`` (for a project's own tests).
``IMPORTS``    extra modules the worker imports to register tasks.
``QUEUES``     queues a worker consumes when ``--queues`` is not given.
``MAX_PAYLOAD_BYTES``  largest args+kwargs JSON a worker will run (default 1 MiB).
``SCHEDULE``   periodic schedules: name -> {"task", "cron"/"every", ...} (docs/scheduling.md).
``ADMIN_REDACT``  argument names, or a callable (name, value) -> bool, whose values the
               Django admin masks in job arguments and results (fastq_django/redact.py).
"""

from __future__ import annotations

from typing import Any

_overrides: dict[str, Any] = {}

DEFAULTS: dict[str, Any] = {
    "DATABASE": "default",
    "EAGER": False,
    "IMPORTS": [],
    "QUEUES": None,
    "MAX_PAYLOAD_BYTES": 1 << 20,
    "SCHEDULE": {},
    "ADMIN_REDACT": (),
}


def configure(**options: Any) -> None:
    """Override settings in this process (takes precedence over ``settings.FASTQ``).

    ``fastq.configure(EAGER=True)``; ``fastq.configure()`` with no arguments clears all
    overrides.
    """
    unknown = set(options) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown fastq setting(s): {', '.join(sorted(unknown))}")
    if options:
        _overrides.update(options)
    else:
        _overrides.clear()


def django_settings() -> dict[str, Any] | None:
    """``settings.FASTQ`` if Django is installed and configured, else None."""
    try:
        from django.conf import settings
    except ImportError:
        return None
    if not settings.configured:
        return None
    value = getattr(settings, "FASTQ", {})
    if not isinstance(value, dict):
        raise TypeError("settings.FASTQ must be a dict")
    return value


def get(name: str) -> Any:
    if name in _overrides:
        return _overrides[name]
    from_django = django_settings()
    if from_django is not None and name in from_django:
        return from_django[name]
    return DEFAULTS[name]

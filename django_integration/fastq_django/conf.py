"""Reading the broker's database settings for the C++ driver."""

from __future__ import annotations

from typing import Any

from django.db import connections

# libpq keywords the worker's connections take from ``OPTIONS``. The TCP ones matter when
# workers and the database are on different machines: without keepalives or a user
# timeout, a connection whose peer vanished behind a network partition waits for an answer
# for as long as the kernel retransmits (about 15 minutes), or for ever when nothing was
# in flight; ``connect_timeout`` bounds each reconnection attempt.
LIBPQ_OPTIONS = (
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "connect_timeout",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "options",
    "target_session_attrs",
    "passfile",
    "service",
)


def libpq_conninfo(settings_dict: dict[str, Any]) -> str:
    """A libpq connection string for a Django PostgreSQL ``DATABASES`` entry."""
    options = dict(settings_dict.get("OPTIONS") or {})
    parts: dict[str, Any] = {
        "host": settings_dict.get("HOST") or None,
        "port": settings_dict.get("PORT") or None,
        "dbname": settings_dict.get("NAME") or None,
        "user": settings_dict.get("USER") or None,
        "password": settings_dict.get("PASSWORD") or None,
        "application_name": "fastq_worker",
    }
    for key in LIBPQ_OPTIONS:
        if key in options:
            parts[key] = options[key]
    return " ".join(f"{k}={_quote(str(v))}" for k, v in parts.items() if v is not None)


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def broker_vendor(alias: str) -> str:
    vendor = connections[alias].vendor
    if vendor not in ("sqlite", "postgresql"):
        raise RuntimeError(
            f"fastq supports SQLite and PostgreSQL databases; alias {alias!r} is {vendor}"
        )
    return vendor

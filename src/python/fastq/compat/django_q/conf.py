"""``django_q.conf.Conf``: the ``Q_CLUSTER`` keys that have a meaning on fastq.

=================  ===================================================================
Q_CLUSTER key      fastq meaning
=================  ===================================================================
timeout            hard time limit of a task (``time_limit``: its process is killed)
retry              seconds before a failed task runs again (default 60)
max_attempts       attempts of a task (0, Django-Q2's "for ever": fastq's default 4)
ack_failures       True: a task that raises is not run again
workers            ``qcluster``: worker processes (``fastq_worker --processes``)
recycle            ``qcluster``: ``--max-tasks-per-child`` (default 500)
max_rss            ``qcluster``: ``--max-memory-per-child`` (KiB here, MB on fastq)
save_limit         successful Django-Q2 tasks kept (newest first); 0 all, -1 none
catch_up           schedules: True runs every missed slot, False only the latest
orm                the database alias; must be fastq's (``FASTQ["DATABASE"]``)
sync               run tasks inline at ``async_task`` (tests)
name, cluster_name queue of tasks (``cluster=`` of a task picks another)
time_zone          time zone of schedules (default ``settings.TIME_ZONE``)
label              admin label
=================  ===================================================================

Every other key (redis, sqs, mongo, poll, bulk, compress, cached, cpu_affinity,
guard_cycle, queue_limit, error_reporter, ...) means nothing on fastq: the database is the
broker and the result store. They are logged in one warning at start-up.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

log = logging.getLogger("fastq.compat.django_q")

MEANING = {
    "timeout",
    "retry",
    "max_attempts",
    "ack_failures",
    "workers",
    "recycle",
    "max_rss",
    "save_limit",
    "catch_up",
    "orm",
    "sync",
    "name",
    "cluster_name",
    "time_zone",
    "label",
}
NO_MEANING = {
    "redis": "there is no Redis: the database is the broker",
    "django_redis": "there is no Redis: the database is the broker",
    "iron_mq": "the database is the broker",
    "sqs": "the database is the broker",
    "mongo": "the database is the broker",
    "mongo_db": "the database is the broker",
    "broker_class": "the database is the broker",
    "poll": "workers wake on NOTIFY (PostgreSQL) or a local socket next to the database (SQLite)",
    "bulk": "workers claim as many jobs as they have room for in one statement",
    "compress": "arguments are JSON text",
    "cached": "results are stored in the job row",
    "cache": "results are stored in the job row",
    "cpu_affinity": "use the operating system's tools",
    "guard_cycle": "the supervisor checks its children every 50 ms",
    "daemonize_workers": "worker processes are forked by fastq_worker",
    "queue_limit": "use fastq_worker --prefetch",
    "error_reporter": "use a task_failed signal receiver or logging",
    "has_replica": "fastq reads and writes the broker database",
    "save_limit_per": "save_limit counts all successful tasks",
    "scheduler": "every fastq_worker runs the scheduler (fastq_worker --no-scheduler)",
    "log_level": "use qcluster --loglevel or settings.LOGGING",
    "testing": "not needed",
    "ALT_CLUSTERS": "one cluster: queues separate tasks",
    "prefix": "no keys to prefix",
}


def _q() -> dict[str, Any]:
    value = getattr(settings, "Q_CLUSTER", {}) or {}
    if not isinstance(value, dict):
        raise ImproperlyConfigured("settings.Q_CLUSTER must be a dict")
    return value


class _Conf(type):
    """Attributes read ``settings.Q_CLUSTER`` when asked (tests may override settings)."""

    def __getattr__(cls, name: str) -> Any:
        q = _q()
        getters = {
            "TIMEOUT": lambda: q.get("timeout"),
            "RETRY": lambda: q.get("retry", 60),
            "MAX_ATTEMPTS": lambda: q.get("max_attempts", 0),
            "ACK_FAILURES": lambda: q.get("ack_failures", False),
            "WORKERS": lambda: q.get("workers") or os.cpu_count() or 4,
            "RECYCLE": lambda: q.get("recycle", 500),
            "MAX_RSS": lambda: q.get("max_rss"),
            "SAVE_LIMIT": lambda: q.get("save_limit", 250),
            "CATCH_UP": lambda: q.get("catch_up", True),
            "ORM": lambda: q.get("orm"),
            "SYNC": lambda: q.get("sync", False),
            "PREFIX": lambda: q.get("name", "default"),
            "CLUSTER_NAME": lambda: q.get("cluster_name", q.get("name", "default")),
            "TIME_ZONE": lambda: (
                q.get("time_zone", settings.TIME_ZONE) if settings.USE_TZ else None
            ),
            "LABEL": lambda: q.get("label", "Django Q"),
            "CACHED": lambda: False,
            "SCHEDULER": lambda: True,
            "conf": lambda: dict(q),
        }
        if name in getters:
            return getters[name]()
        raise AttributeError(f"Conf.{name} has no meaning on fastq")


class Conf(metaclass=_Conf):
    """``Conf.TIMEOUT``, ``Conf.RETRY``, ``Conf.MAX_ATTEMPTS``... read from Q_CLUSTER."""


def attempts() -> int:
    """Attempts of a Django-Q2 task: Q_CLUSTER max_attempts, 0 (for ever) being fastq's 4."""
    n = int(Conf.MAX_ATTEMPTS or 0)
    return n if n > 0 else 4


def queue() -> str:
    """Queue of Django-Q2 tasks without ``cluster=``: the cluster's name, if it was given
    one; else fastq's ``default``."""
    q = _q()
    return str(q.get("cluster_name") or q.get("name") or "default")


def check_settings() -> None:
    """At start-up: an ``orm`` other than fastq's database is refused; keys that mean
    nothing here are named in one warning."""
    from fastq import conf as fastq_conf

    q = _q()
    orm = q.get("orm")
    if orm and orm != fastq_conf.get("DATABASE"):
        raise ImproperlyConfigured(
            f"Q_CLUSTER['orm'] is {orm!r} but fastq's broker database is "
            f"{fastq_conf.get('DATABASE')!r}: set FASTQ = {{'DATABASE': {orm!r}}}"
        )
    notes = []
    for key in sorted(q):
        if key in MEANING:
            continue
        reason = NO_MEANING.get(key, "not a key fastq knows")
        notes.append(f"{key} ({reason})")
    if notes:
        log.warning(
            "Q_CLUSTER keys with no meaning on fastq, ignored: %s "
            "(docs/migrating-from-django-q2.md)",
            "; ".join(notes),
        )

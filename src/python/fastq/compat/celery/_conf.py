"""Celery's settings (``app.conf`` and the ``CELERY_`` namespace of Django's settings),
what each one means on fastq, and the one warning for those that mean nothing here."""

from __future__ import annotations

import importlib
import logging
import types
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

from fastq.compat.celery.exceptions import ImproperlyConfigured

log = logging.getLogger("fastq.compat.celery")

# Settings with a meaning on fastq: name -> (Celery's default, what fastq does with it).
MEANING: dict[str, tuple[Any, str]] = {
    "beat_schedule": ({}, "fastq schedules, synced by every fastq_worker (no beat process)"),
    "timezone": (None, "time zone of crontab entries (default UTC, as Celery)"),
    "enable_utc": (True, "accepted; fastq stores UTC always"),
    "task_routes": (None, "queue of each task by name, glob or regex, or a router function"),
    "task_default_queue": ("celery", "queue of tasks without a queue or route"),
    "task_default_priority": (None, "priority of tasks without one (higher runs first)"),
    "task_time_limit": (None, "hard time_limit of tasks without one (the process is killed)"),
    "task_soft_time_limit": (None, "soft_time_limit of tasks without one"),
    "task_always_eager": (False, "apply_async()/delay() run the task inline (apply())"),
    "task_eager_propagates": (False, "eager runs re-raise the task's exception"),
    "task_ignore_result": (False, "default of the task option ignore_result"),
    "task_default_rate_limit": (None, "rate_limit of tasks without one (fleet-wide on fastq)"),
    "task_serializer": ("json", "json only; pickle is refused"),
    "result_serializer": ("json", "json only; pickle is refused"),
    "accept_content": (["json"], "json only; pickle is refused"),
    "result_accept_content": (None, "json only; pickle is refused"),
    "result_expires": (
        timedelta(days=1),
        "finished jobs older than this are deleted daily at 04:00 (celery.backend_cleanup)",
    ),
    "worker_prefetch_multiplier": (4, "--prefetch = multiplier x concurrency"),
    "worker_max_tasks_per_child": (None, "--max-tasks-per-child"),
    "worker_max_memory_per_child": (None, "--max-memory-per-child (KiB here, MB on fastq)"),
    "worker_concurrency": (None, "-c: worker processes (prefork) or threads"),
    "imports": ((), "modules imported to register tasks"),
    "include": ((), "modules imported to register tasks"),
    "task_acks_late": (False, "accepted: fastq acknowledges after the run, always (leases)"),
    "task_track_started": (False, "accepted: fastq always records STARTED"),
    "task_reject_on_worker_lost": (None, "accepted: a lost worker costs one attempt"),
    "task_create_missing_queues": (True, "accepted: queues are just names on fastq"),
}

# Settings that mean nothing on fastq: the database is the broker and the result store.
NO_MEANING = {
    "broker_url": "the database in DATABASES is the broker",
    "broker_read_url": "the database in DATABASES is the broker",
    "broker_write_url": "the database in DATABASES is the broker",
    "broker_transport": "the database in DATABASES is the broker",
    "broker_transport_options": "the database is the broker; leases replace visibility timeouts",
    "broker_connection_retry": "workers reconnect to the database by themselves",
    "broker_connection_retry_on_startup": "workers reconnect to the database by themselves",
    "broker_connection_max_retries": "workers reconnect to the database by themselves",
    "broker_connection_timeout": "set connect_timeout in the database OPTIONS",
    "broker_heartbeat": "leases are renewed every lease/3",
    "broker_pool_limit": "enqueueing uses Django's connection",
    "broker_use_ssl": "set sslmode in the database OPTIONS",
    "result_backend": "results are stored in the job row",
    "result_backend_transport_options": "results are stored in the job row",
    "result_extended": "job rows always carry name, args, kwargs, worker and times",
    "result_persistent": "results are stored in the job row",
    "result_compression": "results are JSON text in the job row",
    "task_compression": "arguments are JSON text in the job row",
    "cache_backend": "results are stored in the job row",
    "redis_backend_use_ssl": "there is no Redis",
    "redis_max_connections": "there is no Redis",
    "redis_socket_timeout": "there is no Redis",
    "redis_socket_connect_timeout": "there is no Redis",
    "redis_retry_on_timeout": "there is no Redis",
    "beat_scheduler": "every fastq_worker runs the scheduler; one leader fires",
    "beat_max_loop_interval": "every fastq_worker runs the scheduler; one leader fires",
    "beat_schedule_filename": "schedules live in the fastq_schedule table",
    "beat_sync_every": "schedules live in the fastq_schedule table",
    "worker_send_task_events": "job states are in the database; the admin shows them",
    "task_send_sent_event": "job states are in the database; the admin shows them",
    "worker_hijack_root_logger": "fastq_worker keeps settings.LOGGING when it routes fastq",
    "worker_redirect_stdouts": "output goes where the process's goes",
    "worker_redirect_stdouts_level": "output goes where the process's goes",
    "worker_log_format": "use settings.LOGGING",
    "worker_task_log_format": "use settings.LOGGING",
    "worker_pool": "fastq_worker forks processes and runs threads in each",
    "worker_cancel_long_running_tasks_on_connection_loss": "leases decide; see docs",
    "task_queue_max_priority": "priority is an int column, higher runs first",
    "task_default_exchange": "there are no exchanges; queues are names",
    "task_default_exchange_type": "there are no exchanges; queues are names",
    "task_default_routing_key": "there are no exchanges; queues are names",
    "task_queues": "queues are names; a worker consumes what -Q/--queues says",
    "task_publish_retry": "enqueueing is an INSERT in your transaction",
    "task_publish_retry_policy": "enqueueing is an INSERT in your transaction",
    "task_annotations": "set the options on the task declarations",
    "worker_direct": "there are no per-worker queues",
    "worker_disable_rate_limits": "rate limits are fleet-wide on fastq",
    "worker_enable_remote_control": "control reads the job table",
    "control_queue_ttl": "control reads the job table",
    "security_key": "no message signing: only registered task names run",
    "security_certificate": "no message signing: only registered task names run",
    "security_cert_store": "no message signing: only registered task names run",
}

_PICKLE_REASON = (
    "pickle is refused: a pickled message runs code chosen by whoever can write to the "
    "broker; fastq carries JSON only, and the worker runs only task names it registered"
)


def _has_pickle(value: Any) -> bool:
    if isinstance(value, str):
        return "pickle" in value.lower()
    if isinstance(value, list | tuple | set | frozenset):
        return any(_has_pickle(v) for v in value)
    return False


def refuse_pickle(name: str, value: Any) -> None:
    if _has_pickle(value):
        raise ImproperlyConfigured(f"{name}={value!r}: {_PICKLE_REASON}")


def _serializer_problem(name: str, value: Any) -> str | None:
    """Why a serializer setting means nothing here (not json), or None."""
    values = [value] if isinstance(value, str) else list(value or [])
    other = [
        v for v in values if isinstance(v, str) and v.lower() not in ("json", "application/json")
    ]
    return f"{', '.join(map(str, other))}: fastq carries JSON only" if other else None


class Settings(dict):  # type: ignore[type-arg]
    """``app.conf``: Celery's new-style (lower case) setting names, read as attributes or
    keys, with Celery's defaults."""

    def __init__(self, app: Any) -> None:
        super().__init__()
        object.__setattr__(self, "_app", app)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.get(name)

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __setitem__(self, name: str, value: Any) -> None:
        if "serial" in name or "content" in name:
            refuse_pickle(name, value)
        super().__setitem__(name, value)
        self._app._changed()

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        self._app._load()
        if dict.__contains__(self, name):
            return dict.__getitem__(self, name)
        if name in MEANING and default is None:
            return MEANING[name][0]
        return default

    def __getitem__(self, name: str) -> Any:
        self._app._load()
        if dict.__contains__(self, name):
            return dict.__getitem__(self, name)
        if name in MEANING:
            return MEANING[name][0]
        raise KeyError(name)

    def update(self, other: Any = (), **kwargs: Any) -> None:  # type: ignore[override]
        for k, v in dict(other, **kwargs).items():
            self[k] = v

    def setdefault(self, name: str, value: Any = None) -> Any:  # type: ignore[override]
        if not dict.__contains__(self, name):
            self[name] = value
        return dict.__getitem__(self, name)

    def items_set(self) -> Iterator[tuple[str, Any]]:
        """The settings given explicitly (not Celery's defaults)."""
        yield from dict.items(self)


def read_object(obj: Any, namespace: str | None) -> dict[str, Any]:
    """The settings of ``obj`` (a module, an object, a mapping, or a "module:attr" /
    dotted string) under ``namespace`` (e.g. ``CELERY`` reads ``CELERY_TASK_ROUTES`` as
    ``task_routes``), as Celery's lower-case names."""
    if isinstance(obj, str):
        module_name, _, attr = obj.partition(":")
        module = importlib.import_module(module_name)
        obj = getattr(module, attr) if attr else module
    prefix = f"{namespace}_" if namespace else ""
    if isinstance(obj, Mapping):
        items = list(obj.items())
    else:
        # Only the names in the namespace are read (reading others can warn).
        names = [k for k in dir(obj) if not k.startswith("_") and k.startswith(prefix)]
        items = [(k, getattr(obj, k)) for k in names]
    out: dict[str, Any] = {}
    for key, value in items:
        if not isinstance(key, str):
            continue
        if prefix:
            # Django settings: CELERY_TASK_ROUTES -> task_routes.
            if key.startswith(prefix) and key.isupper():
                out[key[len(prefix) :].lower()] = value
        elif isinstance(obj, Mapping) or (
            key.islower() and not callable(value) and not isinstance(value, types.ModuleType)
        ):
            # A celeryconfig module or mapping: Celery's lower-case names as they are.
            out[key] = value
    return out


def check(settings: Mapping[str, Any], source: str) -> None:
    """Refuse pickle (raises), then log one warning naming every setting that means
    nothing on fastq, with the reason for each."""
    for name in ("task_serializer", "result_serializer", "accept_content", "result_accept_content"):
        if name in settings:
            refuse_pickle(f"{source}{name}", settings[name])
    notes = []
    for name, value in settings.items():
        if name in NO_MEANING:
            notes.append(f"{name} ({NO_MEANING[name]})")
        elif name in ("task_serializer", "result_serializer", "accept_content") and (
            problem := _serializer_problem(name, value)
        ):
            notes.append(f"{name} ({problem})")
        elif name not in MEANING and name not in NO_MEANING and name.islower():
            notes.append(f"{name} (not a setting fastq knows)")
    if notes:
        log.warning(
            "Celery settings with no meaning on fastq, ignored: %s (docs/migrating-from-celery.md)",
            "; ".join(sorted(notes)),
        )

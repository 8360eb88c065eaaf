"""Celery's import paths over fastq: replace ``celery`` by ``fastq.compat.celery`` in your
imports and keep your code.

    from fastq.compat.celery import Celery, shared_task
    from fastq.compat.celery.schedules import crontab
    from fastq.compat.celery.result import AsyncResult
    from fastq.compat.celery.exceptions import SoftTimeLimitExceeded
    from fastq.compat.celery.utils.log import get_task_logger

Run the worker with ``python -m fastq.compat.celery -A proj worker -l info`` (or
``python manage.py fastq_worker``). Every setting, option, command and state with its
fastq meaning: docs/migrating-from-celery.md.

``group``, ``chain``, ``chord``, ``signature`` (and ``chunks``) are fastq's workflows
(``fastq.group``...), looked up when first used.
"""

from __future__ import annotations

from typing import Any

from fastq.compat.celery import states
from fastq.compat.celery._app import Celery, current_app, current_task, shared_task
from fastq.compat.celery._task import Request, Task
from fastq.compat.celery.result import AsyncResult

_WORKFLOWS = {"group", "chain", "chord", "signature", "chunks", "xmap", "xstarmap"}


def __getattr__(name: str) -> Any:
    if name in _WORKFLOWS or name == "subtask":
        import fastq

        target = "signature" if name == "subtask" else name
        try:
            return getattr(fastq, target)
        except AttributeError:
            raise ImportError(
                f"celery.{name} maps onto fastq.{target} (fastq's workflows), which this "
                "fastq does not have"
            ) from None
    raise AttributeError(f"module 'fastq.compat.celery' has no attribute {name!r}")


__all__ = [
    "AsyncResult",
    "Celery",
    "Request",
    "Task",
    "current_app",
    "current_task",
    "shared_task",
    "states",
]

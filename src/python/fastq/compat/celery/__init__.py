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

``group``, ``chain``, ``chord``, ``signature`` are fastq's workflows (``fastq.group``...),
looked up when first used; ``chunks``, ``xmap`` and ``xstarmap`` (``task.chunks``,
``task.map``, ``task.starmap``) are built on them in :mod:`fastq.compat.celery.canvas`.
"""

from __future__ import annotations

from fastq.compat.celery import states
from fastq.compat.celery._app import Celery, current_app, current_task, shared_task
from fastq.compat.celery._lazy import LazyWorkflow
from fastq.compat.celery._task import Request, Task
from fastq.compat.celery.canvas import chunks, xmap, xstarmap
from fastq.compat.celery.result import AsyncResult

# Celery's canvas is fastq's workflows, looked up on fastq when used.
group = LazyWorkflow("group", "group")
chain = LazyWorkflow("chain", "chain")
chord = LazyWorkflow("chord", "chord")
signature = LazyWorkflow("signature", "signature")
subtask = LazyWorkflow("subtask", "signature")

__all__ = [
    "AsyncResult",
    "Celery",
    "Request",
    "Task",
    "chain",
    "chord",
    "chunks",
    "current_app",
    "current_task",
    "group",
    "shared_task",
    "signature",
    "states",
    "subtask",
    "xmap",
    "xstarmap",
]

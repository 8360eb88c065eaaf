"""Finding tasks: the ``tasks`` module of every installed app, as Celery users expect,
plus ``FASTQ["IMPORTS"]``. Only these imports ever happen; a message never names a module
to import."""

from __future__ import annotations

import importlib

from django.utils.module_loading import autodiscover_modules
from fastq import conf


def import_task_modules() -> None:
    autodiscover_modules("tasks")
    for module in conf.get("IMPORTS") or []:
        importlib.import_module(module)
    _register_django_tasks()


def _register_django_tasks() -> None:
    """Django Tasks API tasks found in the imported modules become fastq tasks when
    settings.TASKS names fastq's backend (fastq_django.backends)."""
    from django.conf import settings

    backends = [
        str(p.get("BACKEND", "")) for p in (getattr(settings, "TASKS", None) or {}).values()
    ]
    if not any(b.startswith("fastq_django.") for b in backends):
        return
    from fastq_django.backends import register_django_tasks

    register_django_tasks()

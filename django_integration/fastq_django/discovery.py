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

"""``celery.utils.log``: loggers for task modules."""

from __future__ import annotations

import logging


def get_task_logger(name: str) -> logging.Logger:
    """A logger for a task module (``get_task_logger(__name__)``). Its records go to the
    ``fastq.tasks`` logger, which ``fastq_worker --loglevel`` and settings.LOGGING
    configure like every fastq logger."""
    return logging.getLogger(f"fastq.tasks.{name}")


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)


__all__ = ["get_logger", "get_task_logger"]

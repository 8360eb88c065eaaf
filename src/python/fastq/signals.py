"""Signals sent around a job's life. They are Django signals when Django is installed
(``receiver`` works as usual), otherwise minimal stand-ins with the same
``connect``/``disconnect``/``send`` surface.

- ``task_enqueued(sender=task, job_ids=[...])``: after ``.delay()``/``.apply_async()``/
  ``.map()`` inserted jobs (inside the caller's transaction, which may still roll back).
- ``task_started(sender=task, job=JobContext)``: in the worker, before the task runs.
- ``task_succeeded(sender=task, job=JobContext, result=value)``
- ``task_failed(sender=task, job=JobContext, exception=exc)``: it raised and will not
  be retried.
- ``task_retried(sender=task, job=JobContext, exception=exc, countdown=seconds)``

Receivers run on the executor thread, inside the job: keep them short. An exception in
a receiver fails the job like an exception in the task would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

try:
    from django.dispatch import Signal
except ImportError:  # pragma: no cover - fastq without Django

    class Signal:  # type: ignore[no-redef]
        def __init__(self) -> None:
            self.receivers: list[Callable[..., Any]] = []

        def connect(self, receiver: Callable[..., Any], **_: Any) -> None:
            if receiver not in self.receivers:
                self.receivers.append(receiver)

        def disconnect(self, receiver: Callable[..., Any], **_: Any) -> bool:
            if receiver in self.receivers:
                self.receivers.remove(receiver)
                return True
            return False

        def has_listeners(self, sender: object = None) -> bool:
            return bool(self.receivers)

        def send(self, sender: object, **named: Any) -> list[tuple[Any, Any]]:
            return [(r, r(signal=self, sender=sender, **named)) for r in list(self.receivers)]


task_enqueued = Signal()
task_started = Signal()
task_succeeded = Signal()
task_failed = Signal()
task_retried = Signal()

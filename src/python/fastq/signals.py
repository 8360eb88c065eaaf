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
a receiver is logged with its traceback (logger ``fastq.signals``, level ERROR, naming
the signal, the receiver and the job) and does not change the job's outcome; the other
receivers still run. Sending is robust in that way whichever of fastq's signals it is,
like Django's ``send_robust``. A ``SoftTimeLimitExceeded`` that arrives while a receiver
runs is the job's, not the receiver's: it is raised once the receivers have run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastq.timelimits import SoftTimeLimitExceeded

log = logging.getLogger("fastq.signals")


def _report(
    signal: Any, sender: object, named: dict[str, Any], receiver: Any, err: Exception
) -> None:
    job = named.get("job")
    if job is not None:
        about = f"job {job.id} ({job.task})"
    elif "job_ids" in named:
        about = f"{len(named['job_ids'])} job(s) of {getattr(sender, 'name', sender)}"
    else:
        about = str(getattr(sender, "name", sender))
    name = getattr(receiver, "__qualname__", None) or repr(receiver)
    log.error(
        "receiver %s of fastq signal %s raised %s: %s; ignored, %s goes on",
        f"{getattr(receiver, '__module__', '?')}.{name}",
        getattr(signal, "name", "?"),
        type(err).__name__,
        err,
        about,
        exc_info=(type(err), err, err.__traceback__),
    )


def _log_failures(signal: Any, sender: object, named: dict[str, Any], responses: list[Any]) -> None:
    for receiver, response in responses:
        if isinstance(response, Exception) and not isinstance(response, SoftTimeLimitExceeded):
            _report(signal, sender, named, receiver, response)


def _raise_late_limit(responses: list[Any]) -> None:
    """A soft time limit delivered while a receiver ran belongs to the job."""
    for _, response in responses:
        if isinstance(response, SoftTimeLimitExceeded):
            raise response


def _signal_class() -> type:
    """Django's Signal when Django is installed, else the stand-in. Imported on first use
    of a signal, so that ``import fastq`` does not import Django."""
    try:
        from django.dispatch import Signal as _DjangoSignal
    except ImportError:  # pragma: no cover - fastq without Django

        class Signal:
            def __init__(self, name: str = "") -> None:
                self.name = name
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

            def send_robust(self, sender: object, **named: Any) -> list[tuple[Any, Any]]:
                responses: list[tuple[Any, Any]] = []
                for receiver in list(self.receivers):
                    try:
                        responses.append((receiver, receiver(signal=self, sender=sender, **named)))
                    except Exception as err:
                        responses.append((receiver, err))
                _log_failures(self, sender, named, responses)
                return responses

            def send(self, sender: object, **named: Any) -> list[tuple[Any, Any]]:
                responses = self.send_robust(sender, **named)
                _raise_late_limit(responses)
                return responses

    else:

        class Signal(_DjangoSignal):  # type: ignore[no-redef]
            """A Django signal whose ``send`` is ``send_robust`` plus fastq's logging."""

            def __init__(self, name: str = "") -> None:
                super().__init__()
                self.name = name

            def send_robust(self, sender: object, **named: Any) -> list[tuple[Any, Any]]:
                responses = super().send_robust(sender, **named)
                _log_failures(self, sender, named, responses)
                return responses

            def send(self, sender: object, **named: Any) -> list[tuple[Any, Any]]:
                responses = self.send_robust(sender, **named)
                _raise_late_limit(responses)
                return responses

            def _log_robust_failure(self, receiver: Any, err: Exception) -> None:
                # send_robust() logs it on fastq.signals, naming the job; once is enough.
                pass

    Signal.__qualname__ = "Signal"
    return Signal


_NAMES = ("task_enqueued", "task_started", "task_succeeded", "task_failed", "task_retried")
_lock = threading.Lock()

if TYPE_CHECKING:
    Signal: type
    task_enqueued: Any
    task_started: Any
    task_succeeded: Any
    task_failed: Any
    task_retried: Any


def __getattr__(name: str) -> Any:
    """The signals (and ``Signal``), made on first access: one object each per process."""
    if name not in _NAMES and name != "Signal":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with _lock:
        if name not in globals():
            cls = globals().get("Signal") or _signal_class()
            globals()["Signal"] = cls
            for n in _NAMES:
                globals()[n] = cls(n)
    return globals()[name]

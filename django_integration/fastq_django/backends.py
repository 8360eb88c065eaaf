"""A backend for Django's Tasks API: ``django.tasks`` (Django 6) and, on Django 5.2, the
``django_tasks`` backport. Tasks declared with ``@task`` run on ``fastq_worker``, side by
side with ``@fastq.task`` tasks, from the same job table.

    TASKS = {
        "default": {
            "BACKEND": "fastq_django.backends.FastqTaskBackend",
            "QUEUES": ["default", "emails"],
            "OPTIONS": {"max_retries": 3, "time_limit": 300},
        }
    }

How it maps (docs/django-tasks.md has the whole table):

- A Django task becomes a fastq task whose name is the task's ``module_path`` (with
  ``@alias`` appended for a backend alias other than ``"default"``). The worker finds
  Django tasks the way it finds fastq's: in the ``tasks`` module of every installed app
  and in ``FASTQ["IMPORTS"]`` (:func:`register_django_tasks`); a message never makes it
  import anything.
- ``enqueue()`` writes one job row in the caller's transaction (a task enqueued inside a
  transaction that rolls back never runs); the ``TaskResult.id`` is the job's id.
- Django's priority (-100..100, higher first) is fastq's priority unchanged: fastq runs
  higher priorities first too (the claim orders by ``priority DESC``), and native tasks'
  default of 0 is Django's default, so both kinds interleave as their numbers say.
- ``run_after`` is the job's ``run_at``; ``queue_name`` its queue.
- Retries, time limits, expiry, unique jobs and rate limits come from ``OPTIONS``, from
  :func:`task_options` on the function, and from ``OPTIONS["tasks"][module_path]``, in
  that order of precedence (the later wins).
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import logging
import os
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import fastq
from asgiref.sync import sync_to_async
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django.utils.module_loading import import_string
from fastq import _core
from fastq.task import current_job

try:  # Django 6: the Tasks API is part of Django.
    from django.tasks import (
        DEFAULT_TASK_BACKEND_ALIAS,
        Task,
        TaskContext,
        TaskResult,
        TaskResultStatus,
        task_backends,
    )
    from django.tasks import signals as _signals
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.base import TaskError
    from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
    from django.utils.json import normalize_json

    TASKS_API = "django.tasks"
except ImportError:  # Django 5.2: the backport (pip install django-tasks).
    from django_tasks import (  # type: ignore[no-redef]
        DEFAULT_TASK_BACKEND_ALIAS,
        TaskContext,
        TaskResult,
        TaskResultStatus,
        task_backends,
    )
    from django_tasks import signals as _signals  # type: ignore[no-redef]
    from django_tasks.backends.base import BaseTaskBackend  # type: ignore[no-redef]
    from django_tasks.base import Task, TaskError  # type: ignore[no-redef]
    from django_tasks.exceptions import (  # type: ignore[no-redef]
        InvalidTaskError as InvalidTask,
    )
    from django_tasks.exceptions import TaskResultDoesNotExist  # type: ignore[no-redef]
    from django_tasks.utils import normalize_json  # type: ignore[no-redef]

    TASKS_API = "django_tasks"

task_enqueued = _signals.task_enqueued
task_started = _signals.task_started
task_finished = _signals.task_finished

# What fastq adds to a Django task, by the names @fastq.task uses for them.
OPTION_NAMES = (
    "max_retries",
    "autoretry_for",
    "retry_backoff",
    "retry_backoff_max",
    "retry_jitter",
    "default_retry_delay",
    "expires",
    "unique",
    "unique_key",
    "time_limit",
    "soft_time_limit",
    "rate_limit",
    "rate_limit_key",
    "rate_limit_burst",
)
# OPTIONS["tasks"]: per task (module path) settings.
PER_TASK_KEY = "tasks"
_FUNC_ATTR = "__fastq_task_options__"
# fastq_job.task and fastq_job.queue (models.Job).
MAX_NAME = 255
MAX_QUEUE = 100

# Django's own receivers of its task signals only log (django.tasks.signals): a worker
# whose signals have no other receiver builds a light TaskResult for them.
_LOG_RECEIVERS = {
    getattr(_signals, name)
    for name in ("log_task_enqueued", "log_task_started", "log_task_finished")
    if hasattr(_signals, name)
}


def task_options(**options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """fastq's options for one Django task, placed under ``@task``::

        @task(priority=10)
        @task_options(max_retries=5, autoretry_for=(ConnectionError,), retry_backoff=True,
                      rate_limit="10/s", time_limit=30, unique=True)
        def send_sms(phone: str, text: str) -> None: ...

    The function itself is returned (Django requires a module-level function); the
    options ride on it as an attribute. ``OPTIONS["tasks"]["<module path>"]`` in the
    settings overrides them.
    """
    _check_names(options, "task_options()")

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        setattr(fn, _FUNC_ATTR, dict(options))
        return fn

    return mark


def _check_names(options: Mapping[str, Any], where: str, extra: tuple[str, ...] = ()) -> None:
    known = (*OPTION_NAMES, *extra)
    for name in options:
        if name not in known:
            guess = difflib.get_close_matches(str(name), known, n=1)
            hint = f" (did you mean {guess[0]!r}?)" if guess else ""
            raise ImproperlyConfigured(
                f"{where}: unknown option {name!r}{hint}; known: {', '.join(known)}"
            )


def _resolve(name: str, value: Any, where: str) -> Any:
    """Dotted paths in settings become the objects they name (exception classes for
    ``autoretry_for``, callables for the key options)."""
    if name == "autoretry_for":
        classes = []
        for item in value if isinstance(value, list | tuple) else [value]:
            cls = import_string(item) if isinstance(item, str) else item
            if not (inspect.isclass(cls) and issubclass(cls, BaseException)):
                raise ImproperlyConfigured(f"{where}: autoretry_for: {item!r} is not an exception")
            classes.append(cls)
        return tuple(classes)
    if name in ("unique_key", "rate_limit_key") and isinstance(value, str):
        value = import_string(value)
        if not callable(value):
            raise ImproperlyConfigured(f"{where}: {name} must name a callable")
    return value


def job_name(module_path: str, alias: str) -> str:
    """The fastq task name of a Django task on the backend ``alias``."""
    return module_path if alias == DEFAULT_TASK_BACKEND_ALIAS else f"{module_path}@{alias}"


class DeclaredTasks:
    """The Django tasks this process has seen (enqueued, or found in imported modules), by
    module path: get_result() turns a job row back into its Task from here, never by
    importing the name a row holds. A process-wide cache, owned by this module."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tasks: dict[str, Task] = {}
        self._scanned_modules = 0  # len(sys.modules) at the last scan

    def remember(self, task: Task) -> None:
        with self._lock:
            self._tasks.setdefault(task.module_path, task)

    def get(self, path: str) -> Task | None:
        with self._lock:
            return self._tasks.get(path)

    def all(self) -> list[Task]:
        with self._lock:
            return list(self._tasks.values())

    def scan(self) -> None:
        """Every Django Task object held by an imported module, by module path (skipped
        while no module was imported since the last scan)."""
        modules = list(sys.modules.values())
        if len(modules) == self._scanned_modules:
            return
        found: dict[str, Task] = {}
        for module in modules:
            namespace = getattr(module, "__dict__", None)
            if not isinstance(namespace, dict):
                continue
            for key, value in list(namespace.items()):
                # type(), not isinstance(): isinstance asks a lazy object (Django's
                # LazyObject proxies) for its __class__ and so evaluates it.
                if issubclass(type(value), Task):
                    func = value.func
                    if key == func.__qualname__ and namespace.get("__name__") == func.__module__:
                        found[value.module_path] = value  # the declaration itself
                    else:
                        found.setdefault(value.module_path, value)  # an import or a .using()
        with self._lock:
            for path, task in found.items():
                self._tasks.setdefault(path, task)
            self._scanned_modules = len(modules)


declared_tasks = DeclaredTasks()


def fastq_backends() -> list[FastqTaskBackend]:
    """The backends of ``settings.TASKS`` that are fastq's."""
    from django.conf import settings

    found = []
    for alias in getattr(settings, "TASKS", None) or {}:
        backend = task_backends[alias]
        if isinstance(backend, FastqTaskBackend):
            found.append(backend)
    return found


def register_django_tasks() -> list[str]:
    """Registers every Django task in the imported modules as a fastq task, once per
    fastq backend of ``settings.TASKS``, so that ``fastq_worker`` runs them. Called by
    the worker after it imported the task modules (fastq_django.discovery). Returns the
    fastq names registered."""
    backends = fastq_backends()
    if not backends:
        return []
    # Every Django Task bound to a fastq backend passed through validate_task() when it
    # was declared (Task.__post_init__), which remembered it: no scan of sys.modules.
    tasks = declared_tasks.all()
    names = []
    for backend in backends:
        from fastq import worker

        worker.extra_queues.update(backend.queues)
        for task in tasks:
            names.append(backend.fastq_task(task).name)
    return names


_host = socket.gethostname()


def _worker_id() -> str:
    """This process's worker name, as fastq_worker stamps it in claimed rows."""
    return f"{_host}:{os.getpid()}"


# The logger of Django's receivers: "django.tasks", or "django_tasks" for the backport.
_task_log: logging.Logger = getattr(_signals, "logger", None) or logging.getLogger(TASKS_API)
logger = logging.getLogger("fastq.django_tasks")


@dataclasses.dataclass(frozen=True, slots=True)
class _SignalPlan:
    """What sending task_started / task_finished would do in this process."""

    others: bool  # the project connected receivers of its own
    started: bool  # worth sending task_started
    finished: bool  # worth sending task_finished for a success
    failed: bool  # worth sending task_finished for a failure


_plan_cache: list[Any] = [None, None, None, None]  # started, finished receivers, log key, plan


def _signal_plan() -> _SignalPlan:
    """Whether sending Django's task signals would do anything: a receiver of the
    project's, or Django's logging receiver with a handler that emits its record. A
    worker running tens of thousands of jobs a second does not build records nobody
    emits. Kept until the receivers or the logging configuration change."""
    cache = _plan_cache
    log_key = (
        logging.root.manager.disable,
        len(logging._handlerList),  # type: ignore[attr-defined]
        _task_log.getEffectiveLevel(),
    )
    if (
        cache[3] is not None
        and cache[2] == log_key
        and cache[0] == task_started.receivers
        and cache[1] == task_finished.receivers
    ):
        return cache[3]  # type: ignore[no-any-return]
    started_others, started_logs = _receivers(task_started)
    finished_others, finished_logs = _receivers(task_finished)
    plan = _SignalPlan(
        others=started_others or finished_others,
        started=started_others or (started_logs and _log_emits(logging.INFO)),
        finished=finished_others or (finished_logs and _log_emits(logging.INFO)),
        failed=finished_others or (finished_logs and _log_emits(logging.ERROR)),
    )
    cache[:] = [list(task_started.receivers), list(task_finished.receivers), log_key, plan]
    return plan


def _receivers(signal: Any) -> tuple[bool, bool]:
    """(has receivers besides Django's logging ones, has Django's logging ones)."""
    try:
        sync, asynchronous = signal._live_receivers(FastqTaskBackend)
    except (AttributeError, TypeError, ValueError):
        return True, True
    live = (*sync, *asynchronous)
    return any(r not in _LOG_RECEIVERS for r in live), any(r in _LOG_RECEIVERS for r in live)


def _log_emits(level: int) -> bool:
    """Whether a record of ``level`` on Django's task logger would be emitted by
    some handler (handlers' filters are asked once, with a probe record)."""
    if not _task_log.isEnabledFor(level):
        return False
    record = _task_log.makeRecord(_task_log.name, level, __file__, 0, "probe", (), None)
    if not _task_log.filter(record):
        return False
    found = False
    logger: logging.Logger | None = _task_log
    while logger is not None:
        for handler in logger.handlers:
            found = True
            if level >= handler.level and handler.filter(record):
                return True
        if not logger.propagate:
            break
        logger = logger.parent
    return not found and logging.lastResort is not None and level >= logging.lastResort.level


def _error(exc: BaseException) -> TaskError:
    t = type(exc)
    return TaskError(
        exception_class_path=f"{t.__module__}.{t.__qualname__}",
        traceback="".join(traceback.format_exception(exc)),
    )


def _json_result(value: Any) -> Any:
    """The return value as Django's backends store it (``normalize_json``), refused here
    if fastq's encoder would refuse it (integers past 64 bits, NaN, lone surrogates), so
    the failure is the task's, with its traceback, and task_finished says FAILED."""
    if value is None:
        return None
    value = normalize_json(value)
    if value is not None:
        _core.encode_json(value, "result")
    return value


class FastqTaskBackend(BaseTaskBackend):
    """Runs Django Tasks API tasks on fastq (module docstring; docs/django-tasks.md)."""

    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        where = f"TASKS[{alias!r}]['OPTIONS']"
        if not isinstance(self.options, Mapping):
            raise ImproperlyConfigured(f"{where} must be a dict")
        _check_names(self.options, where, (PER_TASK_KEY,))
        self.defaults = {
            k: _resolve(k, v, where) for k, v in self.options.items() if k != PER_TASK_KEY
        }
        per_task = self.options.get(PER_TASK_KEY) or {}
        if not isinstance(per_task, Mapping):
            raise ImproperlyConfigured(f"{where}[{PER_TASK_KEY!r}] must be a dict")
        self.per_task: dict[str, dict[str, Any]] = {}
        for path, opts in per_task.items():
            w = f"{where}[{PER_TASK_KEY!r}][{path!r}]"
            if not isinstance(opts, Mapping):
                raise ImproperlyConfigured(f"{w} must be a dict")
            _check_names(opts, w)
            self.per_task[path] = {k: _resolve(k, v, w) for k, v in opts.items()}
        for q in self.queues:
            if not isinstance(q, str) or not q or len(q) > MAX_QUEUE:
                raise ImproperlyConfigured(
                    f"TASKS[{alias!r}]['QUEUES']: {q!r} is not a queue name (1 to "
                    f"{MAX_QUEUE} characters)"
                )
        self._fastq_tasks: dict[str, tuple[Task, fastq.Task[Any, Any]]] = {}
        # A bad value fails at start-up, naming the setting, not at the first enqueue.
        self._check_values(where)

    def _check_values(self, where: str) -> None:
        """Builds a throwaway fastq task from the backend's options and removes it from
        the registry again (fastq.Task registers itself)."""
        name = f"fastq_django.backends:check:{id(self)}"
        try:
            fastq.Task(_probe, name=name, **self._merge({}))
        except (TypeError, ValueError) as exc:
            raise ImproperlyConfigured(f"{where}: {exc}") from exc
        finally:
            fastq.registry.pop(name, None)

    def _merge(self, declared: Mapping[str, Any], path: str = "") -> dict[str, Any]:
        merged = dict(self.defaults)
        merged.update(declared)
        merged.update(self.per_task.get(path, {}))
        return merged

    # -- the fastq side ---------------------------------------------------------------

    def fastq_task(self, task: Task) -> fastq.Task[Any, Any]:
        """The fastq task that runs ``task`` for this backend (made and registered on
        first use): its name, queue and priority, and fastq's options for it."""
        name = job_name(task.module_path, self.alias)
        cached = self._fastq_tasks.get(name)
        if cached is not None and cached[0].func is task.func:
            return cached[1]
        declared = getattr(task.func, _FUNC_ATTR, {})
        where = f"Django task {task.module_path}"
        try:
            options = self._merge(declared, task.module_path)
            ft = fastq.Task(
                _runner(self.alias, task, name),
                name=name,
                queue=task.queue_name,
                priority=task.priority,
                **options,
            )
        except (TypeError, ValueError) as exc:
            raise InvalidTask(f"{where}: {exc}") from exc
        declared_tasks.remember(task)
        self._fastq_tasks[name] = (task, ft)
        return ft

    def validate_task(self, task: Task) -> None:
        super().validate_task(task)
        # Task.__post_init__ calls this: the declaration is known at once.
        declared_tasks.remember(task)
        name = job_name(task.module_path, self.alias)
        if len(name) > MAX_NAME:
            raise InvalidTask(f"Task name {name!r} is longer than {MAX_NAME} characters.")
        if not task.queue_name or len(task.queue_name) > MAX_QUEUE:
            raise InvalidTask(f"Queue name must be 1 to {MAX_QUEUE} characters.")
        declared = getattr(task.func, _FUNC_ATTR, None)
        if declared is not None:
            _check_names(declared, f"task_options() of {task.module_path}")

    # -- enqueue ----------------------------------------------------------------------

    def enqueue(self, task: Task, args: Any, kwargs: Any) -> TaskResult:
        self.validate_task(task)
        ft = self.fastq_task(task)
        args = list(args)
        kwargs = dict(kwargs)
        # Django's check first (its TypeError for a datetime or a model instance), then
        # fastq's encoder in _new_job (integers past 64 bits, NaN, lone surrogates).
        normalize_json(args)
        normalize_json(kwargs)
        where = f"{task.module_path}: "
        try:
            job = ft._new_job(
                tuple(args),
                kwargs,
                None,
                task.run_after,
                task.queue_name,
                task.priority,
                None,
                None,
                None,
                None,
            )
        except ValueError as exc:
            raise ValueError(f"{where}{exc}") from exc
        enqueued_at = timezone.now()
        broker = fastq.get_broker()
        (job_id,) = broker.enqueue([job])
        if job_id != job.id:
            # A unique task whose key a queued or running job holds: that job stands for
            # this call, as with @fastq.task(unique=True).
            return self.get_result(job_id)
        result = TaskResult(
            task=task,
            id=job.id,
            status=TaskResultStatus.READY,
            enqueued_at=enqueued_at,
            started_at=None,
            last_attempted_at=None,
            finished_at=None,
            args=args,
            kwargs=kwargs,
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        task_enqueued.send(type(self), task_result=result)
        return result

    # -- results ----------------------------------------------------------------------

    def get_result(self, result_id: Any) -> TaskResult:
        from fastq_django.models import Job

        try:
            pk = uuid.UUID(str(result_id))
        except (ValueError, TypeError, AttributeError):
            raise TaskResultDoesNotExist(result_id) from None
        broker = fastq.get_broker()
        alias = getattr(broker, "alias", "default")
        row = Job.objects.using(alias).filter(pk=pk).values(*_RESULT_FIELDS).first()
        if row is None:
            raise TaskResultDoesNotExist(result_id)
        task = self._task_for(row["task"])
        if task is None:
            raise TaskResultDoesNotExist(
                f"{result_id}: job of {row['task']!r}, not a Django task of backend "
                f"{self.alias!r} known to this process"
            )
        return self._result_from_row(str(pk), task, row)

    async def aget_result(self, result_id: Any) -> TaskResult:
        return await sync_to_async(self.get_result, thread_sensitive=True)(result_id)

    def _task_for(self, name: str) -> Task | None:
        if self.alias == DEFAULT_TASK_BACKEND_ALIAS:
            if "@" in name:
                return None
            path = name
        else:
            suffix = f"@{self.alias}"
            if not name.endswith(suffix):
                return None
            path = name[: -len(suffix)]
        task = declared_tasks.get(path)
        if task is None:
            # Import the task modules a worker imports (no name taken from the row).
            from fastq_django.discovery import import_task_modules

            import_task_modules()
            declared_tasks.scan()
            task = declared_tasks.get(path)
        return task

    def _result_from_row(self, job_id: str, task: Task, row: dict[str, Any]) -> TaskResult:
        state = row["state"]
        started = row["started_at"]
        if state in ("queued", "waiting") or (state == "running" and started is None):
            status = TaskResultStatus.READY  # waiting, or claimed but not started yet
        elif state == "running":
            status = TaskResultStatus.RUNNING
        elif state == "succeeded":
            status = TaskResultStatus.SUCCESSFUL
        else:  # failed, dead, expired, cancelled
            status = TaskResultStatus.FAILED
        from fastq_django import task_errors

        attempts = max(0, int(row["attempts"]))
        # One error per failed attempt: the attempt log (earlier attempts, written by the
        # runner) and the row's own error when the log does not hold it.
        log = task_errors.load(row["attempt_log"])
        errors = [
            TaskError(
                exception_class_path=task_errors.exception_class_path(str(e["error_type"])),
                traceback=str(e["traceback"] or f"{e['error_type']}: {e['error']}\n"),
            )
            for e in task_errors.merged(
                log, row["error_type"] or "", row["error"] or "", row["traceback"] or "", attempts
            )
        ]
        # The worker of each attempt: the latest is the row's, earlier ones the log's
        # (an attempt the log does not name is "").
        worker_ids = [""] * attempts
        for e in log:
            n = int(e["attempt"])  # type: ignore[call-overload]
            if 1 <= n <= attempts and e.get("worker"):
                worker_ids[n - 1] = str(e["worker"])
        if attempts and row["worker"]:
            worker_ids[-1] = row["worker"]
        # Django's started_at is the first attempt's start, last_attempted_at the latest's.
        first_start = _first_start(log)
        last_start = started or _last_start(log)
        if first_start is None or (started is not None and started < first_start):
            first_start = started
        run_at, created = row["run_at"], row["created_at"]
        run_after = (
            run_at if run_at is not None and created is not None and run_at > created else None
        )
        as_enqueued = _as_enqueued(task, self.alias, row["queue"], row["priority"], run_after)
        result = TaskResult(
            task=as_enqueued,
            id=job_id,
            status=status,
            enqueued_at=created,
            started_at=first_start,
            last_attempted_at=last_start,
            finished_at=row["finished_at"] if status in _FINISHED else None,
            args=_loads(row["args"], list),
            kwargs=_loads(row["kwargs"], dict),
            backend=self.alias,
            errors=errors,
            worker_ids=worker_ids,
        )
        if status == TaskResultStatus.SUCCESSFUL and row["result"] is not None:
            object.__setattr__(result, "_return_value", _loads(row["result"], object))
        return result

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        from django.apps import apps

        if not apps.is_installed("fastq_django"):
            return [
                checks.Error(
                    f"TASKS[{self.alias!r}] uses fastq_django.backends.FastqTaskBackend but "
                    "'fastq_django' is not in INSTALLED_APPS.",
                    id="fastq.E101",
                )
            ]
        return []


_RESULT_FIELDS = (
    "task",
    "queue",
    "priority",
    "state",
    "args",
    "kwargs",
    "run_at",
    "attempts",
    "result",
    "error_type",
    "error",
    "traceback",
    "created_at",
    "started_at",
    "finished_at",
    "worker",
    "attempt_log",
)
_FINISHED = (TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED)


def _when(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _first_start(log: list[dict[str, Any]]) -> datetime | None:
    for e in log:
        when = _when(e.get("started_at"))
        if when is not None:
            return when
    return None


def _last_start(log: list[dict[str, Any]]) -> datetime | None:
    for e in reversed(log):
        when = _when(e.get("started_at"))
        if when is not None:
            return when
    return None


def _jobs() -> Any:
    """The job table on the broker's database."""
    from fastq_django.models import Job

    return Job.objects.using(getattr(fastq.get_broker(), "alias", "default"))


def _type_name(t: type) -> str:
    """An exception class as fastq stores it in ``error_type``."""
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def _write_log(job: Any, entries: list[dict[str, Any]]) -> None:
    """The attempt log of the running ``job``, fenced by its lease (a job rescued from
    this worker is no longer its to write): the core's write_attempt_log, on the broker
    whose database ``_jobs()`` reads."""
    from fastq_django import task_errors

    fastq.get_broker().write_attempt_log(job.id, job.lease_token, task_errors.dump(entries))


def _fold_previous(job: Any) -> None:
    """At the start of a retried attempt: log what the previous attempt ended with when
    no Python code saw it (task_errors.fold_previous). One read; a write only then."""
    from fastq_django import task_errors

    try:
        row = (
            _jobs()
            .filter(pk=uuid.UUID(job.id))
            .values("attempt_log", "error_type", "error", "traceback")
            .first()
        )
        if row is None:
            return
        entries = task_errors.fold_previous(
            task_errors.load(row["attempt_log"]),
            job.attempt,
            row["error_type"] or "",
            row["error"] or "",
            row["traceback"] or "",
        )
        if entries is not None:
            _write_log(job, entries)
    except Exception:  # the attempt runs even if its history cannot be kept
        logger.warning("job %s: could not update its attempt log", job.id, exc_info=True)


def _log_failure(job: Any, exc: BaseException, started: float) -> None:
    """The attempt failed with ``exc``: keep its error in the log (fastq's row will hold
    only the latest attempt's)."""
    if job.max_attempts <= 1:
        return  # no other attempt: the row's error is the only one
    from fastq_django import task_errors

    try:
        row = _jobs().filter(pk=uuid.UUID(job.id)).values("attempt_log").first()
        if row is None:
            return
        cause = exc
        if isinstance(exc, fastq.Retry) and exc.exc is not None:
            cause = exc.exc
        new = task_errors.entry(
            job.attempt,
            _type_name(type(cause)),
            _text(cause),
            "".join(traceback.format_exception(cause)),
            worker=_worker_id(),
            started_at=datetime.fromtimestamp(started, tz=UTC).isoformat(),
        )
        _write_log(job, task_errors.append(task_errors.load(row["attempt_log"]), new))
    except Exception:
        logger.warning("job %s: could not update its attempt log", job.id, exc_info=True)


def _text(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return "<unprintable exception>"


def _loads(text: str | None, kind: type) -> Any:
    import json

    value = json.loads(text) if text else None
    if kind is list:
        return value if isinstance(value, list) else []
    if kind is dict:
        return value if isinstance(value, dict) else {}
    return value


def _as_enqueued(
    task: Task, alias: str, queue: str, priority: int, run_after: datetime | None
) -> Task:
    """``task`` with the queue, priority and run_after its job was enqueued with (the
    declared task if those no longer pass validation, e.g. a queue since removed)."""
    try:
        return dataclasses.replace(
            task, backend=alias, queue_name=queue, priority=priority, run_after=run_after
        )
    except (InvalidTask, ValueError, TypeError):
        return task


def _probe() -> None:
    """Stands in for a task when the backend's options are checked."""


def _runner(alias: str, task: Task, name: str) -> Callable[..., Any]:
    """The function fastq's worker calls for a job of ``task``: it runs the task's
    function (with a TaskContext if it takes one) and sends Django's task_started and
    task_finished signals around it.

    The TaskResult a receiver or the task sees is read from the job row (enqueued_at,
    the previous attempt's error, the queue and priority it was enqueued with) when the
    task takes a context or the project connected receivers; Django's own logging
    receivers get one built from what the worker knows, and only when their records
    would be emitted."""
    func = task.func
    takes_context = task.takes_context
    sender = FastqTaskBackend

    def read_row() -> TaskResult:
        job = current_job()
        assert job is not None
        return task_backends[alias].get_result(job.id)

    def begin(args: tuple[Any, ...], kwargs: dict[str, Any], row: TaskResult | None) -> TaskResult:
        """The running TaskResult: ``row`` (the job as stored) or one built from what
        the worker knows."""
        job = current_job()
        assert job is not None, "a Django task's runner runs inside a fastq job"
        now = timezone.now()
        if row is not None:
            result = row
            object.__setattr__(result, "status", TaskResultStatus.RUNNING)
            if result.started_at is None:
                object.__setattr__(result, "started_at", now)
                object.__setattr__(result, "last_attempted_at", now)
        else:
            result = TaskResult(
                task=task,
                id=job.id,
                status=TaskResultStatus.RUNNING,
                enqueued_at=None,
                started_at=now,
                last_attempted_at=now,
                finished_at=None,
                args=list(args),
                kwargs=kwargs,
                backend=alias,
                errors=[],
                worker_ids=[],
            )
        ids = [""] * job.attempt
        ids[-1] = _worker_id()
        object.__setattr__(result, "worker_ids", ids)
        return result

    def late_result(args: tuple[Any, ...], kwargs: dict[str, Any]) -> TaskResult:
        """A result for a task_finished receiver when none was built at the start."""
        return begin(args, kwargs, None)

    def succeeded(result: TaskResult, value: Any) -> None:
        object.__setattr__(result, "finished_at", timezone.now())
        object.__setattr__(result, "status", TaskResultStatus.SUCCESSFUL)
        object.__setattr__(result, "_return_value", value)

    def will_retry(exc: BaseException) -> bool:
        """Whether fastq retries the job after ``exc`` (then no task_finished: the result
        goes back to READY)."""
        job = current_job()
        ft = fastq.registry.get(name)
        return (
            job is not None
            and ft is not None
            and bool(ft.autoretry_for)
            and isinstance(exc, ft.autoretry_for)
            and job.attempt < job.max_attempts
        )

    def failed(result: TaskResult, exc: BaseException) -> None:
        result.errors.append(_error(exc))
        object.__setattr__(result, "finished_at", timezone.now())
        object.__setattr__(result, "status", TaskResultStatus.FAILED)

    if inspect.iscoroutinefunction(func):

        async def run_async(*args: Any, **kwargs: Any) -> Any:
            job = current_job()
            if job is not None and job.attempt > 1:
                await sync_to_async(_fold_previous, thread_sensitive=False)(job)
            started = time.time()
            plan = _signal_plan()
            read = takes_context or plan.others
            result = None
            if read or plan.started or plan.finished:
                row = await sync_to_async(read_row, thread_sensitive=False)() if read else None
                result = begin(args, kwargs, row)
                if read or plan.started:
                    await task_started.asend(sender, task_result=result)
            try:
                if takes_context:
                    value = await func(TaskContext(task_result=result), *args, **kwargs)
                else:
                    value = await func(*args, **kwargs)
                value = _json_result(value)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:
                if job is not None:
                    await sync_to_async(_log_failure, thread_sensitive=False)(job, exc, started)
                if not will_retry(exc) and (result is not None or plan.failed):
                    result = result or late_result(args, kwargs)
                    failed(result, exc)
                    await task_finished.asend(sender, task_result=result)
                raise
            if result is not None or plan.finished:
                result = result or late_result(args, kwargs)
                succeeded(result, value)
                await task_finished.asend(sender, task_result=result)
            return value

        run_async.__wrapped__ = func  # type: ignore[attr-defined]
        run_async.__signature__ = _caller_signature(func, takes_context)  # type: ignore[attr-defined]
        run_async.__qualname__ = func.__qualname__
        run_async.__module__ = func.__module__
        return run_async

    def run(*args: Any, **kwargs: Any) -> Any:
        job = current_job()
        if job is not None and job.attempt > 1:
            _fold_previous(job)
        started = time.time()
        plan = _signal_plan()
        read = takes_context or plan.others
        result = None
        if read or plan.started or plan.finished:
            result = begin(args, kwargs, read_row() if read else None)
            if read or plan.started:
                task_started.send(sender, task_result=result)
        try:
            if takes_context:
                value = func(TaskContext(task_result=result), *args, **kwargs)
            else:
                value = func(*args, **kwargs)
            value = _json_result(value)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            if job is not None:
                _log_failure(job, exc, started)
            if not will_retry(exc) and (result is not None or plan.failed):
                result = result or late_result(args, kwargs)
                failed(result, exc)
                task_finished.send(sender, task_result=result)
            raise
        if result is not None or plan.finished:
            result = result or late_result(args, kwargs)
            succeeded(result, value)
            task_finished.send(sender, task_result=result)
        return value

    run.__wrapped__ = func  # type: ignore[attr-defined]
    run.__signature__ = _caller_signature(func, takes_context)  # type: ignore[attr-defined]
    run.__qualname__ = func.__qualname__
    run.__module__ = func.__module__
    return run


def _caller_signature(func: Callable[..., Any], takes_context: bool) -> inspect.Signature | None:
    """What a caller's arguments must bind to (fastq checks them at enqueue): the task
    function's signature, without the context a ``takes_context`` task receives first."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    if takes_context:
        sig = sig.replace(parameters=list(sig.parameters.values())[1:])
    return sig

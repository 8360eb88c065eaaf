"""``Celery``: the application object of a Celery project, over fastq."""

from __future__ import annotations

import fnmatch
import importlib
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import fastq
from fastq import schedules as fastq_schedules
from fastq.brokers import NewJob
from fastq.compat.celery import _conf
from fastq.compat.celery._task import Task
from fastq.compat.celery.result import AsyncResult
from fastq.compat.celery.schedules import crontab, schedule

log = logging.getLogger("fastq.compat.celery")

_current: Celery | None = None
_lock = threading.RLock()


def current_app() -> Celery:
    """The last Celery app created (or a default one, made on first use)."""
    global _current
    with _lock:
        if _current is None:
            _current = Celery("default")
        return _current


class Celery:
    """``Celery("proj")``. ``config_from_object("django.conf:settings",
    namespace="CELERY")`` reads the ``CELERY_`` settings (when Django's settings are
    ready); ``autodiscover_tasks()`` imports every installed app's ``tasks`` module.
    There is no broker or result backend to give: the database is both."""

    def __init__(
        self,
        main: str | None = None,
        broker: str | None = None,
        backend: str | None = None,
        include: Iterable[str] | None = None,
        set_as_current: bool = True,
        namespace: str | None = None,
        config_source: Any = None,
        **kwargs: Any,
    ) -> None:
        global _current
        self.main = main
        self.namespace = namespace
        self._sources: list[tuple[Any, str | None]] = []
        self._loaded = False
        self._loading = False
        self._tasks: list[Task] = []
        self._autodiscover: list[tuple[Any, str]] = []
        self._warned_keys: frozenset[str] = frozenset()
        self.conf = _conf.Settings(self)
        given = {"broker_url": broker, "result_backend": backend}
        for key, value in given.items():
            if value is not None:
                dict.__setitem__(self.conf, key, value)
        if include:
            dict.__setitem__(self.conf, "include", list(include))
        if config_source is not None:
            self._sources.append((config_source, namespace))
        from fastq.compat.celery.control import Control

        self.control = Control(self)
        self.on_after_configure = _Signal(self)
        self.on_after_finalize = _Signal(self)
        if set_as_current:
            with _lock:
                _current = self
            from fastq.compat.celery._task import shared_tasks

            self._tasks.extend(shared_tasks)
        fastq_schedules.providers.append(self._schedules)

    def __repr__(self) -> str:
        return f"<Celery {self.main}>"

    # -- configuration --------------------------------------------------------------

    def config_from_object(
        self, obj: Any, silent: bool = False, force: bool = False, namespace: str | None = None
    ) -> None:
        """Read settings from ``obj`` ("django.conf:settings", a module path, a module, an
        object or a mapping), under ``namespace`` ("CELERY": ``CELERY_TASK_ROUTES`` is
        ``task_routes``). Django's settings are read once they are configured."""
        self._sources.append((obj, namespace))
        self._loaded = False
        if force:
            self._load()

    def config_from_envvar(
        self, variable_name: str, silent: bool = False, force: bool = False
    ) -> None:
        import os

        module = os.environ.get(variable_name)
        if module:
            self.config_from_object(module, silent=silent, force=force)

    def add_defaults(self, fun: Any) -> None:
        self.conf.update(fun() if callable(fun) else fun)

    def _ready(self, obj: Any) -> bool:
        if isinstance(obj, str) and obj.startswith("django.conf"):
            from django.conf import settings

            return bool(settings.configured)
        return True

    def _load(self) -> None:
        """Read the configuration sources not read yet (Django's settings only once
        configured), then check them and configure the tasks."""
        if self._loaded or self._loading:
            return
        if not all(self._ready(obj) for obj, _ in self._sources):
            return
        self._loading = True
        try:
            for obj, namespace in self._sources:
                for key, value in _conf.read_object(obj, namespace).items():
                    dict.__setitem__(self.conf, key, value)
            self._loaded = True
        finally:
            self._loading = False
        self._changed()
        self.on_after_configure.send()
        self.on_after_finalize.send()

    def _changed(self) -> None:
        """Settings changed: check them (pickle refused, one warning for the rest) and
        give the tasks their defaults and routes."""
        if not self._loaded and self._sources:
            return
        explicit = dict(self.conf.items_set())
        _conf.check(
            {k: v for k, v in explicit.items() if k not in self._warned_keys},
            "CELERY_" if any(ns == "CELERY" for _, ns in self._sources) else "",
        )
        self._warned_keys = frozenset(explicit)
        for t in self._tasks:
            t._configure(self.conf)
        self._discover()

    @property
    def timezone(self) -> Any:
        tz = self.conf.get("timezone")
        return ZoneInfo(str(tz)) if tz else UTC

    def now(self) -> datetime:
        return datetime.now(self.timezone)

    # -- tasks ----------------------------------------------------------------------

    def task(self, *args: Any, **options: Any) -> Any:
        """``@app.task`` or ``@app.task(bind=True, max_retries=..., queue=..., ...)``."""
        base = options.pop("base", None) or Task
        if not (isinstance(base, type) and issubclass(base, Task)):
            raise TypeError("base= must be a subclass of fastq.compat.celery.Task")

        def decorate(fn: Callable[..., Any]) -> Task:
            if isinstance(fn, Task):
                return fn
            return base(fn, app=self, **options)

        if len(args) == 1 and callable(args[0]) and not options:
            return decorate(args[0])
        if args:
            raise TypeError("@app.task takes keyword options only")
        return decorate

    def _adopt(self, task: Task) -> None:
        self._tasks.append(task)
        self._load()
        task._configure(self.conf)

    @property
    def tasks(self) -> Mapping[str, Any]:
        """Every registered task by name (fastq's registry)."""
        self._discover()
        return fastq.registry

    def register_task(self, task: Any) -> Any:
        return task

    def send_task(
        self,
        name: str,
        args: Iterable[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        countdown: float | None = None,
        eta: datetime | None = None,
        queue: str | None = None,
        priority: int | None = None,
        **options: Any,
    ) -> AsyncResult:
        """Enqueue a task by name, registered in this process or not (the worker that
        registered it runs it; a name no worker knows ends dead as fastq.UnknownTask)."""
        if not isinstance(name, str) or not name or len(name) > 255 or "\x00" in name:
            raise ValueError(
                f"send_task: {name!r:.80} is not a task name (1-255 characters, no NUL)"
            )
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("send_task: the task name contains a lone surrogate") from None
        task = fastq.registry.get(name)
        if isinstance(task, Task):
            return task.apply_async(
                args,
                kwargs,
                countdown=countdown,
                eta=eta,
                queue=queue,
                priority=priority,
                **options,
            )
        if task is not None:
            r = task.apply_async(
                args=tuple(args or ()),
                kwargs=dict(kwargs or {}),
                countdown=countdown,
                eta=eta,
                queue=queue,
                priority=priority,
            )
            return AsyncResult(r.id, task_name=name, app=self)
        from fastq import _core, limits
        from fastq.serialization import encode_arguments

        a, k = encode_arguments(name, tuple(args or ()), dict(kwargs or {}))
        run_at = None
        if countdown is not None:
            run_at = datetime.now(UTC) + timedelta(seconds=limits.seconds("countdown", countdown))
        elif eta is not None:
            run_at = eta if eta.tzinfo else eta.replace(tzinfo=self.timezone)
        job = NewJob(
            id=_core.new_job_id(),
            task=name,
            queue=queue
            or self._queue_for(None, tuple(args or ()), dict(kwargs or {}), options, name=name),
            priority=limits.priority(priority or 0),
            args=a,
            kwargs=k,
            run_at=run_at,
        )
        (job_id,) = fastq.get_broker().enqueue([job])
        return AsyncResult(job_id, task_name=name, app=self)

    def AsyncResult(self, task_id: str, **kwargs: Any) -> AsyncResult:
        return AsyncResult(task_id, app=self, **kwargs)

    def GroupResult(self, *args: Any, **kwargs: Any) -> Any:
        from fastq.compat.celery.result import GroupResult

        return GroupResult(*args, **kwargs)

    def autodiscover_tasks(
        self, packages: Any = None, related_name: str = "tasks", force: bool = False
    ) -> None:
        """Import ``<app>.tasks`` of every installed Django app (or of ``packages``), once
        Django's apps are ready (``fastq_worker`` does this itself too)."""
        self._autodiscover.append((packages, related_name))
        if force:
            self._discover()

    def _discover(self) -> None:
        if not self._autodiscover:
            return
        try:
            from django.apps import apps
        except ImportError:
            apps = None  # type: ignore[assignment]
        pending = []
        for packages, related in self._autodiscover:
            if packages is None:
                if apps is None or not apps.ready:
                    pending.append((packages, related))
                    continue
                from django.utils.module_loading import autodiscover_modules

                autodiscover_modules(related)
                continue
            names = packages() if callable(packages) else packages
            for pkg in names:
                try:
                    importlib.import_module(f"{pkg}.{related}")
                except ModuleNotFoundError as exc:
                    if exc.name != f"{pkg}.{related}":
                        raise
        self._autodiscover = pending
        for module in list(self.conf.get("imports") or ()) + list(self.conf.get("include") or ()):
            importlib.import_module(module)

    def finalize(self, auto: bool = False) -> None:
        self._load()
        self._discover()

    def set_current(self) -> None:
        global _current
        with _lock:
            _current = self

    def set_default(self) -> None:
        self.set_current()

    # -- routes -----------------------------------------------------------------------

    def _routers(self) -> list[Callable[..., Any]]:
        routes = self.conf.get("task_routes")
        if not routes:
            return []
        if isinstance(routes, Mapping) or callable(routes) or isinstance(routes, str):
            routes = [routes]
        out: list[Callable[..., Any]] = []
        for r in routes:
            if isinstance(r, Mapping):
                out.append(_MapRoute(list(r.items())))
            elif isinstance(r, str):
                module, _, attr = r.rpartition(".")
                out.append(getattr(importlib.import_module(module), attr))
            elif callable(r):
                out.append(r)
            elif isinstance(r, list | tuple):
                out.append(_MapRoute(list(r)))
            else:
                raise ValueError(f"CELERY_TASK_ROUTES: cannot read the route {r!r}")
        return out

    def _route(
        self, name: str, args: Any, kwargs: Any, options: Any, task: Any, static: bool
    ) -> str | None:
        for router in self._routers():
            if static and not isinstance(router, _MapRoute):
                continue
            route = router(name, args, kwargs, options, task=task)
            if route:
                queue = route if isinstance(route, str) else route.get("queue")
                if isinstance(queue, Mapping):
                    queue = queue.get("name")
                if queue:
                    return str(queue)
        return None

    def _static_queue(self, name: str) -> str:
        """The queue of a task without queue=: its name or glob route, else
        CELERY_TASK_DEFAULT_QUEUE (Celery's default: "celery")."""
        return self._route(name, (), {}, {}, None, True) or str(
            self.conf.get("task_default_queue") or "celery"
        )

    def _queue_for(
        self, task: Task | None, args: Any, kwargs: Any, options: Any, name: str | None = None
    ) -> str:
        name = name or (task.name if task else "")
        return self._route(name, args, kwargs, options, task, False) or self._static_queue(name)

    # -- beat ---------------------------------------------------------------------------

    def _schedules(self) -> dict[str, fastq_schedules.PeriodicSchedule]:
        """CELERY_BEAT_SCHEDULE as fastq schedules (synced by every fastq_worker), and
        Celery's daily celery.backend_cleanup when CELERY_RESULT_EXPIRES is set."""
        self._load()
        out: dict[str, fastq_schedules.PeriodicSchedule] = {}
        tz = str(self.conf.get("timezone") or "UTC")
        for name, entry in (self.conf.get("beat_schedule") or {}).items():
            where = f"CELERY_BEAT_SCHEDULE[{name!r}]"
            if not isinstance(entry, Mapping) or "task" not in entry or "schedule" not in entry:
                raise ValueError(f"{where}: needs 'task' and 'schedule'")
            options = dict(entry.get("options") or {})
            when = entry["schedule"]
            cron, every = "", None
            zone = tz
            if isinstance(when, crontab):
                cron, zone = when.expression, when.tz or tz
            elif isinstance(when, schedule):
                every = when.seconds
            elif isinstance(when, timedelta):
                every = when.total_seconds()
            elif isinstance(when, int | float) and not isinstance(when, bool):
                every = float(when)
            else:
                raise ValueError(f"{where}: schedule must be a crontab, a timedelta or seconds")
            task = fastq.registry.get(entry["task"])
            queue = options.get("queue") or (
                task.queue if task is not None else self._static_queue(entry["task"])
            )
            try:
                out[name] = fastq_schedules.PeriodicSchedule(
                    name=name,
                    task=entry["task"],
                    cron=cron,
                    timezone=zone,
                    every=every,
                    args=list(entry.get("args") or ()),
                    kwargs=dict(entry.get("kwargs") or {}),
                    queue=queue,
                    priority=int(options.get("priority") or 0),
                )
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
        expires = self.conf.get("result_expires")
        if expires:
            out["celery.backend_cleanup"] = fastq_schedules.PeriodicSchedule(
                name="celery.backend_cleanup",
                task="celery.backend_cleanup",
                cron="0 4 * * *",
                timezone=tz,
                queue=self._static_queue("celery.backend_cleanup"),
            )
        return out

    def add_periodic_task(
        self,
        schedule_: Any,
        sig: Any,
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        name: str | None = None,
        **opts: Any,
    ) -> None:
        """``app.add_periodic_task(crontab(...) or seconds, task.s(...), name=...)``: an
        entry of the beat schedule. ``sig`` is a signature or a task."""
        task_name = getattr(sig, "task", None) or getattr(sig, "name", None)
        if not isinstance(task_name, str):
            raise TypeError("add_periodic_task needs a task or a signature")
        sig_args = tuple(getattr(sig, "args", ()) or ()) if not isinstance(sig, Task) else ()
        sig_kwargs = dict(getattr(sig, "kwargs", {}) or {}) if not isinstance(sig, Task) else {}
        beat = dict(self.conf.get("beat_schedule") or {})
        beat[name or f"{task_name}({', '.join(map(repr, sig_args))})"] = {
            "task": task_name,
            "schedule": schedule_,
            "args": tuple(args) or sig_args,
            "kwargs": dict(kwargs or {}) or sig_kwargs,
            "options": opts,
        }
        self.conf["beat_schedule"] = beat


class _Signal:
    """``app.on_after_configure`` / ``on_after_finalize``: receivers run once, with
    ``sender=app``, when the configuration has been read (at once if it already was)."""

    def __init__(self, app: Celery) -> None:
        self.app = app
        self.receivers: list[Callable[..., Any]] = []
        self.sent = False

    def connect(self, fn: Callable[..., Any] | None = None, **_: Any) -> Any:
        if fn is None:
            return lambda f: self.connect(f)
        self.receivers.append(fn)
        if self.sent:
            fn(sender=self.app)
        return fn

    def send(self) -> None:
        if self.sent:
            return
        self.sent = True
        for fn in self.receivers:
            fn(sender=self.app)


class _MapRoute:
    """A ``task_routes`` mapping: exact names first, then globs ("proj.tasks.*") and
    compiled regexes, in their order."""

    def __init__(self, items: list[Any]) -> None:
        self.exact: dict[str, Any] = {}
        self.patterns: list[tuple[Any, Any]] = []
        for item in items:
            if not (isinstance(item, tuple | list) and len(item) == 2):
                raise ValueError(f"CELERY_TASK_ROUTES: cannot read the route {item!r}")
            pattern, route = item
            if isinstance(pattern, re.Pattern):
                self.patterns.append((pattern, route))
            elif isinstance(pattern, str) and any(c in pattern for c in "*?["):
                self.patterns.append((re.compile(fnmatch.translate(pattern)), route))
            else:
                self.exact[str(pattern)] = route

    def __call__(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if name in self.exact:
            return self.exact[name]
        for pattern, route in self.patterns:
            if pattern.match(name):
                return route
        return None


def shared_task(*args: Any, **options: Any) -> Any:
    """``@shared_task`` / ``@shared_task(bind=True, ...)``: a task of the current app."""

    base = options.pop("base", None) or Task
    if not (isinstance(base, type) and issubclass(base, Task)):
        raise TypeError("base= must be a subclass of fastq.compat.celery.Task")

    def decorate(fn: Callable[..., Any]) -> Task:
        return base(fn, app=None, **options)

    if len(args) == 1 and callable(args[0]) and not options:
        return decorate(args[0])
    return decorate


class _CurrentTask:
    """``celery.current_task``: the task running in this thread (None-like outside)."""

    def _get_current_object(self) -> Task | None:
        from fastq.compat.celery._task import current_request

        req = current_request()
        if req is None or req.task is None:
            return None
        task = fastq.registry.get(req.task)
        return task if isinstance(task, Task) else None

    def __getattr__(self, name: str) -> Any:
        obj = self._get_current_object()
        if obj is None:
            raise AttributeError(f"no task is running here (current_task.{name})")
        return getattr(obj, name)

    def __bool__(self) -> bool:
        return self._get_current_object() is not None

    def __eq__(self, other: object) -> bool:
        return self._get_current_object() == other

    def __hash__(self) -> int:
        return hash(self._get_current_object())

    def __repr__(self) -> str:
        return repr(self._get_current_object())


current_task = _CurrentTask()


@fastq.task(name="celery.backend_cleanup", queue="celery")
def backend_cleanup() -> int:
    """Delete finished jobs older than CELERY_RESULT_EXPIRES (Celery's daily clean-up)."""
    from fastq.compat.celery import _jobs

    expires = current_app().conf.get("result_expires")
    if not expires:
        return 0
    seconds = expires.total_seconds() if isinstance(expires, timedelta) else float(expires)
    return _jobs.delete_finished_before(datetime.now(UTC) - timedelta(seconds=seconds))

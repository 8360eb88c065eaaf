"""Celery's ``Task``: a fastq task with Celery's options, ``self.request``, ``retry``,
``apply``, ``apply_async`` and handlers."""

from __future__ import annotations

import contextvars
import json
import os
import socket
import traceback
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

import fastq
from fastq import _core, conf, limits
from fastq.compat.celery import states
from fastq.compat.celery._conf import refuse_pickle
from fastq.compat.celery.exceptions import Ignore, MaxRetriesExceededError, Retry
from fastq.compat.celery.result import AsyncResult, EagerResult
from fastq.serialization import encode_arguments
from fastq.task import JobContext, current_job, parse_rate_limit, run_job

# Options of @app.task that mean nothing on fastq (accepted so declarations run unchanged).
ACCEPTED = {
    "acks_late": "fastq acknowledges after the run, always (leases)",
    "acks_on_failure_or_timeout": "fastq acknowledges after the run, always",
    "reject_on_worker_lost": "a lost worker costs one attempt; it runs again while any remain",
    "track_started": "fastq always records STARTED",
    "typing": "arguments are checked as JSON at the call",
    "store_errors_even_if_ignored": "errors are always stored",
    "send_events": "job states are in the database",
    "trail": "no result trail",
    "throws": "expected exceptions are stored like others",
    "shared": "one registry per process",
    "lazy": "tasks are registered at declaration",
    "resultrepr_maxsize": "results are JSON",
    "routing_key": "queues are names; no exchanges",
    "exchange": "queues are names; no exchanges",
}
_UNSET: Any = object()

# Set while a task runs through apply() (request.is_eager).
_eager: contextvars.ContextVar[bool] = contextvars.ContextVar("fastq_celery_eager", default=False)
# The job whose run the worker (or apply()) entered through Task.__call__, and its request.
_entered: contextvars.ContextVar[Request | None] = contextvars.ContextVar(
    "fastq_celery_request", default=None
)


# Tasks declared with @shared_task: configured by whichever app is current.
shared_tasks: list[Task] = []


def _hostname() -> str:
    # The name fastq_worker gives this process's worker (and writes on the jobs it claims).
    return f"{socket.gethostname()}:{os.getpid()}"


class Request:
    """``self.request`` of a running task, as Celery's: ``id``, ``retries``, ``args``,
    ``kwargs``, ``hostname``, ``is_eager``, ``delivery_info`` (``routing_key`` is the
    queue), ``task``, ``called_directly`` (False while running as a job), ``timelimit``."""

    def __init__(
        self,
        task: Task | None = None,
        job: JobContext | None = None,
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        is_eager: bool = False,
        queue: str | None = None,
    ) -> None:
        self._task = task
        self._job = job
        self.id = job.id if job else None
        self.task = task.name if task else None
        self.retries = job.retries if job else 0
        self.args = list(args)
        self.kwargs = dict(kwargs or {})
        self.is_eager = is_eager
        self.called_directly = job is None
        self.hostname = None if job is None else ("localhost" if is_eager else _hostname())
        self.origin = self.hostname
        self.timelimit = (task.time_limit, task.soft_time_limit) if task else (None, None)
        self.eta = None
        self.expires = None
        self.root_id = self.id
        self.parent_id = None
        self.group = None
        self.chord = None
        self.correlation_id = self.id
        self.reply_to = None
        self.callbacks = None
        self.errbacks = None
        self.headers: dict[str, Any] = {}
        self.ignore_result = bool(task and task.ignore_result)
        self._queue = queue

    @property
    def delivery_info(self) -> dict[str, Any]:
        """``{"exchange": "", "routing_key": <queue>, "priority": ..., "redelivered": ...}``;
        the queue is read from the job row the first time it is asked for."""
        if self._queue is None and self.id is not None and not self.is_eager:
            snap = fastq.get_broker().fetch(self.id)
            self._queue = snap.queue if snap else None
        return {
            "exchange": "",
            "routing_key": self._queue,
            "queue": self._queue,
            "priority": None,
            "redelivered": self.retries > 0,
        }

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)

    def __repr__(self) -> str:
        return f"<Context: {self.task} {self.id} retries={self.retries}>"


def current_request() -> Request | None:
    return _entered.get()


class Task(fastq.Task):  # type: ignore[type-arg]
    """A Celery-style task (``@app.task`` / ``@shared_task``). Subclass it and pass
    ``base=`` for ``on_success``/``on_failure``/``on_retry``/``after_return`` handlers."""

    # Class-level defaults, as Celery's Task attributes (a base= subclass may set them).
    max_retries: Any = 3
    default_retry_delay: float = 180
    autoretry_for: tuple[type[BaseException], ...] = ()
    retry_kwargs: Mapping[str, Any] | None = None
    retry_backoff: bool | float = False
    retry_backoff_max: float = 600
    retry_jitter: bool = True
    ignore_result: bool | None = None
    rate_limit: Any = None
    time_limit: float | None = None
    soft_time_limit: float | None = None
    queue: str | None = None
    priority: int | None = None
    expires: Any = None
    serializer: str = "json"

    def __init__(self, fn: Any, *, app: Any = None, **options: Any) -> None:
        cls = type(self)
        opt = {k: v for k, v in options.items() if k not in ACCEPTED}
        for key in ("serializer", "result_serializer"):
            if key in opt:
                refuse_pickle(key, opt.pop(key))
        for key in ("base", "bind_to", "filter"):
            opt.pop(key, None)
        unknown = set(opt) - {
            "name",
            "bind",
            "max_retries",
            "default_retry_delay",
            "autoretry_for",
            "dont_autoretry_for",
            "retry_kwargs",
            "retry_backoff",
            "retry_backoff_max",
            "retry_jitter",
            "time_limit",
            "soft_time_limit",
            "rate_limit",
            "queue",
            "priority",
            "ignore_result",
            "expires",
            "unique",
            "unique_key",
            "rate_limit_key",
        }
        if unknown:
            raise TypeError(f"@task: unknown option(s) {', '.join(sorted(unknown))}")
        self._app = app
        get = lambda k: opt.get(k, getattr(cls, k))  # noqa: E731
        retry_kwargs = dict(get("retry_kwargs") or {})
        max_retries = retry_kwargs.get("max_retries", get("max_retries"))
        # Celery's max_retries=None: retry for ever; fastq's rows hold at most a million.
        self.celery_max_retries = max_retries
        if max_retries is None:
            max_retries = limits.MAX_RETRIES_MAX
        default_delay = retry_kwargs.get("countdown", get("default_retry_delay"))
        self.dont_autoretry_for = tuple(opt.get("dont_autoretry_for", ()))
        self._explicit = {
            "queue": opt.get("queue", cls.queue),
            "time_limit": opt.get("time_limit", cls.time_limit),
            "soft_time_limit": opt.get("soft_time_limit", cls.soft_time_limit),
            "rate_limit": opt.get("rate_limit", cls.rate_limit),
            "priority": opt.get("priority", cls.priority),
            "ignore_result": opt.get("ignore_result", cls.ignore_result),
        }
        rate = _rate(self._explicit["rate_limit"])
        super().__init__(
            fn,
            name=opt.get("name"),
            queue=self._explicit["queue"] or "celery",
            priority=self._explicit["priority"] or 0,
            bind=opt.get("bind", False),
            max_retries=max_retries,
            autoretry_for=tuple(get("autoretry_for") or ()),
            retry_backoff=get("retry_backoff"),
            retry_backoff_max=get("retry_backoff_max"),
            retry_jitter=get("retry_jitter"),
            default_retry_delay=default_delay,
            expires=_seconds_or_none(get("expires")),
            unique=opt.get("unique", False),
            unique_key=opt.get("unique_key"),
            time_limit=self._explicit["time_limit"],
            soft_time_limit=self._explicit["soft_time_limit"],
            rate_limit=rate,
            rate_limit_key=opt.get("rate_limit_key"),
        )
        self.ignore_result = bool(self._explicit["ignore_result"])
        if app is None:
            shared_tasks.append(self)
        self.app._adopt(self)

    # -- the app and its settings ---------------------------------------------------

    @property
    def app(self) -> Any:
        from fastq.compat.celery._app import current_app

        return self._app or current_app()

    def _configure(self, settings: Any) -> None:
        """Apply the app's defaults (queue and routes, time limits, rate limit, priority,
        ignore_result) to what the declaration left open."""
        explicit = self._explicit
        if not explicit["queue"]:
            self.queue = self.app._static_queue(self.name)
        if explicit["time_limit"] is None and settings.get("task_time_limit"):
            self.time_limit = limits.time_limit(
                "task_time_limit", settings.get("task_time_limit"), f"task {self.name}: "
            )
        if explicit["soft_time_limit"] is None and settings.get("task_soft_time_limit"):
            self.soft_time_limit = limits.time_limit(
                "task_soft_time_limit", settings.get("task_soft_time_limit"), f"task {self.name}: "
            )
        if explicit["rate_limit"] is None and settings.get("task_default_rate_limit"):
            self.rate_limit = _rate(settings.get("task_default_rate_limit"))
            self.rate_interval = parse_rate_limit(self.rate_limit)  # type: ignore[arg-type]
        if explicit["priority"] is None and settings.get("task_default_priority") is not None:
            self.priority = limits.priority(settings.get("task_default_priority"))
        if explicit["ignore_result"] is None:
            self.ignore_result = bool(settings.get("task_ignore_result"))

    # -- running ----------------------------------------------------------------------

    @property
    def request(self) -> Request:  # type: ignore[override]
        req = _entered.get()
        if req is not None and req.task == self.name:
            return req
        return Request(self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        job = current_job()
        entered = _entered.get()
        if job is None or job.task != self.name or (entered is not None and entered.id == job.id):
            return super().__call__(*args, **kwargs)  # a direct call, as a function
        # The worker (or apply()) runs this job: give it its request and handlers.
        req = Request(self, job, args, kwargs, is_eager=_eager.get())
        token = _entered.set(req)
        try:
            try:
                value = super().__call__(*args, **kwargs)
            except Ignore:
                value = None
            except Retry as exc:
                self.on_retry(exc.exc or exc, job.id, args, kwargs, None)
                raise
            except BaseException as exc:
                retried = (
                    self.autoretry_for
                    and isinstance(exc, self.autoretry_for)
                    and not isinstance(exc, self.dont_autoretry_for)
                    and job.attempt < job.max_attempts
                )
                if retried:
                    self.on_retry(exc, job.id, args, kwargs, None)
                else:
                    einfo = "".join(traceback.format_exception(exc))
                    self.on_failure(exc, job.id, args, kwargs, einfo)
                    self.after_return(states.FAILURE, exc, job.id, args, kwargs, einfo)
                raise
            self.on_success(value, job.id, args, kwargs)
            self.after_return(states.SUCCESS, value, job.id, args, kwargs, None)
            return None if self.ignore_result else value
        finally:
            _entered.reset(token)

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """The task's body (Celery's ``Task.run``)."""
        return self.fn(*args, **kwargs)

    # Handlers a base= class overrides; called in the worker, after the body.
    def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
        return None

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        return None

    def on_retry(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        return None

    def after_return(
        self, status: str, retval: Any, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        return None

    def retry(
        self,
        args: Any = None,
        kwargs: Any = None,
        exc: BaseException | None = None,  # type: ignore[override]
        throw: bool = True,
        eta: datetime | None = None,
        countdown: float | None = None,
        max_retries: int | None = _UNSET,
        **options: Any,
    ) -> NoReturn:
        """Run this job again later: ``countdown`` seconds or at ``eta`` (default:
        ``default_retry_delay``). Past ``max_retries`` (this call's, else the task's),
        ``exc`` is raised (or :class:`MaxRetriesExceededError`) and the job fails. A
        ``max_retries`` above the task's is capped by the attempts its job was enqueued
        with (declare the task with the largest you use)."""
        req = self.request
        if req.called_directly:
            if exc is not None:
                raise exc
            raise MaxRetriesExceededError(f"{self.name}: retry() called outside a job")
        limit = self.celery_max_retries if max_retries is _UNSET else max_retries
        if limit is not None and req.retries >= limit:
            if exc is not None:
                raise exc
            raise MaxRetriesExceededError(
                f"Can't retry {self.name}[{req.id}] args:{req.args} kwargs:{req.kwargs}"
            )
        if eta is not None:
            eta = _aware(eta, self.app)
            countdown = (eta - datetime.now(UTC)).total_seconds()
        if countdown is None:
            countdown = self.default_retry_delay
        raise Retry(countdown=countdown, exc=exc)

    # -- enqueueing -------------------------------------------------------------------

    def delay(self, *args: Any, **kwargs: Any) -> AsyncResult:  # type: ignore[override]
        return self.apply_async(args, kwargs)

    def apply_async(  # type: ignore[override]
        self,
        args: Iterable[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        task_id: str | None = None,
        link: Any = None,
        link_error: Any = None,
        countdown: float | None = None,
        eta: datetime | None = None,
        expires: Any = None,
        queue: str | None = None,
        priority: int | None = None,
        max_retries: int | None = None,
        time_limit: float | None = None,
        soft_time_limit: float | None = None,
        serializer: str | None = None,
        ignore_result: bool | None = None,
        **options: Any,
    ) -> AsyncResult:
        """Enqueue as Celery does. ``CELERY_TASK_ALWAYS_EAGER`` (or FASTQ EAGER) runs it
        inline (``apply()``). ``link``/``link_error`` need fastq's workflows
        (``fastq.signature``)."""
        if serializer is not None:
            refuse_pickle("serializer", serializer)
        args = tuple(args or ())
        kwargs = dict(kwargs or {})
        settings = self.app.conf
        if settings.get("task_always_eager") or conf.get("EAGER"):
            return self.apply(args, kwargs, task_id=task_id, link=link, link_error=link_error)
        if link is not None or link_error is not None:
            return self._apply_linked(
                args,
                kwargs,
                link,
                link_error,
                countdown=countdown,
                eta=eta,
                expires=expires,
                queue=queue,
                priority=priority,
            )
        if queue is None and not self._explicit["queue"]:
            queue = self.app._queue_for(self, args, kwargs, options)
        if eta is not None:
            eta = _aware(eta, self.app)
        if isinstance(expires, datetime):
            expires = _aware(expires, self.app)
        if task_id is None:
            result = super().apply_async(
                args=args,
                kwargs=kwargs,
                countdown=countdown,
                eta=eta,
                queue=queue,
                priority=priority,
                max_retries=max_retries,
                expires=expires,
                time_limit=time_limit,
                soft_time_limit=soft_time_limit,
            )
            return AsyncResult(result.id, task_name=self.name, app=self.app)
        job = self._new_job(
            args,
            kwargs,
            countdown,
            eta,
            queue,
            priority,
            max_retries,
            expires,
            time_limit,
            soft_time_limit,
        )
        try:
            job.id = str(uuid.UUID(str(task_id)))
        except ValueError:
            raise ValueError(f"{self.name}: task_id must be a UUID, got {task_id!r}") from None
        (job_id,) = fastq.get_broker().enqueue([job])
        return AsyncResult(job_id, task_name=self.name, app=self.app)

    def _apply_linked(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        link: Any,
        link_error: Any,
        **options: Any,
    ) -> AsyncResult:
        # Celery's link is "run this signature with my result" (each link gets it) and
        # link_error "run this one if I fail": a fastq workflow whose first node is this
        # task, every link a node after it, every error link an error handler. The result
        # is this task's own job, as in Celery.
        import fastq

        sig = self.signature(args, kwargs, **{k: v for k, v in options.items() if v is not None})
        w = fastq.workflow()
        node = w.add(sig)
        for callback in _as_list(link):
            w.add(callback, after=[node])
        for handler in _as_list(link_error):
            w.on_error(handler)
        w.apply_async()
        return AsyncResult(node.id, task_name=self.name, app=self.app)

    def signature(
        self,
        args: Iterable[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Any:
        """Celery's ``task.signature(args, kwargs, **options)``: ``fastq.signature``."""
        return _workflow("signature")(
            self, args=tuple(args or ()), kwargs=dict(kwargs or {}), **options
        )

    subtask = signature

    def apply(
        self,
        args: Iterable[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        link: Any = None,
        link_error: Any = None,
        task_id: str | None = None,
        retries: int | None = None,
        throw: bool | None = None,
        **options: Any,
    ) -> EagerResult:
        """Run the task here and now (``request.is_eager``), retries included, and return
        an :class:`EagerResult`. Exceptions are raised when ``throw`` (default
        ``CELERY_TASK_EAGER_PROPAGATES``), else stored in the result."""
        if link is not None or link_error is not None:
            raise NotImplementedError(
                "apply(link=...) needs fastq's workflows; run the linked task yourself"
            )
        if throw is None:
            throw = bool(self.app.conf.get("task_eager_propagates"))
        job_id = str(uuid.UUID(str(task_id))) if task_id else _core.new_job_id()
        args_json, kwargs_json = encode_arguments(self.name, tuple(args or ()), dict(kwargs or {}))
        a, k = json.loads(args_json), json.loads(kwargs_json)
        max_retries = options.get("max_retries")
        max_attempts = (self.max_retries if max_retries is None else max_retries) + 1
        attempt = (retries or 0) + 1
        token = _eager.set(True)
        try:
            while True:
                try:
                    value = run_job(self, a, k, job_id, attempt, max_attempts)
                except Retry:
                    attempt += 1
                    continue
                except Exception as exc:
                    if throw:
                        raise
                    tb = "".join(traceback.format_exception(exc))
                    return EagerResult(job_id, exc, states.FAILURE, tb, name=self.name)
                break
        finally:
            _eager.reset(token)
        value = json.loads(_core.encode_json(value, "result"))
        return EagerResult(job_id, value, states.SUCCESS, name=self.name)

    # -- Celery's map operations (fastq.compat.celery.canvas) ---------------------------

    def map(self, it: Iterable[Any]) -> Any:  # type: ignore[override]
        """Celery's ``task.map(it)``: an ``xmap`` signature, ``[task(x) for x in it]`` in
        one job. (fastq's own bulk ``Task.map`` is ``fastq.Task.map``.)"""
        from fastq.compat.celery.canvas import xmap

        return xmap(self, it)

    def starmap(self, it: Iterable[Any]) -> Any:
        """Celery's ``task.starmap(it)``: an ``xstarmap`` signature, ``[task(*x) for x in
        it]`` in one job."""
        from fastq.compat.celery.canvas import xstarmap

        return xstarmap(self, it)

    def chunks(self, it: Iterable[Any], n: int) -> Any:
        """Celery's ``task.chunks(it, n)``: ``it`` in parts of ``n``, each part one
        ``xstarmap`` job, the parts a group."""
        from fastq.compat.celery.canvas import chunks

        return chunks(self, it, n)

    def _result_for(self, job_id: str) -> AsyncResult:
        """A canvas step of this task returns Celery's AsyncResult (fastq.canvas)."""
        return AsyncResult(job_id, task_name=self.name, app=self.app)

    def AsyncResult(self, task_id: str, **kwargs: Any) -> AsyncResult:
        return AsyncResult(task_id, task_name=self.name, app=self.app)

    def update_state(
        self, task_id: str | None = None, state: str | None = None, meta: Any = None, **kwargs: Any
    ) -> None:
        """Celery's custom states: ``self.update_state(state="PROGRESS", meta={...})``
        records ``state`` and ``meta`` (JSON) on this job (or on ``task_id``'s), and
        ``AsyncResult.state``/``.info`` read them until the job is retried or finishes,
        when its own state takes over (SUCCESS and the return value...), as in Celery.
        One UPDATE of the job's row. Outside a job with no ``task_id`` (a direct call,
        ``apply()``) nothing is stored, as there is no stored result."""
        from fastq.compat.celery import _jobs

        if not isinstance(state, str) or not state or len(state) > _jobs.MAX_STATE:
            raise ValueError(
                f"update_state: state must be a name of 1 to {_jobs.MAX_STATE} characters, "
                f"not {state!r:.80}"
            )
        meta_json = _core.encode_json(meta, "meta", f"{self.name}: update_state: ")
        most = int(conf.get("MAX_PAYLOAD_BYTES"))
        if len(meta_json.encode()) > most:
            raise ValueError(
                f"{self.name}: update_state: meta of {len(meta_json.encode())} bytes as JSON "
                f"(at most FASTQ['MAX_PAYLOAD_BYTES'] = {most})"
            )
        req = self.request
        attempt: int | None = None
        if task_id is None:
            if req.called_directly or req.is_eager or req.id is None:
                return
            task_id = req.id
            attempt = req.retries + 1
        elif req.id is not None and str(task_id) == req.id and not req.is_eager:
            attempt = req.retries + 1
        _jobs.set_custom_state(str(task_id), state, meta_json, attempt)


def _workflow(name: str) -> Any:
    from fastq.compat.celery._lazy import LazyWorkflow

    return LazyWorkflow(name, name)


def _rate(value: Any) -> str | None:
    """Celery's rate_limit: "10/s", "100/m", "3/h", or a number (tasks per second)."""
    if value is None or value == "" or value == 0:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value}/s"
    return str(value)


def _seconds_or_none(value: Any) -> Any:
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value


def _aware(dt: datetime, app: Any) -> datetime:
    """Celery reads a naive eta in the app's time zone (UTC unless CELERY_TIMEZONE)."""
    if dt.tzinfo is not None:
        return dt
    tz = app.conf.get("timezone")
    return dt.replace(tzinfo=ZoneInfo(str(tz)) if tz else UTC)


def _as_list(value: Any) -> list[Any]:
    """Celery's link/link_error: one signature, a list of them, or None."""
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]

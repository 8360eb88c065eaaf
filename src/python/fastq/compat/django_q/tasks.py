"""``django_q.tasks``: ``async_task``, ``result``, ``fetch``, ``result_group``,
``count_group``, ``delete_group``, ``schedule``, ``AsyncTask``, ``Chain``/``async_chain``
over fastq.

A task given by dotted path (or as a function, which stands for its path) is a job of the
fastq task ``fastq.compat.django_q.call``, whose arguments are the path, the call's
arguments and its options. The worker runs it only if the path lies in the project's
code (``fastq.compat.django_q.paths``); any other path ends the job dead with the reason.
The hook runs in the worker after the task, with a ``Task`` as Django-Q2 passes it.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

import fastq
from fastq import _core, limits
from fastq.brokers import NewJob
from fastq.compat.django_q import conf, paths
from fastq.compat.django_q.conf import Conf
from fastq.compat.django_q.models import CALL, Failure, Schedule, Task
from fastq.serialization import encode_arguments

log = logging.getLogger("fastq.compat.django_q")

# async_task's options (the rest of its keyword arguments go to the function).
OPTIONS = (
    "hook",
    "group",
    "save",
    "sync",
    "cached",
    "ack_failure",
    "iter_count",
    "iter_cached",
    "chain",
    "broker",
    "cluster",
    "timeout",
    "task_name",
)


def _dead(exc: BaseException) -> BaseException:
    exc._fastq_gave_up = True  # type: ignore[attr-defined]
    return exc


@fastq.task(
    name=CALL,
    queue=conf.queue(),
    max_retries=conf.attempts() - 1,
    time_limit=Conf.TIMEOUT or None,
)
def call(func: str, args: list[Any], kwargs: dict[str, Any], options: dict[str, Any]) -> Any:
    """Run the dotted path ``func`` (only code the project ships), then its hook."""
    job = fastq.current_job()
    try:
        fn = paths.resolve(func)
    except paths.ForbiddenPath as exc:
        raise _dead(exc) from None
    options = dict(options or {})
    if options.get("label_group") and options.get("group") and job is not None:
        # Chain steps enqueued before the label went in with the job (0.1.0) carry
        # this flag and take their label when they run; new ones have it from enqueue.
        fastq.get_broker().relabel([job.id], str(options["group"])[:100])
    if options.get("intended_date_kwarg") and job is not None:
        kwargs = dict(kwargs)
        kwargs[options["intended_date_kwarg"]] = _intended(job.id)
    started = timezone.now()
    try:
        value = fn(*args, **kwargs)
    except Exception as exc:
        last = job is None or _core.is_last_attempt(job.attempt, job.max_attempts)
        ack = options.get("ack_failure", Conf.ACK_FAILURES)
        if not last and not ack:
            # Django-Q2 runs an unacknowledged failure again after Q_CLUSTER['retry'].
            raise fastq.Retry(countdown=float(Conf.RETRY), exc=exc) from exc
        _after(
            job,
            func,
            args,
            kwargs,
            options,
            started,
            False,
            f"{exc} : {traceback.format_exc()}",
            exc,
        )
        if not ack and job is not None and job.max_attempts > 1:
            raise _dead(exc) from None  # its attempts are spent: dead, as fastq says
        raise
    _after(job, func, args, kwargs, options, started, True, value, None)
    return value


def _intended(job_id: str) -> str:
    """The slot a scheduled run stands for (Django-Q2's intended_date_kwarg)."""
    from fastq_django.models import ScheduleRun

    run = (
        ScheduleRun.objects.filter(job_id=uuid.UUID(job_id)).values_list("slot", flat=True).first()
    )
    return (run or timezone.now()).isoformat()


def _after(
    job: Any,
    func: str,
    args: list[Any],
    kwargs: dict[str, Any],
    options: dict[str, Any],
    started: datetime,
    success: bool,
    result: Any,
    exc: BaseException | None,
) -> None:
    """After a run: the schedule's repeats, then the hook (a failing hook is logged)."""
    if options.get("schedule") and (
        options.get("schedule_type") == Schedule.ONCE or int(options.get("repeats", -1)) > 0
    ):
        _count_repeat(str(options["schedule"]))
    hook = options.get("hook")
    if not hook:
        return
    task = Task(
        id=uuid.UUID(job.id) if job else uuid.uuid4(),
        fastq_task=CALL,
        queue=options.get("cluster") or conf.queue(),
        state="succeeded" if success else "failed",
        group=options.get("group"),
        args_json=json.dumps([func, list(args), dict(kwargs), options], default=str),
        result_json=json.dumps(result, default=str) if success else None,
        error_type="" if success else type(exc).__qualname__,
        error="" if success else str(exc),
        traceback="" if success else traceback.format_exc(),
        started=started,
        stopped=timezone.now(),
        attempt_count=job.attempt if job else 1,
    )
    try:
        paths.resolve(hook)(task)
    except Exception as hook_exc:
        log.error("return hook %s failed on [%s] because %s", hook, task.name, hook_exc)


def _count_repeat(name: str) -> None:
    """One run of a schedule with repeats: count it down; at 0 the schedule stops (a ONCE
    schedule with repeats -1 is deleted, as Django-Q2 does)."""
    with transaction.atomic():
        s = Schedule.objects.select_for_update().filter(name=name).first()
        if s is None:
            return
        if s.schedule_type == Schedule.ONCE:
            if s.repeats < 0:
                s.delete()
                return
            s.repeats = 0
        elif s.repeats > 0:
            s.repeats = s.repeats - 1
        else:
            return
        s.enabled = s.repeats != 0
        s.save()


def _label(option: str, value: Any, most: int) -> str:
    """A label a column stores (group, queue, name): text of at most ``most`` characters
    with no NUL or lone surrogate, else ValueError naming the option."""
    text = str(value)
    if len(text) > most:
        raise ValueError(f"async_task: {option} of {len(text)} characters (at most {most})")
    if "\x00" in text:
        raise ValueError(f"async_task: {option} contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"async_task: {option} contains a lone surrogate") from None
    return text


def _split(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(Django-Q2 options, the function's keyword arguments) of async_task's kwargs."""
    keywords = dict(kwargs)
    q_options = dict(keywords.pop("q_options", None) or {})
    options: dict[str, Any] = {}
    for key in OPTIONS:
        if key in q_options:
            options[key] = q_options[key]
        elif key in keywords:
            options[key] = keywords.pop(key)
    return options, keywords


def async_task(func: Any, *args: Any, **kwargs: Any) -> str:
    """Queue ``func`` (a dotted path or a module-level function) with ``args`` and
    ``kwargs``. Options (keywords or ``q_options={...}``): ``hook`` (path or function run
    after the task with its Task), ``group`` (a label for result_group/count_group/
    delete_group), ``timeout`` (seconds: hard time limit), ``cluster`` (the queue),
    ``task_name``, ``ack_failure``, ``sync`` (run inline). Returns the task id (32 hex).
    A path outside the project's code raises ForbiddenPath here; arguments must be JSON."""
    options, keywords = _split(kwargs)
    path = func if isinstance(func, str) else paths.path_of(func)
    paths.resolve(path)  # refused here, before anything is written, as in the worker
    hook = options.get("hook")
    if hook is not None and not isinstance(hook, str):
        hook = paths.path_of(hook)
    if hook is not None:
        paths.resolve(hook)
    group = options.get("group")
    if group is not None:
        group = _label("group", group, 100)
    for key, most in (("cluster", 100), ("task_name", 100)):
        if options.get(key) is not None:
            options[key] = _label(key, options[key], most)
    meta = {
        k: v
        for k, v in {
            "hook": hook,
            "group": group,
            "name": options.get("task_name"),
            "cluster": options.get("cluster"),
            "ack_failure": options.get("ack_failure"),
        }.items()
        if v is not None
    }
    timeout = options.get("timeout")
    time_limit = limits.time_limit("timeout", timeout, f"async_task({path}): ") if timeout else None
    args_json, kwargs_json = encode_arguments(CALL, (path, list(args), keywords, meta), {})
    job = NewJob(
        id=_core.new_job_id(),
        task=CALL,
        queue=str(options.get("cluster") or conf.queue()),
        priority=0,
        args=args_json,
        kwargs=kwargs_json,
        max_attempts=conf.attempts(),
        time_limit=time_limit or call.time_limit,
        group_label=group or "",
    )
    if options.get("sync", Conf.SYNC) or fastq.conf.get("EAGER"):
        return _sync(job, args_json)
    (job_id,) = fastq.get_broker().enqueue([job])
    return uuid.UUID(job_id).hex


def _sync(job: NewJob, args_json: str) -> str:
    """Django-Q2's sync=True: run now, in this process, and record the outcome as a job
    (the core's record_finished: its texts made storable as a worker's are)."""
    args = json.loads(args_json)
    state, result, error = "succeeded", None, ("", "", "")
    started = timezone.now()
    try:
        result = json.dumps(json.loads(_core.encode_json(call(*args), "result")))
    except Exception as exc:
        state, error = "failed", (type(exc).__qualname__, str(exc), traceback.format_exc())
    fastq.get_broker().record_finished(job, state, result, error, started, timezone.now())
    return uuid.UUID(job.id).hex


def _wait(fetcher: Callable[[], Any], wait: int) -> Any:
    """Django-Q2's wait: milliseconds to wait for a non-empty answer (-1: for ever)."""
    start = time.monotonic()
    delay = 0.005
    while True:
        r = fetcher()
        if r:
            return r
        if wait >= 0 and (time.monotonic() - start) * 1000 >= wait:
            return r
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def result(task_id: Any, wait: int = 0, cached: bool = False) -> Any:
    """The result of a finished task (None until it finished); waits up to ``wait`` ms."""
    found = _wait(lambda: Task.get_task(task_id), wait)
    return found.result if found is not None else None


def fetch(task_id: Any, wait: int = 0, cached: bool = False) -> Task | None:
    """The finished Task (None until it finished); waits up to ``wait`` ms."""
    return _wait(lambda: Task.get_task(task_id), wait)


def _count_then(group_id: str, count: int | None, wait: int) -> None:
    if count:
        start = time.monotonic()
        while count_group(group_id) < count:
            if wait >= 0 and (time.monotonic() - start) * 1000 >= wait:
                break
            time.sleep(0.01)


def result_group(
    group_id: str,
    failures: bool = False,
    wait: int = 0,
    count: int | None = None,
    cached: bool = False,
) -> list[Any] | None:
    """Results of the group's finished tasks (with failures' texts when ``failures``);
    with ``count``, first wait (up to ``wait`` ms) until that many finished."""
    _count_then(group_id, count, wait)
    return _wait(lambda: Task.get_result_group(group_id, failures), wait) or None


def fetch_group(
    group_id: str,
    failures: bool = True,
    wait: int = 0,
    count: int | None = None,
    cached: bool = False,
) -> Any:
    _count_then(group_id, count, wait)
    return _wait(lambda: list(Task.get_task_group(group_id, failures)), wait) or None


def count_group(group_id: str, failures: bool = False, cached: bool = False) -> int:
    """How many of the group's tasks finished (``failures``: how many failed)."""
    if failures:
        return Failure.objects.filter(group=group_id).count()
    return Task.objects.filter(group=group_id).count()


def delete_group(group_id: str, tasks: bool = False, cached: bool = False) -> Any:
    """Remove the group label from its tasks, or (``tasks=True``) delete its finished
    tasks."""
    return Task.delete_group(group_id, tasks)


def delete_cached(task_id: Any, broker: Any = None) -> None:
    return None


def queue_size(broker: Any = None) -> int:
    """Jobs waiting in the queue (not the running ones)."""
    from fastq_django.models import Job

    return Job.objects.filter(state="queued").count()


def schedule(func: Any, *args: Any, **kwargs: Any) -> Schedule:
    """Create a schedule: ``schedule("app.tasks.report", 1, name=..., hook=...,
    schedule_type=Schedule.DAILY, minutes=..., repeats=-1, next_run=..., cron=...,
    cluster=..., intended_date_kwarg=..., **kwargs)``. A name already taken raises
    IntegrityError, as in Django-Q2."""
    from django.db import IntegrityError

    name = kwargs.pop("name", None)
    hook = kwargs.pop("hook", None)
    schedule_type = kwargs.pop("schedule_type", Schedule.ONCE)
    minutes = kwargs.pop("minutes", None)
    repeats = kwargs.pop("repeats", -1)
    next_run = kwargs.pop("next_run", None) or timezone.now()
    cron = kwargs.pop("cron", None)
    cluster = kwargs.pop("cluster", None)
    intended = kwargs.pop("intended_date_kwarg", None)
    q_options = kwargs.pop("q_options", None)
    if name and Schedule.objects.filter(name=name).exists():
        raise IntegrityError("A schedule with the same name already exists.")
    s = Schedule(
        name=name,
        func=func if isinstance(func, str) else paths.path_of(func),
        hook=hook,
        schedule_type=schedule_type,
        minutes=minutes,
        repeats=repeats,
        next_run=next_run,
        cron=cron,
        cluster=cluster,
        intended_date_kwarg=intended,
    )
    s._set(1, list(args))
    s._set(2, dict(kwargs))
    if q_options:
        s._set_opt("group", q_options.get("group"))
    s.save()
    return s


class AsyncTask:
    """Django-Q2's AsyncTask: ``AsyncTask(func, *args, **kwargs).run()`` then
    ``.result(wait=)`` / ``.fetch(wait=)``."""

    def __init__(self, func: Any, *args: Any, **kwargs: Any) -> None:
        self.id = ""
        self.started = False
        self.func = func
        self.args = args
        self.kwargs = kwargs

    def _get_option(self, key: str, default: Any = None) -> Any:
        if "q_options" in self.kwargs:
            return self.kwargs["q_options"].get(key, default)
        return self.kwargs.get(key, default)

    def _set_option(self, key: str, value: Any) -> None:
        if "q_options" in self.kwargs:
            self.kwargs["q_options"][key] = value
        else:
            self.kwargs[key] = value
        self.started = False

    hook = property(
        lambda self: self._get_option("hook"), lambda self, v: self._set_option("hook", v)
    )
    group = property(
        lambda self: self._get_option("group"), lambda self, v: self._set_option("group", v)
    )
    sync = property(
        lambda self: self._get_option("sync"), lambda self, v: self._set_option("sync", v)
    )
    save = property(
        lambda self: self._get_option("save"), lambda self, v: self._set_option("save", v)
    )
    cached = property(lambda self: False, lambda self, v: None)
    broker = property(lambda self: None, lambda self, v: None)

    def run(self) -> str:
        self.id = async_task(self.func, *self.args, **self.kwargs)
        self.started = True
        return self.id

    def result(self, wait: int = 0) -> Any:
        if self.started:
            return result(self.id, wait=wait)
        return None

    def fetch(self, wait: int = 0) -> Task | None:
        if self.started:
            return fetch(self.id, wait=wait)
        return None

    def result_group(self, failures: bool = False, wait: int = 0, count: int | None = None) -> Any:
        if self.started and self.group:
            return result_group(self.group, failures=failures, wait=wait, count=count)
        return None

    def fetch_group(self, failures: bool = True, wait: int = 0, count: int | None = None) -> Any:
        if self.started and self.group:
            return fetch_group(self.group, failures=failures, wait=wait, count=count)
        return None


def async_chain(
    chain: list[Any],
    group: str | None = None,
    cached: bool = False,
    sync: bool = False,
    broker: Any = None,
) -> str:
    """Run ``[(func, (args), {kwargs}), ...]`` one after the other (each after the previous
    finished; results are not passed on), all under the group label ``group``. Built on
    fastq's workflows (``fastq.chain`` of immutable signatures of the dotted-path task)."""
    group = _label("group", group, 100) if group else uuid.uuid4().hex
    steps = []
    for entry in chain:
        item = entry if isinstance(entry, tuple) else (entry,)
        func = item[0] if isinstance(item[0], str) else paths.path_of(item[0])
        paths.check(func)
        step_args = list(item[1]) if len(item) > 1 else []
        step_kwargs = dict(item[2]) if len(item) > 2 else {}
        options, keywords = _split(step_kwargs)
        meta = {"group": group}
        if options.get("hook"):
            meta["hook"] = options["hook"]
        steps.append(call.si(func, step_args, keywords, meta))
    # Each step carries the label from its enqueue, so the group counts it before it runs.
    fastq.chain(*steps).apply_async(group_label=group)
    return group


class Chain:
    """Django-Q2's Chain: ``append(func, *args, **kwargs)`` then ``run()``; ``result()``,
    ``fetch()``, ``current()`` read its group (needs fastq's workflows)."""

    def __init__(
        self,
        chain: list[Any] | None = None,
        group: str | None = None,
        cached: bool = False,
        sync: bool = False,
        broker: Any = None,
    ) -> None:
        self.chain = chain or []
        self.group = group or ""
        self.started = False

    def append(self, func: Any, *args: Any, **kwargs: Any) -> int:
        self.chain.append((func, args, kwargs))
        if self.started:
            delete_group(self.group)
            self.started = False
        return self.length()

    def run(self) -> str:
        self.group = async_chain(self.chain[:], group=self.group or None)
        self.started = True
        return self.group

    def result(self, wait: int = 0) -> Any:
        if self.started:
            return result_group(self.group, wait=wait, count=self.length())
        return None

    def fetch(self, failures: bool = True, wait: int = 0) -> Any:
        if self.started:
            return fetch_group(self.group, failures=failures, wait=wait, count=self.length())
        return None

    def current(self) -> int | None:
        if not self.started:
            return None
        return count_group(self.group)

    def length(self) -> int:
        return len(self.chain)


__all__ = [
    "AsyncTask",
    "Chain",
    "async_chain",
    "async_task",
    "count_group",
    "delete_group",
    "fetch",
    "fetch_group",
    "queue_size",
    "result",
    "result_group",
    "schedule",
]


@fastq.task(name="fastq.compat.django_q.save_limit", queue=conf.queue())
def prune_successes() -> int:
    """Q_CLUSTER['save_limit']: keep the newest N successful Django-Q2 tasks (-1: none);
    failures are kept. Run every minute by the workers' scheduler."""
    from fastq_django.models import Job

    limit = int(Conf.SAVE_LIMIT or 0)
    if limit == 0:
        return 0
    keep = max(0, limit)
    broker = fastq.get_broker()
    done = Job.objects.using(broker.alias).filter(task=CALL, state="succeeded")
    kept = list(done.order_by("-finished_at", "-id").values_list("pk", "finished_at")[:keep])
    older = done.exclude(pk__in=[pk for pk, _ in kept])
    if kept:
        # Not the ones that finished while this ran: they are newer than every kept one.
        older = older.filter(finished_at__lte=kept[-1][1])
    deleted = 0
    last = None
    while True:  # 10,000 a statement, by id: what must stay is stepped over
        page = older.order_by("pk") if last is None else older.filter(pk__gt=last).order_by("pk")
        ids = list(page.values_list("pk", flat=True)[:10_000])
        if not ids:
            return deleted
        deleted += broker.forget([str(pk) for pk in ids])
        last = ids[-1]


def _schedules() -> dict[str, Any]:
    """The save_limit pruning as a fastq schedule (fastq.schedules.providers)."""
    from fastq.schedules import PeriodicSchedule

    if int(Conf.SAVE_LIMIT or 0) == 0:
        return {}
    return {
        "django_q.save_limit": PeriodicSchedule(
            name="django_q.save_limit",
            task="fastq.compat.django_q.save_limit",
            every=60.0,
            queue=conf.queue(),
        )
    }

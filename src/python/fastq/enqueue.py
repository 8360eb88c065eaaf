"""Enqueueing a task's calls: ``delay``/``apply_async`` and ``map`` (the methods of
:class:`fastq.Task` call these), the per-call options (countdown, eta, expires, queue,
priority, retries, time limits) resolved over the task's, and the unknown-queue check.

A job is checked whole before the broker sees it: a bad value raises here, naming the
argument, and nothing is written (fastq.limits)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fastq import _core, conf, limits, signals
from fastq.brokers import NewJob, get_broker, to_micros
from fastq.result import AsyncResult
from fastq.serialization import encode_arguments

if TYPE_CHECKING:
    from fastq.task import Task

# How many jobs task.map() inserts per round trip.
MAP_BATCH = 5000


def apply_async(
    task: Task[Any, Any],
    args: Iterable[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    countdown: float | timedelta | None = None,
    eta: datetime | None = None,
    queue: str | None = None,
    priority: int | None = None,
    max_retries: int | None = None,
    expires: float | timedelta | datetime | None = None,
    time_limit: float | None = None,
    soft_time_limit: float | None = None,
) -> AsyncResult:
    """:meth:`fastq.Task.apply_async`: one job, or an eager run under ``FASTQ["EAGER"]``."""
    job = new_job(
        task,
        tuple(args),
        dict(kwargs or {}),
        countdown,
        eta,
        queue,
        priority,
        max_retries,
        expires,
        time_limit,
        soft_time_limit,
    )
    if conf.get("EAGER"):
        return task._run_eagerly(job)
    broker = get_broker()
    (job_id,) = broker.enqueue([job])
    if job_id == job.id and signals.task_enqueued.has_listeners(task):
        signals.task_enqueued.send(sender=task, job_ids=[job.id])
    return AsyncResult(job_id, broker)


def map_calls(task: Task[Any, Any], calls: Iterable[Iterable[Any]]) -> list[AsyncResult]:
    """:meth:`fastq.Task.map`: one job per argument tuple, with the task's options.

    The batch is built in the C++ core (ids, JSON arguments) and handed to the broker in
    one piece (on PostgreSQL: ``COPY``). Tasks with unique or rate-limit keys, which need
    Python per call, take the per-job path."""
    if task.unique or task.rate_limit_key is not None or conf.get("EAGER"):
        return _map_jobs(task, calls)
    if task._signature is not None:
        # Positional calls only: counting them is enough (and costs ~50 ns a call,
        # where binding each would halve map()'s rate); a count out of range is bound
        # for its message.
        calls = [c if isinstance(c, tuple) else tuple(c) for c in calls]
        low, high = task._arity
        for call in calls:
            if not low <= len(call) <= high:
                task._check_call(call, {})
    expires_at = None
    if isinstance(task.expires, datetime):
        expires_at = to_micros(task.expires)
    elif task.expires is not None:
        expires_at = to_micros(after("expires", task.expires, f"{task.name}.map(): "))
    batch = _core.job_batch(
        task.name,
        task.queue,
        task.priority,
        task.max_retries + 1,
        None,
        expires_at,
        task.time_limit,
        task.soft_time_limit,
        calls,
    )
    if not len(batch):
        return []
    broker = get_broker()
    ids = broker.enqueue_batch(batch)
    if signals.task_enqueued.has_listeners(task):
        signals.task_enqueued.send(sender=task, job_ids=ids)
    return [AsyncResult(i, broker) for i in ids]


def _map_jobs(task: Task[Any, Any], calls: Iterable[Iterable[Any]]) -> list[AsyncResult]:
    """:func:`map_calls` one :class:`NewJob` at a time (unique and rate-limit keys, eager
    mode), ``MAP_BATCH`` jobs per broker call."""
    jobs = [
        new_job(task, tuple(a), {}, None, None, None, None, None, None, None, None) for a in calls
    ]
    if conf.get("EAGER"):
        return [task._run_eagerly(j) for j in jobs]
    broker = get_broker()
    ids: list[str] = []
    for start in range(0, len(jobs), MAP_BATCH):
        ids += broker.enqueue(jobs[start : start + MAP_BATCH])
    if jobs and signals.task_enqueued.has_listeners(task):
        new = [i for i, j in zip(ids, jobs, strict=True) if i == j.id]
        signals.task_enqueued.send(sender=task, job_ids=new)
    return [AsyncResult(i, broker) for i in ids]


def new_job(
    task: Task[Any, Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    countdown: float | timedelta | None,
    eta: datetime | None,
    queue: str | None,
    priority: int | None,
    max_retries: int | None,
    expires: float | datetime | None,
    time_limit: float | None,
    soft_time_limit: float | None,
    prepended: int = 0,
) -> NewJob:
    """The job a call of ``task`` with these options makes, every option checked.
    ``prepended``: how many positional arguments the job gets in front of ``args`` when
    it runs (a workflow step receives its parents' result first)."""
    args_json, kwargs_json = encode_arguments(task.name, args, kwargs)
    task._check_call((None,) * prepended + tuple(args), kwargs)
    where = f"{task.name}(): "
    if countdown is not None and eta is not None:
        raise ValueError(f"{where}pass countdown or eta, not both")
    run_at = None
    if countdown is not None:
        run_at = after("countdown", countdown, where)
    elif eta is not None:
        run_at = limits.aware_datetime("eta", eta, where)
    expires_at = None
    if expires is None:
        expires = task.expires
    if isinstance(expires, datetime):
        expires_at = limits.aware_datetime("expires", expires, where)
    elif expires is not None:
        expires_at = after("expires", expires, where)
    priority = task.priority if priority is None else limits.priority(priority, where)
    if max_retries is None:
        max_retries = task.max_retries
    else:
        max_retries = limits.max_retries(max_retries, where)
    if time_limit is None:
        time_limit = task.time_limit
    else:
        time_limit = limits.time_limit("time_limit", time_limit, where)
    if soft_time_limit is None:
        soft_time_limit = task.soft_time_limit
    else:
        soft_time_limit = limits.time_limit("soft_time_limit", soft_time_limit, where)
    if queue:
        check_queue(queue)
    return NewJob(
        id=_core.new_job_id(),
        task=task.name,
        queue=queue or task.queue,
        priority=priority,
        args=args_json,
        kwargs=kwargs_json,
        run_at=run_at,
        max_attempts=max_retries + 1,
        expires_at=expires_at,
        unique_key=unique_key(task, args, kwargs, args_json, kwargs_json),
        time_limit=time_limit,
        soft_time_limit=soft_time_limit,
        rate_key=f"{task.name}:{task.rate_limit_key(*args, **kwargs)}"
        if task.rate_limit_key is not None
        else "",
    )


def unique_key(
    task: Task[Any, Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    args_json: str,
    kwargs_json: str,
) -> str:
    """The key a unique task's call holds while its job is queued or running ("" for a
    task that is not unique)."""
    if task.unique_key is not None:
        return f"{task.name}:{task.unique_key(*args, **kwargs)}"
    if task.unique:
        digest = hashlib.sha256(f"{args_json}\n{kwargs_json}".encode()).hexdigest()
        return f"{task.name}:{digest[:32]}"
    return ""


# Queues checked (and warned about when unknown), once each per process.
_warned_queues: set[str] = set()


def known_queues() -> set[str]:
    """Queues some worker configuration names: a registered task's queue, an entry of
    ``FASTQ["QUEUES"]``, and "default"."""
    from fastq.task import registry  # fastq.task imports this module

    return {"default", *(t.queue for t in registry.values()), *(conf.get("QUEUES") or ())}


def check_queue(queue: str) -> None:
    """Logs a warning, once per queue and process, for a job sent to a queue that no
    registered task and no ``FASTQ["QUEUES"]`` entry names: a worker started without
    ``--queues`` would never take it (a typo, most of the time)."""
    if queue in _warned_queues:
        return
    known = queue in known_queues()
    # Checked once per queue: tasks are only ever added, so a known queue stays known.
    _warned_queues.add(queue)
    if known:
        return
    logging.getLogger("fastq.task").warning(
        "job enqueued on queue %r, which no registered task and no FASTQ['QUEUES'] entry "
        "names: only a worker started with --queues %s takes it (known queues: %s)",
        queue,
        queue,
        ", ".join(sorted(known_queues())),
    )


def after(option: str, value: Any, where: str) -> datetime:
    """Now plus ``value`` seconds (a finite number; negative is in the past)."""
    s = limits.seconds(option, value, where)
    try:
        return datetime.now(UTC) + timedelta(seconds=s)
    except OverflowError:
        raise ValueError(
            f"{where}{option} of {s} seconds reaches past the dates a job can hold"
        ) from None

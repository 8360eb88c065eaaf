"""``celery.canvas`` over fastq's workflows: the names Celery's canvas module has
(``Signature``, ``signature``, ``group``, ``chain``, ``chord`` are fastq's own) and the map
operations Celery defines on top of them:

- ``xmap(task, it)`` (``task.map(it)``): one job, ``celery.map``, that calls the task on
  each item in turn, in the worker, and returns the list of results: ``[task(x) for x in
  it]``. Not parallel, as in Celery.
- ``xstarmap(task, it)`` (``task.starmap(it)``): the same with ``task(*x)``
  (``celery.starmap``).
- ``chunks(task, it, n)`` (``task.chunks(it, n)``): ``it`` cut into parts of ``n`` items,
  each part one ``xstarmap`` job, all of them a group: ``.apply_async()`` returns its
  ``GroupResult``, whose ``get()`` is a list of lists. ``.group()`` gives that group
  unsent; sent as a step of another canvas it is the task ``celery.chunks``, which
  enqueues the group from the worker.

The task is named in the job (its registered name), never imported from it: the worker
runs it only if it has registered that name, as for any job. The jobs go to the mapped
task's queue (its ``queue=``, its route, else the default queue), as Celery routes them by
the mapped task's name.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable, Mapping
from itertools import islice
from typing import Any

import fastq
from fastq.canvas import Signature, chain, chord, group, signature

MAP = "celery.map"
STARMAP = "celery.starmap"
CHUNKS = "celery.chunks"
BUILTINS = (MAP, STARMAP, CHUNKS)

# Celery's signature options with no meaning here (accepted, as Celery accepts them).
_IGNORED = frozenset({"app", "immutable", "subtask_type", "route_name", "routing_key"})


def _name_of(task: Any) -> str:
    """The registered name a map operation calls: a task, a signature of one, or a name."""
    if isinstance(task, str):
        name = task
    elif isinstance(task, Signature):
        name = task.name
    else:
        name = getattr(task, "name", None)
    if not isinstance(name, str) or not name or len(name) > 255 or "\x00" in name:
        raise TypeError(f"{task!r:.80}: a task, a signature of one, or a task's name")
    if name in BUILTINS:
        raise TypeError(f"{name} cannot map itself")
    return name


def _queue_of(task: Any, name: str) -> str | None:
    """The queue Celery would route the mapped task to."""
    if isinstance(task, Signature) and task.options.get("queue"):
        return str(task.options["queue"])
    registered = fastq.registry.get(name)
    if registered is not None:
        return str(registered.queue)
    from fastq.compat.celery._app import current_app

    return current_app()._static_queue(name)


def _options(task: Any, name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in options.items() if k not in _IGNORED}
    if "queue" not in out:
        queue = _queue_of(task, name)
        if queue:
            out["queue"] = queue
    return out


def _result(job: Any, name: str) -> Any:
    """A Celery AsyncResult over the job fastq's canvas enqueued."""
    from fastq.compat.celery.result import AsyncResult

    return AsyncResult(job.id, task_name=name)


class _basemap(Signature):
    """A map operation: one immutable signature of a builtin task."""

    _builtin = ""
    _shape = ""

    def __init__(self, task: Any, it: Iterable[Any], **options: Any) -> None:
        name = _name_of(task)
        items = [self._item(x) for x in it]
        super().__init__(
            self._builtin,
            (),
            {"task": name, "it": items},
            _options(task, name, options),
            immutable=True,
        )
        self.task = name

    @staticmethod
    def _item(x: Any) -> Any:
        return x

    @property
    def it(self) -> list[Any]:
        return list(self.kwargs["it"])

    def apply_async(  # type: ignore[override]
        self,
        args: Iterable[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **opts: Any,
    ) -> Any:
        """Enqueue the one job (``args``/``kwargs`` are ignored: the signature is
        immutable, as Celery's) and return its AsyncResult, whose result is the list."""
        return _result(
            super().apply_async((), {}, **{k: v for k, v in opts.items() if k not in _IGNORED}),
            self._builtin,
        )

    def __repr__(self) -> str:
        return f"[{self.task}({self._shape}) for x in {reprlib.repr(self.kwargs['it'])}]"


class xmap(_basemap):
    """``[task(x) for x in it]`` in one job (Celery's ``celery.map``)."""

    _builtin = MAP
    _shape = "x"


class xstarmap(_basemap):
    """``[task(*x) for x in it]`` in one job (Celery's ``celery.starmap``)."""

    _builtin = STARMAP
    _shape = "*x"

    @staticmethod
    def _item(x: Any) -> Any:
        if isinstance(x, str | bytes | Mapping) or not isinstance(x, Iterable):
            raise TypeError(f"starmap: each item is a sequence of arguments, not {x!r:.80}")
        return list(x)


def _parts(items: list[Any], n: int) -> list[list[Any]]:
    it = iter(items)
    out = []
    while part := list(islice(it, n)):
        out.append(part)
    return out


class chunks(Signature):
    """``it`` cut into parts of ``n`` items, each part an :class:`xstarmap` job, the parts
    a group (Celery's ``chunks``)."""

    def __init__(self, task: Any, it: Iterable[Any], n: int, **options: Any) -> None:
        name = _name_of(task)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"chunks: n must be a positive integer, not {n!r}")
        items = [xstarmap._item(x) for x in it]
        super().__init__(
            CHUNKS,
            (),
            {"task": name, "it": items, "n": n},
            _options(task, name, options),
            immutable=True,
        )
        self.task = name

    @property
    def it(self) -> list[Any]:
        return list(self.kwargs["it"])

    @property
    def n(self) -> int:
        return int(self.kwargs["n"])

    def group(self) -> group:
        """The group of :class:`xstarmap` parts, not sent yet."""
        return group(xstarmap(self.task, part, **self.options) for part in _parts(self.it, self.n))

    def apply_async(  # type: ignore[override]
        self,
        args: Iterable[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **opts: Any,
    ) -> Any:
        """Enqueue the parts as a group; returns its ``GroupResult`` (``get()``: a list of
        lists). Empty ``it``: an empty list of results, nothing enqueued."""
        from fastq.compat.celery.result import GroupResult

        parts = self.group()
        if not parts.tasks:
            return GroupResult(fastq._core.new_job_id(), [])
        sent = parts.apply_async((), {}, **{k: v for k, v in opts.items() if k not in _IGNORED})
        return GroupResult(
            sent.id, [_result(r, STARMAP) for r in sent.children], root_id=sent.root_id
        )

    def __call__(self, *args: Any, **options: Any) -> Any:
        return self.apply_async(**options)

    @classmethod
    def apply_chunks(cls, task: Any, it: Iterable[Any], n: int, **options: Any) -> Any:
        return cls(task, it, n, **options)()

    def __repr__(self) -> str:
        return f"chunks({self.task}, {reprlib.repr(self.kwargs['it'])}, {self.n})"


def maybe_signature(d: Any, app: Any = None) -> Any:
    """Celery's ``maybe_signature``: a signature stays one; None stays None."""
    if d is None or isinstance(d, Signature):
        return d
    if isinstance(d, Mapping) and "task" in d:
        return signature(d["task"], d.get("args", ()), d.get("kwargs"), **(d.get("options") or {}))
    raise TypeError(f"not a signature: {d!r:.80}")


# -- the builtin tasks the worker runs ----------------------------------------------------


def _target(name: Any) -> Any:
    """The registered task a map job calls (never an import: only names this worker
    registered)."""
    if not isinstance(name, str) or name in BUILTINS:
        raise LookupError(f"{name!r:.80} is not a task a map operation can call")
    task = fastq.registry.get(name)
    if task is None:
        raise LookupError(f"task {name!r:.200} is not registered in this worker")
    return task


@fastq.task(name=MAP, queue="celery", max_retries=0)
def run_map(task: str, it: list[Any]) -> list[Any]:
    """``celery.map``: ``[task(x) for x in it]``, in order, in this job."""
    t = _target(task)
    return [t(x) for x in it]


@fastq.task(name=STARMAP, queue="celery", max_retries=0)
def run_starmap(task: str, it: list[list[Any]]) -> list[Any]:
    """``celery.starmap``: ``[task(*x) for x in it]``, in order, in this job."""
    t = _target(task)
    return [t(*x) for x in it]


@fastq.task(name=CHUNKS, queue="celery", max_retries=0)
def run_chunks(task: str, it: list[list[Any]], n: int) -> str:
    """``celery.chunks`` sent as a step: enqueues the parts as a group from the worker and
    returns the group's id (``GroupResult.restore(id)`` reads it)."""
    result = chunks(_target(task), it, n).apply_async()
    return str(result.id)


__all__ = [
    "Signature",
    "chain",
    "chord",
    "chunks",
    "group",
    "maybe_signature",
    "signature",
    "xmap",
    "xstarmap",
]

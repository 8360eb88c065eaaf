"""Workflows: signatures, chains, groups, chords and dependency graphs (docs/workflows.md).

    (fetch.s(url) | parse.s() | store.s()).delay()           # a chain
    fastq.group(resize.s(i) for i in ids).delay().get()      # a group: results in order
    fastq.chord((price.s(o) for o in orders), report.s())()  # report(list_of_prices)

A canvas is compiled into jobs and dependencies and enqueued in one piece, in the
caller's transaction (``Broker.enqueue_workflow``). Steps whose parents have not finished
wait in the database (state ``waiting``); the worker that finishes a step's last parent
releases it in the same transaction as that completion, passing the parents' results on
(src/cpp/core/workflow.cpp). A failed step cancels what depends on it ("upstream job <id>
failed") and runs its error handlers (``link_error`` / ``.on_error``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastq import _core, conf
from fastq.brokers import Broker, NewJob, get_broker
from fastq.result import AsyncResult, TaskFailed, TimeoutError

# What a step receives from its parents (fastq::PassResults) and does when one fails
# (fastq::OnFailure); the numbers are the database's.
PASS_NONE, PASS_ONE, PASS_LIST = 0, 1, 2
ON_FAILURE_CANCEL, ON_FAILURE_RUN, ON_FAILURE_HANDLER = 0, 1, 2

# The options .set() and apply_async() take, as Task.apply_async names them.
_OPTIONS = frozenset(
    {
        "queue",
        "priority",
        "countdown",
        "eta",
        "expires",
        "max_retries",
        "time_limit",
        "soft_time_limit",
        "group_label",
    }
)


def _group_label(value: Any) -> str:
    """The ``group_label`` option: text of 1 to 100 characters (the column's width) without
    NUL, or None for no label."""
    if value is None:
        return ""
    if not isinstance(value, str) or not 0 < len(value) <= 100 or "\x00" in value:
        raise ValueError("group_label must be text of 1 to 100 characters without NUL")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("group_label contains a lone surrogate") from None
    return value


class Canvas:
    """What chains, groups, chords and signatures share: ``|``, ``.on_error``,
    ``.delay()`` and ``.apply_async()``."""

    def __init__(self) -> None:
        self.error_handlers: list[Signature] = []

    def __or__(self, other: Canvas) -> Canvas:
        if not isinstance(other, Canvas):
            return NotImplemented
        if isinstance(self, group) and isinstance(other, Signature):
            return chord(self, other)
        return chain(self, other)

    def on_error(self, handler: Signature) -> Canvas:
        """Run ``handler`` when any step of this ends failed or dead: it receives the
        failed job's id first (unless made with ``.si()``). Returns self."""
        if not isinstance(handler, Signature):
            raise TypeError("on_error() takes a signature: task.s(...) or task.si(...)")
        self.error_handlers.append(handler)
        return self

    link_error = on_error

    def delay(self, *args: Any, **kwargs: Any) -> Any:
        return self.apply_async(args, kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.apply_async(args, kwargs)

    def apply_async(
        self, args: Iterable[Any] = (), kwargs: Mapping[str, Any] | None = None, **options: Any
    ) -> Any:
        """Enqueue the whole canvas in one transaction; ``args``/``kwargs`` go to its
        first step(s), ``options`` (queue, priority, countdown, ...) to every step that
        does not set its own."""
        plan = _Plan(options)
        root = plan.build(self, [], False, tuple(args), dict(kwargs or {}), top=True)
        return plan.enqueue(self, root)

    def _steps(self) -> Iterator[Signature]:
        raise NotImplementedError


class Signature(Canvas):
    """A task call not made yet: ``task.s(1, 2)``, ``task.si(1, 2)`` or
    ``fastq.signature("app.tasks.add", (1, 2))``. A partial one (``.s()``) receives its
    parent's result as its first argument; an immutable one (``.si()``) does not."""

    def __init__(
        self,
        task: Any,
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        immutable: bool = False,
    ) -> None:
        super().__init__()
        name = task if isinstance(task, str) else getattr(task, "name", None)
        if not isinstance(name, str) or not name:
            raise TypeError("a signature needs a task or a registered task's name")
        self.name = name
        self.args = tuple(args)
        self.kwargs = dict(kwargs or {})
        self.options: dict[str, Any] = {}
        self.immutable = immutable
        if options:
            self.set(**options)

    def __repr__(self) -> str:
        call = ", ".join(
            [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        )
        return f"{self.name}.{'si' if self.immutable else 's'}({call})"

    def set(self, **options: Any) -> Signature:
        """Options for this step: queue, priority, countdown, eta, expires, max_retries,
        time_limit, soft_time_limit, group_label (a label the step's job carries from its
        enqueue: the admin filters by it, Django-Q2's groups count by it). Returns self."""
        unknown = set(options) - _OPTIONS
        if unknown:
            raise TypeError(
                f"{self.name}.set(): unknown option(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(_OPTIONS))}"
            )
        self.options.update(options)
        return self

    def clone(self, args: Iterable[Any] = (), kwargs: Mapping[str, Any] | None = None) -> Signature:
        """A copy with ``args`` appended and ``kwargs`` merged (Celery's partial)."""
        s = Signature(
            self.name,
            self.args + tuple(args),
            {**self.kwargs, **dict(kwargs or {})},
            dict(self.options),
            self.immutable,
        )
        s.error_handlers = list(self.error_handlers)
        return s

    def _steps(self) -> Iterator[Signature]:
        yield self


def signature(
    name: Any,
    args: Iterable[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    immutable: bool = False,
    **options: Any,
) -> Signature:
    """A signature of the task registered as ``name`` (or a Task)."""
    return Signature(name, args, kwargs, options, immutable)


def _canvas(item: Any, where: str) -> Canvas:
    if isinstance(item, Canvas):
        return item
    raise TypeError(f"{where} takes signatures (task.s(...)), chains, groups or chords")


class chain(Canvas):
    """Steps run one after another, each receiving the previous one's result."""

    def __init__(self, *tasks: Any) -> None:
        super().__init__()
        if len(tasks) == 1 and not isinstance(tasks[0], Canvas):
            tasks = tuple(tasks[0])
        flat: list[Canvas] = []
        for t in tasks:
            c = _canvas(t, "chain()")
            if isinstance(c, chain) and not c.error_handlers:
                flat.extend(c.tasks)
            else:
                flat.append(c)
        if not flat:
            raise ValueError("chain() needs at least one step")
        self.tasks = flat

    def __repr__(self) -> str:
        return " | ".join(repr(t) for t in self.tasks)

    def _steps(self) -> Iterator[Signature]:
        for t in self.tasks:
            yield from t._steps()


class group(Canvas):
    """Steps run in parallel; its result is the list of their results, in order."""

    def __init__(self, *tasks: Any) -> None:
        super().__init__()
        if len(tasks) == 1 and not isinstance(tasks[0], Canvas):
            tasks = tuple(tasks[0])
        self.tasks = [_canvas(t, "group()") for t in tasks]

    def __repr__(self) -> str:
        return f"group({', '.join(repr(t) for t in self.tasks)})"

    def __len__(self) -> int:
        return len(self.tasks)

    def _steps(self) -> Iterator[Signature]:
        for t in self.tasks:
            yield from t._steps()


class chord(Canvas):
    """A group, then ``body`` once every member finished, with the list of their results
    in order. With ``allow_failures=True`` the body runs even if members failed; a failed
    member's place in the list holds ``{"__fastq_failed__": {"job_id", "state",
    "error_type", "error"}}`` (see :func:`is_failure`)."""

    def __init__(self, header: Any, body: Any = None, allow_failures: bool = False) -> None:
        super().__init__()
        self.header = header if isinstance(header, group) else group(header)
        self.body = _canvas(body, "chord()") if body is not None else None
        self.allow_failures = allow_failures

    def __call__(self, body: Any = None, *args: Any, **kwargs: Any) -> Any:
        if body is not None and self.body is None and isinstance(body, Canvas):
            self.body = body
            return self.apply_async(args, kwargs)
        if body is not None:
            args = (body, *args)
        return self.apply_async(args, kwargs)

    def __repr__(self) -> str:
        return f"chord({self.header!r}, {self.body!r})"

    def _steps(self) -> Iterator[Signature]:
        yield from self.header._steps()
        if self.body is not None:
            yield from self.body._steps()


def is_failure(value: Any) -> bool:
    """True for the marker a chord with ``allow_failures=True`` passes for a member that
    did not succeed."""
    return isinstance(value, dict) and set(value) == {"__fastq_failed__"}


@dataclass
class Node:
    """A step added to a :class:`workflow`; pass it in ``after=[...]``."""

    canvas: Canvas
    after: list[Node]
    index: int
    outputs: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        """The job standing for this node's result (known once enqueued)."""
        if not self.outputs:
            raise RuntimeError("the workflow is not enqueued yet")
        return self.outputs[-1]


class workflow(Canvas):
    """A dependency graph, for what a canvas cannot say (diamonds, joins of chains)::

        w = fastq.workflow()
        a = w.add(fetch.s(1))
        b = w.add(fetch.s(2))
        w.add(merge.s(), after=[a, b])   # merge([result_a, result_b])
        w.apply_async()

    A node receives its parents' results like a chain step (one parent: its result; more:
    the list of them, in ``after`` order) unless its signature is immutable (``.si()``).
    """

    def __init__(self) -> None:
        super().__init__()
        self.nodes: list[Node] = []

    def add(self, canvas: Canvas, after: Iterable[Node] = ()) -> Node:
        _canvas(canvas, "workflow.add()")
        parents = list(after)
        for p in parents:
            if not isinstance(p, Node) or p not in self.nodes:
                raise ValueError("after= takes nodes returned by this workflow's add()")
        node = Node(canvas, parents, len(self.nodes))
        self.nodes.append(node)
        return node

    def _steps(self) -> Iterator[Signature]:
        for n in self.nodes:
            yield from n.canvas._steps()


@dataclass
class _Built:
    outputs: list[str]  # the jobs whose results stand for this part, in order
    is_group: bool  # a group's results travel as a list
    steps: list[str]  # every job of this part (error handlers attach to these)
    result: Any = None  # what apply_async returns for this part


class _Plan:
    """Compiles a canvas into jobs and dependencies, then enqueues them in one piece."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        unknown = set(options) - _OPTIONS
        if unknown:
            raise TypeError(f"apply_async(): unknown option(s) {', '.join(sorted(unknown))}")
        self.options = dict(options)
        self.root_id = _core.new_job_id()
        self.jobs: list[NewJob] = []
        self.edges: list[tuple[str, str, int]] = []
        self.records: list[tuple[str, str, str, str, list[str]]] = []
        self.broker: Broker | None = None
        self.results: dict[str, Any] = {}  # each step's result, as its task makes it

    def step(
        self,
        sig: Signature,
        parents: list[str],
        parents_group: bool,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        on_failure: int,
    ) -> str:
        from fastq.task import registry

        task = registry.get(sig.name) or _unregistered(sig.name)
        opts = {**self.options, **sig.options}
        full_args = sig.args + args
        # What the step receives in front of its own arguments when it runs.
        if not parents or sig.immutable:
            pass_results = PASS_NONE
        elif on_failure == ON_FAILURE_HANDLER:
            pass_results = PASS_ONE
        else:
            pass_results = PASS_LIST if parents_group or len(parents) > 1 else PASS_ONE
        full_kwargs = {**sig.kwargs, **kwargs}
        job = task._new_job(
            full_args,
            full_kwargs,
            opts.get("countdown"),
            opts.get("eta"),
            opts.get("queue"),
            opts.get("priority"),
            opts.get("max_retries"),
            opts.get("expires"),
            opts.get("time_limit"),
            opts.get("soft_time_limit"),
            prepended=0 if pass_results == PASS_NONE else 1,
        )
        if job.unique_key:
            raise ValueError(f"{sig.name}: unique tasks cannot be workflow steps")
        job = NewJob(
            id=job.id,
            task=job.task,
            queue=job.queue,
            priority=job.priority,
            args=job.args,
            kwargs=job.kwargs,
            run_at=job.run_at,
            max_attempts=job.max_attempts,
            expires_at=job.expires_at,
            time_limit=job.time_limit,
            soft_time_limit=job.soft_time_limit,
            rate_key=job.rate_key,
            workflow_id=self.root_id,
            pass_results=pass_results,
            on_failure=on_failure,
            group_label=_group_label(opts.get("group_label")),
        )
        self.jobs.append(job)
        self.results[job.id] = task._result_for(job.id)
        for position, parent in enumerate(parents):
            self.edges.append((parent, job.id, position))
        return job.id

    def build(
        self,
        node: Canvas,
        parents: list[str],
        parents_group: bool,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        on_failure: int = ON_FAILURE_CANCEL,
        top: bool = False,
    ) -> _Built:
        if isinstance(node, Signature):
            sid = self.step(node, parents, parents_group, args, kwargs, on_failure)
            built = _Built([sid], False, [sid], self.results[sid])
        elif isinstance(node, chain):
            outs, is_group, steps = parents, parents_group, []
            part: _Built | None = None
            for i, t in enumerate(node.tasks):
                previous = part
                part = self.build(
                    t,
                    outs,
                    is_group,
                    args if i == 0 else (),
                    kwargs if i == 0 else {},
                    on_failure if i == 0 else ON_FAILURE_CANCEL,
                )
                if previous is not None:
                    _link(part.result, previous.result)
                outs, is_group = part.outputs, part.is_group
                steps += part.steps
            assert part is not None
            built = _Built(outs, is_group, steps, part.result)
            if isinstance(part.result, AsyncResult):
                built.result = WorkflowResult(part.result.id, self.root_id, broker=None)
        elif isinstance(node, group):
            gid = self.root_id if top else _core.new_job_id()
            outs, steps, children = [], [], []
            for t in node.tasks:
                part = self.build(t, parents, parents_group, args, kwargs, on_failure)
                outs += part.outputs
                steps += part.steps
                children.append(part.result)
            self.records.append((gid, self.root_id, "group", _name(node), outs))
            built = _Built(outs, True, steps, _group_result(gid, children, self.root_id))
        elif isinstance(node, chord):
            if node.body is None:
                raise ValueError("chord() needs a body: chord(header, body) or chord(header)(body)")
            head = self.build(node.header, parents, parents_group, args, kwargs, on_failure)
            body = self.build(
                node.body,
                head.outputs,
                True,
                (),
                {},
                ON_FAILURE_RUN if node.allow_failures else ON_FAILURE_CANCEL,
            )
            result = body.result
            _link(result, head.result)
            if isinstance(result, AsyncResult) and not isinstance(result, WorkflowResult):
                result = WorkflowResult(result.id, self.root_id, broker=None)
            built = _Built(body.outputs, body.is_group, head.steps + body.steps, result)
        elif isinstance(node, workflow):
            if not node.nodes:
                raise ValueError("workflow() has no steps: add some with w.add(...)")
            steps = []
            for n in node.nodes:
                ins = [o for p in n.after for o in p.outputs]
                grouped = len(n.after) > 1 or any(_is_group(p.canvas) for p in n.after)
                part = self.build(
                    n.canvas,
                    ins if n.after else parents,
                    grouped if n.after else parents_group,
                    () if n.after else args,
                    {} if n.after else kwargs,
                    ON_FAILURE_CANCEL if n.after else on_failure,
                )
                n.outputs = part.outputs
                steps += part.steps
            leaves = [n for n in node.nodes if not any(n in m.after for m in node.nodes)]
            outs = [o for n in leaves for o in n.outputs]
            wid = self.root_id if top else _core.new_job_id()
            self.records.append(
                (wid, self.root_id, "workflow", _name(node), [n.outputs[-1] for n in node.nodes])
            )
            children = [AsyncResult(n.outputs[-1]) for n in node.nodes]
            built = _Built(outs, len(outs) > 1, steps, GroupResult(wid, children, self.root_id))
        else:
            raise TypeError(f"cannot enqueue {node!r}")
        for handler in node.error_handlers:
            self.step(handler, built.steps, False, (), {}, ON_FAILURE_HANDLER)
        if top and not isinstance(node, group | workflow):
            self.records.append(
                (self.root_id, self.root_id, type(node).__name__, _name(node), list(built.outputs))
            )
        return built

    def enqueue(self, canvas: Canvas, root: _Built) -> Any:
        if conf.get("EAGER"):
            raise RuntimeError(
                "workflows are not run eagerly: FASTQ['EAGER'] runs single tasks inline; "
                "run a worker (or fastq.Worker with burst=True) for chains, groups and chords"
            )
        if len(self.jobs) == 1 and not self.edges and isinstance(canvas, Signature):
            # A lone signature is an ordinary job.
            broker = get_broker()
            j = self.jobs[0]
            plain = NewJob(
                id=j.id,
                task=j.task,
                queue=j.queue,
                priority=j.priority,
                args=j.args,
                kwargs=j.kwargs,
                run_at=j.run_at,
                max_attempts=j.max_attempts,
                expires_at=j.expires_at,
                time_limit=j.time_limit,
                soft_time_limit=j.soft_time_limit,
                rate_key=j.rate_key,
            )
            (job_id,) = broker.enqueue([plain])
            result = root.result if getattr(root.result, "id", None) == job_id else None
            if result is None:
                result = AsyncResult(job_id, broker)
            _bind(result, broker)
            return result
        broker = get_broker()
        broker.enqueue_workflow(self.jobs, self.edges, self.records)
        _bind(root.result, broker)
        return root.result


def _is_group(c: Canvas) -> bool:
    if isinstance(c, group):
        return True
    if isinstance(c, chain):
        return _is_group(c.tasks[-1])
    if isinstance(c, chord):
        return c.body is not None and _is_group(c.body)
    return False


def _name(c: Canvas) -> str:
    names = [s.name.rsplit(".", 1)[-1] for s in c._steps()]
    text = ", ".join(dict.fromkeys(names))
    return text if len(text) <= 255 else text[:252] + "..."


def _link(result: Any, parent: Any) -> None:
    """A front end's results that follow their parents (Celery's ``result.parent``, fastq's
    compat results: a ``link_parent`` method) learn the part before them in a chain, or
    a chord's header. fastq's own results know their workflow instead."""
    link = getattr(result, "link_parent", None)
    if link is not None:
        link(parent)


def _group_result(gid: str, children: list[Any], root_id: str) -> Any:
    """A group's result: the front end's own group result when every member's result
    comes from that front end (a ``group_result`` class method on each), else fastq's
    :class:`GroupResult`."""
    makers = {getattr(type(c), "group_result", None) for c in children}
    if len(makers) == 1 and None not in makers:
        return makers.pop()(gid, children, root_id)
    return GroupResult(gid, children, root_id=root_id)


def _bind(result: Any, broker: Broker) -> None:
    if isinstance(result, AsyncResult):
        result._broker = broker
    elif isinstance(result, GroupResult):
        result._broker = broker
        for child in result.children:
            _bind(child, broker)


_UNREGISTERED: dict[str, Any] = {}


def _unregistered(name: str) -> Any:
    """A stand-in with the default options for a task this process does not know (a
    signature by name, run by workers that do): not registered, never run here."""
    from fastq.task import Task

    t = _UNREGISTERED.get(name)
    if t is None:
        t = Task.__new__(Task)
        t.name = name
        t.queue = "default"
        t.priority = 0
        t.max_retries = 3
        t.expires = None
        t.unique = False
        t.unique_key = None
        t.time_limit = None
        t.soft_time_limit = None
        t.rate_limit_key = None
        _UNREGISTERED[name] = t
    return t


class WorkflowResult(AsyncResult):
    """The result of a chain or chord: the last step's job, and the workflow it belongs
    to. ``get()`` raises :class:`TaskFailed` naming the step that failed; ``cancel()``
    cancels every step not finished yet."""

    def __init__(self, id: str, workflow_id: str, broker: Broker | None = None) -> None:
        super().__init__(id, broker)
        self.workflow_id = workflow_id

    def __repr__(self) -> str:
        return f"<WorkflowResult {self.id} of {self.workflow_id}>"

    def cancel(self) -> str:
        n = self.broker.cancel_workflow(self.workflow_id)
        return "cancelled" if n else "finished"


class GroupResult:
    """The results of a group's members, in order: ``fastq.group(...).delay()``."""

    def __init__(
        self,
        id: str,
        results: list[Any],
        root_id: str | None = None,
        broker: Broker | None = None,
    ) -> None:
        self.id = str(id)
        self.children = list(results)
        self.root_id = root_id or self.id
        self._broker = broker

    def __repr__(self) -> str:
        return f"<GroupResult {self.id}: {len(self.children)} member(s)>"

    def __len__(self) -> int:
        return len(self.children)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.children)

    def __getitem__(self, i: int) -> Any:
        return self.children[i]

    @property
    def results(self) -> list[Any]:
        return self.children

    @property
    def broker(self) -> Broker:
        return self._broker or get_broker()

    @classmethod
    def restore(cls, id: str, broker: Broker | None = None) -> GroupResult | None:
        """The group (or workflow) enqueued as ``id``, from any process; None if there is
        no such group."""
        b = broker or get_broker()
        record = b.fetch_workflow(str(id))
        if record is None:
            return None
        root_id, members = record
        return cls(str(id), [AsyncResult(m, b) for m in members], root_id, b)

    def ready(self) -> bool:
        return all(c.ready() for c in self.children)

    def successful(self) -> bool:
        return all(c.successful() for c in self.children)

    def failed(self) -> bool:
        return any(c.failed() for c in self.children)

    def waiting(self) -> bool:
        return not self.ready()

    def completed_count(self) -> int:
        """How many members succeeded."""
        return sum(1 for c in self.children if c.successful())

    def cancel(self) -> int:
        """Cancels every step of the workflow not finished yet (queued and waiting ones at
        once, running ones asked to stop); returns how many."""
        return self.broker.cancel_workflow(self.root_id)

    revoke = cancel

    def get(
        self, timeout: float | None = None, interval: float = 0.005, propagate: bool = True
    ) -> list[Any]:
        """Every member's result, in order; raises the first failure's
        :class:`TaskFailed` (or returns it in place with ``propagate=False``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        out: list[Any] = []
        for child in self.children:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                out.append(child.get(timeout=left, interval=interval))
            except TaskFailed as exc:
                if propagate:
                    raise
                out.append(exc)
            except TimeoutError:
                raise TimeoutError(
                    f"group {self.id}: {self.completed_count()} of {len(self.children)} "
                    f"member(s) succeeded after {timeout} s"
                ) from None
        return out

    join = get


__all__ = [
    "GroupResult",
    "Node",
    "Signature",
    "WorkflowResult",
    "chain",
    "chord",
    "group",
    "is_failure",
    "signature",
    "workflow",
]

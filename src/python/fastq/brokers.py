"""Brokers: where jobs live. In a Django project ``fastq_django`` registers its database
broker as the default (:func:`register_default`); :class:`MemoryBroker` keeps jobs in this
process, for tests."""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastq import _core

# A job about to be inserted: the core's bound class (src/cpp/bindings/bind_session.cpp),
# the one description of a new job for C++ and Python. Keyword arguments: id, task,
# queue, priority, args and kwargs (JSON text), then run_at and expires_at (aware
# datetimes or None), max_attempts, unique_key (non-empty: at most one queued-or-running
# job per key), time_limit and soft_time_limit (seconds or None), rate_key, and for
# workflow steps workflow_id, pass_results and on_failure.
NewJob = _core.NewJob


# A workflow's record, for GroupResult.restore() and the admin: (id, root_id, kind, name,
# member job ids in order).
WorkflowRecord = tuple[str, str, str, str, list[str]]


@dataclass(frozen=True, slots=True)
class JobSnapshot:
    """A job as read back for :class:`fastq.AsyncResult`."""

    id: str
    task: str
    queue: str
    state: str  # lower case, as stored: queued, running, succeeded, failed, dead,
    # expired, cancelled
    attempts: int
    result: str | None  # JSON text
    error_type: str
    error: str
    traceback: str


class Broker(abc.ABC):
    """What the Python API needs from a broker; the C++ driver does the rest."""

    name: str = "broker"

    @abc.abstractmethod
    def enqueue(self, jobs: list[NewJob]) -> list[str]:
        """Insert the jobs (in the caller's transaction, for database brokers). Returns,
        for each, the id of the job standing for it: its own, or for a ``unique_key`` the
        queued-or-running job already holding the key."""

    def enqueue_batch(self, batch: _core.JobBatch) -> list[str]:
        """Insert the jobs of ``task.map()`` (none has a unique key). Brokers override
        this to write the batch without a Python object per job; by default it goes
        through :meth:`enqueue`."""
        return self.enqueue(batch.jobs())

    @abc.abstractmethod
    def fetch(self, job_id: str) -> JobSnapshot | None:
        """Read one job back, or None if it does not exist (or is not committed yet)."""

    @abc.abstractmethod
    def worker_driver(self) -> _core.Driver:
        """A C++ driver connected to the same store, for the worker."""

    @abc.abstractmethod
    def cancel(self, job_id: str) -> str:
        """Cancel a job: "cancelled" (it was queued and will never start), "requested"
        (it is running and will see ``current_job().cancel_requested``), "finished" or
        "not_found"."""

    def before_job(self) -> None:
        """Called on the executor thread before each job runs (connection hygiene)."""
        return None

    def enqueue_workflow(
        self,
        jobs: list[NewJob],
        dependencies: list[tuple[str, str, int]],
        records: list[WorkflowRecord],
    ) -> None:
        """Insert a workflow's jobs, its dependencies (parent, child, position) and its
        records in one transaction (the caller's, for database brokers). A job that is
        some dependency's child waits until its parents finished."""
        raise NotImplementedError(f"the {self.name} broker does not run workflows")

    def cancel_workflow(self, workflow_id: str) -> int:
        """Cancel every step of the workflow not finished yet; returns how many."""
        raise NotImplementedError(f"the {self.name} broker does not run workflows")

    def fetch_workflow(self, workflow_id: str) -> tuple[str, list[str]] | None:
        """(root id, member job ids) of a workflow record, or None."""
        raise NotImplementedError(f"the {self.name} broker does not run workflows")

    def forget(self, job_ids: list[str]) -> int:
        """Delete those of the jobs that are finished, their results with them (and their
        workflow edges), in the caller's transaction. A job something still needs stays:
        named by a schedule slot or a poller mark, or a step of an unfinished workflow.
        Returns how many went."""
        raise NotImplementedError(f"the {self.name} broker keeps no job table")

    def relabel(self, job_ids: list[str], label: str) -> int:
        """Set the group label of the jobs, wherever they are ("": none). How many."""
        raise NotImplementedError(f"the {self.name} broker keeps no job table")

    def purge(self, queues: list[str] | None = None) -> int:
        """Delete the queued jobs of ``queues`` (None: every queue) that are not workflow
        steps. How many."""
        raise NotImplementedError(f"the {self.name} broker keeps no job table")

    def write_attempt_log(self, job_id: str, lease_token: int | None, text: str) -> bool:
        """Write the attempt log (JSON text) of the running job, fenced by the lease token
        of the attempt writing it (None: it has none). Whether it was written."""
        raise NotImplementedError(f"the {self.name} broker keeps no job table")


def from_micros(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


def to_micros(dt: datetime) -> int:
    if dt.tzinfo is None:
        raise ValueError("eta must be a timezone-aware datetime")
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class MemoryBroker(Broker):
    """Jobs in this process only, on the C++ in-memory driver. Nothing persists."""

    name = "memory"

    def __init__(self) -> None:
        self._driver = _core.memory_driver()
        self._workflows: dict[str, tuple[str, list[str]]] = {}
        self._workflows_lock = threading.Lock()

    def enqueue(self, jobs: list[NewJob]) -> list[str]:
        return self._driver.enqueue(jobs)

    def enqueue_batch(self, batch: _core.JobBatch) -> list[str]:
        return self._driver.enqueue(batch.jobs())

    def fetch(self, job_id: str) -> JobSnapshot | None:
        row = self._driver.get(job_id)
        if row is None:
            return None
        return JobSnapshot(
            id=row["id"],
            task=row["task"],
            queue=row["queue"],
            state=row["state"],
            attempts=row["attempts"],
            result=row["result"],
            error_type=row["error_type"],
            error=row["error"],
            traceback=row["traceback"],
        )

    def worker_driver(self) -> _core.Driver:
        return self._driver

    def cancel(self, job_id: str) -> str:
        return self._driver.cancel(job_id)

    def enqueue_workflow(
        self,
        jobs: list[NewJob],
        dependencies: list[tuple[str, str, int]],
        records: list[WorkflowRecord],
    ) -> None:
        self._driver.enqueue_workflow(jobs, dependencies)
        with self._workflows_lock:
            for wid, root, _kind, _name, members in records:
                self._workflows[wid] = (root, list(members))

    def cancel_workflow(self, workflow_id: str) -> int:
        return self._driver.cancel_workflow(workflow_id)

    def fetch_workflow(self, workflow_id: str) -> tuple[str, list[str]] | None:
        with self._workflows_lock:
            return self._workflows.get(workflow_id)


class BrokerRegistry:
    """Which broker this process's tasks use: the one given to :meth:`set`, else the
    default a framework integration registered with :meth:`register_default`
    (``fastq_django`` registers its database broker in ``AppConfig.ready``). The API
    layer owns it; the layers above register themselves here, it never imports them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._broker: Broker | None = None
        self._default: Callable[[], Broker] | None = None

    def set(self, broker: Broker | None) -> None:
        with self._lock:
            self._broker = broker

    def register_default(self, factory: Callable[[], Broker] | None) -> None:
        with self._lock:
            self._default = factory

    def get(self) -> Broker:
        broker = self._broker
        if broker is not None:
            return broker
        factory = self._default
        if factory is not None:
            return factory()
        raise RuntimeError(
            "fastq has no broker: no broker was set and none is registered as the default. "
            "In a Django project add 'fastq_django' to INSTALLED_APPS (it registers its "
            "database broker when the app registry is ready: django.setup()); outside "
            "Django call fastq.set_broker(fastq.MemoryBroker())"
        )


# The process's broker registry: set_broker, register_default and get_broker act on it.
broker_registry = BrokerRegistry()


def set_broker(broker: Broker | None) -> None:
    """Use ``broker`` for every task in this process (None: back to the default)."""
    broker_registry.set(broker)


def register_default(factory: Callable[[], Broker] | None) -> None:
    """Make ``factory()`` the broker used when none was set with :func:`set_broker`
    (None: no default). A framework integration calls this once it is configured."""
    broker_registry.register_default(factory)


def get_broker() -> Broker:
    """The broker set with :func:`set_broker`, else the registered default (in a Django
    project, ``fastq_django``'s database broker)."""
    return broker_registry.get()

"""The database broker: jobs are rows in the ``fastq_job`` table of a Django database.

The broker writes no SQL of its own: the core's job operations (src/cpp/core/session.cpp,
statements in src/sql/) run on the connection Django lends. On PostgreSQL the core
borrows psycopg's libpq connection (and calls it through psycopg's own libpq); on SQLite
Python's sqlite3 and the core's are different libraries, so the operation's statements
run on Django's sqlite3 connection through a callback. Either way a job exists only if
the caller's transaction commits; on PostgreSQL a statement trigger wakes workers at that
commit.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import functools
import time
import uuid
from pathlib import Path
from typing import Any

from django.db import DatabaseError, OperationalError, connections, transaction
from fastq import _core, conf
from fastq.brokers import Broker, JobSnapshot, NewJob, WorkflowRecord

from fastq_django.conf import broker_vendor, libpq_conninfo

# Jobs per COPY statement of a task.map() batch on PostgreSQL.
_COPY_ROWS = _core.BATCH_COPY_ROWS


class DatabaseBroker(Broker):
    def __init__(self, alias: str = "default") -> None:
        self.alias = alias
        self.name = f"django:{alias}"

    @property
    def vendor(self) -> str:
        return broker_vendor(self.alias)

    def session(self, connection: Any = None) -> _core.Session:
        """The core's job operations on this alias' Django connection (``connection``, when
        the caller has looked it up already), in the caller's transaction (the one Django
        has open, or autocommit)."""
        if connection is None:
            connection = connections[self.alias]
        if connection.connection is None:
            connection.ensure_connection()
        connection.validate_no_broken_transaction()
        if connection.vendor == "sqlite":
            return _core.callback_session("sqlite", _sqlite_execute(connection.connection))
        pgconn = getattr(connection.connection, "pgconn", None)
        if pgconn is None:
            raise RuntimeError(
                f"database {self.alias!r}: fastq needs psycopg 3 on PostgreSQL (psycopg2 "
                "does not lend its libpq connection)"
            )
        # Outside autocommit psycopg begins its transaction lazily, at its first command;
        # the core's first statement then begins it, and psycopg (which reads libpq's
        # transaction status) commits or rolls it back as its own.
        # The core prepares its statements (named, kept for the connection's life) only
        # where psycopg may prepare its own: Django's OPTIONS["prepare_threshold"] None,
        # Django's default, is how a project behind a transaction-pooling PgBouncer says no.
        return _core.borrow_pg(
            pgconn.pgconn_ptr,
            _libpq_path(),
            not connection.autocommit,
            getattr(connection.connection, "prepare_threshold", None) is not None,
        )

    def _run(self, operation: Any, *args: Any, connection: Any = None) -> Any:
        """An operation on :meth:`session` (on ``connection``, this alias' connection in
        this thread, when the caller has it); a database error becomes Django's."""
        if connection is None:
            connection = connections[self.alias]
        try:
            # A statement run through the SQLite callback raises sqlite3's errors, which
            # Django's wrapper turns into its own.
            with connection.wrap_database_errors:
                return operation(self.session(connection), *args)
        except _core.DriverError as exc:
            connection.errors_occurred = True
            error = OperationalError if getattr(exc, "transient", False) else DatabaseError
            raise error(str(exc)) from exc

    def _atomic(self, many: bool) -> Any:
        """All or nothing for an operation of several statements outside a transaction."""
        if many and not connections[self.alias].in_atomic_block:
            return transaction.atomic(using=self.alias, savepoint=False)
        return contextlib.nullcontext()

    def enqueue(self, jobs: list[NewJob]) -> list[str]:
        if not jobs:
            return []
        # Django's connections are per thread: looked up once (~1 us each time).
        connection = connections[self.alias]
        many = len(jobs) > 1 or any(job.unique_key for job in jobs)
        with self._atomic(many):
            ids = self._run(_core.enqueue_jobs, jobs, connection=connection)
        _wake_workers(self.alias, connection)
        return ids

    def enqueue_batch(self, batch: _core.JobBatch) -> list[str]:
        """The jobs of ``task.map()`` by the core's batch operation, in the caller's
        transaction: ``COPY`` on PostgreSQL (its NOTIFY trigger fires as for an INSERT),
        one INSERT on SQLite."""
        if not len(batch):
            return []
        # More than one COPY: all or none of them, as for a single one.
        with self._atomic(len(batch) > _COPY_ROWS):
            self._run(_core.enqueue_batch, batch, _COPY_ROWS)
        _wake_workers(self.alias)
        return batch.ids()

    def enqueue_workflow(
        self,
        jobs: list[NewJob],
        dependencies: list[tuple[str, str, int]],
        records: list[WorkflowRecord],
    ) -> None:
        """A workflow's jobs, dependencies and records by the core's workflow operation,
        on Django's connection in the caller's transaction (atomic on its own otherwise;
        inside the caller's, a failure rolls back to a savepoint). A job that is a child
        of a dependency starts ``waiting`` with ``parents_pending`` = its parents; the
        worker that finishes the last of them releases it. The graph is checked first:
        ValueError, nothing written."""
        if not jobs and not dependencies:
            return
        with transaction.atomic(using=self.alias):
            self._run(_core.enqueue_workflow, jobs, dependencies, records)
        _wake_workers(self.alias)

    def retry(self, job_ids: list[str]) -> int:
        """Queue again those of the jobs that ended unsuccessfully (failed, dead, expired,
        cancelled), in the caller's transaction: the core's retry operation (on
        PostgreSQL it wakes the workers at commit, on SQLite the poke does). Returns how many."""
        with self._atomic(True):
            n = int(self._run(_core.retry_jobs, [str(i) for i in job_ids]))
        if n:
            _wake_workers(self.alias)
        return n

    def cancel_workflow(self, workflow_id: str) -> int:
        """Cancel every unfinished step of a workflow, in the caller's transaction: the
        core's workflow cancel, the one the drivers run."""
        try:
            wid = str(uuid.UUID(str(workflow_id)))
        except ValueError:
            return 0
        with self._atomic(True):
            return int(self._run(_core.cancel_workflow, wid))

    def forget(self, job_ids: list[str]) -> int:
        """Delete the finished ones of the jobs (results, workflow edges, a finished
        workflow's record) in the caller's transaction: the core's forget operation, the
        rules retention keeps (a schedule slot's, a poller mark's job, a step of an
        unfinished workflow stay). Returns how many."""
        ids = [str(i) for i in job_ids]
        if not ids:
            return 0
        with self._atomic(True):
            return int(self._run(_core.forget_jobs, ids))

    def relabel(self, job_ids: list[str], label: str) -> int:
        """Set the group label of the jobs ("": none) in the caller's transaction."""
        ids = [str(i) for i in job_ids]
        if not ids:
            return 0
        return int(self._run(_core.relabel_jobs, ids, label))

    def record_finished(
        self,
        job: NewJob,
        state: str,
        result: str | None,
        error: tuple[str, str, str],
        started_at: Any,
        finished_at: Any,
    ) -> None:
        """Store a job run outside the queue (Django-Q2's ``sync=True``) as finished after
        one attempt, in the caller's transaction: ``state`` succeeded (``result`` its JSON
        text) or failed (``error``: type, message, traceback)."""
        self._run(_core.record_finished, job, state, result, *error, started_at, finished_at)

    def set_custom_state(self, job_id: str, state_json: str) -> bool:
        """Celery's ``update_state``: the job's custom state (JSON text). Whether it exists."""
        return bool(self._run(_core.set_custom_state, str(job_id), state_json))

    def write_attempt_log(self, job_id: str, lease_token: int | None, text: str) -> bool:
        """The attempt log (JSON text) of the running job, fenced by the lease token of the
        attempt writing it (None: the job was claimed without one), in the caller's
        transaction. Whether it was written (not: the job is no longer this attempt's)."""
        return bool(self._run(_core.write_attempt_log, str(job_id), lease_token, text))

    def record_schedule_run(self, name: str, job_id: str) -> None:
        """A "Run now" of schedule ``name`` that enqueued ``job_id``, recorded in the
        caller's transaction as the scheduler records a fire: a slot at now (the next free
        microsecond if the scheduler holds that one) and the schedule's last run, job and
        outcome."""
        self._run(_core.record_schedule_run, name, str(job_id))

    def set_schedule_outcome(self, name: str, outcome: str) -> None:
        """Schedule ``name``'s last outcome (a poller's counts), cut to 64 characters."""
        self._run(_core.set_schedule_outcome, name, outcome)

    def purge(self, queues: list[str] | None = None) -> int:
        """Delete the queued jobs of ``queues`` (None: all) that are not workflow steps,
        in the caller's transaction. Returns how many."""
        return int(self._run(_core.purge_queued, [str(q) for q in queues or []]))

    def fetch_workflow(self, workflow_id: str) -> tuple[str, list[str]] | None:
        from fastq_django.models import Workflow

        try:
            wid = uuid.UUID(str(workflow_id))
        except ValueError:
            return None
        row = Workflow.objects.using(self.alias).filter(pk=wid).first()
        if row is None:
            return None
        return str(row.root_id), row.member_ids

    def fetch(self, job_id: str) -> JobSnapshot | None:
        row = self._run(_core.get_job, str(job_id))
        if row is None:
            return None
        id_, task, queue, state, attempts, result, error_type, error, tb = row
        return JobSnapshot(
            id=id_,
            task=task,
            queue=queue,
            state=state,
            attempts=attempts,
            result=result,
            error_type=error_type,
            error=error,
            traceback=tb,
        )

    def cancel(self, job_id: str) -> str:
        """Cancel in the caller's transaction; see :meth:`fastq.AsyncResult.cancel`.

        A queued or waiting workflow step goes through the core's driver (its own
        connection, committed at once), which cancels what depends on it in the same
        transaction (src/cpp/core/workflow.cpp)."""
        with self._atomic(True):
            result, workflow_step = self._run(_core.cancel_job, str(job_id))
        if not workflow_step:
            return str(result)
        # A connection of its own for this one write, closed right after (a kept one
        # would hold the database open).
        driver = self.worker_driver()
        try:
            return driver.cancel(str(job_id))
        finally:
            del driver

    def before_job(self) -> None:
        """Drop this thread's database connections that broke or outlived CONN_MAX_AGE.

        Not ``close_old_connections()``: with the default CONN_MAX_AGE=0 that closes
        every connection before every job, a reconnect per job. Django applies age per
        request; a worker thread applies it only when CONN_MAX_AGE is positive.
        """
        for conn in connections.all(initialized_only=True):
            if conn.connection is None or conn.in_atomic_block:
                continue
            if conn.errors_occurred:
                if conn.is_usable():
                    conn.errors_occurred = False
                else:
                    conn.close()
            elif (
                conn.settings_dict.get("CONN_MAX_AGE")
                and conn.close_at is not None
                and time.monotonic() >= conn.close_at
            ):
                conn.close()

    def worker_driver(self) -> _core.Driver:
        settings_dict = connections[self.alias].settings_dict
        if broker_vendor(self.alias) == "sqlite":
            name = str(settings_dict["NAME"])
            if name == ":memory:" or name.startswith("file::memory:") or "mode=memory" in name:
                raise RuntimeError(
                    f"database {self.alias!r} is an in-memory SQLite database; a worker needs "
                    "a file other processes can open (set TEST['NAME'] to a file in tests)"
                )
            timeout = (settings_dict.get("OPTIONS") or {}).get("timeout", 30)
            return _core.sqlite_driver(name, busy_timeout_ms=int(float(timeout) * 1000))
        return _core.postgres_driver(libpq_conninfo(settings_dict))


def _wake_workers(alias: str, connection: Any = None) -> None:
    """On SQLite, pokes the workers listening next to the database file (the core's
    wake.hpp) once the jobs just written are committed: at the end of the caller's
    transaction (once per transaction), or now in autocommit. PostgreSQL needs nothing:
    its trigger NOTIFYs at the commit. A lost poke costs latency only: workers still poll.
    ``connection``: the alias' connection in this thread, when the caller has it."""
    if connection is None:
        connection = connections[alias]
    if connection.vendor != "sqlite":
        return
    poke = _wake_poke(str(connection.settings_dict["NAME"]))
    if poke is None:
        return
    if not connection.in_atomic_block:
        poke()
    elif not any(entry[1] is poke for entry in connection.run_on_commit):
        transaction.on_commit(poke, using=alias)


_wake_pokes: dict[str, Any] = {}


def _wake_poke(name: str) -> Any:
    """The poke of the SQLite database file ``name`` (one callable per file, so a
    transaction registers it once); None for an in-memory database."""
    poke = _wake_pokes.get(name)
    if poke is None:
        directory = _core.sqlite_wake_dir(name)
        if directory is None:
            return None  # not cached: the file may not exist yet
        poke = _wake_pokes[name] = functools.partial(_core.wake_poke, directory)
    return poke


def _sqlite_execute(raw: Any) -> Any:
    """execute(sql, params) -> rows on a sqlite3 connection: the SQLite session's
    statements (``?1``-style parameters, which Python's sqlite3 binds by name: "1")."""

    def execute(sql: str, params: tuple[object, ...]) -> list[Any]:
        return raw.execute(sql, {str(i): v for i, v in enumerate(params, 1)}).fetchall()

    return execute


@functools.cache
def _libpq_path() -> str:
    """The libpq psycopg runs on (the core calls a borrowed connection through it)."""
    from psycopg import pq

    if pq.__impl__ == "binary":
        import psycopg_binary

        here = Path(psycopg_binary.__file__).resolve().parent
        for libs in (here.parent / "psycopg_binary.libs", here / ".dylibs"):
            found = sorted(libs.glob("libpq*"))
            if found:
                return str(found[0])
    if pq.__impl__ == "python":
        from psycopg.pq import _pq_ctypes

        return str(_pq_ctypes.pq._name)  # type: ignore[attr-defined]
    return ctypes.util.find_library("pq") or "libpq.so.5"


@functools.cache
def _broker_for(alias: str) -> DatabaseBroker:
    return DatabaseBroker(alias)


def default_broker() -> DatabaseBroker:
    """The broker on ``FASTQ["DATABASE"]`` (default: the ``default`` alias)."""
    return _broker_for(str(conf.get("DATABASE")))

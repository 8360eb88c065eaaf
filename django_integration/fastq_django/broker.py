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
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.db import DatabaseError, OperationalError, connections, transaction
from fastq import _core, conf
from fastq.brokers import Broker, JobSnapshot, NewJob, WorkflowRecord

from fastq_django.conf import broker_vendor, libpq_conninfo

_COLUMNS = (
    "id, task, queue, priority, state, args, kwargs, run_at, attempts, max_attempts, "
    "expires_at, cancel_requested, unique_key, worker, error_type, error, traceback, "
    "created_at, envelope, time_limit, soft_time_limit, rate_key"
)
_WORKFLOW_COLUMNS = "workflow_id, parents_pending, pass_results, on_failure"
_PG_WORKFLOW_INSERT = (
    f"INSERT INTO fastq_job ({_COLUMNS}, {_WORKFLOW_COLUMNS}) SELECT id, task, queue, "
    "priority, state, args, kwargs, COALESCE(run_at, now()), 0, max_attempts, expires_at, "
    f"false, NULL, '', '', '', '', now(), {_core.ENVELOPE_VERSION}, time_limit, "
    "soft_time_limit, rate_key, workflow_id, parents_pending, pass_results, on_failure "
    "FROM json_to_recordset(%s::json) AS x(id uuid, task text, queue text, priority int, "
    "state text, args text, kwargs text, run_at timestamptz, max_attempts int, "
    "expires_at timestamptz, time_limit float8, soft_time_limit float8, rate_key text, "
    "workflow_id uuid, parents_pending int, pass_results smallint, on_failure smallint)"
)
# Workflows of at least this many jobs go in by COPY on PostgreSQL.
_WORKFLOW_COPY_MIN = 500
# Jobs per COPY statement of a task.map() batch on PostgreSQL.
_COPY_ROWS = _core.BATCH_COPY_ROWS


class DatabaseBroker(Broker):
    def __init__(self, alias: str = "default") -> None:
        self.alias = alias
        self.name = f"django:{alias}"

    @property
    def vendor(self) -> str:
        return broker_vendor(self.alias)

    def session(self) -> _core.Session:
        """The core's job operations on this alias' Django connection, in the caller's
        transaction (the one Django has open, or autocommit)."""
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
        return _core.borrow_pg(pgconn.pgconn_ptr, _libpq_path(), not connection.autocommit)

    def _run(self, operation: Any, *args: Any) -> Any:
        """An operation on :meth:`session`; a database error becomes Django's."""
        try:
            # A statement run through the SQLite callback raises sqlite3's errors, which
            # Django's wrapper turns into its own.
            with connections[self.alias].wrap_database_errors:
                return operation(self.session(), *args)
        except _core.DriverError as exc:
            connections[self.alias].errors_occurred = True
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
        many = len(jobs) > 1 or any(job.unique_key for job in jobs)
        with self._atomic(many):
            ids = self._run(_core.enqueue_jobs, jobs)
        _wake_workers(self.alias)
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
        """A workflow's jobs, dependencies and records, on Django's connection in the
        caller's transaction (atomic on its own otherwise). A job that is a child of a
        dependency starts ``waiting`` with ``parents_pending`` = its parents; the worker
        that finishes the last of them releases it. On PostgreSQL large workflows go in
        by ``COPY``."""
        _core_check_workflow(jobs, dependencies)
        if not jobs:
            return
        pending: dict[str, int] = {}
        for _parent, child, _position in dependencies:
            pending[child] = pending.get(child, 0) + 1
        connection = connections[self.alias]
        sqlite = broker_vendor(self.alias) == "sqlite"
        with transaction.atomic(using=self.alias), connection.cursor() as cursor:
            if sqlite:
                self._workflow_sqlite(cursor, connection, jobs, pending, dependencies, records)
            else:
                self._workflow_postgres(cursor, jobs, pending, dependencies, records)
        _wake_workers(self.alias)

    def _workflow_sqlite(
        self,
        cursor: Any,
        connection: Any,
        jobs: list[NewJob],
        pending: dict[str, int],
        dependencies: list[tuple[str, str, int]],
        records: list[WorkflowRecord],
    ) -> None:
        adapt = connection.ops.adapt_datetimefield_value
        now = adapt(datetime.now(UTC))
        hexid = {j.id: j.id.replace("-", "") for j in jobs}
        rows = [
            (
                hexid[j.id],
                j.task,
                j.queue,
                j.priority,
                "waiting" if pending.get(j.id) else "queued",
                j.args,
                j.kwargs,
                adapt(j.run_at) if j.run_at else now,
                j.max_attempts,
                adapt(j.expires_at) if j.expires_at else None,
                now,
                j.time_limit,
                j.soft_time_limit,
                j.rate_key or None,
                j.workflow_id.replace("-", "") or None,
                pending.get(j.id, 0),
                j.pass_results,
                j.on_failure,
            )
            for j in jobs
        ]
        row = (
            "(%s, %s, %s, %s, %s, %s, %s, %s, 0, %s, %s, 0, NULL, '', '', '', '', %s, "
            f"{_core.ENVELOPE_VERSION}, %s, %s, %s, %s, %s, %s, %s)"
        )
        sql = f"INSERT INTO fastq_job ({_COLUMNS}, {_WORKFLOW_COLUMNS}) VALUES "
        per = 32766 // 18
        for start in range(0, len(rows), per):
            chunk = rows[start : start + per]
            cursor.execute(sql + ", ".join([row] * len(chunk)), [v for r in chunk for v in r])
        workflow_of = {j.id: j.workflow_id for j in jobs}
        edges = [
            (
                (workflow_of.get(c) or c).replace("-", ""),
                p.replace("-", ""),
                c.replace("-", ""),
                n,
            )
            for p, c, n in dependencies
        ]
        per = 32766 // 4
        for start in range(0, len(edges), per):
            chunk = edges[start : start + per]
            cursor.execute(
                "INSERT INTO fastq_dependency (workflow_id, parent_id, child_id, position) "
                "VALUES " + ", ".join(["(%s, %s, %s, %s)"] * len(chunk)),
                [v for e in chunk for v in e],
            )
        for wid, root, kind, name, members in records:
            cursor.execute(
                "INSERT INTO fastq_workflow (id, root_id, kind, name, members, created_at) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                [
                    wid.replace("-", ""),
                    root.replace("-", ""),
                    kind,
                    name,
                    json.dumps(members),
                    now,
                ],
            )

    def _workflow_postgres(
        self,
        cursor: Any,
        jobs: list[NewJob],
        pending: dict[str, int],
        dependencies: list[tuple[str, str, int]],
        records: list[WorkflowRecord],
    ) -> None:
        raw_copy = getattr(cursor.cursor, "copy", None)  # psycopg 3
        if raw_copy is not None and len(jobs) >= _WORKFLOW_COPY_MIN:
            # Large groups and chords: COPY, the cheapest way in (its NOTIFY trigger
            # fires as for an INSERT).
            now = datetime.now(UTC)
            cols = (
                "id, task, queue, priority, state, args, kwargs, run_at, max_attempts, "
                "expires_at, time_limit, soft_time_limit, rate_key, workflow_id, "
                "parents_pending, pass_results, on_failure, envelope, created_at"
            )
            with raw_copy(f"COPY fastq_job ({cols}) FROM STDIN") as copy:
                for j in jobs:
                    copy.write_row(
                        (
                            j.id,
                            j.task,
                            j.queue,
                            j.priority,
                            "waiting" if pending.get(j.id) else "queued",
                            j.args,
                            j.kwargs,
                            j.run_at or now,
                            j.max_attempts,
                            j.expires_at,
                            j.time_limit,
                            j.soft_time_limit,
                            j.rate_key or None,
                            j.workflow_id or None,
                            pending.get(j.id, 0),
                            j.pass_results,
                            j.on_failure,
                            _core.ENVELOPE_VERSION,
                            now,
                        )
                    )
            workflow_of = {j.id: j.workflow_id for j in jobs}
            with raw_copy(
                "COPY fastq_dependency (workflow_id, parent_id, child_id, position) FROM STDIN"
            ) as copy:
                for p, c, n in dependencies:
                    copy.write_row((workflow_of.get(c) or c, p, c, n))
        else:
            rows = [
                {
                    "id": j.id,
                    "task": j.task,
                    "queue": j.queue,
                    "priority": j.priority,
                    "state": "waiting" if pending.get(j.id) else "queued",
                    "args": j.args,
                    "kwargs": j.kwargs,
                    "run_at": j.run_at.isoformat() if j.run_at else None,
                    "max_attempts": j.max_attempts,
                    "expires_at": j.expires_at.isoformat() if j.expires_at else None,
                    "time_limit": j.time_limit,
                    "soft_time_limit": j.soft_time_limit,
                    "rate_key": j.rate_key or None,
                    "workflow_id": j.workflow_id or None,
                    "parents_pending": pending.get(j.id, 0),
                    "pass_results": j.pass_results,
                    "on_failure": j.on_failure,
                }
                for j in jobs
            ]
            cursor.execute(_PG_WORKFLOW_INSERT, [json.dumps(rows, separators=(",", ":"))])
            if dependencies:
                workflow_of = {j.id: j.workflow_id for j in jobs}
                edges = [
                    {"w": workflow_of.get(c) or c, "p": p, "c": c, "n": n}
                    for p, c, n in dependencies
                ]
                cursor.execute(
                    "INSERT INTO fastq_dependency (workflow_id, parent_id, child_id, position) "
                    "SELECT w, p, c, n FROM json_to_recordset(%s::json) AS x(w uuid, p uuid, "
                    "c uuid, n int)",
                    [json.dumps(edges, separators=(",", ":"))],
                )
        for wid, root, kind, name, members in records:
            cursor.execute(
                "INSERT INTO fastq_workflow (id, root_id, kind, name, members, created_at) "
                "VALUES (%s, %s, %s, %s, %s, now())",
                [wid, root, kind, name, json.dumps(members)],
            )

    def cancel_workflow(self, workflow_id: str) -> int:
        """Cancel every unfinished step of a workflow, in the caller's transaction: the
        core's workflow cancel, the one the drivers run."""
        try:
            wid = str(uuid.UUID(str(workflow_id)))
        except ValueError:
            return 0
        with self._atomic(True):
            return int(self._run(_core.cancel_workflow, wid))

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


def _wake_workers(alias: str) -> None:
    """On SQLite, pokes the workers listening next to the database file (the core's
    wake.hpp) once the jobs just written are committed: at the end of the caller's
    transaction (once per transaction), or now in autocommit. PostgreSQL needs nothing:
    its trigger NOTIFYs at the commit. A lost poke costs latency only: workers still poll."""
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


def _core_check_workflow(jobs: list[NewJob], dependencies: list[tuple[str, str, int]]) -> None:
    """The graph checks every driver makes (fastq::check_workflow), before any write."""
    ids = {j.id for j in jobs}
    if len(ids) != len(jobs):
        raise ValueError("workflow: a job id appears twice")
    children: dict[str, list[str]] = {}
    seen: set[tuple[str, str]] = set()
    indegree = dict.fromkeys(ids, 0)
    for parent, child, _position in dependencies:
        if parent not in ids or child not in ids:
            raise ValueError(f"workflow: dependency {parent} -> {child} names a job outside it")
        if (parent, child) in seen or parent == child:
            raise ValueError(f"workflow: dependency {parent} -> {child} is repeated or a loop")
        seen.add((parent, child))
        children.setdefault(parent, []).append(child)
        indegree[child] += 1
    ready = [i for i, n in indegree.items() if n == 0]
    done = 0
    while ready:
        node = ready.pop()
        done += 1
        for c in children.get(node, ()):
            indegree[c] -= 1
            if indegree[c] == 0:
                ready.append(c)
    if done != len(ids):
        raise ValueError("workflow: the dependencies form a cycle")

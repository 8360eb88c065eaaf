"""Type stubs for the private C++ extension ``fastq._core``. Keep in step with
src/cpp/bindings."""

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

class DriverError(RuntimeError):
    transient: bool

# A poller's job template: (task, queue, priority, max_attempts, time_limit,
# soft_time_limit, rate_key).
JobTemplate = tuple[str, str, int, int, float, float, str]

class NewJob:
    """A job about to be inserted; ``args``/``kwargs`` are JSON text. The one description
    of a new job, shared by the core and Python."""

    id: str
    task: str
    queue: str
    priority: int
    args: str
    kwargs: str
    run_at: datetime | None  # aware; None: at once
    max_attempts: int
    expires_at: datetime | None  # aware; never started after this: expired
    unique_key: str  # non-empty: at most one queued-or-running job per key
    time_limit: float | None  # seconds: hard limit (the process is killed)
    soft_time_limit: float | None  # seconds: SoftTimeLimitExceeded is raised
    rate_key: str  # rate-limit bucket of a keyed limit
    workflow_id: str  # workflow steps (fastq.canvas); "" otherwise
    pass_results: int  # 0 nothing, 1 the parent's result, 2 the list of results
    on_failure: int  # 0 cancel, 1 run anyway, 2 it is an error handler
    group_label: str  # a label several jobs share (Django-Q2's group); "": none
    def __init__(
        self,
        *,
        id: str,
        task: str,
        queue: str,
        priority: int,
        args: str,
        kwargs: str,
        run_at: datetime | int | None = None,
        max_attempts: int = 4,
        expires_at: datetime | int | None = None,
        unique_key: str = "",
        time_limit: float | None = None,
        soft_time_limit: float | None = None,
        rate_key: str = "",
        workflow_id: str = "",
        pass_results: int = 0,
        on_failure: int = 0,
        group_label: str = "",
    ) -> None: ...
    @property
    def run_at_us(self) -> int | None: ...
    def copy(self) -> NewJob: ...

class Session:
    """Where a job operation runs: a connection lent by its owner (src/cpp/core/session.hpp)."""

    @property
    def dialect(self) -> str: ...  # "postgres" or "sqlite"

# A session on psycopg 3's libpq connection (pgconn.pgconn_ptr), called through the libpq
# at libpq_path that opened it; begin_if_idle: the owner is outside autocommit and its
# transaction begins with the first statement; prepare: a statement run again on the same
# server session is prepared (named "fastq_<g>_<n>") and executed by name (False behind a
# transaction-pooling PgBouncer: psycopg's prepare_threshold None).
def borrow_pg(
    pgconn_ptr: int, libpq_path: str = "", begin_if_idle: bool = False, prepare: bool = False
) -> Session: ...

# A session whose statements run through execute(sql, params) -> rows (SQLite: ?1-style).
def callback_session(
    dialect: str, execute: Callable[[str, tuple[Any, ...]], Sequence[Sequence[Any]] | None]
) -> Session: ...
def enqueue_jobs(session: Session, jobs: Sequence[NewJob]) -> list[str]: ...

# (id, task, queue, state, attempts, result, error_type, error, traceback) or None.
def get_job(
    session: Session, id: str
) -> tuple[str, str, str, str, int, str | None, str, str, str] | None: ...

# (result, workflow_step): a queued or waiting workflow step is left to Driver.cancel.
def cancel_job(session: Session, id: str) -> tuple[str, bool]: ...

# Every unfinished step of the workflow cancelled (running ones asked to stop): how many.
def cancel_workflow(session: Session, workflow_id: str) -> int: ...

# A workflow's jobs, dependencies (parent, child, position) and records (id, root_id,
# kind, name, member ids): a step with parents starts waiting. ValueError for a graph the
# core refuses (nothing written). The jobs' ids.
def enqueue_workflow(
    session: Session,
    jobs: Sequence[NewJob],
    dependencies: Sequence[tuple[str, str, int]],
    records: Sequence[tuple[str, str, str, str, Sequence[str]]] = ...,
) -> list[str]: ...

# Those of the jobs that ended unsuccessfully (failed, dead, expired, cancelled) queued
# again; ids that are not UUIDs are skipped. How many (PostgreSQL: workers woken at commit).
def retry_jobs(session: Session, ids: Sequence[str]) -> int: ...
def forget_jobs(session: Session, ids: Sequence[str]) -> int: ...
def purge_queued(session: Session, queues: Sequence[str]) -> int: ...
def relabel_jobs(session: Session, ids: Sequence[str], label: str) -> int: ...
def record_finished(
    session: Session,
    job: NewJob,
    state: str,
    result: str | None,
    error_type: str,
    error: str,
    traceback: str,
    started_at: datetime | int | None,
    finished_at: datetime | int | None,
) -> None: ...
def set_custom_state(session: Session, id: str, json: str) -> bool: ...
def write_attempt_log(session: Session, id: str, lease_token: int | None, text: str) -> bool: ...
def record_schedule_run(
    session: Session, name: str, job_id: str, at: datetime | int | None = None
) -> int: ...
def set_schedule_outcome(session: Session, name: str, outcome: str) -> None: ...

class Driver:
    @property
    def name(self) -> str: ...
    def enqueue(self, jobs: Sequence[NewJob]) -> list[str]: ...
    def enqueue_workflow(
        self,
        jobs: Sequence[NewJob],
        dependencies: Sequence[tuple[str, str, int]],  # (parent, child, position)
    ) -> list[str]: ...
    def cancel_workflow(self, workflow_id: str) -> int: ...
    def poll(
        self,
        name: str,
        sql: str,
        params: Sequence[bool | int | float | str | None],
        key: str,
        check: JobTemplate,
        start_us: int,
        span_us: int,
        min_gap_us: int = 0,
        batch: int = 5000,
        stale_sql: str | None = None,
        stale_params: Sequence[bool | int | float | str | None] = (),
        alert: JobTemplate | None = None,
    ) -> dict[str, int]: ...  # rows, enqueued, pending, stale, alerted, pages, gap_us
    def get(self, id: str) -> dict[str, Any] | None: ...
    def count_runnable(self, queues: Sequence[str]) -> int: ...
    def prune_jobs(
        self,
        state: str,
        before_us: int,
        limit: int = 1000,
        dry_run: bool = False,
        after_at: str = "",
        after_id: str = "",
    ) -> tuple[int, int, str, str]: ...
    def database_now(self) -> int | None: ...
    def rescue_expired(self) -> int: ...
    def cancel(self, id: str) -> str: ...  # "cancelled", "requested", "finished", "not_found"

class JobBatch:
    """The jobs of one ``task.map()`` call, held in C++."""

    def __len__(self) -> int: ...
    def ids(self) -> list[str]: ...
    def jobs(self) -> list[NewJob]: ...
    # (id, task, queue, priority, args, kwargs, run_at_us, max_attempts, expires_at_us,
    # unique_key, time_limit, soft_time_limit, rate_key) per job.
    def rows(
        self,
    ) -> list[
        tuple[
            str,
            str,
            str,
            int,
            str,
            str,
            int | None,
            int,
            int | None,
            str,
            float | None,
            float | None,
            str,
        ]
    ]: ...
    # Jobs [start, stop) as (columns, data) of COPY fastq_job (columns) FROM STDIN.
    def pg_copy(self, start: int, stop: int) -> tuple[str, bytes]: ...

# The batch's jobs in the session's transaction: COPY on PostgreSQL, one INSERT on SQLite.
def enqueue_batch(session: Session, batch: JobBatch, copy_rows: int = ...) -> None: ...

BATCH_COPY_ROWS: int  # jobs per COPY statement of enqueue_batch

def job_batch(
    task: str,
    queue: str,
    priority: int,
    max_attempts: int,
    run_at: int | None,  # microseconds since the epoch; None: now
    expires_at: int | None,  # microseconds since the epoch
    time_limit: float | None,
    soft_time_limit: float | None,
    calls: Iterable[Iterable[Any]],  # argument tuples, encoded as encode_call encodes
) -> JobBatch: ...

# The one JSON encoder of arguments and results (src/cpp/bindings/json_encode.hpp): the
# text of json.dumps(..., separators=(",", ":"), ensure_ascii=False, allow_nan=False).
# A value JSON must not carry raises TypeError (not a JSON type, a non-str dict key) or
# ValueError (an int outside signed 64 bits, NaN or infinity, a lone surrogate, nesting
# deeper than MAX_JSON_DEPTH), the message naming it: "<prefix>positional argument
# 1['k'][0] is nan; JSON has no NaN or infinity".
MAX_JSON_DEPTH: int

def encode_call(
    args: Iterable[Any], kwargs: dict[str, Any] | None, prefix: str = ""
) -> tuple[str, str]: ...  # (args JSON array, kwargs JSON object)
def encode_json(value: Any, name: str = "value", prefix: str = "") -> str: ...
def memory_driver() -> Driver: ...
def sqlite_driver(path: str, busy_timeout_ms: int = 30000) -> Driver: ...
def sqlite_wake_dir(path: str) -> str | None: ...
def wake_poke(dir: str) -> int: ...
def postgres_driver(conninfo: str) -> Driver: ...
def new_job_id() -> str: ...
def is_last_attempt(attempts: int, max_attempts: int) -> bool: ...

ENVELOPE_VERSION: int

class WorkerStats:
    @property
    def claimed(self) -> int: ...
    @property
    def claims(self) -> int: ...
    @property
    def succeeded(self) -> int: ...
    @property
    def failed(self) -> int: ...
    @property
    def retried(self) -> int: ...
    @property
    def skipped(self) -> int: ...
    @property
    def completed_written(self) -> int: ...
    @property
    def fenced(self) -> int: ...
    @property
    def flushes(self) -> int: ...
    @property
    def released(self) -> int: ...
    @property
    def rescued(self) -> int: ...
    @property
    def db_errors(self) -> int: ...
    @property
    def rejected(self) -> int: ...
    @property
    def deferred(self) -> int: ...
    @property
    def stale(self) -> int: ...
    @property
    def sanitized(self) -> int: ...
    @property
    def isolated(self) -> int: ...
    @property
    def hard_stopped(self) -> bool: ...

class RateLimit:
    """A fleet-wide start rate: one token per ``interval_us``, at most ``burst`` at once."""

    interval_us: int
    burst: int
    def __init__(self, interval_us: int, burst: int = 1) -> None: ...

class WorkerConfig:
    """The worker's options (fastq/worker.hpp WorkerConfig); a new one holds the defaults,
    the only ones. Durations are in seconds."""

    queues: list[str]
    registered: list[str]  # task names this process may run (sorted)
    concurrency: int  # executor threads
    prefetch: int  # jobs held beyond concurrency; < 0: one claim batch; 0: none
    claim_batch: int  # most jobs one claim statement takes
    exec_batch: int  # most jobs one executor runs per entry into Python
    lease: float
    flush_interval: float
    flush_batch: int
    idle_poll_min: float
    idle_poll_max: float
    rescue_interval: float  # 0: half a lease within [0.5, 5] s (leader only)
    max_payload_bytes: int
    burst: bool
    grace: float
    handle_signals: bool
    name: str
    max_jobs: int
    rate_limits: dict[str, RateLimit]  # assign a whole dict: reading returns a copy
    rate_horizon: float
    async_tasks: list[str]
    log_jobs: bool  # INFO lines per job started, succeeded, cancelled
    log_tracebacks: bool  # DEBUG lines with the traceback of failed attempts
    # Worker registry row (fastq_worker): {"id", "host", "version", "supervisor"}.
    registry: dict[str, str] | None
    notify_systemd: bool  # READY/WATCHDOG/STOPPING to NOTIFY_SOCKET
    def __init__(self) -> None: ...
    def copy(self) -> WorkerConfig: ...
    @property
    def capacity(self) -> int: ...

class Worker:
    def __init__(
        self,
        driver: Driver,
        config: WorkerConfig,
        execute: Callable[[str, list[Any], dict[str, Any], str, int, int, int, float], Any],
        retry_type: type[BaseException],
        execute_async: Callable[..., Any] | None = None,
        log: Callable[[int, str], None] | None = None,
    ) -> None: ...
    def run(self) -> WorkerStats: ...
    def stop(self) -> None: ...
    def stats(self) -> WorkerStats: ...
    def cancel_requested(self, job_id: str) -> bool: ...

class SupervisorStats:
    @property
    def started(self) -> int: ...
    @property
    def crashed(self) -> int: ...
    @property
    def timeouts(self) -> int: ...
    @property
    def lost(self) -> int: ...
    @property
    def released(self) -> int: ...
    @property
    def recycled(self) -> int: ...
    @property
    def exit_code(self) -> int: ...

class Supervisor:
    def __init__(
        self,
        driver: Driver,
        spawn: Callable[[int], int],
        processes: int,
        slots_per_child: int,
        grace_ms: int = 30000,
        max_memory_kb: int = 0,
        burst: bool = False,
        log: Callable[[int, str], None] | None = None,
        restore_signals: bool = True,
        registry: dict[str, str] | None = None,
        lease_ms: int = 30000,
        notify_systemd: bool = True,
        metrics_port: int = -1,  # -1: off; 0: any free port (logged)
        metrics_address: str = "0.0.0.0",
    ) -> None: ...
    def run(self) -> SupervisorStats: ...

def enter_child(index: int) -> None: ...

class CronError(ValueError): ...

def set_zone_path(directories: list[str]) -> None: ...
def zone_path() -> list[str]: ...

class Cron:
    """A cron expression evaluated in an IANA time zone (docs/scheduling.md)."""

    def __init__(self, expression: str, timezone: str = "UTC") -> None: ...
    @property
    def expression(self) -> str: ...
    @property
    def timezone(self) -> str: ...
    def next_after(self, after: datetime) -> datetime: ...
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

class SchedulerStats:
    @property
    def fired(self) -> int: ...
    @property
    def skipped(self) -> int: ...
    @property
    def missed(self) -> int: ...
    @property
    def lost(self) -> int: ...
    @property
    def terms(self) -> int: ...
    @property
    def workers_lost(self) -> int: ...
    @property
    def pruned(self) -> int: ...
    @property
    def reclaimed(self) -> int: ...
    @property
    def partitions_dropped(self) -> int: ...
    @property
    def leader(self) -> bool: ...

class Scheduler:
    """The periodic-schedule leader (src/cpp/core/scheduler.hpp) on its own thread."""

    def __init__(
        self,
        driver: Driver,
        holder: str,
        lease_ms: int = 15000,
        reload_ms: int = 2000,
        misfire_grace_ms: int = 60000,
        tasks: dict[str, tuple[str, int, int, float, float]] = ...,
        log: Callable[[int, str], None] | None = None,
        retention: dict[str, float | None] | None = None,
        prune_batch: int = 1000,
        prune_budget_ms: int = 200,
    ) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def step(self, now_us: int) -> int: ...
    def stats(self) -> SchedulerStats: ...

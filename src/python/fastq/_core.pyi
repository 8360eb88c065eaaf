"""Type stubs for the private C++ extension ``fastq._core``. Keep in step with
src/cpp/bindings."""

from collections.abc import Callable, Sequence
from typing import Any

class DriverError(RuntimeError): ...

class Driver:
    @property
    def name(self) -> str: ...
    def enqueue(
        self,
        jobs: Sequence[
            tuple[
                str,  # id
                str,  # task
                str,  # queue
                int,  # priority
                str,  # args (JSON)
                str,  # kwargs (JSON)
                int | None,  # run_at, microseconds since the epoch
                int,  # max_attempts
                int | None,  # expires_at, microseconds since the epoch
                str,  # unique_key
                float | None,  # time_limit, seconds
                float | None,  # soft_time_limit, seconds
                str,  # rate_key
            ]
        ],
    ) -> list[str]: ...
    def get(self, id: str) -> dict[str, Any] | None: ...
    def count_runnable(self, queues: Sequence[str]) -> int: ...
    def rescue_expired(self) -> int: ...
    def cancel(self, id: str) -> str: ...  # "cancelled", "requested", "finished", "not_found"

def memory_driver() -> Driver: ...
def sqlite_driver(path: str, busy_timeout_ms: int = 30000) -> Driver: ...
def postgres_driver(conninfo: str) -> Driver: ...
def new_job_id() -> str: ...

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
    def hard_stopped(self) -> bool: ...

class Worker:
    def __init__(
        self,
        driver: Driver,
        execute: Callable[[str, list[Any], dict[str, Any], str, int, int, int, float], Any],
        retry_type: type[BaseException],
        registered: Sequence[str],
        queues: Sequence[str] = ...,
        concurrency: int = 4,
        prefetch: int = 0,
        claim_batch: int = 256,
        lease_ms: int = 30000,
        flush_interval_ms: int = 5,
        rescue_interval_ms: int = 5000,
        max_payload_bytes: int = ...,
        burst: bool = False,
        grace_ms: int = 30000,
        handle_signals: bool = True,
        name: str = "",
        log: Callable[[int, str], None] | None = None,
        max_jobs: int = 0,
        rate_limits: dict[str, tuple[int, int]] = ...,  # task -> (interval µs, burst)
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
    ) -> None: ...
    def run(self) -> SupervisorStats: ...

def enter_child(index: int) -> None: ...

"""The systems under test: how to prepare each one's database, drive its ``manage.py
bench`` command, and start its workers with the settings benchmarks/README.md gives.

A target is one system on one broker (fastq on PostgreSQL, Celery on Redis, ...). Each
target has a "main" database and, for the depth workload, a "depth" one that keeps its
backlog of a million jobs across repeats.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent  # benchmarks/
PEERS_VENV = HERE / ".peers"
PG = {"host": "127.0.0.1", "user": "postgres"}
REDIS = ("127.0.0.1", 6379)

# fastq-tasks: fastq's own project and worker, its tasks declared with Django's Tasks API
# and enqueued through fastq's backend (fastq_django.backends.FastqTaskBackend).
SYSTEMS = ("fastq", "fastq-tasks", "celery", "django-q2", "django-tasks")
FASTQ_SYSTEMS = ("fastq", "fastq-tasks")
BROKERS = ("postgres", "sqlite", "redis")

# Worker settings per system and workload: see "Settings" in benchmarks/README.md.
CPU_WORKERS = 2  # one process (or executor thread, for fastq) per core
IO_CONCURRENCY = {
    "fastq": 32,
    "fastq-tasks": 32,
    "celery": 16,
    "django-q2": 16,
    "django-tasks": 16,
}

# Redis databases (broker, then broker + 1 for results or cache) per target and purpose.
REDIS_DBS = {
    ("celery", "redis", "main"): 1,
    ("celery", "redis", "depth"): 3,
    ("django-q2", "redis", "main"): 5,
    ("django-q2", "redis", "depth"): 7,
    ("django-q2", "postgres", "main"): 9,
    ("django-q2", "postgres", "depth"): 11,
    ("django-q2", "sqlite", "main"): 13,
    ("django-q2", "sqlite", "depth"): 13,
}


def redis_command(db: int, *args: str) -> bytes:
    """One command to the local Redis (the harness' own virtualenv has no client)."""
    with socket.create_connection(REDIS, timeout=30) as s:
        parts = [("SELECT", str(db)), args]
        payload = b""
        for cmd in parts:
            payload += f"*{len(cmd)}\r\n".encode()
            for a in cmd:
                payload += f"${len(a.encode())}\r\n{a}\r\n".encode()
        s.sendall(payload)
        data = b""
        while data.count(b"\r\n") < 2:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(dbname="postgres", autocommit=True, **PG) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def pg_wal_lsn() -> str:
    """The server's WAL insert position (the whole server: other databases count too)."""
    import psycopg

    with psycopg.connect(dbname="postgres", autocommit=True, **PG) as conn:
        return conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]  # type: ignore[index]


def pg_wal_bytes(start: str, end: str) -> int:
    import psycopg

    with psycopg.connect(dbname="postgres", autocommit=True, **PG) as conn:
        row = conn.execute(
            "SELECT pg_wal_lsn_diff(%s::pg_lsn, %s::pg_lsn)", (end, start)
        ).fetchone()
        return int(row[0])  # type: ignore[index]


@dataclass
class Target:
    system: str
    broker: str
    tmp: Path
    logs: Path
    ready: set[str] = field(default_factory=set)
    db_prefix: str = "bench"  # PostgreSQL database names: <db_prefix>_<system>_<broker>...

    @property
    def key(self) -> str:
        return f"{self.system}/{self.broker}"

    @property
    def slug(self) -> str:
        return f"{self.system.replace('-', '_')}_{self.broker}"

    @property
    def python(self) -> Path:
        if self.system in FASTQ_SYSTEMS:
            return HERE.parent / ".venv" / "bin" / "python"
        return PEERS_VENV / "bin" / "python"

    @property
    def project(self) -> Path:
        if self.system in FASTQ_SYSTEMS:
            return HERE
        return HERE / "peers" / self.system.replace("-", "_")

    @property
    def uses_sql(self) -> bool:
        return self.system != "celery"

    @property
    def uses_postgres(self) -> bool:
        """Whether its jobs or results live in PostgreSQL (Django-Q2's Redis broker keeps
        its results there): those get a WAL bytes/job figure."""
        return self.broker == "postgres" or (self.system, self.broker) == ("django-q2", "redis")

    @property
    def external_stop(self) -> bool:
        """fastq's burst worker exits when the queue is empty; peers are polled."""
        return self.system in FASTQ_SYSTEMS

    @property
    def poll(self) -> float:
        return 0.02 if self.system == "celery" else 0.1

    def db_name(self, purpose: str) -> str:
        suffix = "_depth" if purpose == "depth" else ""
        if self.broker == "sqlite":
            return str(self.tmp / f"{self.slug}{suffix}.sqlite3")
        # Django-Q2's Redis broker keeps results in the project's PostgreSQL database.
        return f"{self.db_prefix}_{self.slug}{suffix}"

    def env(self, purpose: str = "main") -> dict[str, str]:
        env = dict(os.environ)
        env.pop("VIRTUAL_ENV", None)
        env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(self.project)])
        env["BENCH_BROKER"] = self.broker
        env["BENCH_DB"] = self.db_name(purpose)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        db = REDIS_DBS.get((self.system, self.broker, purpose))
        if db is not None:
            env["BENCH_REDIS_DB"] = str(db)
        if self.system == "fastq-tasks":
            env["BENCH_TASKS_API"] = "1"
        return env

    def manage(self, purpose: str, *args: str, timeout: float = 900) -> str:
        out = subprocess.run(
            [str(self.python), "manage.py", *args],
            cwd=self.project,
            env=self.env(purpose),
            text=True,
            capture_output=True,
            timeout=timeout,
        )
        if out.returncode != 0:
            raise RuntimeError(
                f"{self.key}: manage.py {' '.join(args)} failed:\n{out.stderr[-3000:]}"
            )
        return out.stdout

    def setup(self, purpose: str) -> None:
        """A fresh database (and Redis databases) for ``purpose``, migrated."""
        if purpose in self.ready:
            return
        db = REDIS_DBS.get((self.system, self.broker, purpose))
        if db is not None:
            redis_command(db, "FLUSHDB")
            redis_command(db + 1, "FLUSHDB")
        if self.uses_sql:
            name = self.db_name(purpose)
            if self.broker == "sqlite":
                for f in self.tmp.glob(Path(name).name + "*"):
                    if f.is_dir():  # the workers' wake directory (src/cpp/core/wake.hpp)
                        shutil.rmtree(f)
                    else:
                        f.unlink()
            else:
                pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                pg_admin(f"CREATE DATABASE {name}")
            self.manage(purpose, "migrate", "--verbosity", "0")
        self.ready.add(purpose)

    def worker_commands(self, workload: str) -> list[list[str]]:
        io = workload == "io"
        py = str(self.python)
        if self.system in FASTQ_SYSTEMS:
            cmd = [py, "manage.py", "fastq_worker", "--queues", "default", "-l", "WARNING"]
            cmd += ["--concurrency", str(IO_CONCURRENCY[self.system] if io else CPU_WORKERS)]
            return [cmd + ([] if workload == "latency" else ["--burst"])]
        if self.system == "celery":
            pool = ["-P", "threads", "-c", str(IO_CONCURRENCY["celery"])]
            if not io:
                pool = ["-P", "prefork", "-c", str(CPU_WORKERS)]
            celery = str(PEERS_VENV / "bin" / "celery")
            flags = ["--without-gossip", "--without-mingle", "-n", "bench@%h", "-l", "WARNING"]
            return [[celery, "-A", "celeryproject", "worker", *pool, "-Q", "celery", *flags]]
        if self.system == "django-q2":
            return [[py, "manage.py", "qcluster"]]
        # django-tasks: db_worker runs one task at a time; scale out with processes.
        count = IO_CONCURRENCY["django-tasks"] if io else CPU_WORKERS
        cmd = [py, "manage.py", "db_worker", "--queue-name", "default", "--no-startup-delay"]
        return [[*cmd, "--verbosity", "0"] for _ in range(count)]

    def worker_env(self, workload: str, purpose: str) -> dict[str, str]:
        env = self.env(purpose)
        if self.system == "django-q2":
            workers = IO_CONCURRENCY["django-q2"] if workload == "io" else CPU_WORKERS
            env["BENCH_Q_WORKERS"] = str(workers)
        return env


def settings_summary() -> dict[str, str]:
    """What each system runs with, for the results file."""
    return {
        "fastq": f"fastq_worker --concurrency {CPU_WORKERS} (io: "
        f"{IO_CONCURRENCY['fastq']}), --burst",
        "fastq-tasks": "the same worker and settings as fastq; tasks declared with "
        "django.tasks @task, TASKS backend fastq_django.backends.FastqTaskBackend",
        "celery": f"prefork -c {CPU_WORKERS} (io: threads -c {IO_CONCURRENCY['celery']}), "
        "Redis result backend, --without-gossip --without-mingle",
        "django-q2": f"qcluster workers={CPU_WORKERS} (io: {IO_CONCURRENCY['django-q2']}), "
        "save_limit=0, CONN_MAX_AGE=600",
        "django-tasks": f"{CPU_WORKERS} x db_worker (io: {IO_CONCURRENCY['django-tasks']}), "
        "--no-startup-delay, CONN_MAX_AGE=600",
    }

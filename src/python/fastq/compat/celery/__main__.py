"""``python -m fastq.compat.celery -A proj worker|inspect|beat|...``: Celery's command
line mapped onto fastq's, so systemd units and Dockerfiles change only the program name.

    python -m fastq.compat.celery -A proj worker -l info -Q a,b -c 4 --max-tasks-per-child 1000 -B
    python -m fastq.compat.celery -A proj inspect active|scheduled|reserved|registered|stats|ping
    python -m fastq.compat.celery -A proj beat     # a no-op: the scheduler runs in the worker
    python -m fastq.compat.celery -A proj purge -f
    python -m fastq.compat.celery -A proj status
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import signal
import sys
from typing import Any

EX_UNAVAILABLE = 69  # Celery's exit code when no worker replied


def load_app(spec: str) -> Any:
    """``-A proj``, ``-A proj.celery`` or ``-A proj.celery:app``: import it (which sets
    DJANGO_SETTINGS_MODULE in a Django project's celery.py) and find the Celery app."""
    from fastq.compat.celery import Celery

    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module_name, _, attr = spec.partition(":")
    candidates = (
        [module_name]
        if attr or module_name.endswith(".celery")
        else [module_name, f"{module_name}.celery"]
    )
    for name in candidates:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        if attr:
            return getattr(module, attr)
        for key in ("app", "celery"):
            if isinstance(getattr(module, key, None), Celery):
                return getattr(module, key)
        for value in vars(module).values():
            if isinstance(value, Celery):
                return value
    raise SystemExit(f"Error: Unable to load celery application: no Celery app in {spec!r}")


def _setup_django() -> None:
    import django

    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        raise SystemExit(
            "Error: DJANGO_SETTINGS_MODULE is not set (set it in proj/celery.py, as Celery's "
            "Django set-up does, or in the environment)"
        )
    django.setup()


def worker_argv(app: Any, opts: argparse.Namespace) -> list[str]:
    """The ``fastq_worker`` arguments for Celery's worker options and CELERY_WORKER_*."""
    conf = app.conf
    argv: list[str] = []
    if opts.loglevel:
        level = opts.loglevel.upper()
        argv += ["--loglevel", {"WARN": "WARNING", "FATAL": "CRITICAL"}.get(level, level)]
    if opts.queues:
        argv += ["--queues", ",".join(q for q in opts.queues.split(",") if q)]
    concurrency = opts.concurrency or conf.get("worker_concurrency") or os.cpu_count() or 1
    pool = (opts.pool or "prefork").lower()
    if pool == "prefork":
        # Celery's prefork: N child processes, one task each at a time.
        processes, threads = int(concurrency), 1
    elif pool == "solo":
        processes, threads = 0, 1
    else:  # threads, gevent, eventlet: one process running N at once
        processes, threads = 1, int(concurrency)
    argv += ["--processes", str(processes), "--concurrency", str(threads)]
    multiplier = opts.prefetch_multiplier
    if multiplier is None:
        multiplier = conf.get("worker_prefetch_multiplier")
    if multiplier is not None and int(multiplier) > 0:
        argv += ["--prefetch", str(int(multiplier) * threads)]
    per_child = opts.max_tasks_per_child or conf.get("worker_max_tasks_per_child")
    if per_child:
        argv += ["--max-tasks-per-child", str(int(per_child))]
    memory_kib = opts.max_memory_per_child or conf.get("worker_max_memory_per_child")
    if memory_kib:
        # Celery counts KiB, fastq MB.
        argv += ["--max-memory-per-child", str(max(1, math.ceil(int(memory_kib) / 1024)))]
    return argv


def _print_replies(replies: dict[str, Any] | None, as_json: bool) -> int:
    if not replies:
        print("Error: No nodes replied within time constraint", file=sys.stderr)
        return EX_UNAVAILABLE
    if as_json:
        print(json.dumps(replies, default=str))
        return 0
    for node, value in replies.items():
        print(f"->  {node}: OK")
        if isinstance(value, list):
            if not value:
                print("    - empty -")
            for item in value:
                print(f"    * {json.dumps(item, default=str)}")
        else:
            for line in json.dumps(value, indent=4, default=str).splitlines():
                print(f"    {line}")
    print(f"\n{len(replies)} node{'s' if len(replies) != 1 else ''} online.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastq.compat.celery")
    parser.add_argument("-A", "--app", required=True)
    parser.add_argument("-b", "--broker", help="no meaning: the database is the broker")
    parser.add_argument("--result-backend", help="no meaning: results live in the job row")
    parser.add_argument("--workdir")
    sub = parser.add_subparsers(dest="command", required=True)

    w = sub.add_parser("worker")
    w.add_argument("-l", "--loglevel")
    w.add_argument("-Q", "--queues", default="")
    w.add_argument("-c", "--concurrency", type=int)
    w.add_argument("-P", "--pool", choices=["prefork", "threads", "solo", "gevent", "eventlet"])
    w.add_argument("--prefetch-multiplier", type=int)
    w.add_argument("--max-tasks-per-child", type=int)
    w.add_argument("--max-memory-per-child", type=int, help="KiB, as Celery")
    w.add_argument(
        "-B",
        "--beat",
        action="store_true",
        help="accepted: every fastq worker runs the scheduler (one leader fires)",
    )
    w.add_argument("-n", "--hostname", help="no meaning: workers are named host:pid")
    w.add_argument("-E", "--task-events", action="store_true")
    w.add_argument("-O", dest="optimization")
    w.add_argument("--without-gossip", action="store_true")
    w.add_argument("--without-mingle", action="store_true")
    w.add_argument("--without-heartbeat", action="store_true")
    w.add_argument("--pidfile")
    w.add_argument("-f", "--logfile")
    w.add_argument("-s", "--schedule", help="no meaning: schedules live in the database")
    w.add_argument("--scheduler")
    w.add_argument("--autoscale", help="no meaning: set -c")
    w.add_argument("-D", "--detach", action="store_true")
    w.add_argument("--time-limit", type=float)
    w.add_argument("--soft-time-limit", type=float)

    i = sub.add_parser("inspect")
    i.add_argument(
        "method",
        choices=["active", "scheduled", "reserved", "registered", "stats", "ping", "active_queues"],
    )
    i.add_argument("-d", "--destination")
    i.add_argument("-t", "--timeout", type=float, default=1.0)
    i.add_argument("-j", "--json", action="store_true")

    b = sub.add_parser("beat")
    b.add_argument("-l", "--loglevel")
    b.add_argument("-s", "--schedule")
    b.add_argument("-S", "--scheduler")
    b.add_argument("--pidfile")
    b.add_argument("-f", "--logfile")
    b.add_argument("-D", "--detach", action="store_true")

    st = sub.add_parser("status")
    st.add_argument("-j", "--json", action="store_true")
    p = sub.add_parser("purge")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("-Q", "--queues", default="")

    opts = parser.parse_args(argv)
    if opts.workdir:
        os.chdir(opts.workdir)
    app = load_app(opts.app)
    _setup_django()

    if opts.command == "beat":
        # Blocked before the message: a SIGTERM sent as soon as it is read ends the wait.
        signals = {signal.SIGTERM, signal.SIGINT}
        signal.pthread_sigmask(signal.SIG_BLOCK, signals)
        print(
            "fastq: beat is not a separate process. Every fastq worker runs the scheduler "
            "(one leader among them fires each slot once); CELERY_BEAT_SCHEDULE is synced by "
            "the workers. This process does nothing and waits for SIGTERM/SIGINT.",
            flush=True,
        )
        signal.sigwait(signals)
        return 0
    if opts.command == "inspect":
        destination = opts.destination.split(",") if opts.destination else None
        inspect = app.control.inspect(destination=destination, timeout=opts.timeout)
        return _print_replies(getattr(inspect, opts.method)(), opts.json)
    if opts.command == "status":
        replies = app.control.inspect().ping()
        if opts.json:
            print(json.dumps(replies or {}))
            return 0 if replies else EX_UNAVAILABLE
        if not replies:
            print("Error: No nodes replied within time constraint", file=sys.stderr)
            return EX_UNAVAILABLE
        for node in replies:
            print(f"{node}: OK")
        print(f"\n{len(replies)} node{'s' if len(replies) != 1 else ''} online.")
        return 0
    if opts.command == "purge":
        if not opts.force:
            print("fastq: purge deletes every queued job; pass -f to confirm", file=sys.stderr)
            return 1
        from fastq.compat.celery import _jobs

        queues = [q for q in (opts.queues or "").split(",") if q]
        deleted = _jobs.purge_queued(queues or None)
        print(f"Purged {deleted} messages.")
        return 0

    # worker
    if opts.detach:
        print(
            "fastq: --detach is not supported; run the worker under systemd or a "
            "container supervisor",
            file=sys.stderr,
        )
        return 2
    from django.core.management import execute_from_command_line

    app.finalize()
    execute_from_command_line(["fastq", "fastq_worker", *worker_argv(app, opts)])
    return 0


if __name__ == "__main__":
    sys.exit(main())

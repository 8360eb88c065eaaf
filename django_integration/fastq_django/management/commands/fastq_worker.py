"""``python manage.py fastq_worker``: run tasks from the database broker."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import time
from typing import Any, NoReturn

import fastq
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connections
from fastq.worker import Worker, default_queues, is_driver_error, run_supervised

from fastq_django.broker import default_broker
from fastq_django.checks import TAG as CHECKS_TAG
from fastq_django.checks import Unreachable, migrate_line, unapplied_migrations
from fastq_django.discovery import import_task_modules

log = logging.getLogger("fastq.worker")

# The worker's options and their defaults: one fastq._core.WorkerConfig (fastq/worker.hpp).
DEFAULTS = fastq._core.WorkerConfig()


class Command(BaseCommand):
    help = (
        "Run fastq tasks from the database broker until SIGTERM/SIGINT "
        "(or, with --burst, until no runnable job is left)."
    )
    # Only fastq's own checks (fastq_django/checks.py: settings.FASTQ, the schedules'
    # tasks, the task modules, the broker alias): they are the ones a worker acts on.
    # Django's (models, admin, URLs, templates, auth, security) are for runserver and
    # migrate; a worker uses none of what they check, and running them imports the URL
    # configuration, the admin's and auth's views and middleware before the first claim
    # (docs/benchmarks.md, "Start-up"). --skip-checks still skips fastq's.
    requires_system_checks = [CHECKS_TAG]

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--queues",
            "-Q",
            default="",
            help="Comma-separated queues to consume (default: FASTQ['QUEUES'] "
            "or every queue a registered task uses).",
        )
        parser.add_argument(
            "--processes",
            "-P",
            type=int,
            default=os.cpu_count() or 1,
            help="Worker processes forked and supervised (default: one per CPU). 0 runs the "
            "worker in this process, without hard time limits or restarts.",
        )
        parser.add_argument(
            "--concurrency",
            "-c",
            type=int,
            default=DEFAULTS.concurrency,
            help=f"Executor threads per process (default {DEFAULTS.concurrency}). Raise it for "
            "I/O-bound tasks.",
        )
        parser.add_argument(
            "--max-tasks-per-child",
            type=int,
            default=0,
            help="Replace a worker process after it ran this many jobs (default: never).",
        )
        parser.add_argument(
            "--max-memory-per-child",
            type=int,
            default=0,
            help="Replace a worker process once its resident memory passes this many MB, "
            "after its running jobs finish (default: no limit).",
        )
        parser.add_argument(
            "--burst", action="store_true", help="Exit 0 once no runnable job is left."
        )
        parser.add_argument(
            "--prefetch",
            type=int,
            default=None,
            help="Jobs held beyond --concurrency (default: the claim batch). Lower it for "
            "long tasks so other workers get a share; 0 holds none beyond the running ones.",
        )
        parser.add_argument(
            "--claim-batch",
            type=int,
            default=DEFAULTS.claim_batch,
            help=f"Most jobs taken per claim statement (default {DEFAULTS.claim_batch}).",
        )
        parser.add_argument(
            "--lease",
            type=float,
            default=DEFAULTS.lease,
            help="Seconds a claim is held without a heartbeat before other "
            f"workers presume this one dead (default {DEFAULTS.lease:g}).",
        )
        parser.add_argument(
            "--poll-interval",
            type=float,
            default=DEFAULTS.idle_poll_max,
            help="Longest wait in seconds between an idle worker's polls (default "
            f"{DEFAULTS.idle_poll_max:g}). New jobs wake workers sooner (PostgreSQL: NOTIFY; "
            "SQLite: a local socket next to the database file); the poll is the safety net.",
        )
        parser.add_argument(
            "--grace",
            type=float,
            default=DEFAULTS.grace,
            help="Seconds running jobs get to finish after SIGTERM/SIGINT; after that (or on "
            "a second SIGINT) they go back to the queue, counted as interrupted and without "
            "spending an attempt the first 3 times.",
        )
        parser.add_argument(
            "--no-scheduler",
            action="store_true",
            help="Do not run the scheduler here (by default every non-burst worker runs one "
            "and they elect one leader that fires periodic schedules).",
        )
        parser.add_argument(
            "--scheduler-lease",
            type=float,
            default=15.0,
            help="Seconds the scheduler leader's lease lasts without renewal (default 15); "
            "another worker takes over this long after the leader dies.",
        )
        parser.add_argument(
            "--metrics-port",
            type=int,
            default=None,
            metavar="N",
            help="Serve this host's worker-process metrics (claims, batch sizes, executor "
            "busy time, wait and run-time histograms, flush latency) for Prometheus at "
            "http://ADDRESS:N/metrics from the supervisor (needs --processes 1 or more; 0 "
            "picks a free port and logs it).",
        )
        parser.add_argument(
            "--metrics-address",
            default="0.0.0.0",
            help="Address --metrics-port listens on (default 0.0.0.0; 127.0.0.1 keeps it local).",
        )
        parser.add_argument(
            "--loglevel",
            "-l",
            type=str.upper,
            default=None,
            choices=LOG_LEVELS,
            help="Level of the fastq loggers (and of Django's task loggers, which log each "
            "Django Tasks API task's start and end), in any case (info or INFO): DEBUG, INFO, "
            "WARNING, ERROR, CRITICAL. Failed, retried, dead, expired and time-limited jobs are "
            "logged at WARNING/ERROR, their tracebacks at DEBUG. When "
            "settings.LOGGING routes the fastq loggers (or gives the root logger handlers), "
            "that configuration is kept and only this level is applied to those loggers; "
            "otherwise fastq logs to stderr at this level (default INFO).",
        )

        parser.add_argument(
            "--log-jobs",
            action="store_true",
            help="Also log one INFO line per job started and per job succeeded (or "
            "cancelled), with its id, task and attempt. Off by default so that a busy worker "
            "does not drown its log; failures are logged either way.",
        )

    def check(self, *args: Any, **kwargs: Any) -> None:
        # The database checks (fastq.W001/W002) would print a warning block; handle()
        # tests the broker database itself and stops with one line instead.
        kwargs["databases"] = []
        super().check(*args, **kwargs)

    def handle(self, *args: Any, **options: Any) -> None:
        # From here until the worker (or supervisor) takes the signals over, a SIGTERM or
        # SIGINT (a test or systemd stopping us during start-up) asks for a stop instead
        # of killing the process with the scheduler's lease and the schedules half-synced.
        self._early_stop = _EarlyStop()
        configure_logging(options["loglevel"])
        if options["concurrency"] < 1:
            raise CommandError("--concurrency must be at least 1")
        if options["processes"] < 0:
            raise CommandError("--processes must be 0 or more")
        if options["prefetch"] is not None and options["prefetch"] < 0:
            raise CommandError("--prefetch must be 0 or more")
        if options["metrics_port"] is not None:
            if not 0 <= options["metrics_port"] <= 65535:
                raise CommandError("--metrics-port must be 0..65535")
            if options["processes"] == 0:
                raise CommandError(
                    "--metrics-port is served by the supervisor: use --processes 1 or more"
                )
        import_task_modules()
        broker = default_broker()
        # Before any schedule is synced or any process forked: a worker on a database
        # without fastq's tables would only fail (and be restarted) over and over.
        self._check_database(broker.alias)
        queues = [q.strip() for q in options["queues"].split(",") if q.strip()] or default_queues()
        self._sync_queue_limits(broker.alias)

        config = self._worker_config(queues, options)

        def make_worker(notify_systemd: bool = False) -> Worker:
            return Worker(broker, config, notify_systemd=notify_systemd)

        scheduler = self._make_scheduler(broker, options)
        self._banner(broker, queues, options)
        # Workers use their own connections; don't hold (or fork) Django's idle ones.
        connections.close_all()
        try:
            self._run(broker, make_worker, config, options, scheduler)
        finally:
            if scheduler is not None:
                scheduler.stop()

    def _banner(self, broker: Any, queues: list[str], options: dict[str, Any]) -> None:
        """The start-up lines: where the worker runs and on what, and the project's own
        tasks (fastq's internal ones, such as the poller's cycle task, are left out)."""
        processes = options["processes"]
        tasks = sorted(name for name in fastq.registry if not name.startswith("fastq."))
        prefetch = options["prefetch"]
        self.stderr.write(
            f"fastq worker {socket.gethostname()}:{os.getpid()} on {broker.name} "
            f"({broker.vendor}), queues {','.join(queues)}, "
            + (f"{processes} process(es) x " if processes else "")
            + f"concurrency {options['concurrency']}, prefetch "
            + (f"{prefetch}" if prefetch is not None else f"{options['claim_batch']} (default)")
            + (", logging every job" if options["log_jobs"] else "")
        )
        if tasks:
            self.stderr.write(f"{len(tasks)} task(s): {', '.join(tasks)}")
        else:
            self.stderr.write(
                "no tasks registered: fastq imports each installed app's tasks module and "
                "the modules in FASTQ['IMPORTS']; declare tasks there with @fastq.task"
            )

    def _sync_queue_limits(self, alias: str) -> None:
        """Writes FASTQ["QUEUES"] concurrency limits to fastq_queue (fastq_django/queues.py)."""
        from fastq_django.queues import sync_settings

        try:
            written = sync_settings(alias)
        except (DatabaseError, ValueError) as exc:
            raise CommandError(f"cannot write the queue limits of FASTQ['QUEUES']: {exc}") from exc
        if written:
            log.info("queue limits from FASTQ['QUEUES'] written for: %s", ", ".join(written))

    def _check_database(self, alias: str) -> None:
        """Exit 2 with one line if fastq_django's migrations are not applied to the
        broker database, 1 if it cannot be reached (no traceback either way)."""
        try:
            unapplied = unapplied_migrations(alias)
        except Unreachable as exc:
            self._exit(1, str(exc))
        if unapplied:
            self._exit(2, migrate_line(alias))

    def _exit(self, code: int, line: str) -> NoReturn:
        self.stderr.write(f"fastq_worker: {line}")
        self.stderr.flush()
        sys.exit(code)

    def _make_scheduler(self, broker: Any, options: dict[str, Any]) -> Any:
        """The scheduler thread of this fastq_worker (one per command, whatever
        --processes), after the code-declared schedules are written to the table."""
        if options["no_scheduler"] or options["burst"]:
            return None
        from fastq.worker import _log

        from fastq_django.schedules import sync_schedules

        try:
            created, updated, disabled = sync_schedules(broker.alias)
        except fastq.CronError as exc:
            raise CommandError(str(exc)) from exc
        except DatabaseError as exc:
            raise CommandError(
                f"cannot write the schedules table ({exc}); run `python manage.py migrate` "
                "or start the worker with --no-scheduler"
            ) from exc
        if created or updated or disabled:
            log.info(
                "schedules from code: %d created, %d updated, %d disabled",
                created,
                updated,
                disabled,
            )
        if options["scheduler_lease"] <= 0:
            raise CommandError("--scheduler-lease must be positive")
        try:
            driver = broker.worker_driver()
        except RuntimeError as exc:
            _raise_driver_failure(exc, "cannot use the broker database")
            raise
        scheduler = fastq._core.Scheduler(
            driver,
            holder=f"{socket.gethostname()}:{os.getpid()}",
            lease_ms=int(options["scheduler_lease"] * 1000),
            tasks={
                t.name: (
                    t.queue,
                    t.priority,
                    t.max_retries + 1,
                    t.time_limit or 0.0,
                    t.soft_time_limit or 0.0,
                )
                for t in fastq.registry.values()
            },
            log=_log,
            # Finished jobs past FASTQ["RETENTION"] are pruned by the leader (checked by
            # the system checks; docs/operations.md).
            retention=fastq.conf.retention(),
        )
        scheduler.start()
        return scheduler

    @staticmethod
    def _worker_config(queues: list[str], options: dict[str, Any]) -> fastq._core.WorkerConfig:
        """The flags as the worker's one config object."""
        config = fastq._core.WorkerConfig()
        config.queues = queues
        config.concurrency = options["concurrency"]
        if options["prefetch"] is not None:
            config.prefetch = options["prefetch"]
        config.claim_batch = options["claim_batch"]
        config.lease = options["lease"]
        config.burst = options["burst"]
        config.grace = options["grace"]
        config.idle_poll_max = options["poll_interval"]
        config.handle_signals = True
        config.max_jobs = options["max_tasks_per_child"]
        config.log_jobs = options["log_jobs"]
        return config

    def _run(
        self,
        broker: Any,
        make_worker: Any,
        config: fastq._core.WorkerConfig,
        options: dict[str, Any],
        scheduler: Any,
    ) -> None:
        processes = options["processes"]
        if processes:
            self._run_supervised(broker, make_worker, config, options, scheduler)
            return
        timed = [t.name for t in fastq.registry.values() if t.time_limit]
        if timed:
            log.warning(
                "--processes 0: hard time limits are not enforced (tasks with time_limit: %s)",
                ", ".join(timed),
            )
        try:
            worker = make_worker(notify_systemd=True)  # READY/WATCHDOG when NOTIFY_SOCKET
        except RuntimeError as exc:
            _raise_driver_failure(exc, "cannot use the broker database")
            raise
        self._early_stop.hand_over(worker)
        started = time.monotonic()
        try:
            stats = worker.run()
        except RuntimeError as exc:
            _raise_driver_failure(exc, "worker stopped")
            raise
        self._report(stats, time.monotonic() - started)
        if stats.hard_stopped:
            # Threads may still be inside task code; their jobs are back in the queue.
            if scheduler is not None:
                scheduler.stop()
            self.stderr.flush()
            sys.stdout.flush()
            os._exit(0)

    def _report(self, stats: fastq._core.WorkerStats, elapsed: float) -> None:
        rate = (stats.succeeded + stats.failed) / elapsed if elapsed > 0 else 0.0
        self.stderr.write(
            f"fastq worker {os.getpid()} stopped after {elapsed:.2f}s: {stats.succeeded} "
            f"succeeded, {stats.failed} failed, {stats.released} released, "
            f"{stats.rescued} rescued, {stats.fenced} fenced ({rate:,.0f} jobs/s)"
        )

    def _run_supervised(
        self,
        broker: Any,
        make_worker: Any,
        config: fastq._core.WorkerConfig,
        options: dict[str, Any],
        scheduler: Any,
    ) -> None:
        started = time.monotonic()
        if self._early_stop.requested:
            self.stderr.write("fastq supervisor: stopped before it started")
            return

        def child_stopped(stats: fastq._core.WorkerStats, elapsed: float) -> None:
            self._report(stats, elapsed)
            if stats.hard_stopped:
                self.stderr.flush()
                os._exit(0)

        try:
            stats = run_supervised(
                broker,
                make_worker,
                on_child_stop=child_stopped,
                processes=options["processes"],
                slots_per_child=config.capacity,
                grace=options["grace"],
                max_memory_mb=options["max_memory_per_child"],
                burst=options["burst"],
                restore_signals=False,  # the command ends here: a late Ctrl-C changes nothing
                fork_guard=scheduler,
                lease=options["lease"],
                metrics_port=options["metrics_port"],
                metrics_address=options["metrics_address"],
            )
        except RuntimeError as exc:
            if str(exc).startswith(("cannot serve metrics", "metrics address")):
                raise CommandError(str(exc)) from exc
            _raise_driver_failure(exc, "cannot use the broker database")
            raise
        self.stderr.write(
            f"fastq supervisor {os.getpid()} stopped after {time.monotonic() - started:.2f}s: "
            f"{stats.started} process(es) started, {stats.crashed} died, "
            f"{stats.timeouts} job(s) timed out, {stats.lost} lost, {stats.released} released"
        )
        if stats.exit_code:
            raise CommandError("the worker processes could not run; see the log above")


def _raise_driver_failure(exc: RuntimeError, what: str) -> None:
    """A broker driver's error becomes one line (CommandError, exit 1), not a traceback;
    the caller re-raises anything else."""
    if is_driver_error(exc):
        raise CommandError(f"{what}: {exc}") from exc


LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def _fastq_routed() -> bool:
    """Whether the logging configuration (settings.LOGGING) already sends fastq's records
    somewhere: handlers on a ``fastq`` logger or on the root logger."""
    if logging.getLogger().handlers:
        return True
    manager = logging.Logger.manager
    return any(
        isinstance(logger, logging.Logger) and logger.handlers
        for name, logger in manager.loggerDict.items()
        if name == "fastq" or name.startswith("fastq.")
    )


def configure_logging(level: str | None) -> None:
    """Keep the project's LOGGING if it routes fastq's loggers; else log to stderr.
    ``level`` (``--loglevel`` when given) applies to the ``fastq`` logger either way."""
    if not _fastq_routed():
        logging.basicConfig(
            level=level or "INFO",
            stream=sys.stderr,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    if level is not None:
        logging.getLogger("fastq").setLevel(level)
        # Django's Tasks API logs every task's start and end from the worker (logger
        # django.tasks; django_tasks for the backport, fastq_django.backends): these are
        # the worker's lines too, so --loglevel applies to them.
        for name in ("django.tasks", "django_tasks"):
            logging.getLogger(name).setLevel(level)


class _EarlyStop:
    """SIGTERM/SIGINT handlers for the start-up of the command: they record the request
    and, once the worker exists, ask it to stop (Worker.stop is safe before run(): the
    worker then stops as soon as it starts). The worker and the supervisor install their
    own handling when they run."""

    def __init__(self) -> None:
        self.requested = False
        self._worker: Worker | None = None
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        self.requested = True
        if self._worker is not None:
            self._worker.stop()

    def hand_over(self, worker: Worker) -> None:
        self._worker = worker
        if self.requested:
            worker.stop()

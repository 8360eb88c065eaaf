"""``python manage.py fastq_worker``: run tasks from the database broker."""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

import fastq
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections
from fastq.worker import Worker, default_queues

from fastq_django.broker import default_broker
from fastq_django.discovery import import_task_modules


class Command(BaseCommand):
    help = (
        "Run fastq tasks from the database broker until SIGTERM/SIGINT "
        "(or, with --burst, until no runnable job is left)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--queues",
            "-Q",
            default="",
            help="Comma-separated queues to consume (default: FASTQ['QUEUES'] "
            "or every queue a registered task uses).",
        )
        parser.add_argument(
            "--concurrency",
            "-c",
            type=int,
            default=4,
            help="Executor threads (default 4). Raise it for I/O-bound tasks.",
        )
        parser.add_argument(
            "--burst", action="store_true", help="Exit 0 once no runnable job is left."
        )
        parser.add_argument(
            "--prefetch",
            type=int,
            default=0,
            help="Jobs held beyond --concurrency (default: the claim batch). "
            "Lower it for long tasks so other workers get a share.",
        )
        parser.add_argument(
            "--claim-batch", type=int, default=256, help="Most jobs taken per claim statement."
        )
        parser.add_argument(
            "--lease",
            type=float,
            default=30.0,
            help="Seconds a claim is held without a heartbeat before other "
            "workers presume this one dead (default 30).",
        )
        parser.add_argument(
            "--grace",
            type=float,
            default=30.0,
            help="Seconds running jobs get to finish after SIGTERM/SIGINT; after that (or on "
            "a second SIGINT) they go back to the queue without spending an attempt.",
        )
        parser.add_argument(
            "--loglevel", "-l", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
        )

    def handle(self, *args: Any, **options: Any) -> None:
        logging.basicConfig(
            level=options["loglevel"],
            stream=sys.stderr,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        if options["concurrency"] < 1:
            raise CommandError("--concurrency must be at least 1")
        import_task_modules()
        broker = default_broker()
        queues = [q.strip() for q in options["queues"].split(",") if q.strip()] or default_queues()
        try:
            worker = Worker(
                broker,
                queues=queues,
                concurrency=options["concurrency"],
                prefetch=options["prefetch"],
                claim_batch=options["claim_batch"],
                lease=options["lease"],
                burst=options["burst"],
                grace=options["grace"],
                handle_signals=True,
            )
        except fastq._core.DriverError as exc:
            raise CommandError(f"cannot reach the broker database: {exc}") from exc
        # The worker uses its own connections; don't hold Django's idle ones open.
        connections.close_all()
        tasks = sorted(fastq.registry)
        self.stderr.write(
            f"fastq worker {worker.name} on {broker.name} ({broker.vendor}), queues "
            f"{','.join(queues)}, concurrency {options['concurrency']}, "
            f"{len(tasks)} task(s): {', '.join(tasks) or '(none registered)'}"
        )
        started = time.monotonic()
        try:
            stats = worker.run()
        except fastq._core.DriverError as exc:
            raise CommandError(f"worker stopped: {exc}") from exc
        elapsed = time.monotonic() - started
        rate = (stats.succeeded + stats.failed) / elapsed if elapsed > 0 else 0.0
        self.stderr.write(
            f"fastq worker {os.getpid()} stopped after {elapsed:.2f}s: {stats.succeeded} "
            f"succeeded, {stats.failed} failed, {stats.released} released, "
            f"{stats.rescued} rescued, {stats.fenced} fenced ({rate:,.0f} jobs/s)"
        )
        if stats.hard_stopped:
            # Threads may still be inside task code; their jobs are back in the queue.
            self.stderr.flush()
            sys.stdout.flush()
            os._exit(0)

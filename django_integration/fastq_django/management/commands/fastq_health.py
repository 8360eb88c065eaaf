"""``python manage.py fastq_health``: exit 0 or 1 with one line saying why, for a Docker
``HEALTHCHECK``, a Kubernetes probe or a systemd timer (docs/operations.md).

Healthy when every queue checked (``--queue Q``, repeatable; default: ``FASTQ["QUEUES"]``
or the queues of the registered tasks) has a live worker whose last heartbeat is younger
than ``--max-age`` seconds, and, when given, its depth (jobs due now) is under
``--max-depth`` and its oldest wait under ``--max-wait`` seconds.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError
from django.db.models import Count, Min, Q
from django.utils import timezone
from fastq.worker import default_queues

from fastq_django import inspect
from fastq_django.discovery import import_task_modules
from fastq_django.models import Job, JobState, WorkerProcess, WorkerState


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0 or value != value or value == float("inf"):
        raise ValueError(text)
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


class Command(BaseCommand):
    help = "Exit 0 if every queue has a live worker (and is within limits), else 1; one line."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--queue",
            action="append",
            dest="queues",
            metavar="Q",
            help="queue that must have a live worker (repeatable; default: every queue)",
        )
        parser.add_argument(
            "--max-age",
            type=_positive,
            default=60.0,
            metavar="SECONDS",
            help="newest heartbeat of a queue's workers must be younger (default 60)",
        )
        parser.add_argument(
            "--max-depth",
            type=_count,
            metavar="N",
            help="unhealthy when a queue has N or more jobs due now",
        )
        parser.add_argument(
            "--max-wait",
            type=_positive,
            metavar="SECONDS",
            help="unhealthy when a queue's oldest due job has waited this long",
        )

    def _exit(self, code: int, line: str) -> NoReturn:
        (self.stdout if code == 0 else self.stderr).write(line)
        sys.stdout.flush()
        sys.stderr.flush()
        sys.exit(code)

    def handle(self, *args: Any, **options: Any) -> None:
        import_task_modules()
        queues = sorted(set(options["queues"] or default_queues()))
        try:
            problems, summary = self._check(queues, options)
        except DatabaseError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self._exit(1, f"fastq unhealthy: cannot read the fastq tables: {first}")
        if problems:
            self._exit(1, "fastq unhealthy: " + "; ".join(problems))
        self._exit(0, "fastq healthy: " + summary)

    def _check(self, queues: list[str], options: dict[str, Any]) -> tuple[list[str], str]:
        now = timezone.now()
        fresh = now - timedelta(seconds=options["max_age"])
        db = inspect.alias()
        live = list(
            WorkerProcess.objects.using(db).filter(
                state=WorkerState.RUNNING,
                kind="worker",
                expires_at__gte=now,
                last_heartbeat__gte=fresh,
            )
        )
        problems = []
        for q in queues:
            if not any(q in w.queue_list for w in live):
                problems.append(
                    f"queue {q!r} has no live worker (heartbeat within {options['max_age']:g}s)"
                )
        if options["max_depth"] is not None or options["max_wait"] is not None:
            due = {
                r["queue"]: r
                for r in Job.objects.using(db)
                .filter(state=JobState.QUEUED, queue__in=queues)
                .values("queue")
                .annotate(
                    depth=Count("id", filter=Q(run_at__lte=now)),
                    oldest=Min("run_at", filter=Q(run_at__lte=now)),
                )
                .order_by()
            }
            for q in queues:
                row = due.get(q)
                if row is None:
                    continue
                if options["max_depth"] is not None and row["depth"] >= options["max_depth"]:
                    problems.append(
                        f"queue {q!r} has {row['depth']} jobs due (max {options['max_depth']})"
                    )
                if options["max_wait"] is not None and row["oldest"] is not None:
                    wait = (now - row["oldest"]).total_seconds()
                    if wait >= options["max_wait"]:
                        problems.append(
                            f"queue {q!r} oldest job has waited {wait:.1f}s "
                            f"(max {options['max_wait']:g}s)"
                        )
        newest = max((w.last_heartbeat for w in live), default=None)
        age = f", newest heartbeat {(now - newest).total_seconds():.1f}s ago" if newest else ""
        summary = f"{len(queues)} queue(s) ({', '.join(queues)}), {len(live)} live worker(s){age}"
        return problems, summary

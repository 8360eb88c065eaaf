"""``python manage.py qcluster``: Django-Q2's command, running ``fastq_worker`` with the
Q_CLUSTER keys that have a meaning there (workers, recycle, max_rss)."""

from __future__ import annotations

import math
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from fastq.compat.django_q.conf import Conf


class Command(BaseCommand):
    help = "Run fastq's worker (Django-Q2's qcluster): Q_CLUSTER workers, recycle, max_rss."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--run-once",
            action="store_true",
            help="Run what is runnable, then exit (fastq_worker --burst).",
        )
        parser.add_argument("-l", "--loglevel", default=None)
        parser.add_argument("--queues", "-Q", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        argv: list[str] = ["--processes", str(int(Conf.WORKERS))]
        if Conf.RECYCLE:
            argv += ["--max-tasks-per-child", str(int(Conf.RECYCLE))]
        if Conf.MAX_RSS:
            # Django-Q2 counts KiB, fastq MB.
            argv += ["--max-memory-per-child", str(max(1, math.ceil(int(Conf.MAX_RSS) / 1024)))]
        if options["run_once"]:
            argv.append("--burst")
        if options["loglevel"]:
            argv += ["--loglevel", options["loglevel"]]
        if options["queues"]:
            argv += ["--queues", options["queues"]]
        call_command("fastq_worker", *argv)

"""``manage.py bench_startup enqueue|started``: the start-up workload's two operations
(benchmarks/run.py, workload ``startup``; benchmarks/startup.py).

``enqueue`` empties the default queue and enqueues one no-op job; ``started`` waits for
that job to finish and prints its ``started_at`` (epoch seconds, the database's record of
when the worker began running it) as a JSON line.
"""

from __future__ import annotations

import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connection
from fastq_django.models import Job

from bench.tasks import noop


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("op", choices=["enqueue", "started"])
        parser.add_argument("--timeout", type=float, default=60.0)

    def handle(self, *args: Any, **o: Any) -> None:
        if o["op"] == "enqueue":
            with connection.cursor() as c:
                c.execute("DELETE FROM fastq_job")
            noop.delay()
            print(json.dumps({"enqueued": 1}))
            return
        deadline = time.monotonic() + o["timeout"]
        while time.monotonic() < deadline:
            job = Job.objects.filter(state="succeeded").first()
            if job is not None and job.started_at is not None:
                print(json.dumps({"started_at": job.started_at.timestamp()}))
                return
            time.sleep(0.05)
        raise SystemExit(f"the job did not finish within {o['timeout']} s")

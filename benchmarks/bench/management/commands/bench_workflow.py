"""``manage.py bench_workflow enqueue|finished``: the workflow benchmark's operations for
fastq (benchmarks/workflows.py drives them). Prints one JSON line."""

from __future__ import annotations

import json
import time
from typing import Any

import fastq
from django.core.management.base import BaseCommand, CommandParser
from django.db.models import Max
from fastq_django.models import Job

from bench.tasks import collect, noop, step


class Command(BaseCommand):
    help = "Enqueue a plain batch, a chord or a chain; or wait for it and report its end."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("op", choices=["enqueue", "finished"])
        parser.add_argument("--kind", choices=["plain", "chord", "chain"], required=True)
        parser.add_argument("--n", type=int, required=True)
        parser.add_argument("--target", default="")
        parser.add_argument("--timeout", type=float, default=600)

    def handle(self, *args: Any, **o: Any) -> None:
        n, kind = o["n"], o["kind"]
        if o["op"] == "enqueue":
            Job.objects.all().delete()
            t0 = time.perf_counter()
            target = ""
            if kind == "plain":
                noop.map([()] * n)
            elif kind == "chord":
                target = fastq.chord((step.s() for _ in range(n)), collect.s()).delay().id
            else:
                target = fastq.chain(*[step.s() for _ in range(n)]).delay().id
            jobs = n + (1 if kind == "chord" else 0)
            print(
                json.dumps({"target": target, "jobs": jobs, "enqueue_s": time.perf_counter() - t0})
            )
            return
        deadline = time.monotonic() + o["timeout"]
        while time.monotonic() < deadline:
            if kind == "plain":
                if Job.objects.filter(state="succeeded").count() >= n:
                    end = Job.objects.aggregate(m=Max("finished_at"))["m"]
                    print(json.dumps({"end": end.timestamp()}))
                    return
            else:
                job = Job.objects.get(pk=o["target"])
                if job.state not in ("waiting", "queued", "running"):
                    if job.state != "succeeded":
                        raise SystemExit(f"{kind} ended {job.state}: {job.error}")
                    print(json.dumps({"end": job.finished_at.timestamp(), "result": job.result}))
                    return
            time.sleep(0.05)
        raise SystemExit(f"{kind} of {n} not finished within {o['timeout']} s")

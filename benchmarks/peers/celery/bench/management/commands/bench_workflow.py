"""``manage.py bench_workflow enqueue|finished``: the workflow benchmark's operations for
Celery (benchmarks/workflows.py): a chord on the Redis broker with the Redis result
backend (its native chord counter). Prints one JSON line."""

from __future__ import annotations

import json
import time
from datetime import UTC
from typing import Any

import redis
from celery import chord
from celery.result import AsyncResult
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from bench.tasks import collect, step


class Command(BaseCommand):
    help = "Enqueue a chord, or wait for its callback and report when it finished."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("op", choices=["enqueue", "finished"])
        parser.add_argument("--kind", choices=["chord"], required=True)
        parser.add_argument("--n", type=int, required=True)
        parser.add_argument("--target", default="")
        parser.add_argument("--timeout", type=float, default=600)

    def handle(self, *args: Any, **o: Any) -> None:
        if o["op"] == "enqueue":
            redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
            redis.Redis.from_url(settings.CELERY_RESULT_BACKEND).flushdb()
            t0 = time.perf_counter()
            r = chord((step.s() for _ in range(o["n"])), collect.s()).apply_async()
            print(
                json.dumps(
                    {"target": r.id, "jobs": o["n"] + 1, "enqueue_s": time.perf_counter() - t0}
                )
            )
            return
        r = AsyncResult(o["target"])
        value = r.get(timeout=o["timeout"])
        done = r.date_done
        if done.tzinfo is None:  # Celery stores UTC
            done = done.replace(tzinfo=UTC)
        print(json.dumps({"end": done.timestamp(), "result": value}))

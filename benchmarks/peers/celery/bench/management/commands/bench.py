"""``manage.py bench <op>``: the benchmark operations (benchkit.ops) for Celery."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime
from typing import Any

import redis
from benchkit import ops
from celery import group
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from bench.tasks import io_get, noop, probe

QUEUE = "celery"  # Celery's default queue: the worker consumes only this one
DEPTH_QUEUE = "depth"  # a queue the worker does not consume
BATCH = 5000


class CeleryAdapter:
    def __init__(self) -> None:
        self.broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        self.results = redis.Redis.from_url(settings.CELERY_RESULT_BACKEND)

    def reset(self) -> None:
        keys = [k for k in self.broker.scan_iter(count=1000) if k != DEPTH_QUEUE.encode()]
        if keys:
            self.broker.delete(*keys)
        self.results.flushdb()

    def _template(self, sig: Any, queue: str) -> tuple[bytes, list[bytes]]:
        """One message exactly as Celery publishes it, and the ids inside it."""
        result = sig.apply_async(queue=queue)
        raw = self.broker.rpop(queue)
        assert raw is not None, "no message published"
        envelope = json.loads(raw)
        ids = [result.id.encode(), envelope["properties"]["delivery_tag"].encode()]
        return raw, ids

    def _push(self, queue: str, template: bytes, ids: list[bytes], n: int, unique: bool) -> None:
        for start in range(0, n, BATCH):
            count = min(BATCH, n - start)
            if unique:
                batch = []
                for _ in range(count):
                    msg = template
                    for old in ids:
                        msg = msg.replace(old, str(uuid.uuid4()).encode())
                    batch.append(msg)
            else:
                batch = [template] * count
            self.broker.lpush(queue, *batch)

    def prefill(self, n: int, task: str, url: str) -> None:
        # Celery's bulk path (a group) publishes one message at a time; copying a real
        # message with fresh ids fills the queue in a fraction of the time.
        sig = io_get.s(url) if task == "io" else noop.s()
        template, ids = self._template(sig, QUEUE)
        self._push(QUEUE, template, ids, n, unique=True)

    def depth(self, n: int) -> int:
        present = int(self.broker.llen(DEPTH_QUEUE))
        if present < n:
            template, ids = self._template(noop.s(), DEPTH_QUEUE)
            self._push(DEPTH_QUEUE, template, ids, n - present, unique=False)
        return present

    def enqueue(self, n: int) -> None:
        for _ in range(n):
            noop.delay()

    def enqueue_bulk(self, n: int) -> bool:
        group(noop.s() for _ in range(n)).apply_async()
        return True

    def done(self) -> int:
        return int(self.results.dbsize())

    def last_finish(self) -> float | None:
        last = 0.0
        keys = list(self.results.scan_iter(match="celery-task-meta-*", count=5000))
        for start in range(0, len(keys), BATCH):
            for raw in self.results.mget(keys[start : start + BATCH]):
                if raw:
                    done = datetime.fromisoformat(json.loads(raw)["date_done"])
                    last = max(last, done.timestamp())
        return last or None

    def probe(self, enqueued_at: float) -> Any:
        return probe.delay(enqueued_at)

    def probe_starts(self, handles: list[Any], timeout: float) -> list[float | None]:
        keys = [f"celery-task-meta-{h.id}" for h in handles]
        deadline = time.monotonic() + timeout
        while True:
            values = self.results.mget(keys) if keys else []
            if all(values) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        return [float(json.loads(v)["result"]) if v else None for v in values]


class Command(BaseCommand):
    help = "Benchmark operations driven by benchmarks/run.py (see benchkit.ops)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("args", nargs="*")

    def run_from_argv(self, argv: list[str]) -> None:
        ops.main(CeleryAdapter(), argv[2:])

    def handle(self, *args: Any, **options: Any) -> None:
        ops.main(CeleryAdapter(), list(args))

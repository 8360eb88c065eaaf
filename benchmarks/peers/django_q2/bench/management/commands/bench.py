"""``manage.py bench <op>``: the benchmark operations (benchkit.ops) for Django-Q2."""

from __future__ import annotations

import multiprocessing
import os
import time
from typing import Any

from benchkit import ops
from django.core.cache import cache
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection
from django.db.models import Max
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.humanhash import uuid
from django_q.models import OrmQ, Task
from django_q.signing import SignedPackage
from django_q.tasks import async_iter, async_task

DEPTH_KEY = "depth"  # another cluster's key: this cluster never takes these
BATCH = 5000


def package(func: str, args: tuple[Any, ...]) -> str:
    """A task package as async_task builds and signs it."""
    name, task_id = uuid()
    task = {"id": task_id, "name": name, "func": func, "args": args, "kwargs": {}}
    task["started"] = timezone.now()
    return SignedPackage.dumps(task)


def packages(func: str, args: tuple[Any, ...], n: int) -> list[str]:
    return [package(func, args) for _ in range(n)]


class DjangoQ2Adapter:
    def __init__(self) -> None:
        self.broker = get_broker()
        self.redis = Conf.ORM is None

    def _postgres(self) -> bool:
        return connection.vendor == "postgresql"

    def reset(self) -> None:
        if self.redis:
            self.broker.connection.delete(self.broker.list_key)
        else:
            OrmQ.objects.exclude(key=DEPTH_KEY).delete()
        Task.objects.all().delete()
        cache.clear()
        if self._postgres():
            with connection.cursor() as c:
                c.execute("VACUUM django_q_ormq")
                c.execute("VACUUM django_q_task")

    def prefill(self, n: int, task: str, url: str) -> None:
        func, args = ("bench.tasks.io_get", (url,)) if task == "io" else ("bench.tasks.noop", ())
        counts = [min(BATCH, n - start) for start in range(0, n, BATCH)]
        # Signing costs ~0.1 ms a package: sign on every core (fork keeps Django set up).
        with multiprocessing.get_context("fork").Pool(os.cpu_count() or 1) as pool:
            chunks = pool.starmap(packages, [(func, args, c) for c in counts])
        for packs in chunks:
            if self.redis:
                self.broker.connection.rpush(self.broker.list_key, *packs)
            else:
                now = timezone.now()
                OrmQ.objects.bulk_create(
                    [OrmQ(key=self.broker.list_key, payload=p, lock=now) for p in packs]
                )
        if self._postgres():
            with connection.cursor() as c:
                c.execute("ANALYZE django_q_ormq")

    def depth(self, n: int) -> int:
        pack = package("bench.tasks.noop", ())
        if self.redis:
            key = f"django_q:{DEPTH_KEY}:q"
            present = int(self.broker.connection.llen(key))
            for start in range(present, n, BATCH):
                self.broker.connection.rpush(key, *[pack] * min(BATCH, n - start))
            return present
        present = OrmQ.objects.filter(key=DEPTH_KEY).count()
        missing = n - present
        if missing > 0:
            with connection.cursor() as c:
                if self._postgres():
                    c.execute(
                        "INSERT INTO django_q_ormq (key, payload, lock) SELECT %s, %s, now() "
                        "FROM generate_series(1, %s)",
                        [DEPTH_KEY, pack, missing],
                    )
                    c.execute("VACUUM ANALYZE django_q_ormq")
                else:
                    c.execute(
                        "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s "
                        "WHERE i < %s) INSERT INTO django_q_ormq (key, payload, lock) "
                        "SELECT %s, %s, %s FROM s",
                        [missing, DEPTH_KEY, pack, timezone.now()],
                    )
        return present

    def enqueue(self, n: int) -> None:
        for _ in range(n):
            async_task("bench.tasks.noop")

    def enqueue_bulk(self, n: int) -> bool:
        async_iter("bench.tasks.noop", [()] * n)
        return True

    def done(self) -> int:
        return Task.objects.filter(success=True).count()

    def last_finish(self) -> float | None:
        last = Task.objects.filter(success=True).aggregate(m=Max("stopped"))["m"]
        return last.timestamp() if last else None

    def probe(self, enqueued_at: float) -> str:
        return async_task("bench.tasks.probe", enqueued_at)

    def probe_starts(self, handles: list[Any], timeout: float) -> list[float | None]:
        deadline = time.monotonic() + timeout
        while True:
            found = dict(
                Task.objects.filter(id__in=handles, success=True).values_list("id", "result")
            )
            if len(found) == len(handles) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        return [float(found[h]) if h in found else None for h in handles]


class Command(BaseCommand):
    help = "Benchmark operations driven by benchmarks/run.py (see benchkit.ops)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("args", nargs="*")

    def run_from_argv(self, argv: list[str]) -> None:
        ops.main(DjangoQ2Adapter(), argv[2:])

    def handle(self, *args: Any, **options: Any) -> None:
        ops.main(DjangoQ2Adapter(), list(args))

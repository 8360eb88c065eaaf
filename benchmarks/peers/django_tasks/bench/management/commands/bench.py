"""``manage.py bench <op>``: the benchmark operations (benchkit.ops) for django-tasks'
database backend."""

from __future__ import annotations

import time
from typing import Any

from benchkit import ops
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection
from django.db.models import Max
from django_tasks_db.models import DBTaskResult, get_date_max

from bench.tasks import io_get, noop, probe

DEPTH_QUEUE = "depth"  # db_worker runs with --queue-name default and never takes these
BATCH = 5000


class DjangoTasksAdapter:
    def _postgres(self) -> bool:
        return connection.vendor == "postgresql"

    def reset(self) -> None:
        DBTaskResult.objects.exclude(queue_name=DEPTH_QUEUE).delete()
        if self._postgres():
            with connection.cursor() as c:
                c.execute(f"VACUUM {DBTaskResult._meta.db_table}")

    def _row(self, task: Any, args: list[Any], queue: str) -> DBTaskResult:
        """A row as DatabaseBackend.enqueue() creates it (its pre_save handler turns a
        missing run_after into the maximum date; bulk_create sends no signals)."""
        return DBTaskResult(
            args_kwargs={"args": args, "kwargs": {}},
            priority=task.priority,
            task_path=task.module_path,
            queue_name=queue,
            run_after=task.run_after or get_date_max(),
            backend_name="default",
        )

    def prefill(self, n: int, task: str, url: str) -> None:
        t, args = (io_get, [url]) if task == "io" else (noop, [])
        for start in range(0, n, BATCH):
            count = min(BATCH, n - start)
            DBTaskResult.objects.bulk_create(
                [self._row(t, args, t.queue_name) for _ in range(count)]
            )
        if self._postgres():
            with connection.cursor() as c:
                c.execute(f"ANALYZE {DBTaskResult._meta.db_table}")

    def depth(self, n: int) -> int:
        present = DBTaskResult.objects.filter(queue_name=DEPTH_QUEUE).count()
        if present >= n:
            return present
        if not self._postgres():
            for start in range(present, n, BATCH):
                count = min(BATCH, n - start)
                DBTaskResult.objects.bulk_create(
                    [self._row(noop, [], DEPTH_QUEUE) for _ in range(count)]
                )
            return present
        # A million rows through the ORM take minutes; the same rows in one statement,
        # with ascending ids so that they append to the primary key index.
        table = DBTaskResult._meta.db_table
        with connection.cursor() as c:
            c.execute(
                f"INSERT INTO {table} (id, status, args_kwargs, priority, task_path, "
                "queue_name, backend_name, run_after, enqueued_at, exception_class_path, "
                "traceback, worker_ids) SELECT "
                "('00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, 'READY', "
                """'{"args": [], "kwargs": {}}', 0, %s, %s, 'default', %s, now(), '', '', """
                "'[]' FROM generate_series(%s, %s) AS i",
                [noop.module_path, DEPTH_QUEUE, get_date_max(), present + 1, n],
            )
            c.execute(f"VACUUM ANALYZE {table}")
        return present

    def enqueue(self, n: int) -> None:
        for _ in range(n):
            noop.enqueue()

    def enqueue_bulk(self, n: int) -> bool:
        return False  # the Tasks API has no bulk enqueue

    def done(self) -> int:
        return DBTaskResult.objects.successful().count()

    def last_finish(self) -> float | None:
        last = DBTaskResult.objects.successful().aggregate(m=Max("finished_at"))["m"]
        return last.timestamp() if last else None

    def probe(self, enqueued_at: float) -> str:
        return str(probe.enqueue(enqueued_at).id)

    def probe_starts(self, handles: list[Any], timeout: float) -> list[float | None]:
        deadline = time.monotonic() + timeout
        while True:
            found = {
                str(k): v
                for k, v in DBTaskResult.objects.successful()
                .filter(id__in=handles)
                .values_list("id", "return_value")
            }
            if len(found) == len(handles) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        return [float(found[h]) if h in found else None for h in handles]


class Command(BaseCommand):
    help = "Benchmark operations driven by benchmarks/run.py (see benchkit.ops)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("args", nargs="*")

    def run_from_argv(self, argv: list[str]) -> None:
        ops.main(DjangoTasksAdapter(), argv[2:])

    def handle(self, *args: Any, **options: Any) -> None:
        ops.main(DjangoTasksAdapter(), list(args))

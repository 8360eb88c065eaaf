"""``manage.py bench <op>``: the benchmark operations (benchkit.ops) for fastq."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Any

from benchkit import ops
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection
from django.db.models import Max
from fastq import AsyncResult
from fastq_django.models import Job

from bench.tasks import io_get, noop, probe

DEPTH_QUEUE = "depth"  # the worker runs with --queues default and never takes these


class FastqAdapter:
    def _postgres(self) -> bool:
        return connection.vendor == "postgresql"

    def reset(self) -> None:
        with connection.cursor() as c:
            if self._postgres():
                # The job store's tables (migration 0017): fastq_job is a view of them.
                c.execute("DELETE FROM fastq_active WHERE queue <> %s", [DEPTH_QUEUE])
                c.execute("TRUNCATE fastq_finished")
                c.execute("VACUUM fastq_active")
            else:
                c.execute("DELETE FROM fastq_job WHERE queue <> %s", [DEPTH_QUEUE])

    def prefill(self, n: int, task: str, url: str) -> None:
        if task == "io":
            io_get.map([(url,)] * n)
        else:
            noop.map([()] * n)
        if self._postgres():
            with connection.cursor() as c:
                c.execute("ANALYZE fastq_active")

    def depth(self, n: int) -> int:
        present = Job.objects.filter(queue=DEPTH_QUEUE).count()
        missing = n - present
        if missing <= 0:
            return present
        columns = (
            "id, task, queue, priority, state, args, kwargs, run_at, attempts, max_attempts, "
            "cancel_requested, worker, error_type, error, traceback, created_at"
        )
        with connection.cursor() as c:
            if self._postgres():
                # Ascending ids: the rows append to the indexes instead of landing at
                # random pages, so a million of them take seconds, not a minute.
                c.execute(
                    f"INSERT INTO fastq_active ({columns}) SELECT "
                    "('00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, "
                    "'bench.tasks.noop', %s, 0, 'queued', '[]', '{}', now(), 0, 4, false, "
                    "'', '', '', '', now() FROM generate_series(%s, %s) AS i",
                    [DEPTH_QUEUE, present + 1, n],
                )
                c.execute("VACUUM ANALYZE fastq_active")
            else:
                now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
                c.execute(
                    "WITH RECURSIVE s(i) AS (SELECT %s UNION ALL SELECT i + 1 FROM s "
                    f"WHERE i < %s) INSERT INTO fastq_job ({columns}) SELECT "
                    "printf('000000000000400080000%011x', i), 'bench.tasks.noop', %s, 0, "
                    "'queued', '[]', '{}', %s, 0, 4, 0, '', '', '', '', %s FROM s",
                    [present + 1, n, DEPTH_QUEUE, now, now],
                )
        return present

    def enqueue(self, n: int) -> None:
        for _ in range(n):
            noop.delay()

    def enqueue_bulk(self, n: int) -> bool:
        noop.map([()] * n)
        return True

    def done(self) -> int:
        return Job.objects.filter(state="succeeded").count()

    def last_finish(self) -> float | None:
        last = Job.objects.filter(state="succeeded").aggregate(m=Max("finished_at"))["m"]
        return last.timestamp() if last else None

    def probe(self, enqueued_at: float) -> AsyncResult:
        return probe.delay(enqueued_at)

    def probe_starts(self, handles: list[Any], timeout: float) -> list[float | None]:
        ids = [h.id for h in handles]
        deadline = time.monotonic() + timeout
        while True:
            rows = {
                str(k): v
                for k, v in Job.objects.filter(id__in=ids, state="succeeded").values_list(
                    "id", "result"
                )
            }
            if len(rows) == len(ids) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        return [float(rows[i]) if rows.get(i) is not None else None for i in ids]


class TasksApiAdapter(FastqAdapter):
    """The same database and worker, the tasks declared with Django's Tasks API and
    enqueued through fastq's backend (BENCH_TASKS_API=1: the "fastq-tasks" system)."""

    def prefill(self, n: int, task: str, url: str) -> None:
        # The rows .enqueue() writes, through the fastq task the backend runs a Django
        # task as (its bulk path: the Tasks API has none). Not measured, as for all.
        from bench import tasks_api

        t = tasks_api.io_get if task == "io" else tasks_api.noop
        fastq_task = t.get_backend().fastq_task(t)
        fastq_task.map([(url,) if task == "io" else ()] * n)
        if self._postgres():
            with connection.cursor() as c:
                c.execute("ANALYZE fastq_active")

    def enqueue(self, n: int) -> None:
        from bench import tasks_api

        for _ in range(n):
            tasks_api.noop.enqueue()

    def enqueue_bulk(self, n: int) -> bool:
        return False  # the Tasks API has no bulk enqueue

    def probe(self, enqueued_at: float) -> Any:
        from bench import tasks_api

        return tasks_api.probe.enqueue(enqueued_at)


def _adapter() -> FastqAdapter:
    return TasksApiAdapter() if os.environ.get("BENCH_TASKS_API") == "1" else FastqAdapter()


class Command(BaseCommand):
    help = "Benchmark operations driven by benchmarks/run.py (see benchkit.ops)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("args", nargs="*")

    def run_from_argv(self, argv: list[str]) -> None:
        # argv: manage.py bench <op> [options]; benchkit parses the options itself.
        ops.main(_adapter(), argv[2:])

    def handle(self, *args: Any, **options: Any) -> None:
        ops.main(_adapter(), list(args))

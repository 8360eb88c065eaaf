"""``python manage.py fastq_inspect SUBCOMMAND [--json]``: what the fleet is doing, read
from the database (Celery's ``inspect``, durable and fleet-wide).

Sub-commands: ``workers``, ``active``, ``reserved``, ``scheduled``, ``registered``,
``queues``, ``stats``. Human tables by default; ``--json`` prints one JSON document for
scripts. The queries and the indexes they use are in ``fastq_django/inspect.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from fastq_django import inspect
from fastq_django.discovery import import_task_modules

SUBCOMMANDS = ("workers", "active", "reserved", "scheduled", "registered", "queues", "stats")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table, columns padded to their widest cell."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def secs(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.1f}ms"
    if value < 120:
        return f"{value:.1f}s"
    if value < 7200:
        return f"{value / 60:.1f}m"
    return f"{value / 3600:.1f}h"


def mb(value: int) -> str:
    return f"{value / 1_048_576:.1f}MB"


class Command(BaseCommand):
    help = (
        "Show workers, running, reserved and scheduled jobs, registered tasks, queues and "
        "recent statistics (fastq_inspect SUBCOMMAND [--json])."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("subcommand", choices=SUBCOMMANDS)
        parser.add_argument("--json", action="store_true", help="one JSON document")
        parser.add_argument(
            "--limit", type=int, default=50, help="most jobs listed (active, reserved, scheduled)"
        )
        parser.add_argument(
            "--all", action="store_true", help="workers: include stopped ones (kept an hour)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["limit"] < 0:
            raise CommandError("--limit must be 0 or more")
        sub = options["subcommand"]
        import_task_modules()  # the declared tasks and their queues
        show: dict[str, Callable[[dict[str, Any]], tuple[Any, str]]] = {
            "workers": self._workers,
            "active": self._active,
            "reserved": self._reserved,
            "scheduled": self._scheduled,
            "registered": self._registered,
            "queues": self._queues,
            "stats": self._stats,
        }
        try:
            data, text = show[sub](options)
        except DatabaseError as exc:
            raise CommandError(f"cannot read the fastq tables: {exc}".strip()) from exc
        if options["json"]:
            self.stdout.write(inspect.dumps(data))
        else:
            self.stdout.write(text)

    def _workers(self, options: dict[str, Any]) -> tuple[Any, str]:
        data = inspect.workers(include_stopped=options["all"])
        rows = [
            (
                f"{w['host']}:{w['pid']}",
                w["kind"],
                w["state"],
                ",".join(w["queues"]),
                w["concurrency"] if w["kind"] == "worker" else f"{w['processes']} proc",
                w["processed"],
                w["failed"],
                mb(w["rss_bytes"]),
                secs(w["heartbeat_age"]),
                w["started_at"][:19] if w["started_at"] else "",
                w["version"],
            )
            for w in data
        ]
        text = table(
            (
                "worker",
                "kind",
                "state",
                "queues",
                "concurrency",
                "processed",
                "failed",
                "rss",
                "heartbeat",
                "started",
                "version",
            ),
            rows,
        )
        alive = sum(1 for w in data if w["state"] == "running" and w["kind"] == "worker")
        return data, f"{text}\n{alive} live worker process(es)"

    def _held(self, data: dict[str, Any], started: bool, what: str) -> str:
        rows = [
            (
                j["id"],
                j["task"],
                j["queue"],
                j["worker"],
                j["attempt"],
                j["started_at"][:23] if started else j["run_at"][:23],
                secs(j["runtime"]) if started else j["lease_expires_at"][:23],
            )
            for j in data["jobs"]
        ]
        last = ("started", "runtime") if started else ("run_at", "lease until")
        text = table(("id", "task", "queue", "worker", "attempt", *last), rows)
        return f"{text}\n{data['total']} {what} (showing {len(rows)})"

    def _active(self, options: dict[str, Any]) -> tuple[Any, str]:
        data = inspect.active(options["limit"])
        return data, self._held(data, True, "running job(s)")

    def _reserved(self, options: dict[str, Any]) -> tuple[Any, str]:
        data = inspect.reserved(options["limit"])
        return data, self._held(data, False, "reserved job(s), claimed and not started")

    def _scheduled(self, options: dict[str, Any]) -> tuple[Any, str]:
        data = inspect.scheduled(options["limit"])
        jobs = table(
            ("id", "task", "queue", "run_at", "in", "attempts"),
            [
                (j["id"], j["task"], j["queue"], j["run_at"][:23], secs(j["in"]), j["attempts"])
                for j in data["jobs"]
            ],
        )
        schedules = table(
            ("schedule", "task", "enabled", "next fire", "in", "last outcome"),
            [
                (
                    s["name"],
                    s["task"],
                    "yes" if s["enabled"] else "no",
                    (s["next_run_at"] or "-")[:19],
                    secs(s["in"]),
                    s["last_outcome"] or "-",
                )
                for s in data["schedules"]
            ],
        )
        return data, (
            f"{jobs}\n{data['total']} job(s) waiting for their run time "
            f"(showing {len(data['jobs'])})\n\n{schedules}\n{len(data['schedules'])} schedule(s)"
        )

    def _registered(self, options: dict[str, Any]) -> tuple[Any, str]:
        data = inspect.registered()
        rows = [
            (f"{w['host']}:{w['pid']}", ",".join(w["queues"]), t)
            for w in data["workers"]
            for t in (w["tasks"] or ["(none)"])
        ]
        text = table(("worker", "queues", "task"), rows)
        missing = data["not_served"]
        tail = (
            "every declared task has a live worker"
            if not missing
            else "declared in code, run by no live worker: " + ", ".join(missing)
        )
        return data, f"{text}\n{len(data['workers'])} live worker process(es); {tail}"

    def _queues(self, options: dict[str, Any]) -> tuple[Any, str]:
        data = inspect.queues()
        rows = [
            (
                q["queue"],
                q["depth"],
                secs(q["oldest_wait"]) if q["depth"] else "-",
                q["scheduled"],
                q["running"],
                q["reserved"],
                q["workers"],
                q["concurrency"],
                "paused" if q["paused"] else "-",
                "-" if q["limit"] is None else q["limit"],
            )
            for q in data
        ]
        text = table(
            (
                "queue",
                "depth",
                "oldest wait",
                "scheduled",
                "running",
                "reserved",
                "workers",
                "concurrency",
                "paused",
                "limit",
            ),
            rows,
        )
        return data, text

    def _stats(self, options: dict[str, Any]) -> tuple[Any, str]:
        data = inspect.stats()
        rows = []
        for item in data:
            for minutes, w in item["windows"].items():
                rows.append(
                    (
                        item["queue"],
                        item["task"],
                        f"{minutes}m",
                        w["finished"],
                        f"{w['per_second']:.2f}",
                        f"{w['failure_rate'] * 100:.1f}%",
                        secs(w["wait_p50"]),
                        secs(w["wait_p95"]),
                        secs(w["run_p50"]),
                        secs(w["run_p95"]),
                    )
                )
        text = table(
            (
                "queue",
                "task",
                "window",
                "finished",
                "per s",
                "failed",
                "wait p50",
                "wait p95",
                "run p50",
                "run p95",
            ),
            rows,
        )
        return data, text

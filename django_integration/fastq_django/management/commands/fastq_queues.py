"""``python manage.py fastq_queues [list | pause Q | resume Q | limit Q N|none]``: see
and steer queues fleet-wide (fastq_django/queues.py)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from fastq_django import queues


def _wait(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


class Command(BaseCommand):
    help = (
        "List queues (depth, oldest wait, running, paused, concurrency limit), pause or "
        "resume one fleet-wide, or set its fleet-wide concurrency limit."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action")
        ls = sub.add_parser("list", help="Every known queue and its numbers (the default).")
        ls.add_argument("--json", action="store_true", help="One JSON array, for scripts.")
        pause = sub.add_parser("pause", help="Start no new job of QUEUE on any worker.")
        pause.add_argument("queue")
        resume = sub.add_parser("resume", help="Let workers start QUEUE's jobs again.")
        resume.add_argument("queue")
        limit = sub.add_parser(
            "limit", help="At most N jobs of QUEUE run at once fleet-wide ('none': no limit)."
        )
        limit.add_argument("queue")
        limit.add_argument("n")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options.get("action") or "list"
        try:
            if action == "pause":
                queues.pause(options["queue"], by="fastq_queues")
                self.stdout.write(f"{options['queue']}: paused")
            elif action == "resume":
                queues.resume(options["queue"], by="fastq_queues")
                self.stdout.write(f"{options['queue']}: resumed")
            elif action == "limit":
                raw = options["n"].strip().lower()
                try:
                    n = None if raw in ("none", "") else int(raw)
                except ValueError:
                    raise CommandError(f"N must be a whole number or 'none', not {raw!r}") from None
                queues.set_concurrency(options["queue"], n, by="fastq_queues")
                self.stdout.write(
                    f"{options['queue']}: " + (f"at most {n} running" if n else "no limit")
                )
            else:
                self._list(bool(options.get("json")))
        except ValueError as exc:
            raise CommandError(str(exc)) from None

    def _list(self, as_json: bool) -> None:
        rows = queues.overview()
        if as_json:
            self.stdout.write(
                json.dumps(
                    [
                        {
                            "queue": r.name,
                            "paused": r.paused,
                            "concurrency": r.concurrency,
                            "queued": r.queued,
                            "scheduled": r.scheduled,
                            "oldest_wait_seconds": r.oldest_wait,
                            "running": r.running,
                        }
                        for r in rows
                    ]
                )
            )
            return
        table = [("QUEUE", "STATE", "LIMIT", "QUEUED", "LATER", "OLDEST WAIT", "RUNNING")]
        for r in rows:
            table.append(
                (
                    r.name,
                    "paused" if r.paused else "active",
                    str(r.concurrency) if r.concurrency else "-",
                    str(r.queued),
                    str(r.scheduled),
                    _wait(r.oldest_wait),
                    str(r.running),
                )
            )
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        for row in table:
            self.stdout.write(
                "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            )

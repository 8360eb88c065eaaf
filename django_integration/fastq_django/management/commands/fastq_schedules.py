"""``python manage.py fastq_schedules``: list periodic schedules, run one now, enable or
disable one."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from fastq_django.discovery import import_task_modules
from fastq_django.models import Schedule
from fastq_django.schedules import last_outcome, next_run, run_now


class Command(BaseCommand):
    help = (
        "List periodic schedules and batch pollers (kind, source, enabled, expression, "
        "next and last run; a poller's last outcome counts its last cycle), or "
        "--run / --enable / --disable one by name."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--run", metavar="NAME", help="Enqueue one run of NAME now.")
        group.add_argument("--enable", metavar="NAME", help="Enable NAME (from the next slot).")
        group.add_argument("--disable", metavar="NAME", help="Disable NAME.")

    def _get(self, name: str) -> Schedule:
        try:
            return Schedule.objects.get(name=name)
        except Schedule.DoesNotExist:
            raise CommandError(f"no schedule named {name!r}") from None

    def handle(self, *args: Any, **options: Any) -> None:
        if options["run"]:
            import_task_modules()  # run_now uses the task's own options when registered
            job_id = run_now(self._get(options["run"]))
            self.stdout.write(f"{options['run']}: job {job_id} enqueued")
            return
        if options["enable"] or options["disable"]:
            name = options["enable"] or options["disable"]
            schedule = self._get(name)
            schedule.enabled = bool(options["enable"])
            schedule.save()  # a re-enable starts from the next slot after now
            self.stdout.write(f"{name}: {'enabled' if schedule.enabled else 'disabled'}")
            return
        rows = [
            (
                s.name,
                s.kind,
                s.source,
                "yes" if s.enabled else "no",
                s.expression,
                _when(next_run(s)),
                _when(s.last_run_at),
                last_outcome(s),
            )
            for s in Schedule.objects.order_by("name")
        ]
        header = (
            "NAME",
            "KIND",
            "SOURCE",
            "ENABLED",
            "WHEN",
            "NEXT RUN",
            "LAST RUN",
            "LAST OUTCOME",
        )
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        for r in [header, *rows]:
            self.stdout.write("  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)))
        if not rows:
            self.stdout.write(
                "(no schedules: declare them with @fastq.periodic or in "
                'FASTQ["SCHEDULE"], or add them in the admin)'
            )


def _when(value: Any) -> str:
    if value is None:
        return "—"
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S %Z")

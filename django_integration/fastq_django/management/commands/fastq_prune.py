"""``python manage.py fastq_prune [--dry-run] [--state S] [--older-than SECONDS]``: delete
finished jobs past their retention now, by hand, as the scheduler's leader does
continuously (docs/operations.md, "Retention")."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from fastq import conf

from fastq_django.broker import default_broker
from fastq_django.retention import describe


class Command(BaseCommand):
    help = (
        "Delete finished jobs older than their retention (FASTQ['RETENTION'], or "
        "--older-than), in batches, and print how many per state. Jobs something still "
        "depends on (a schedule run, a poller mark, a running workflow) are kept."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Print how many jobs would be deleted per state; delete nothing.",
        )
        parser.add_argument(
            "--state",
            action="append",
            choices=conf.FINAL_STATES,
            help="Only this final state (repeatable). Default: every state with a retention.",
        )
        parser.add_argument(
            "--older-than",
            type=float,
            metavar="SECONDS",
            help="Delete jobs finished more than SECONDS ago, instead of each state's "
            "retention (applies to the states chosen, or to every final state).",
        )
        parser.add_argument(
            "--batch",
            type=int,
            default=1000,
            help="Rows per DELETE statement (default 1000).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        older_than = options["older_than"]
        if older_than is not None and not older_than >= 0:
            raise CommandError("--older-than must be 0 or more seconds")
        if options["batch"] < 1:
            raise CommandError("--batch must be positive")
        try:
            keep = conf.retention()
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        states = options["state"] or list(conf.FINAL_STATES)
        if older_than is not None:
            keep = {s: older_than for s in states}
        try:
            driver = default_broker().worker_driver()
        except RuntimeError as exc:
            raise CommandError(f"cannot use the broker database: {exc}") from exc
        # The database's clock, as the leader prunes on it: a machine whose clock is off
        # by an hour must not delete an hour's worth of jobs still within retention.
        db_now = driver.database_now()
        now_us = db_now if db_now is not None else int(time.time() * 1_000_000)
        dry = options["dry_run"]
        total = 0
        for state in states:
            seconds = keep.get(state)
            if seconds is None:
                self.stdout.write(f"{state}: kept for ever")
                continue
            before = now_us - int(seconds * 1_000_000)
            if dry:
                n = driver.prune_jobs(state, before, dry_run=True)[0]
            else:
                # Batches from the oldest on, each after the last row of the one before
                # (a cursor: jobs kept because something depends on them are read once).
                n, at, last_id = 0, "", ""
                while True:
                    deleted, scanned, at, last_id = driver.prune_jobs(
                        state, before, limit=options["batch"], after_at=at, after_id=last_id
                    )
                    n += deleted
                    if scanned < options["batch"]:
                        break
            total += n
            verb = "would delete" if dry else "deleted"
            self.stdout.write(f"{state}: {verb} {n} (finished over {describe(seconds)} ago)")
        self.stdout.write(f"total: {'would delete' if dry else 'deleted'} {total}")

"""``python manage.py sales_report [--day YYYY-MM-DD] [--wait SECONDS]``: enqueues the
day's sales report workflow (one job per product, then the merge) and, with --wait,
prints the merged report once a worker has run it."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from shop.tasks import enqueue_sales_report


class Command(BaseCommand):
    help = "Enqueue the daily sales report workflow (a chord over the products)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--day", default=timezone.now().date().isoformat())
        parser.add_argument("--wait", type=float, default=0.0)

    def handle(self, *args: Any, **options: Any) -> None:
        result = enqueue_sales_report(options["day"])
        self.stdout.write(f"sales report {options['day']}: workflow {result.workflow_id}")
        if options["wait"]:
            self.stdout.write(json.dumps(result.get(timeout=options["wait"])))

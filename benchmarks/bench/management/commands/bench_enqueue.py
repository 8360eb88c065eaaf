import json
import time

from django.core.management.base import BaseCommand

from bench.tasks import noop


class Command(BaseCommand):
    help = "Bulk-enqueue N no-op jobs with task.map; prints {'seconds': s} as JSON."

    def add_arguments(self, parser):
        parser.add_argument("jobs", type=int)

    def handle(self, *args, **options):
        started = time.perf_counter()
        noop.map([()] * options["jobs"])
        self.stdout.write(json.dumps({"seconds": time.perf_counter() - started}))

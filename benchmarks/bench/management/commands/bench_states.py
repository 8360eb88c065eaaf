import json

from django.core.management.base import BaseCommand
from django.db.models import Count
from fastq_django.models import Job


class Command(BaseCommand):
    help = "Prints the job count by state as JSON."

    def handle(self, *args, **options):
        rows = Job.objects.values("state").annotate(n=Count("id")).order_by()
        self.stdout.write(json.dumps({r["state"]: r["n"] for r in rows}))

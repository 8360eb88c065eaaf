import json

from django.core.management.base import BaseCommand
from fastq.compat.django_q.models import Failure, Schedule, Success
from fastq.compat.django_q.tasks import count_group, result, result_group

from reports.models import Article, Digest, HookCall


class Command(BaseCommand):
    help = "What the background work did, as JSON."

    def add_arguments(self, parser):
        parser.add_argument("--wire", default="")

    def handle(self, *args, **options):
        self.stdout.write(
            json.dumps(
                {
                    "words": {a.pk: a.words for a in Article.objects.all()},
                    "group_results": sorted(result_group("morning") or []),
                    "group_count": count_group("morning"),
                    "wire": result(options["wire"]) if options["wire"] else None,
                    "hooks": [
                        [h.func, h.success, h.result, h.group] for h in HookCall.objects.all()
                    ],
                    "digests": Digest.objects.count(),
                    "successes": Success.objects.count(),
                    "failures": Failure.objects.count(),
                    "schedules": {
                        s.name: [s.schedule_type, s.func] for s in Schedule.objects.all()
                    },
                }
            )
        )

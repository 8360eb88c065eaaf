import json

from django.core.management.base import BaseCommand
from django.utils import timezone
from fastq.compat.django_q.models import Schedule  # was: from django_q.models import Schedule
from fastq.compat.django_q.tasks import async_task, schedule  # was: from django_q.tasks ...

from reports.models import Article


class Command(BaseCommand):
    help = "Count the words of new articles in a group, fetch the wire, schedule a digest."

    def handle(self, *args, **options):
        ids = []
        for i in range(3):
            article = Article.objects.create(title=f"story {i}", body="word " * (5 * (i + 1)))
            ids.append(
                async_task(
                    "reports.tasks.count_words",
                    article.pk,
                    hook="reports.hooks.store_result",
                    group="morning",
                )
            )
        wire = async_task("reports.tasks.fetch_wire", hook="reports.hooks.store_result")
        schedule(
            "reports.tasks.digest",
            name="digest",
            schedule_type=Schedule.MINUTES,
            minutes=1,
            next_run=timezone.now(),
            hook="reports.hooks.store_result",
        )
        schedule(
            "reports.tasks.digest",
            name="weekly-digest",
            schedule_type=Schedule.CRON,
            cron="0 7 * * 1",
        )
        self.stdout.write(json.dumps({"count": ids, "wire": wire}))

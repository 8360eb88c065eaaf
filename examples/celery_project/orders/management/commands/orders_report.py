import json

from django.core.management.base import BaseCommand
from fastq.compat.celery.result import AsyncResult

from orders.models import Email, GatewayCall, Order


class Command(BaseCommand):
    help = "The orders, their payments' Celery states and the e-mails, as JSON."

    def add_arguments(self, parser):
        parser.add_argument("tasks", nargs="*")

    def handle(self, *args, **options):
        out = {
            "orders": {o.pk: o.status for o in Order.objects.all()},
            "gateway_calls": GatewayCall.objects.count(),
            "emails": [[e.order_id, e.kind, e.queue] for e in Email.objects.all()],
            "tasks": {},
        }
        for task_id in options["tasks"]:
            r = AsyncResult(task_id)
            out["tasks"][task_id] = {
                "state": r.state,
                "retries": r.retries,
                "result": r.result if r.successful() else None,
            }
        self.stdout.write(json.dumps(out))

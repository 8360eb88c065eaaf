import json

from django.core.management.base import BaseCommand

from orders.models import Order
from orders.tasks import charge_payment


class Command(BaseCommand):
    help = "Place a few orders and charge them (the way the shop's views do)."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=3)

    def handle(self, *args, **options):
        ids = []
        for i in range(options["count"]):
            order = Order.objects.create(customer=f"customer {i}", amount=10 * (i + 1))
            result = charge_payment.delay(order.pk)
            ids.append({"order": order.pk, "task": result.id})
        Order.objects.create(customer="abandoned", amount=0)
        self.stdout.write(json.dumps(ids))

"""``python manage.py seed_shop``: a day in the life of the shop, as rows and jobs.

- a checkout: paid orders created in one transaction with their totals enqueued by
  ``compute_total.map`` and their confirmations by ``send_sms.delay`` (one customer
  typed a malformed number, so that SMS fails);
- shipped orders with tracking ids, a few of them shipped days ago (their alert is due);
- unpaid orders, some older than the payment timeout (to be cancelled), some recent.

``--json`` prints what was created, by role, for the demo and the acceptance test.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from shop.models import Order, OrderStatus, Product
from shop.tasks import compute_total, send_sms

MALFORMED_PHONE = "0244-123"


def _duration(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds:g} s"


class Command(BaseCommand):
    help = "Create products, orders in every state, and their jobs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--paid", type=int, default=40, help="Orders in the checkout.")
        parser.add_argument("--shipped", type=int, default=8, help="Orders in transit.")
        parser.add_argument("--stale", type=int, default=3, help="In transit for days.")
        parser.add_argument("--unpaid-old", type=int, default=4, help="Past the timeout.")
        parser.add_argument("--unpaid-young", type=int, default=3, help="Within it.")
        parser.add_argument("--json", action="store_true", help="Print what was created.")

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        catalogue = [("Saffron, 10 g", 2_500), ("Pistachios, 1 kg", 3_200), ("Dates, 1 kg", 900)]
        products = [Product.objects.create(name=n, price_cents=p, stock=500) for n, p in catalogue]
        serial = iter(range(1, 10_000))

        def place(status: str, created_at: Any, phone: str = "", **fields: Any) -> Order:
            """An order with its units taken off the shelf, as the storefront does."""
            n = next(serial)
            product = products[n % len(products)]
            quantity = n % 4 + 1
            Product.objects.filter(pk=product.pk).update(stock=F("stock") - quantity)
            return Order.objects.create(
                product=product,
                quantity=quantity,
                unit_price_cents=product.price_cents,
                customer_phone=phone or f"+9891200{n:05d}",
                status=status,
                created_at=created_at,
                **fields,
            )

        # Tracking: parcels on their way; the stale ones left days ago.
        shipped = [
            place(
                OrderStatus.SHIPPED,
                now - timedelta(days=1),
                tracking_id=f"TRK-{1000 + i}",
                shipped_at=now - timedelta(seconds=20 * i),
            )
            for i in range(options["shipped"])
        ]
        stale_age = settings.SHOP_TRACKING_STALE_AFTER + timedelta(days=2)
        stale = [
            place(
                OrderStatus.SHIPPED,
                now - stale_age - timedelta(days=1),
                tracking_id=f"TRK-{9000 + i}",
                shipped_at=now - stale_age,
            )
            for i in range(options["stale"])
        ]
        # The payment-timeout sweep: some past the timeout, some well within it.
        timeout = settings.SHOP_PAYMENT_TIMEOUT
        unpaid_old = [
            place(OrderStatus.PENDING_PAYMENT, now - timeout - timedelta(hours=i + 1))
            for i in range(options["unpaid_old"])
        ]
        unpaid_young = [
            place(OrderStatus.PENDING_PAYMENT, now - timeout / 10)
            for _ in range(options["unpaid_young"])
        ]

        # A checkout, as a web request does it: the orders and their follow-up work
        # commit together (or not at all).
        with transaction.atomic():
            paid = [
                place(
                    OrderStatus.PAID,
                    now,
                    phone=MALFORMED_PHONE if i == options["paid"] - 1 else "",
                )
                for i in range(options["paid"])
            ]
            totals = compute_total.map([(order.pk,) for order in paid])
            # Confirmations for the first ten customers, and for the last one (whose
            # number is malformed).
            confirm = paid[: min(10, len(paid) - 1)] + paid[-1:]
            confirmations = [
                send_sms.delay(order.customer_phone, f"Order #{order.pk} confirmed, thank you!")
                for order in confirm
            ]

        summary = (
            f"{len(products)} products; orders: {len(paid)} paid (with {len(totals)} "
            f"compute_total jobs by task.map and {len(confirmations)} send_sms by .delay(), "
            f"in the checkout's transaction), {len(shipped) + len(stale)} shipped "
            f"({len(stale)} of them {stale_age.days} days ago, past the tracking alert "
            f"threshold of {_duration(settings.SHOP_TRACKING_STALE_AFTER)}), "
            f"{len(unpaid_old) + len(unpaid_young)} awaiting payment "
            f"({len(unpaid_old)} past the payment timeout of {_duration(timeout)})"
        )
        if not options["json"]:
            self.stdout.write(summary)
            return
        created = {
            "summary": summary,
            "products": {p.pk: Product.objects.get(pk=p.pk).stock for p in products},
            "shipped": [o.pk for o in shipped],
            "stale": [o.pk for o in stale],
            "unpaid_old": [o.pk for o in unpaid_old],
            "unpaid_young": [o.pk for o in unpaid_young],
            "paid": [o.pk for o in paid],
            "tracking_ids": {o.pk: o.tracking_id for o in shipped + stale},
            "malformed_phone": MALFORMED_PHONE if options["paid"] else "",
            "jobs": len(totals) + len(confirmations),
        }
        self.stdout.write(json.dumps(created))

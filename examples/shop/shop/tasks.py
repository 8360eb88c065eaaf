"""The shop's background work. ``manage.py fastq_worker`` imports this module by itself
(the ``tasks`` module of every installed app), registers the tasks and writes the
schedules below into ``fastq_schedule``; one worker leads and fires them.

The intervals written here are the production ones. ``SHOP_FAST=1`` shortens them for
the demo and the tests from settings (see ``shopproject/settings.py``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import quote

import fastq
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from shop import client
from shop.client import ProviderRejected
from shop.models import (
    Alert,
    ExchangeRate,
    GoldPrice,
    Order,
    OrderStatus,
    Product,
    Sms,
    SmsStatus,
)

log = logging.getLogger("shop")

# --- Checkout: enqueued by the web request, in its transaction -------------------------


@fastq.task
def compute_total(order_id: int) -> int:
    """Prices an order (the checkout enqueues one per order with ``task.map``, in the
    transaction that creates the orders: no order without its job, no job without it)."""
    order = Order.objects.get(pk=order_id)
    order.total_cents = order.quantity * order.unit_price_cents
    order.save(update_fields=["total_cents"])
    return order.total_cents


@fastq.task(queue="sms", priority=5, autoretry_for=(ConnectionError,), retry_backoff=True)
def send_sms(phone: str, text: str) -> str:
    """Sends one SMS at once (order confirmations, with ``.delay()``) and keeps a copy in
    the outbox. A number the gateway refuses fails the job with ``ProviderRejected``
    (no retry: it would be refused again); a network error is retried with back-off."""
    try:
        answer = client.call("POST", "/sms", {"to": phone, "text": text})
    except ProviderRejected as exc:
        Sms.objects.create(phone=phone, text=text, status=SmsStatus.FAILED, error=str(exc))
        raise
    Sms.objects.create(
        phone=phone,
        text=text,
        status=SmsStatus.SENT,
        provider_id=str(answer.get("id", "")),
        sent_at=timezone.now(),
    )
    return str(answer.get("id", ""))


# --- Periodic work --------------------------------------------------------------------


@fastq.periodic(cron="* * * * *")  # every minute
@fastq.task(queue="sms")
def send_notifications() -> dict[str, int]:
    """Sends the SMS the shop queued in the outbox (delivery notices), oldest first.

    ``max_instances=1`` (the default) means a slow run is never overlapped by the next
    minute's. A refused number marks its row failed; a network error ends the run (the
    rest stay queued for the next minute)."""
    sent = failed = 0
    for sms in Sms.objects.filter(status=SmsStatus.QUEUED).order_by("id")[:1000]:
        try:
            answer = client.call("POST", "/sms", {"to": sms.phone, "text": sms.text})
        except ProviderRejected as exc:
            Sms.objects.filter(pk=sms.pk).update(status=SmsStatus.FAILED, error=str(exc))
            failed += 1
            continue
        Sms.objects.filter(pk=sms.pk).update(
            status=SmsStatus.SENT, provider_id=str(answer.get("id", "")), sent_at=timezone.now()
        )
        sent += 1
    return {"sent": sent, "failed": failed}


@fastq.periodic(cron="0 * * * *")  # hourly, on the hour
@fastq.task
def cancel_unpaid_orders() -> int:
    """Cancels orders left unpaid longer than ``SHOP_PAYMENT_TIMEOUT`` (3 days) and puts
    their units back on the shelf, in one transaction: an order is never cancelled
    without its stock returning, nor stock returned twice. Returns how many."""
    cutoff = timezone.now() - settings.SHOP_PAYMENT_TIMEOUT
    now = timezone.now()
    with transaction.atomic():
        # Locks the rows on PostgreSQL, so a payment arriving now waits for this sweep
        # (and then finds the order cancelled); SQLite's write lock serialises anyway.
        expired = list(
            Order.objects.select_for_update()
            .filter(status=OrderStatus.PENDING_PAYMENT, created_at__lt=cutoff)
            .order_by("pk")
            .values_list("pk", "product_id", "quantity")
        )
        for pk, product_id, quantity in expired:
            Order.objects.filter(pk=pk).update(status=OrderStatus.CANCELLED, cancelled_at=now)
            Product.objects.filter(pk=product_id).update(stock=F("stock") + quantity)
    if expired:
        log.info("cancelled %d unpaid order(s): %s", len(expired), [pk for pk, _, _ in expired])
    return len(expired)


@fastq.periodic(cron="0 0 * * *", timezone="UTC")  # daily at midnight UTC
@fastq.task(queue="rates", autoretry_for=(ConnectionError,), retry_backoff=True)
def refresh_exchange_rates() -> int:
    """Stores today's exchange rates from the provider. Returns how many."""
    answer = client.call("GET", "/rates")
    as_of = datetime.fromisoformat(answer["as_of"])
    now = timezone.now()
    rows = [
        ExchangeRate(
            base=answer["base"],
            currency=currency,
            rate=Decimal(str(rate)),
            as_of=as_of,
            fetched_at=now,
        )
        for currency, rate in sorted(answer["rates"].items())
    ]
    ExchangeRate.objects.bulk_create(rows)
    return len(rows)


# Every 5 minutes during Tehran's market hours (08:00-18:55 local time, whatever UTC is).
@fastq.periodic(cron="*/5 8-18 * * *", timezone="Asia/Tehran")
@fastq.task(queue="rates", autoretry_for=(ConnectionError,), retry_backoff=True)
def refresh_gold_price() -> str:
    """Stores the current gold price from the provider."""
    answer = client.call("GET", "/gold")
    price = GoldPrice.objects.create(
        price_per_gram=Decimal(str(answer["price_per_gram"])),
        currency=answer["currency"],
        as_of=datetime.fromisoformat(answer["as_of"]),
    )
    return str(price)


# --- Order tracking: the batch poller ---------------------------------------------------


@fastq.task
def alert_long_pending(order_id: int) -> None:
    """Raises an alert for a parcel in transit longer than ``SHOP_TRACKING_STALE_AFTER``.
    The poller calls it once per order."""
    order = Order.objects.get(pk=order_id)
    shipped = f"{order.shipped_at:%Y-%m-%d %H:%M} UTC" if order.shipped_at else "?"
    Alert.objects.create(
        order=order,
        kind="in_transit_too_long",
        message=f"order {order.pk} ({order.tracking_id}) shipped {shipped}, not delivered yet",
    )
    log.warning("alert: order %s shipped %s is still in transit", order.pk, shipped)


@fastq.poller(
    queryset=lambda: Order.objects.filter(status=OrderStatus.SHIPPED).exclude(tracking_id=""),
    every=settings.SHOP_TRACKING_EVERY,  # 10 minutes in production
    rate_limit="10/s",  # across every worker: the carrier's API allows no more
    stale_after=settings.SHOP_TRACKING_STALE_AFTER,  # 3 days in production
    stale_field="shipped_at",
    on_stale=alert_long_pending,
    queue="tracking",
    autoretry_for=(ConnectionError,),  # the carrier's API down: try again, with back-off
    retry_backoff=True,
)
def track_order(order_id: int) -> str:
    """Asks the carrier about one shipped order and marks it delivered when it is, queuing
    the customer's delivery notice in the same transaction. The poller calls it with the
    order's primary key, once per cycle at most; a delivered order leaves the poller's
    queryset and is not checked again."""
    order = Order.objects.filter(pk=order_id).first()
    if order is None or order.status != OrderStatus.SHIPPED:
        return "gone" if order is None else str(order.status)
    answer = client.call("GET", f"/track/{quote(order.tracking_id, safe='')}")
    if answer.get("status") != "delivered":
        return str(answer.get("status", "unknown"))
    delivered_at = datetime.fromisoformat(answer["delivered_at"])
    with transaction.atomic():
        marked = Order.objects.filter(pk=order.pk, status=OrderStatus.SHIPPED).update(
            status=OrderStatus.DELIVERED, delivered_at=delivered_at
        )
        if marked:
            Sms.objects.create(
                phone=order.customer_phone,
                text=f"Your order #{order.pk} has been delivered. Thank you!",
            )
    return "delivered"


# --- The daily sales report: a workflow (docs/workflows.md) ----------------------------
# One job per product sums that product's orders of the day (in parallel, on any worker);
# when every one of them has finished, the merge runs once with their results in order.
# `manage.py sales_report [--day YYYY-MM-DD]` enqueues it; the merged report is the merge
# job's result (AsyncResult.get(), or the admin's workflow page).


@fastq.task
def product_sales(product_id: int, day: str) -> dict[str, object]:
    """One product's orders created on `day` (UTC): count, units and revenue in cents."""
    start = datetime.fromisoformat(day).replace(tzinfo=UTC)
    orders = Order.objects.filter(
        product_id=product_id,
        created_at__gte=start,
        created_at__lt=start + timedelta(days=1),
    ).exclude(status=OrderStatus.CANCELLED)
    units = sum(o.quantity for o in orders)
    revenue = sum(o.total_cents or o.quantity * o.unit_price_cents for o in orders)
    return {"product": product_id, "orders": len(orders), "units": units, "revenue": revenue}


@fastq.task
def merge_sales_report(per_product: list[dict[str, object]], day: str) -> dict[str, object]:
    """The chord's callback: the day's totals and the best seller."""
    best = max(per_product, key=lambda r: int(r["revenue"]), default=None)  # type: ignore[call-overload]
    report = {
        "day": day,
        "orders": sum(int(r["orders"]) for r in per_product),  # type: ignore[call-overload]
        "revenue": sum(int(r["revenue"]) for r in per_product),  # type: ignore[call-overload]
        "best_seller": best["product"] if best and int(best["revenue"]) else None,  # type: ignore[call-overload]
        "products": len(per_product),
    }
    log.info("sales report %s: %s", day, report)
    return report


@fastq.task
def report_failed(failed_job_id: str, day: str) -> None:
    """The workflow's error handler: a product's sum failed, so the merge never runs."""
    log.error("sales report %s: step %s failed; no report", day, failed_job_id)


def enqueue_sales_report(day: str) -> fastq.WorkflowResult:
    """The day's report as one workflow, enqueued in the caller's transaction."""
    products = Product.objects.order_by("pk").values_list("pk", flat=True)
    flow = fastq.chord(
        (product_sales.s(pk, day) for pk in products), merge_sales_report.s(day)
    ).on_error(report_failed.s(day))
    return flow.delay()

from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from fastq.compat.celery import chord, group, shared_task  # was: from celery import ...
from fastq.compat.celery.utils.log import get_task_logger  # was: from celery.utils.log ...

from .models import Email, GatewayCall, Order, Report

logger = get_task_logger(__name__)


class GatewayDown(Exception):
    pass


@shared_task(
    autoretry_for=(GatewayDown,),
    retry_backoff=1,
    retry_backoff_max=4,
    retry_jitter=False,
    max_retries=5,
)
def charge_payment(order_id):
    """The gateway refuses the first two calls for an order, then takes the payment."""
    order = Order.objects.get(pk=order_id)
    calls = GatewayCall.objects.filter(order=order).count()
    ok = calls >= 2
    GatewayCall.objects.create(order=order, ok=ok)
    if not ok:
        logger.warning("gateway down for order %s (call %s)", order_id, calls + 1)
        raise GatewayDown(f"order {order_id}: call {calls + 1} refused")
    with transaction.atomic():
        Order.objects.filter(pk=order_id).update(status="paid")
        send_receipt.delay(order_id)
    return {"order": order_id, "calls": calls + 1}


@shared_task(bind=True, max_retries=3, default_retry_delay=1)
def send_receipt(self, order_id):
    Email.objects.create(
        order_id=order_id, kind="receipt", queue=self.request.delivery_info["routing_key"]
    )
    return "sent"


@shared_task
def expire_unpaid(older_than_seconds):
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    return Order.objects.filter(status="new", created__lt=cutoff, amount__lte=0).update(
        status="expired"
    )


@shared_task
def nightly_report():
    paid = Order.objects.filter(status="paid")
    report = Report.objects.create(paid=paid.count(), total=sum(o.amount for o in paid))
    return report.pk


@shared_task
def order_total(order_id):
    return Order.objects.get(pk=order_id).amount


@shared_task
def summarize(totals):
    return Report.objects.create(paid=len(totals), total=sum(totals)).pk


def close_day(order_ids):
    """The day's totals with a chord: one order_total per order, then summarize."""
    return chord(group(order_total.s(pk) for pk in order_ids))(summarize.s())

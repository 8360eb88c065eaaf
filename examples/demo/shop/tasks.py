"""The shop's background work. The worker finds this module by itself."""

import re

import fastq

from shop.models import Order, Sms

PHONE = re.compile(r"^\+\d{8,15}$")


@fastq.task(queue="sms", priority=5)
def send_sms(phone: str, text: str) -> str:
    if not PHONE.match(phone):
        raise ValueError(f"not an international phone number: {phone!r}")
    Sms.objects.create(phone=phone, text=text)
    return f"sent to {phone}"


@fastq.task
def compute_total(order_id: int) -> int:
    order = Order.objects.get(pk=order_id)
    order.total_cents = order.quantity * order.unit_price_cents
    order.save(update_fields=["total_cents"])
    return order.total_cents

"""The shop's tables: products and their stock, orders through their life, the SMS
outbox, alerts for the operations team, and the prices fetched from the provider."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Product(models.Model):
    name = models.CharField(max_length=100)
    price_cents = models.IntegerField()
    stock = models.IntegerField(help_text="Units on the shelf; unpaid orders hold theirs.")

    def __str__(self) -> str:
        return self.name


class OrderStatus(models.TextChoices):
    PENDING_PAYMENT = "pending_payment", "pending payment"
    PAID = "paid", "paid"
    SHIPPED = "shipped", "shipped"
    DELIVERED = "delivered", "delivered"
    CANCELLED = "cancelled", "cancelled"


class Order(models.Model):
    """An order. Its units leave ``Product.stock`` when it is placed and come back if it
    is cancelled. Shipped orders carry the carrier's tracking id until delivered."""

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="orders")
    quantity = models.IntegerField()
    unit_price_cents = models.IntegerField()
    total_cents = models.IntegerField(null=True, blank=True)
    customer_phone = models.CharField(max_length=32)
    status = models.CharField(
        max_length=20, choices=OrderStatus.choices, default=OrderStatus.PENDING_PAYMENT
    )
    tracking_id = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    shipped_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The tracking poller's queryset and the payment-timeout sweep.
            models.Index(fields=["status", "shipped_at"], name="shop_order_status_shipped"),
            models.Index(fields=["status", "created_at"], name="shop_order_status_created"),
        ]

    def __str__(self) -> str:
        return f"order {self.pk} ({self.status})"


class SmsStatus(models.TextChoices):
    QUEUED = "queued", "queued"
    SENT = "sent", "sent"
    FAILED = "failed", "failed"


class Sms(models.Model):
    """The SMS outbox. Rows are queued by the shop and sent by ``send_notifications``, or
    written by ``send_sms`` when a message goes out at once."""

    phone = models.CharField(max_length=32)
    text = models.CharField(max_length=160)
    status = models.CharField(max_length=10, choices=SmsStatus.choices, default=SmsStatus.QUEUED)
    error = models.TextField(blank=True, default="")
    provider_id = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "SMS"
        verbose_name_plural = "SMS"

    def __str__(self) -> str:
        return f"SMS to {self.phone} ({self.status})"


class Alert(models.Model):
    """Something the operations team should look at, e.g. a parcel in transit too long."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=32)
    message = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.kind}: order {self.order_id}"


class ExchangeRate(models.Model):
    """One currency's rate against the base currency, as fetched (one row per fetch)."""

    base = models.CharField(max_length=3)
    currency = models.CharField(max_length=3)
    rate = models.DecimalField(max_digits=20, decimal_places=6)
    as_of = models.DateTimeField()
    fetched_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["currency", "-fetched_at"], name="shop_rate_latest")]

    def __str__(self) -> str:
        return f"1 {self.base} = {self.rate} {self.currency}"


class GoldPrice(models.Model):
    """The price of a gram of 18-carat gold, as fetched (one row per fetch)."""

    price_per_gram = models.DecimalField(max_digits=20, decimal_places=2)
    currency = models.CharField(max_length=3)
    as_of = models.DateTimeField()
    fetched_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.price_per_gram} {self.currency}/g"

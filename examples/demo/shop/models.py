from django.db import models


class Order(models.Model):
    customer_phone = models.CharField(max_length=32)
    quantity = models.IntegerField()
    unit_price_cents = models.IntegerField()
    total_cents = models.IntegerField(null=True)


class Sms(models.Model):
    """What the fake SMS gateway 'sent'."""

    phone = models.CharField(max_length=32)
    text = models.CharField(max_length=160)

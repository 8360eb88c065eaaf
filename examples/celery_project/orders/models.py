from django.db import models


class Order(models.Model):
    customer = models.CharField(max_length=100)
    amount = models.IntegerField()
    status = models.CharField(max_length=20, default="new")  # new, paid, failed, expired
    created = models.DateTimeField(auto_now_add=True)


class GatewayCall(models.Model):
    """One call to the (pretend) payment gateway: the first ones fail."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE)
    ok = models.BooleanField()
    at = models.DateTimeField(auto_now_add=True)


class Email(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE)
    kind = models.CharField(max_length=20)
    queue = models.CharField(max_length=50)


class Report(models.Model):
    paid = models.IntegerField()
    total = models.IntegerField()
    at = models.DateTimeField(auto_now_add=True)

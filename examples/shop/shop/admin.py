"""The shop's tables in the admin, beside fastq's jobs and schedules."""

from django.contrib import admin

from shop.models import Alert, ExchangeRate, GoldPrice, Order, Product, Sms


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("name", "price_cents", "stock")


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "product",
        "quantity",
        "status",
        "tracking_id",
        "created_at",
        "shipped_at",
    )
    list_filter = ("status",)
    search_fields = ("tracking_id", "customer_phone")


@admin.register(Sms)
class SmsAdmin(admin.ModelAdmin):
    list_display = ("phone", "text", "status", "error", "sent_at")
    list_filter = ("status",)


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ("created_at", "kind", "order", "message")
    list_filter = ("kind",)


@admin.register(ExchangeRate)
class ExchangeRateAdmin(admin.ModelAdmin):
    list_display = ("fetched_at", "base", "currency", "rate")
    list_filter = ("currency",)


@admin.register(GoldPrice)
class GoldPriceAdmin(admin.ModelAdmin):
    list_display = ("fetched_at", "price_per_gram", "currency")

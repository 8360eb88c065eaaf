"""``python manage.py shop_report``: what the background work did, read from the
database: orders by state, alerts, the payment-timeout sweep, rates and gold prices, the
SMS outbox, fastq's jobs. ``--json`` gives the same, with each schedule's runs and every
tracking check, as one JSON object (the demo and the acceptance test read it)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db.models import Count
from fastq_django.models import Job, Schedule, ScheduleRun
from fastq_django.schedules import last_outcome

from shop.models import Alert, ExchangeRate, GoldPrice, Order, Product, Sms


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value else None


def collect() -> dict[str, Any]:
    """Everything the report shows, as JSON-ready values."""
    orders = list(Order.objects.order_by("pk"))
    jobs_by_task: dict[str, Counter[str]] = {}
    for task, state, n in Job.objects.values_list("task", "state").annotate(n=Count("id")):
        jobs_by_task.setdefault(task, Counter())[state] += n
    tracking_jobs = [
        {
            "order_id": json.loads(job.args)[0],
            "state": job.state,
            "created_at": _ts(job.created_at),
            "started_at": _ts(job.started_at),
            "finished_at": _ts(job.finished_at),
            "result": job.result_value,
        }
        for job in Job.objects.filter(task="shop.tasks.track_order").order_by("created_at")
    ]
    runs = dict(ScheduleRun.objects.values_list("schedule").annotate(n=Count("id")))
    newest: dict[str, str] = {}
    for r in ExchangeRate.objects.order_by("-fetched_at", "-pk"):
        newest.setdefault(r.currency, str(r.rate))
    latest_rates = dict(sorted(newest.items()))
    gold = GoldPrice.objects.order_by("-fetched_at", "-pk").first()
    return {
        "orders": [
            {
                "id": o.pk,
                "status": o.status,
                "product_id": o.product_id,
                "quantity": o.quantity,
                "unit_price_cents": o.unit_price_cents,
                "total_cents": o.total_cents,
                "tracking_id": o.tracking_id,
                "created_at": _iso(o.created_at),
                "shipped_at": _iso(o.shipped_at),
                "delivered_at": _iso(o.delivered_at),
                "cancelled_at": _iso(o.cancelled_at),
            }
            for o in orders
        ],
        "order_status": dict(Counter(o.status for o in orders)),
        "products": {p.pk: {"name": p.name, "stock": p.stock} for p in Product.objects.all()},
        "alerts": [
            {"order_id": a.order_id, "kind": a.kind, "message": a.message}
            for a in Alert.objects.order_by("pk")
        ],
        "rates": {
            "rows": ExchangeRate.objects.count(),
            "fetches": ExchangeRate.objects.values("fetched_at").distinct().count(),
            "latest": latest_rates,
        },
        "gold": {
            "rows": GoldPrice.objects.count(),
            "latest": f"{gold.price_per_gram} {gold.currency}" if gold else None,
        },
        "sms": {
            "by_status": dict(Counter(Sms.objects.values_list("status", flat=True))),
            "failed": [
                {"phone": s.phone, "error": s.error}
                for s in Sms.objects.filter(status="failed").order_by("pk")
            ],
        },
        "jobs": {
            "by_state": dict(Counter(Job.objects.values_list("state", flat=True))),
            "by_task": {t: dict(c) for t, c in sorted(jobs_by_task.items())},
            "failed": [
                {
                    "task": j.task,
                    "state": j.state,
                    "args": j.args_value,
                    "error_type": j.error_type,
                    "error": j.error,
                }
                for j in Job.objects.filter(state__in=["failed", "dead"]).order_by("created_at")
            ],
        },
        "tracking_jobs": tracking_jobs,
        "schedules": [
            {
                "name": s.name,
                "task": s.task,
                "kind": s.kind,
                "when": s.expression,
                "enabled": s.enabled,
                "last_run_at": _iso(s.last_run_at),
                "last_outcome": last_outcome(s),
                "runs": runs.get(s.name, 0),
            }
            for s in Schedule.objects.order_by("name")
        ],
    }


def render(data: dict[str, Any]) -> str:
    """The report as text for people."""
    status = data["order_status"]
    orders = data["orders"]
    lines = ["orders: " + ", ".join(f"{n} {s}" for s, n in sorted(status.items()))]
    delivered = [o for o in orders if o["status"] == "delivered"]
    tracked = [o for o in orders if o["tracking_id"]]
    lines.append(
        f"  tracking: {len(delivered)} of {len(tracked)} shipped orders delivered, "
        f"{len(data['tracking_jobs'])} track_order checks"
    )
    lines.append(f"  alerts raised: {len(data['alerts'])}")
    lines.extend(f"    {a['kind']}: {a['message']}" for a in data["alerts"])
    cancelled = [o for o in orders if o["status"] == "cancelled"]
    returned = sum(o["quantity"] for o in cancelled)
    unpaid = status.get("pending_payment", 0)
    lines.append(
        f"  payment timeout: {len(cancelled)} unpaid orders cancelled, {returned} units "
        f"back in stock; {unpaid} recent unpaid orders left alone"
    )
    lines.append(
        "  stock: " + ", ".join(f"{p['name']} {p['stock']}" for p in data["products"].values())
    )
    priced = [o for o in orders if o["total_cents"] is not None]
    lines.append(f"  totals computed: {len(priced)} orders")
    rates = data["rates"]
    lines.append(
        f"exchange rates: {rates['rows']} rows from {rates['fetches']} fetches; latest 1 USD = "
        + ", ".join(f"{v} {k}" for k, v in rates["latest"].items())
    )
    gold = data["gold"]
    lines.append(f"gold prices: {gold['rows']} stored; latest {gold['latest']}/g")
    sms = data["sms"]["by_status"]
    lines.append("sms: " + (", ".join(f"{n} {s}" for s, n in sorted(sms.items())) or "none"))
    lines.extend(f"  failed: {f['phone']}: {f['error']}" for f in data["sms"]["failed"])
    lines.append(
        "jobs: " + ", ".join(f"{n} {s}" for s, n in sorted(data["jobs"]["by_state"].items()))
    )
    for task, states in data["jobs"]["by_task"].items():
        lines.append(f"  {task}: " + ", ".join(f"{n} {s}" for s, n in sorted(states.items())))
    lines.extend(
        f"  {j['state']} {j['task']}{tuple(j['args'])}: {j['error_type']}: {j['error']}"
        for j in data["jobs"]["failed"]
    )
    return "\n".join(lines)


class Command(BaseCommand):
    help = "Summarise what the shop's background work did."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="One JSON object.")

    def handle(self, *args: Any, **options: Any) -> None:
        data = collect()
        self.stdout.write(json.dumps(data) if options["json"] else render(data))

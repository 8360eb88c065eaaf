"""`make demo`: a shop enqueues a few hundred tasks on SQLite, `manage.py fastq_worker
--burst` runs them until the queue is empty, and this script shows what happened."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent


def manage(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=HERE,
        check=True,
        text=True,
        capture_output=True,
    )


def main() -> int:
    for leftover in HERE.glob("demo.sqlite3*"):
        leftover.unlink()
    manage("migrate", "--verbosity", "0")

    sys.path.insert(0, str(HERE))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demoproject.settings")
    import django

    django.setup()
    from django.db import transaction
    from fastq_django.models import Job
    from shop.models import Order, Sms
    from shop.tasks import compute_total, send_sms

    # A web request would do this: create orders and, in the same transaction, enqueue
    # their follow-up work. The jobs exist only if the orders do.
    with transaction.atomic():
        orders = Order.objects.bulk_create(
            Order(customer_phone=f"+23324412{i:04d}", quantity=i % 5 + 1, unit_price_cents=1999)
            for i in range(300)
        )
        totals = compute_total.map([(o.id,) for o in orders])
    codes = [send_sms.delay(o.customer_phone, f"Order {o.id} confirmed") for o in orders[:100]]
    bad = send_sms.delay("0244-123", "this number is malformed")
    print(
        f"enqueued {len(totals) + len(codes) + 1} jobs "
        f"({len(totals)} with task.map, {len(codes) + 1} with .delay())"
    )

    started = time.monotonic()
    worker = subprocess.run(
        [sys.executable, "manage.py", "fastq_worker", "--burst", "--concurrency", "4"],
        cwd=HERE,
        text=True,
        capture_output=True,
    )
    elapsed = time.monotonic() - started
    print("\n$ python manage.py fastq_worker --burst --concurrency 4")
    print(worker.stderr.strip())
    if worker.returncode != 0:
        print(f"worker exited {worker.returncode}", file=sys.stderr)
        return 1

    states = Counter(Job.objects.values_list("state", flat=True))
    print(
        f"\nafter {elapsed:.2f}s (including Django start-up): "
        + ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
    )
    order = orders[7]
    print(f"order {order.id}: total {totals[7].get(timeout=5)} cents (status {totals[7].status})")
    print(f"sms: {codes[0].get(timeout=5)!r}; {Sms.objects.count()} messages in the outbox")
    failure = bad.result
    print(f"failed job {bad.id}: {failure.type}: {failure.message}")

    expected = {"succeeded": 400, "failed": 1}
    if dict(states) != expected:
        print(f"unexpected outcome: {dict(states)} != {expected}", file=sys.stderr)
        return 1
    print(
        "\nsee them in the admin: python examples/demo/manage.py createsuperuser && "
        "python examples/demo/manage.py runserver, then /admin/fastq_django/job/"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`make demo`: the shop on a fresh SQLite database, with every schedule shortened to
seconds (SHOP_FAST=1).

It migrates, starts the fake provider (carrier, rates feed, SMS gateway) on a free port,
seeds products and orders, and runs ``python manage.py fastq_worker --processes 2`` as a
subprocess, the way you would. The worker's scheduler fires the periodic tasks and the
tracking poller; once their outcomes are in the database (or after 30 s) the demo stops
the worker with SIGTERM and prints ``manage.py shop_report``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from shop.provider import FakeProvider  # noqa: E402 - standard library only, no Django

DEADLINE = 30.0  # seconds of worker time at most
DATABASE = HERE / "shop.sqlite3"


def manage(env: dict[str, str], *args: str) -> str:
    """``python manage.py <args>``; returns its output, exits on failure."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=HERE, env=env, text=True, capture_output=True
    )
    if done.returncode != 0:
        sys.exit(f"manage.py {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout.strip()


def finished(report: dict[str, Any], seeded: dict[str, Any]) -> bool:
    """Whether every kind of background work has shown its outcome."""
    status = {o["id"]: o["status"] for o in report["orders"]}
    alerted = {a["order_id"] for a in report["alerts"]}
    return (
        all(status[pk] == "delivered" for pk in seeded["shipped"] + seeded["stale"])
        and set(seeded["stale"]) <= alerted
        and all(status[pk] == "cancelled" for pk in seeded["unpaid_old"])
        and report["rates"]["rows"] > 0
        and report["gold"]["rows"] > 0
        and report["sms"]["by_status"].get("queued", 0) == 0
        and not {"queued", "running"} & set(report["jobs"]["by_state"])
    )


def main() -> int:
    for leftover in HERE.glob("shop.sqlite3*"):
        leftover.unlink()
    with FakeProvider(delivery_delay=(2.0, 8.0)) as provider:
        env = dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="shopproject.settings",
            SHOP_FAST="1",
            SHOP_PROVIDER_URL=provider.url,
            SHOP_SQLITE_PATH=str(DATABASE),
        )
        env.pop("SHOP_DATABASE_URL", None)
        manage(env, "migrate", "--verbosity", "0")
        print(f"fake provider (carrier, rates, SMS gateway) on {provider.url}")
        seeded = json.loads(manage(env, "seed_shop", "--json"))
        print(f"seeded: {seeded['summary']}")

        command = [sys.executable, "manage.py", "fastq_worker", "--processes", "2"]
        print("\n$ SHOP_FAST=1 python manage.py fastq_worker --processes 2   (SIGTERM at the end)")
        with tempfile.TemporaryFile(mode="w+") as log:
            started = time.monotonic()
            worker = subprocess.Popen(
                command, cwd=HERE, env=env, stdout=log, stderr=subprocess.STDOUT
            )
            done = False
            while time.monotonic() - started < DEADLINE and worker.poll() is None:
                time.sleep(2)
                done = finished(json.loads(manage(env, "shop_report", "--json")), seeded)
                if done:
                    break
            elapsed = time.monotonic() - started
            worker.send_signal(signal.SIGTERM)
            code = worker.wait(timeout=60)
            log.seek(0)
            print(
                "(one failure below is intentional: the SMS gateway refuses the malformed "
                "number 0244-123, so that job ends failed with ProviderRejected)"
            )
            print(log.read().rstrip())
        if code != 0:
            print(f"worker exited {code}", file=sys.stderr)
            return 1
        print(
            f"\nafter {elapsed:.0f} s of worker time; {sum(provider.calls().values())} calls "
            f"to the provider: "
            + ", ".join(f"{n} {k}" for k, n in sorted(provider.calls().items()))
        )
        print(manage(env, "shop_report"))
        print("\n$ python manage.py fastq_schedules")
        print(manage(env, "fastq_schedules"))

    # Judged while the worker ran: schedules keep firing until it stops, so a slot fired
    # in its last moment may be left queued for the next start, as in production.
    if not done:
        print("\nsome background work did not finish in time (see above)", file=sys.stderr)
        return 1
    print(
        "\ndemo passed; next: .venv/bin/python examples/shop/manage.py createsuperuser, then "
        ".venv/bin/python examples/shop/manage.py runserver and open http://127.0.0.1:8000/admin/"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Acceptance: the example shop (examples/shop) run the way its users run it.

``manage.py migrate``, ``seed_shop`` and ``fastq_worker --processes 2`` run as
subprocesses with the schedules shortened to seconds (SHOP_FAST=1), against the fake
provider in this process; the outcomes are read back with ``manage.py shop_report
--json``. Once on SQLite and once on PostgreSQL at 127.0.0.1 (a database of its own,
dropped at the end); PostgreSQL's absence skips that run locally and fails it under
CI=true.

No assertion is about speed: the test waits, generously, for outcomes to appear.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop"
CYCLE = 2.0  # seconds: SHOP_TRACKING_EVERY under SHOP_FAST=1 (examples/shop/shopproject)
TIMEOUT = 240.0  # seconds for every outcome to show; a normal run needs well under 30


def _load_provider() -> ModuleType:
    """shop/provider.py (standard library only) without putting the shop on sys.path."""
    spec = importlib.util.spec_from_file_location("shop_fake_provider", SHOP / "shop/provider.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FakeProvider = _load_provider().FakeProvider


def _pg_params() -> dict[str, str]:
    return {
        "host": os.environ.get("FASTQ_TEST_PG_HOST", "127.0.0.1"),
        "port": os.environ.get("FASTQ_TEST_PG_PORT", "5432"),
        "user": os.environ.get("FASTQ_TEST_PG_USER", "postgres"),
        "password": os.environ.get("FASTQ_TEST_PG_PASSWORD", ""),
    }


def _postgres_admin() -> Any:
    """An autocommit connection to the server's ``postgres`` database; skips (locally) or
    fails (CI=true) when the server cannot be reached."""
    import psycopg

    try:
        return psycopg.connect(
            dbname="postgres", autocommit=True, connect_timeout=3, **_pg_params()
        )
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI but unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment that points the shop at a fresh database of its own."""
    if request.param == "sqlite":
        yield {"SHOP_SQLITE_PATH": str(tmp_path / "shop.sqlite3")}
        return
    name = f"fastq_shop_{os.getpid()}"
    with _postgres_admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    p = _pg_params()
    auth = p["user"] + (f":{p['password']}" if p["password"] else "")
    try:
        yield {"SHOP_DATABASE_URL": f"postgresql://{auth}@{p['host']}:{p['port']}/{name}"}
    finally:
        with _postgres_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Shop:
    """The shop's manage.py in subprocesses, on one database and one provider."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def manage(self, *args: str, timeout: float = 120) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=SHOP,
            env=self.env,
            text=True,
            capture_output=True,
            timeout=timeout,
        )
        assert done.returncode == 0, f"manage.py {' '.join(args)}:\n{done.stderr}"
        return done.stdout

    def report(self) -> dict[str, Any]:
        return json.loads(self.manage("shop_report", "--json"))


def wait_for(what: str, check: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(1.0)


def test_shop(database: dict[str, str]) -> None:
    with FakeProvider(delivery_delay=(3.0, 9.0)) as provider:
        env = {
            **os.environ,
            **database,
            # pytest-django exported the test project's settings; the shop has its own.
            "DJANGO_SETTINGS_MODULE": "shopproject.settings",
            "SHOP_FAST": "1",
            "SHOP_PROVIDER_URL": provider.url,
            "PYTHONUNBUFFERED": "1",
        }
        shop = Shop(env)
        shop.manage("migrate", "--verbosity", "0")
        seeded = json.loads(shop.manage("seed_shop", "--json"))
        tracked = seeded["shipped"] + seeded["stale"]

        state: dict[str, Any] = {}

        def settled() -> bool:
            report = shop.report()
            state["report"] = report
            status = {o["id"]: o["status"] for o in report["orders"]}
            alerted = {a["order_id"] for a in report["alerts"]}
            return (
                all(status[pk] == "delivered" for pk in tracked)
                and set(seeded["stale"]) <= alerted
                and all(status[pk] == "cancelled" for pk in seeded["unpaid_old"])
                and report["rates"]["rows"] > 0
                and report["gold"]["rows"] > 0
                and report["sms"]["by_status"].get("queued", 0) == 0
                and not {"queued", "running"} & set(report["jobs"]["by_state"])
            )

        with tempfile.TemporaryFile(mode="w+") as log:
            worker = subprocess.Popen(
                [sys.executable, "manage.py", "fastq_worker", "--processes", "2"],
                cwd=SHOP,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                try:
                    wait_for("the shop's background work", settled)
                except AssertionError:
                    log.seek(0)
                    last = {
                        k: v
                        for k, v in state.get("report", {}).items()
                        if k not in ("orders", "tracking_jobs")
                    }
                    raise AssertionError(
                        f"{json.dumps(last, indent=1)[:6000]}\nworker log:\n{log.read()[-6000:]}"
                    ) from None
                # A few more cycles: a poller that checked delivered orders again, or
                # alerted twice, would show it now.
                time.sleep(3 * CYCLE)
                schedules = shop.manage("fastq_schedules")
            finally:
                worker.send_signal(signal.SIGTERM)
                try:
                    code = worker.wait(timeout=90)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    code = worker.wait()
            log.seek(0)
            output = log.read()
        assert code == 0, f"worker exited {code}:\n{output[-6000:]}"
        report = shop.report()
        hits = provider.tracking_hits()
        delivered_answers = provider.delivered_answers()

    orders = {o["id"]: o for o in report["orders"]}
    schedule_rows = {s["name"]: s for s in report["schedules"]}
    assert schedule_rows["shop.tasks.track_order"]["kind"] == "poller"
    poller_cycles = schedule_rows["shop.tasks.track_order"]["runs"]

    # Tracking: every shipped order ends delivered, through the carrier's answer.
    for pk in tracked:
        assert orders[pk]["status"] == "delivered", orders[pk]
        assert orders[pk]["delivered_at"], orders[pk]
    # Each parcel was asked about at most once per cycle while in transit, and never
    # after the carrier said it was delivered (it left the poller's queryset).
    for pk in tracked:
        tid = seeded["tracking_ids"][str(pk)]
        times = hits[tid]
        assert times, f"{tid} was never checked"
        assert max(times) <= delivered_answers[tid], f"{tid} checked after delivery"
        # n checks from n distinct cycles span at least n - 2 intervals; one more for a
        # first check that started late.
        cycles = (max(times) - min(times)) / CYCLE + 3
        assert len(times) <= cycles, f"{tid}: {len(times)} checks in {cycles:.1f} cycles"
        assert len(times) <= poller_cycles, f"{tid}: {len(times)} checks, {poller_cycles} cycles"
    # Never two check jobs pending for one order: each was created after the previous
    # one finished. (On PostgreSQL created_at is the start of the cycle's transaction, a
    # few milliseconds before its INSERT, hence the tolerance; a second check enqueued
    # beside a pending one would precede its finish by most of a cycle.)
    jobs: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for job in report["tracking_jobs"]:
        jobs[job["order_id"]].append(job)
    for pk, runs in jobs.items():
        assert pk in tracked, f"order {pk} is not shipped but was tracked"
        for before, after in pairwise(runs):
            assert before["finished_at"] is not None, before
            assert after["created_at"] >= before["finished_at"] - 0.25, (pk, before, after)
    assert {j["state"] for j in report["tracking_jobs"]} == {"succeeded"}

    # Alerts: exactly one per order in transit past the threshold, none for the others.
    alerts: dict[int, int] = defaultdict(int)
    for alert in report["alerts"]:
        alerts[alert["order_id"]] += 1
    assert dict(alerts) == {pk: 1 for pk in seeded["stale"]}
    assert all(a["kind"] == "in_transit_too_long" for a in report["alerts"])

    # Payment timeout: old unpaid orders cancelled with their units back on the shelf;
    # recent ones left alone.
    for pk in seeded["unpaid_old"]:
        assert orders[pk]["status"] == "cancelled" and orders[pk]["cancelled_at"], orders[pk]
    for pk in seeded["unpaid_young"]:
        assert orders[pk]["status"] == "pending_payment", orders[pk]
    returned: dict[int, int] = defaultdict(int)
    for pk in seeded["unpaid_old"]:
        returned[orders[pk]["product_id"]] += orders[pk]["quantity"]
    for product_id, stock in seeded["products"].items():
        expected = stock + returned[int(product_id)]
        assert report["products"][product_id]["stock"] == expected, (product_id, report)

    # Checkout: every total computed (task.map in the checkout's transaction).
    for pk in seeded["paid"]:
        assert orders[pk]["status"] == "paid"
        assert orders[pk]["total_cents"] == orders[pk]["quantity"] * orders[pk]["unit_price_cents"]

    # Rates and gold prices fetched from the provider and stored.
    assert report["rates"]["rows"] > 0 and report["rates"]["latest"].keys() >= {"EUR", "IRR"}
    assert report["gold"]["rows"] > 0

    # SMS: the malformed number failed with the gateway's reason, everything else went out.
    bad = seeded["malformed_phone"]
    failed = report["jobs"]["failed"]
    assert [(j["task"], j["state"], j["args"][0]) for j in failed] == [
        ("shop.tasks.send_sms", "failed", bad)
    ], failed
    assert failed[0]["error_type"].endswith("ProviderRejected")
    assert bad in failed[0]["error"] and "international" in failed[0]["error"]
    assert report["sms"]["failed"] == [{"phone": bad, "error": failed[0]["error"]}]
    assert report["sms"]["by_status"].get("queued", 0) == 0
    # Confirmations (one refused) plus one delivery notice per tracked order.
    sent = report["jobs"]["by_task"]["shop.tasks.send_sms"].get("succeeded", 0) + len(tracked)
    assert report["sms"]["by_status"]["sent"] == sent

    # The schedules, visible to operators; each fired (the shortened ones many times).
    runs = {s["name"]: s["runs"] for s in report["schedules"]}
    for name in (
        "shop.tasks.track_order",
        "shop.tasks.cancel_unpaid_orders",
        "shop.tasks.refresh_exchange_rates",
        "shop.tasks.refresh_gold_price",
        "shop.tasks.send_notifications",
    ):
        assert name in schedules, schedules
        assert runs.get(name, 0) > 0, report["schedules"]
    assert "dead" not in report["jobs"]["by_state"], report["jobs"]

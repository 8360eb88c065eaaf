"""The round trip on a bare system: ``roundtrip.py enqueue`` then ``fastq_worker --burst``,
then ``roundtrip.py check``. Run with the round-trip project's directory as the working
directory (scripts/test_wheel.sh does, inside the debootstrap root)."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path.cwd()))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wheelproj.settings")

import django

django.setup()

import fastq  # noqa: E402
from wheelapp.tasks import add, next_fire  # noqa: E402

STATE = Path("roundtrip-jobs.json")
# 06:00 UTC is 09:30 in Tehran (UTC+03:30 all year since 2022): the next 09:00 is the
# following morning, 05:30 UTC.
AFTER = "2026-03-01T06:00:00+00:00"
EXPECTED_FIRE = "2026-03-02T09:00:00+03:30"


def enqueue() -> None:
    jobs = {
        "add": add.delay(2, 3).id,
        "cron": next_fire.delay("0 9 * * *", "Asia/Tehran", AFTER).id,
    }
    STATE.write_text(json.dumps(jobs))
    print(f"enqueued add(2, 3) as {jobs['add']}, next_fire(Asia/Tehran) as {jobs['cron']}")


def check() -> None:
    jobs = json.loads(STATE.read_text())
    failures = []
    total = fastq.AsyncResult(jobs["add"]).get(timeout=30)
    print(f"add(2, 3) -> {total!r}")
    if total != 5:
        failures.append(f"add(2, 3) returned {total!r}, expected 5")
    fired = fastq.AsyncResult(jobs["cron"]).get(timeout=30)
    print(f"worker: next 09:00 in Asia/Tehran after {AFTER} -> {fired}")
    if fired != EXPECTED_FIRE:
        failures.append(f"the worker's cron fire time was {fired}, expected {EXPECTED_FIRE}")
    here = fastq.Cron("0 9 * * *", "Asia/Tehran").next_after(datetime.fromisoformat(AFTER))
    print(f"this process: {here.isoformat()} (tzinfo {here.tzinfo!r})")
    if here.isoformat() != EXPECTED_FIRE or here.utcoffset() is None:
        failures.append(f"Cron.next_after here gave {here.isoformat()}")
    if here.astimezone(UTC) != datetime(2026, 3, 2, 5, 30, tzinfo=UTC):
        failures.append(f"{here} is not 05:30 UTC")
    print(f"fastq {fastq.__version__} from {Path(fastq.__file__).parent}")
    print(f"zone files read from: {fastq._core.zone_path()}")
    if failures:
        for f in failures:
            print(f"FAILED: {f}")
        sys.exit(1)
    print("round trip passed")


if __name__ == "__main__":
    {"enqueue": enqueue, "check": check}[sys.argv[1]]()

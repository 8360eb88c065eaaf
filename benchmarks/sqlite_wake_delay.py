"""What SQLite's after-commit poke costs ``.delay()`` (issue 17): ``.delay()`` loops on
a fresh SQLite file with the poke on and off (alternating, median of 12 runs each), in
autocommit (one poke per call) and inside ``transaction.atomic()`` (one per transaction),
with LISTENERS sockets bound in the wake directory standing in for workers; then the poke
alone (``_core.wake_poke``) and the broker's check around it, by ``timeit``.

    .venv/bin/python benchmarks/sqlite_wake_delay.py [LISTENERS]
"""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import sys
import tempfile
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    listeners = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    sys.path.insert(0, str(ROOT / "tests" / "django"))
    tmp = tempfile.mkdtemp(prefix="fastq-wake-delay-")
    os.environ["FASTQ_TEST_DB_NAME"] = f"{tmp}/db.sqlite3"
    os.environ["DJANGO_SETTINGS_MODULE"] = "testproject.settings"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import transaction
    from fastq import _core
    from fastq_django import broker
    from testapp import tasks

    call_command("migrate", verbosity=0)
    wake = _core.sqlite_wake_dir(os.environ["FASTQ_TEST_DB_NAME"])
    assert wake is not None
    socks = []
    for i in range(listeners):
        os.makedirs(wake, exist_ok=True)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(f"{wake}/l{i}.sock")
        s.setblocking(False)
        socks.append(s)

    def drain() -> None:
        for s in socks:
            with contextlib.suppress(BlockingIOError):
                while True:
                    s.recv(64)

    real = broker._wake_workers

    def run(n: int, atomic: bool) -> float:
        started = time.perf_counter()
        with transaction.atomic() if atomic else contextlib.nullcontext():
            for i in range(n):
                tasks.add.delay(i, 1)
        elapsed = time.perf_counter() - started
        drain()
        return elapsed / n * 1e6

    for mode, n in (("autocommit", 2000), ("atomic", 10000)):
        res: dict[str, list[float]] = {"off": [], "on": []}
        for rep in range(12):
            for which in ("off", "on") if rep % 2 == 0 else ("on", "off"):
                broker._wake_workers = real if which == "on" else (lambda alias: None)
                res[which].append(run(n, mode == "atomic"))
        broker._wake_workers = real
        off, on = statistics.median(res["off"]), statistics.median(res["on"])
        print(f"{mode}, {listeners} listener(s): .delay() {off:.1f} us off, {on:.1f} us on")

    def poke() -> None:
        _core.wake_poke(wake)
        drain()

    per = 20000
    poke_us = min(timeit.repeat(poke, number=per, repeat=5)) / per * 1e6
    drain_us = min(timeit.repeat(drain, number=per, repeat=5)) / per * 1e6
    with transaction.atomic():  # registered once, then only checked: the per-call cost
        check_us = min(timeit.repeat(lambda: real("default"), number=per, repeat=5)) / per * 1e6
    print(f"poke alone: {poke_us - drain_us:.2f} us; broker check per call: {check_us:.2f} us")


if __name__ == "__main__":
    main()

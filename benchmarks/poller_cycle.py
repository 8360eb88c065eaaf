"""The batch poller at scale: one cycle over a table of N rows (default 1,000,000).

For each broker it builds a fresh database with fastq's migrations and an order table,
then times what a poller's cycle does in the C++ core (the same call ``fastq.poll`` makes
after compiling the queryset): walk every key in pages and enqueue one check per row.
Cycle 1 enqueues every check; cycle 2 finds every check still pending (the steady state
of a poller whose checks have not run yet). Memory is the process's RSS growth across the
cycle: flat means it does not grow with N (a cycle over a tenth of the rows is measured
for comparison).

    .venv/bin/python benchmarks/poller_cycle.py [--rows N] [--brokers postgres,sqlite]

Writes benchmarks/results/poller.json (or --out) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness.systems import PG, pg_admin  # noqa: E402

DB_NAME = "bench_poller"
# What Django compiles for
# Order.objects.filter(status="shipped").exclude(tracking_id="").values_list("pk").
QUERY = (
    'SELECT "bench_order"."id" AS "pk" FROM "bench_order" WHERE ("bench_order"."status" = %s '
    'AND NOT ("bench_order"."tracking_id" = %s))'
)


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def setup_django(broker: str, tmp: Path) -> None:
    import django
    from django.conf import settings

    if broker == "postgres":
        pg_admin(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        pg_admin(f"CREATE DATABASE {DB_NAME}")
        db = {"ENGINE": "django.db.backends.postgresql", "NAME": DB_NAME}
        db.update({"HOST": PG["host"], "USER": PG["user"]})
    else:
        db = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp / "poller.sqlite3")}
    settings.configure(
        DATABASES={"default": db},
        INSTALLED_APPS=["fastq_django"],
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def fill(broker: str, rows: int) -> None:
    from django.db import connection

    with connection.cursor() as c:
        c.execute(
            "CREATE TABLE bench_order (id bigint NOT NULL PRIMARY KEY, status varchar(20) "
            "NOT NULL, tracking_id varchar(40) NOT NULL)"
        )
        if broker == "postgres":
            c.execute(
                "INSERT INTO bench_order SELECT g, 'shipped', 'T' || g "
                "FROM generate_series(1, %s) g",
                [rows],
            )
            c.execute("ANALYZE bench_order")
        else:
            c.execute(
                "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < %s) "
                "INSERT INTO bench_order SELECT n, 'shipped', 'T' || n FROM g",
                [rows],
            )


def cycle(driver: Any, name: str, rows_limit: int | None) -> dict[str, Any]:
    sql, params = QUERY, ["shipped", ""]
    if rows_limit is not None:
        sql += ' AND "bench_order"."id" <= %s'
        params.append(rows_limit)
    before = rss_mb()
    started = time.perf_counter()
    stats = driver.poll(
        name,
        sql,
        params,
        '"pk"',
        ("bench.track_order", "default", 0, 4, 0.0, 0.0, ""),
        start_us=int(time.time() * 1e6),
        span_us=12 * 3600 * 1_000_000,
    )
    seconds = time.perf_counter() - started
    return {
        **stats,
        "seconds": round(seconds, 3),
        "rows_per_s": round(stats["rows"] / seconds) if seconds else None,
        "rss_growth_mb": round(rss_mb() - before, 1),
    }


def run_broker(broker: str, rows: int) -> list[dict[str, Any]]:
    from fastq_django.broker import default_broker

    fill(broker, rows)
    driver = default_broker().worker_driver()
    out = []
    # A tenth of the rows under another poller name first: the memory yardstick.
    small = cycle(driver, "small", rows // 10)
    out.append({"broker": broker, "cycle": "first, N/10 rows", **small})
    for label in ("first: every check new", "second: every check pending"):
        out.append({"broker": broker, "cycle": label, **cycle(driver, "track", None)})
    for rec in out:
        print(
            f"  {broker:8} {rec['cycle']:28} {rec['rows']:>9,} rows  {rec['seconds']:7.2f} s  "
            f"{rec['rows_per_s'] or 0:>9,} rows/s  RSS +{rec['rss_growth_mb']} MB",
            flush=True,
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--brokers", default="postgres,sqlite")
    parser.add_argument("--out", default=str(HERE / "results" / "poller.json"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        # One broker per process: Django is configured once per process.
        with tempfile.TemporaryDirectory(prefix="fastq-poller-") as tmp:
            setup_django(opts.child, Path(tmp))
            try:
                records = run_broker(opts.child, opts.rows)
            finally:
                if opts.child == "postgres":
                    from django.db import connections

                    connections.close_all()
                    pg_admin(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        print("RESULT " + json.dumps(records), flush=True)
        return 0

    import subprocess

    print(f"poller cycle over {opts.rows:,} rows", flush=True)
    records: list[dict[str, Any]] = []
    for broker in [b for b in opts.brokers.split(",") if b]:
        proc = subprocess.run(
            [sys.executable, __file__, "--rows", str(opts.rows), "--child", broker],
            check=True,
            text=True,
            stdout=subprocess.PIPE,
            env=dict(os.environ),
        )
        for line in proc.stdout.splitlines():
            if line.startswith("RESULT "):
                records += json.loads(line[len("RESULT ") :])
            else:
                print(line, flush=True)
    out = Path(opts.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": opts.rows, "records": records}, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

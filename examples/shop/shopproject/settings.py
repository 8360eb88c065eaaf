"""Settings of the example shop.

The database is SQLite (``shop.sqlite3`` next to ``manage.py``, or ``SHOP_SQLITE_PATH``)
unless ``SHOP_DATABASE_URL`` gives a PostgreSQL DSN
(``postgresql://postgres@127.0.0.1:5432/shop``). Either way the same database is the
fastq broker: no Redis, no beat process.

The intervals in ``shop/tasks.py`` are the production ones. ``SHOP_FAST=1`` (set by
``run_demo.py`` and the acceptance test) shortens every schedule to seconds so that a
demo run shows them all firing; it does so below, through ``FASTQ["SCHEDULE"]`` (a
settings entry wins over the ``@fastq.periodic`` declaration of the same name) and the
``SHOP_TRACKING_*`` values the tracking poller reads.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "shop-example-only"
DEBUG = True
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "shopproject.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "fastq_django",  # the job and schedule tables, the admin, manage.py fastq_worker
    "shop",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]


def _database() -> dict[str, Any]:
    """PostgreSQL from ``SHOP_DATABASE_URL``, else the SQLite file."""
    dsn = os.environ.get("SHOP_DATABASE_URL", "")
    if dsn:
        url = urlsplit(dsn)
        if url.scheme not in ("postgres", "postgresql"):
            raise ValueError(f"SHOP_DATABASE_URL must be a postgresql:// DSN, not {dsn!r}")
        return {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": url.hostname or "127.0.0.1",
            "PORT": str(url.port or 5432),
            "USER": unquote(url.username or "postgres"),
            "PASSWORD": unquote(url.password or ""),
            "NAME": url.path.lstrip("/") or "shop",
        }
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("SHOP_SQLITE_PATH") or BASE_DIR / "shop.sqlite3",
        # With a worker in other processes: wait for locks, take the write lock up front,
        # and use WAL so that readers never block the writer.
        "OPTIONS": {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }


DATABASES = {"default": _database()}

# The fake carrier / rates / SMS provider (shop/provider.py); run_demo.py and the tests
# start one on a free port and pass its address here.
SHOP_PROVIDER_URL = os.environ.get("SHOP_PROVIDER_URL", "http://127.0.0.1:8765")

# Production values. Each has a shortened twin under SHOP_FAST below.
SHOP_TRACKING_EVERY = timedelta(minutes=10)  # how often each shipped order is checked
SHOP_TRACKING_STALE_AFTER = timedelta(days=3)  # shipped this long ago: alert once
SHOP_PAYMENT_TIMEOUT = timedelta(days=3)  # unpaid this long: cancelled, stock restored

FASTQ: dict[str, Any] = {}

SHOP_FAST = os.environ.get("SHOP_FAST") == "1"
if SHOP_FAST:
    SHOP_TRACKING_EVERY = timedelta(seconds=2)
    # Long enough that an order shipped at seeding time is delivered before it goes stale
    # (orders seeded as shipped days ago are stale from the start).
    SHOP_TRACKING_STALE_AFTER = timedelta(minutes=10)
    # Same names as the @fastq.periodic declarations in shop/tasks.py: these win.
    FASTQ["SCHEDULE"] = {
        "shop.tasks.cancel_unpaid_orders": {
            "task": "shop.tasks.cancel_unpaid_orders",
            "cron": "*/2 * * * * *",
        },
        "shop.tasks.refresh_exchange_rates": {
            "task": "shop.tasks.refresh_exchange_rates",
            "cron": "*/3 * * * * *",
        },
        "shop.tasks.refresh_gold_price": {
            "task": "shop.tasks.refresh_gold_price",
            "cron": "*/2 * * * * *",
            "timezone": "Asia/Tehran",
        },
        "shop.tasks.send_notifications": {
            "task": "shop.tasks.send_notifications",
            "every": 2,
        },
    }
if os.environ.get("SHOP_PAYMENT_TIMEOUT_SECONDS"):
    SHOP_PAYMENT_TIMEOUT = timedelta(seconds=float(os.environ["SHOP_PAYMENT_TIMEOUT_SECONDS"]))

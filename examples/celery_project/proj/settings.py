"""Settings of a small Celery + Django project (an order desk). The database is SQLite
(``proj.sqlite3``, or ``EXAMPLE_SQLITE_PATH``) unless ``EXAMPLE_DATABASE_URL`` gives a
PostgreSQL DSN. ``EXAMPLE_FAST=1`` (the acceptance test) shortens the beat schedule."""

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from fastq.compat.celery.schedules import crontab  # was: from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "example-only"
DEBUG = True
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "proj.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "fastq_django",  # added: the job and schedule tables, manage.py fastq_worker
    "orders",
]


def _database():
    dsn = os.environ.get("EXAMPLE_DATABASE_URL", "")
    if dsn:
        url = urlsplit(dsn)
        return {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": url.hostname or "127.0.0.1",
            "PORT": str(url.port or 5432),
            "USER": unquote(url.username or "postgres"),
            "PASSWORD": unquote(url.password or ""),
            "NAME": url.path.lstrip("/"),
        }
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("EXAMPLE_SQLITE_PATH") or BASE_DIR / "proj.sqlite3",
        "OPTIONS": {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }


DATABASES = {"default": _database()}

FAST = os.environ.get("EXAMPLE_FAST") == "1"

# Celery, as the project had it.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://localhost:6379/0")
CELERY_RESULT_BACKEND = "redis://localhost:6379/0"
CELERY_TIMEZONE = "Europe/London"
CELERY_TASK_TIME_LIMIT = 60
CELERY_TASK_SOFT_TIME_LIMIT = 50
CELERY_TASK_ROUTES = {
    "orders.tasks.send_*": {"queue": "mail"},
    "orders.tasks.charge_payment": {"queue": "payments"},
}
CELERY_BEAT_SCHEDULE = {
    "nightly-report": {
        "task": "orders.tasks.nightly_report",
        "schedule": crontab(minute=30, hour=2),
    },
    "expire-unpaid": {
        "task": "orders.tasks.expire_unpaid",
        "schedule": 2.0 if FAST else 300.0,
        "kwargs": {"older_than_seconds": 1 if FAST else 3600},
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"fastq": {"handlers": ["console"], "level": "INFO"}},
}

"""Settings of a small Django-Q2 project (a newsroom's word counts). The database is
SQLite (``mysite.sqlite3``, or ``EXAMPLE_SQLITE_PATH``) unless ``EXAMPLE_DATABASE_URL``
gives a PostgreSQL DSN."""

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "example-only"
DEBUG = True
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "mysite.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "fastq_django",  # was: "django_q",
    "fastq.compat.django_q",
    "reports",
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
        "NAME": os.environ.get("EXAMPLE_SQLITE_PATH") or BASE_DIR / "mysite.sqlite3",
        "OPTIONS": {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }


DATABASES = {"default": _database()}

Q_CLUSTER = {
    "name": "newsroom",
    "orm": "default",
    "workers": 2,
    "recycle": 500,
    "timeout": 60,
    "retry": 2,
    "max_attempts": 3,
    "save_limit": 250,
    "catch_up": False,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"fastq": {"handlers": ["console"], "level": "INFO"}},
}

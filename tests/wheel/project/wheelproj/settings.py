"""Settings of the round-trip project: FASTQ_WHEEL_DB is ``sqlite`` (a file beside the
project) or ``postgres`` (127.0.0.1:5432, user postgres, database FASTQ_WHEEL_PG_NAME)."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "fastq-wheel-test-only"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "fastq_django",
    "wheelapp",
]

if os.environ.get("FASTQ_WHEEL_DB", "sqlite") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": os.environ.get("FASTQ_WHEEL_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("FASTQ_WHEEL_PG_PORT", "5432"),
            "USER": os.environ.get("FASTQ_WHEEL_PG_USER", "postgres"),
            "NAME": os.environ["FASTQ_WHEEL_PG_NAME"],
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(BASE_DIR / "roundtrip.sqlite3"),
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }

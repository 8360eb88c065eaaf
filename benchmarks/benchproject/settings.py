"""Benchmark project. FASTQ_BENCH_BROKER=sqlite|postgres; FASTQ_BENCH_NAME is the SQLite
file or the PostgreSQL database (at 127.0.0.1, user postgres)."""

import os

SECRET_KEY = "bench-only"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "fastq_django", "bench"]

_broker = os.environ.get("FASTQ_BENCH_BROKER", "sqlite")
_name = os.environ.get("FASTQ_BENCH_NAME", "/tmp/fastq_bench.sqlite3")
if _broker == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": "127.0.0.1",
            "USER": "postgres",
            "NAME": _name,
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": _name,
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }

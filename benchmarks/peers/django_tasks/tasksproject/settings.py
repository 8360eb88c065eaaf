"""Django's Tasks framework with the database backend of django-tasks (package
django-tasks-db) and its db_worker command. BENCH_BROKER=postgres|sqlite; BENCH_DB: the
PostgreSQL database or the SQLite file."""

import os

SECRET_KEY = "bench-only"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "django_tasks_db", "bench"]

_broker = os.environ.get("BENCH_BROKER", "postgres")
_name = os.environ.get("BENCH_DB", "bench_tasks")
if _broker == "sqlite":
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
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": "127.0.0.1",
            "USER": "postgres",
            "NAME": _name,
        }
    }
# Persistent connections, as Django's documentation advises for long-running processes.
DATABASES["default"]["CONN_MAX_AGE"] = 600

TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

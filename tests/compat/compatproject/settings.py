"""Settings of the compatibility tests (tests/compat): a Celery app configured from the
CELERY_ namespace and Django-Q2's app, on FASTQ_TEST_DB (sqlite or postgres), as
tests/django/testproject does."""

import os
from datetime import timedelta
from pathlib import Path

from fastq.compat.celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "fastq-compat-tests-only"
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "compatproject.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "fastq_django",
    "fastq.compat.django_q",
    "fastq.compat.django_celery_beat",
    "compatapp",
]

_kind = os.environ.get("FASTQ_TEST_DB", "sqlite")
_db_name = os.environ.get("FASTQ_TEST_DB_NAME")
if _kind == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": os.environ.get("FASTQ_TEST_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("FASTQ_TEST_PG_PORT", "5432"),
            "USER": os.environ.get("FASTQ_TEST_PG_USER", "postgres"),
            "PASSWORD": os.environ.get("FASTQ_TEST_PG_PASSWORD", ""),
            "NAME": _db_name or "fastq_compat",
            "TEST": {"NAME": f"test_fastq_compat_{os.getpid()}"},
        }
    }
elif _kind == "sqlite":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": _db_name or str(BASE_DIR / f"compat_{os.getpid()}.sqlite3"),
            "TEST": {"NAME": str(BASE_DIR / f"compat_testdb_{os.getpid()}.sqlite3")},
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
else:
    raise RuntimeError(f"FASTQ_TEST_DB must be sqlite or postgres, not {_kind!r}")

FASTQ = {"DOTTED_PATHS": ["math.copysign"]}

# Celery's settings, as a Celery project has them.
CELERY_BROKER_URL = "redis://localhost:6379/0"
CELERY_RESULT_BACKEND = "redis://localhost:6379/1"
CELERY_TIMEZONE = "Europe/Berlin"
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_ROUTES = {
    "compatapp.tasks.route_*": {"queue": "routed"},
    "compatapp.tasks.exact_route": "exact",
}
CELERY_TASK_SOFT_TIME_LIMIT = 120
CELERY_RESULT_EXPIRES = timedelta(days=3)
CELERY_WORKER_PREFETCH_MULTIPLIER = 2
CELERY_WORKER_MAX_TASKS_PER_CHILD = 500
CELERY_WORKER_MAX_MEMORY_PER_CHILD = 300_000
CELERY_BEAT_SCHEDULE = {
    "nightly": {
        "task": "compatapp.tasks.add",
        "schedule": crontab(minute=30, hour=2),
        "args": (1, 2),
    },
    "every-10s": {
        "task": "compatapp.tasks.add",
        "schedule": 10.0,
        "args": (3, 4),
        "options": {"queue": "beat"},
    },
    "every-hour": {
        "task": "compatapp.tasks.add",
        "schedule": timedelta(hours=1),
        "kwargs": {"x": 1, "y": 1},
    },
}

Q_CLUSTER = {
    "name": "compat",
    "orm": "default",
    "timeout": 60,
    "retry": 1,
    "max_attempts": 2,
    "save_limit": 0,
    "redis": {"host": "localhost"},
    "poll": 0.5,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"fastq": {"handlers": ["console"], "level": "WARNING"}},
}

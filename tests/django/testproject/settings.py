"""Settings for fastq's Django tests. FASTQ_TEST_DB picks the broker database:
``sqlite`` (default) or ``postgres`` (127.0.0.1, user postgres; override with
FASTQ_TEST_PG_HOST/PORT/USER/PASSWORD; FASTQ_TEST_PG_OPTIONS, a JSON object, adds to
OPTIONS, e.g. the TCP keepalives of workers in tests/integration/hosts)."""

import json
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "fastq-tests-only"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "testproject.urls"
STATIC_URL = "/static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # The browser test's live server serves the admin's CSS from the apps' static files.
    "django.contrib.staticfiles",
    "fastq_django",
    "testapp",
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

_kind = os.environ.get("FASTQ_TEST_DB", "sqlite")
# A worker subprocess is pointed at the test database through FASTQ_TEST_DB_NAME.
_db_name = os.environ.get("FASTQ_TEST_DB_NAME")
if _kind == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": os.environ.get("FASTQ_TEST_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("FASTQ_TEST_PG_PORT", "5432"),
            "USER": os.environ.get("FASTQ_TEST_PG_USER", "postgres"),
            "PASSWORD": os.environ.get("FASTQ_TEST_PG_PASSWORD", ""),
            "NAME": _db_name or "fastq_django",
            # Per process, so that two test runs on one server never share a database.
            "TEST": {"NAME": f"test_fastq_django_{os.getpid()}"},
            "OPTIONS": json.loads(os.environ.get("FASTQ_TEST_PG_OPTIONS") or "{}"),
        }
    }
elif _kind == "sqlite":
    _path = BASE_DIR / f"fastq_test_{os.getpid()}.sqlite3"
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": _db_name or str(_path),
            # Workers in other processes need a file; IMMEDIATE avoids lock upgrades.
            "TEST": {"NAME": str(BASE_DIR / f"fastq_testdb_{os.getpid()}.sqlite3")},
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
else:
    raise RuntimeError(f"FASTQ_TEST_DB must be sqlite or postgres, not {_kind!r}")

FASTQ = {
    "IMPORTS": ["testapp.extra_tasks"],
    # Synced into fastq_schedule by every non-burst worker (tests/django/test_schedules.py).
    "SCHEDULE": {
        "nightly-noop": {"task": "testapp.tasks.noop", "cron": "0 3 * * *", "timezone": "UTC"},
        "hourly-add": {"task": "testapp.tasks.add", "every": 3600, "args": [1, 2]},
    },
}
# Django's Tasks API on fastq (tests/django/test_tasks_backend*.py): django.tasks on
# Django 6, the django_tasks backport on Django 5.2 (installed by scripts/bootstrap.sh).
try:
    import django.tasks  # noqa: F401

    TASKS_API = "django.tasks"
except ImportError:
    try:
        import django_tasks  # noqa: F401

        TASKS_API = "django_tasks"
    except ImportError:
        TASKS_API = None
if TASKS_API:
    FASTQ["IMPORTS"].append("testapp.tasks_api")
    TASKS = {
        "default": {
            "BACKEND": "fastq_django.backends.FastqTaskBackend",
            "QUEUES": ["default", "api-ordered", "api-extra", "api-other"],
            "OPTIONS": {
                "tasks": {
                    "testapp.tasks_api.limited_by_settings": {
                        "max_retries": 0,
                        "rate_limit": "1000/s",
                    }
                }
            },
        },
        "secondary": {
            "BACKEND": "fastq_django.backends.FastqTaskBackend",
            "QUEUES": [],
            "OPTIONS": {"max_retries": 1},
        },
    }

# The reliability suite (tests/integration/reliability) gives a worker more task modules
# (comma-separated) and a smaller payload limit through the environment.
FASTQ["IMPORTS"] += [m for m in os.environ.get("FASTQ_TEST_IMPORTS", "").split(",") if m]
# FASTQ["QUEUES"] as JSON (tests/integration/reliability/test_pause_and_limits.py).
if os.environ.get("FASTQ_TEST_QUEUES"):
    FASTQ["QUEUES"] = json.loads(os.environ["FASTQ_TEST_QUEUES"])
if os.environ.get("FASTQ_TEST_MAX_PAYLOAD_BYTES"):
    FASTQ["MAX_PAYLOAD_BYTES"] = int(os.environ["FASTQ_TEST_MAX_PAYLOAD_BYTES"])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"fastq": {"handlers": ["console"], "level": "WARNING"}},
}
# FASTQ["RETENTION"] as JSON: state -> seconds or null (tests/django/test_retention.py).
if os.environ.get("FASTQ_TEST_RETENTION"):
    FASTQ["RETENTION"] = json.loads(os.environ["FASTQ_TEST_RETENTION"])

"""Celery on Redis in a Django project: Redis as broker and as result backend (the
usual Django setup). BENCH_REDIS_DB is the broker's Redis database; results go to the
next one, so that counting result keys (DBSIZE) counts finished jobs."""

import os

SECRET_KEY = "bench-only"
USE_TZ = True
INSTALLED_APPS = ["bench"]
DATABASES: dict[str, dict[str, str]] = {}  # Celery needs no SQL database

_db = int(os.environ.get("BENCH_REDIS_DB", "1"))
CELERY_BROKER_URL = f"redis://127.0.0.1:6379/{_db}"
CELERY_RESULT_BACKEND = f"redis://127.0.0.1:6379/{_db + 1}"
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
# Results kept for a day (the default), long enough for any run.
CELERY_RESULT_EXPIRES = 86400
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

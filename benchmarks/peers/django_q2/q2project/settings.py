"""Django-Q2 in a Django project. BENCH_BROKER=postgres|sqlite (the ORM broker on the
project's database) or redis (Redis broker; results still go to the PostgreSQL
database). BENCH_DB: the PostgreSQL database or the SQLite file. BENCH_Q_WORKERS: worker
processes of the cluster."""

import os

SECRET_KEY = "bench-only"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "django_q", "bench"]

_broker = os.environ.get("BENCH_BROKER", "postgres")
_name = os.environ.get("BENCH_DB", "bench_q2")
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
# Persistent connections, as Django's documentation advises where connecting per
# request (here: per task and per dequeue) would dominate.
DATABASES["default"]["CONN_MAX_AGE"] = 600

# async_iter collects results in the cache; it must be one all processes share.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": f"redis://127.0.0.1:6379/{int(os.environ.get('BENCH_REDIS_DB', '4')) + 1}",
    }
}

Q_CLUSTER = {
    "name": "bench",
    # One worker process per core (Django-Q2's default is the CPU count); more for I/O.
    "workers": int(os.environ.get("BENCH_Q_WORKERS", "2")),
    "timeout": 60,
    "retry": 120,
    # Keep every success: the harness counts them (the default keeps the last 250).
    "save_limit": 0,
    "label": "Django Q2",
    "log_level": "WARNING",
}
if _broker == "redis":
    Q_CLUSTER["redis"] = {
        "host": "127.0.0.1",
        "port": 6379,
        "db": int(os.environ.get("BENCH_REDIS_DB", "4")),
    }
else:
    Q_CLUSTER["orm"] = "default"

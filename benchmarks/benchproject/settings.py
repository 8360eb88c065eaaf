"""fastq's benchmark project. BENCH_BROKER=sqlite|postgres; BENCH_DB is the SQLite file
or the PostgreSQL database (at 127.0.0.1, user postgres)."""

import os

SECRET_KEY = "bench-only"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "fastq_django", "bench"]

_broker = os.environ.get("BENCH_BROKER", "sqlite")
_name = os.environ.get("BENCH_DB", "/tmp/fastq_bench.sqlite3")
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
    # What fastq's README asks of a SQLite broker shared with a worker process.
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

# The "fastq-tasks" system of benchmarks/run.py: the same project, its tasks declared with
# Django's Tasks API (bench/tasks_api.py) and run through fastq's backend.
if os.environ.get("BENCH_TASKS_API") == "1":
    TASKS = {"default": {"BACKEND": "fastq_django.backends.FastqTaskBackend"}}
    FASTQ = {"IMPORTS": ["bench.tasks_api"]}

# benchmarks/retention.py: every final state kept BENCH_RETENTION seconds.
if os.environ.get("BENCH_RETENTION"):
    _keep = float(os.environ["BENCH_RETENTION"])
    FASTQ = {
        **globals().get("FASTQ", {}),
        "RETENTION": dict.fromkeys(("succeeded", "failed", "dead", "expired", "cancelled"), _keep),
    }

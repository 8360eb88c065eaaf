"""What ``manage.py fastq_worker`` imports between ``django.setup()`` and running its
worker (issue 17's start-up target; docs/benchmarks.md, "Start-up"). What Django itself
imports in ``django.setup()`` (the installed apps' models, hence forms and templates; the
admin's registrations when the admin is installed) is the project's; these tests hold what
the worker command adds after it: no URL configuration, views, middleware or admin, no
migration files. Measured in a subprocess through ``sys.modules``, not by the clock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from workerproc import HERE

pytestmark = pytest.mark.django_db(transaction=True)

# manage.py fastq_worker, stopped where the worker (or the supervisor) would start: the
# modules it imported past django.setup() go to stdout as JSON.
PROBE = """
import json, sys
import django
django.setup()
before = set(sys.modules)
from fastq_django.management.commands import fastq_worker as cmd

def _run(self, *args, **kwargs):
    print(json.dumps(sorted(set(sys.modules) - before)))

cmd.Command._run = _run
from django.core.management import execute_from_command_line
execute_from_command_line(["manage.py", "fastq_worker", *sys.argv[1:]])
"""

# Imported only by Django's system checks (the URL configuration and what it names,
# auth's and the admin's checks) or by the migration loader (every app's migration files).
NOT_ON_THE_WAY = (
    "testproject.urls",
    "fastq_django.urls",
    "fastq_django.views",
    "django.contrib.auth.views",
    "django.contrib.auth.middleware",
    "django.contrib.admin.views.main",
    "django.contrib.staticfiles.checks",
    "django.db.migrations.loader",
    "django.db.migrations.executor",
    "fastq_django.migrations",
    "testapp.migrations",
)


def _run(args: list[str], settings: str = "testproject.settings", path: str = "") -> Any:
    """``python *args`` in tests/django on the test database."""
    from django.db import connection

    environ = dict(os.environ)
    environ["FASTQ_TEST_DB_NAME"] = str(connection.settings_dict["NAME"])
    environ["DJANGO_SETTINGS_MODULE"] = settings
    environ["PYTHONPATH"] = os.pathsep.join(
        [p for p in (path, str(HERE), environ.get("PYTHONPATH", "")) if p]
    )
    return subprocess.run(
        [sys.executable, *args], cwd=HERE, env=environ, capture_output=True, text=True, timeout=120
    )


def _imports_after_setup(*args: str, probe: str = PROBE) -> set[str]:
    done = _run(["-c", probe, *args])
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_the_worker_command_imports_no_urls_views_or_migrations_before_it_runs():
    imported = _imports_after_setup("--burst", "--processes", "0", "--no-scheduler")
    unwanted = sorted(
        m for m in imported if any(m == n or m.startswith(n + ".") for n in NOT_ON_THE_WAY)
    )
    assert unwanted == [], unwanted
    # It did import the project's task modules: they are what it runs.
    assert "testapp.tasks" in imported


def test_the_probe_sees_what_the_system_checks_import():
    # The same probe with Django's full checks (the `check` command's) run first: the
    # modules above are really on that path, so the test above is not vacuous.
    probe_with_checks = PROBE.replace(
        "before = set(sys.modules)",
        "before = set(sys.modules)\n"
        "from django.core.management import call_command\n"
        "call_command('check', databases=['default'])",
    )
    imported = _imports_after_setup("--burst", "--processes", "0", probe=probe_with_checks)
    for module in ("testproject.urls", "fastq_django.views", "django.db.migrations.loader"):
        assert module in imported, module


def test_fastq_checks_still_stop_the_worker(tmp_path):
    # The worker runs fastq's own checks (and only those): an unknown FASTQ key stops it
    # with fastq.E001 as before.
    settings_module = tmp_path / "typo_worker_settings.py"
    settings_module.write_text(
        "from testproject.settings import *  # noqa: F403\n"
        'FASTQ = {**FASTQ, "QUEUS": ["default"]}  # noqa: F405\n'
    )
    done = _run(
        [str(HERE / "manage.py"), "fastq_worker", "--burst", "--processes", "0"],
        settings="typo_worker_settings",
        path=str(tmp_path),
    )
    assert done.returncode == 1, done.stderr
    assert "fastq.E001" in done.stderr and "QUEUS" in done.stderr, done.stderr

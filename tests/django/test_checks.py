"""fastq's system checks (fastq_django/checks.py) and what fastq_worker does, at start, with
a database it cannot use: no fastq tables (exit 2, one line) or no server (exit 1)."""

from __future__ import annotations

import copy
import io
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.checks import run_checks
from django.core.management import call_command
from django.test import override_settings
from fastq.pollers import POLL_TASK
from fastq.schedules import PeriodicSchedule
from fastq.schedules import declared as declared_schedules
from workerproc import HERE, run_worker

MIGRATE_LINE = (
    "fastq_worker: the fastq_django migrations are not applied to database 'default'; "
    "run python manage.py migrate"
)


def fastq_messages(databases: list[str] | None = None) -> list:
    """The fastq checks' messages; with ``databases=[]`` the database is not touched."""
    return [m for m in run_checks(tags=["fastq"], databases=databases) if m.id.startswith("fastq.")]


def fastq_with(**keys: object) -> dict:
    value = copy.deepcopy(django_settings.FASTQ)
    value.update(keys)
    return value


def ids(messages: list) -> list[str]:
    return [m.id for m in messages]


# ---- settings.FASTQ -------------------------------------------------------------------


def test_the_test_settings_pass():
    assert fastq_messages(databases=[]) == []


@pytest.mark.parametrize(
    ("key", "closest"), [("EAGERR", "EAGER"), ("QUEUS", "QUEUES"), ("SCHEDULES", "SCHEDULE")]
)
def test_an_unknown_key_is_an_error_naming_the_closest_valid_one(key, closest):
    with override_settings(FASTQ=fastq_with(**{key: None})):
        messages = fastq_messages(databases=[])
    assert ids(messages) == ["fastq.E001"]
    assert repr(key) in messages[0].msg
    assert f"did you mean {closest!r}" in messages[0].msg


def test_an_unknown_key_far_from_any_lists_the_known_ones():
    with override_settings(FASTQ=fastq_with(WHATEVER_THIS_IS=1)):
        (message,) = fastq_messages(databases=[])
    assert message.id == "fastq.E001"
    assert "'WHATEVER_THIS_IS'" in message.msg
    assert "DATABASE" in message.hint and "ADMIN_REDACT" in message.hint


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("DATABASE", 1),
        ("EAGER", "yes"),
        ("IMPORTS", "testapp.extra_tasks"),
        ("IMPORTS", [1]),
        ("QUEUES", "default,other"),
        ("MAX_PAYLOAD_BYTES", "1MB"),
        ("MAX_PAYLOAD_BYTES", True),
        ("MAX_PAYLOAD_BYTES", 0),
        ("SCHEDULE", [("nightly", {})]),
        ("ADMIN_REDACT", "password"),
        ("ADMIN_REDACT", ["password", 3]),
    ],
)
def test_a_value_of_the_wrong_type_is_an_error(key, value):
    with override_settings(FASTQ=fastq_with(**{key: value})):
        messages = fastq_messages(databases=[])
    assert ids(messages) == ["fastq.E002"], messages
    assert f'FASTQ["{key}"] must be' in messages[0].msg


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("QUEUES", None),
        ("QUEUES", ("default", "other")),
        ("ADMIN_REDACT", ["password"]),
        ("ADMIN_REDACT", lambda name, value: name == "password"),
        ("MAX_PAYLOAD_BYTES", 4096),
        ("EAGER", False),
    ],
)
def test_values_of_the_right_type_pass(key, value):
    with override_settings(FASTQ=fastq_with(**{key: value})):
        assert fastq_messages(databases=[]) == []


def test_fastq_that_is_not_a_dict_is_an_error():
    with override_settings(FASTQ=[("EAGER", True)]):
        messages = fastq_messages(databases=[])
    assert ids(messages) == ["fastq.E002"]
    assert "settings.FASTQ must be a dict" in messages[0].msg


def test_a_bad_schedule_entry_is_an_error_naming_it():
    schedule = {"broken": {"task": "testapp.tasks.noop", "cron": "61 * * * *"}}
    with override_settings(FASTQ=fastq_with(SCHEDULE=schedule)):
        messages = fastq_messages(databases=[])
    assert ids(messages) == ["fastq.E002"]
    assert "'broken'" in messages[0].msg


# ---- tasks and schedules --------------------------------------------------------------


def test_a_settings_schedule_naming_no_task_is_an_error():
    schedule = {
        **django_settings.FASTQ["SCHEDULE"],
        "typo": {"task": "testapp.tasks.noopp", "every": 60},
    }
    with override_settings(FASTQ=fastq_with(SCHEDULE=schedule)):
        messages = fastq_messages(databases=[])
    assert ids(messages) == ["fastq.E003"]
    msg = messages[0].msg
    assert "'typo'" in msg and "'testapp.tasks.noopp'" in msg and "SCHEDULE" in msg
    assert "did you mean 'testapp.tasks.noop'" in msg


def test_a_periodic_declaration_naming_no_task_is_an_error(monkeypatch):
    # @fastq.periodic registers the function it decorates; a declaration whose task is
    # gone (renamed with name=, registry changed by hand) is what this catches.
    spec = PeriodicSchedule(name="vanished", task="testapp.tasks.vanished", every=60)
    monkeypatch.setitem(declared_schedules, "vanished", spec)
    messages = fastq_messages(databases=[])
    assert ids(messages) == ["fastq.E003"]
    assert "'vanished' (@fastq.periodic)" in messages[0].msg


def test_a_poller_schedule_naming_no_poller_is_an_error(monkeypatch):
    spec = PeriodicSchedule(
        name="ghost", task=POLL_TASK, every=60, kwargs={"poller": "ghost"}, max_instances=1
    )
    monkeypatch.setitem(declared_schedules, "ghost", spec)
    messages = fastq_messages(databases=[])
    assert ids(messages) == ["fastq.E003"]
    assert "poller 'ghost'" in messages[0].msg


def test_a_task_module_that_fails_to_import_is_an_error():
    imports = [*django_settings.FASTQ["IMPORTS"], "testapp.no_such_module"]
    with override_settings(FASTQ=fastq_with(IMPORTS=imports)):
        messages = fastq_messages(databases=[])
    assert ids(messages) == ["fastq.E006"]
    assert "'testapp.no_such_module'" in messages[0].msg
    assert "ModuleNotFoundError" in messages[0].msg


# ---- the broker database --------------------------------------------------------------


def test_a_missing_alias_is_an_error():
    with override_settings(FASTQ=fastq_with(DATABASE="defualt")):
        messages = fastq_messages(databases=["defualt"])
    assert ids(messages) == ["fastq.E004"]
    assert "'defualt'" in messages[0].msg and "did you mean 'default'" in messages[0].msg


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
@pytest.mark.parametrize(
    ("engine", "vendor"),
    [
        ("django.db.backends.mysql", "mysql"),
        ("django.db.backends.oracle", "oracle"),
        ("django.contrib.gis.db.backends.mysql", "mysql"),
    ],
)
def test_an_unsupported_engine_is_an_error_without_connecting(engine, vendor):
    databases = {
        **django_settings.DATABASES,
        "legacy": {"ENGINE": engine, "NAME": "shop", "HOST": "127.0.0.1", "PORT": "1"},
    }
    with override_settings(DATABASES=databases, FASTQ=fastq_with(DATABASE="legacy")):
        messages = fastq_messages(databases=["default", "legacy"])
    assert ids(messages) == ["fastq.E005"]
    assert "'legacy'" in messages[0].msg and vendor in messages[0].msg
    assert "SQLite and PostgreSQL" in messages[0].msg
    # Named from ENGINE alone: its backend (whose driver is not even installed here) was
    # not loaded, let alone connected.
    assert f"{engine}.base" not in sys.modules


@pytest.mark.django_db
def test_a_migrated_database_passes():
    assert fastq_messages(databases=["default"]) == []


@pytest.mark.django_db
def test_the_database_checks_run_only_for_their_alias():
    # check --database other: fastq's database is not that one, it is left alone.
    with override_settings(FASTQ=fastq_with()):
        assert fastq_messages(databases=["other"]) == []


@pytest.mark.django_db(transaction=True)
def test_unapplied_migrations_are_a_warning():
    try:
        call_command("migrate", "fastq_django", "0007", verbosity=0)
        only_last = fastq_messages(databases=["default"])
        call_command("migrate", "fastq_django", "zero", verbosity=0)
        none_applied = fastq_messages(databases=["default"])
    finally:
        call_command("migrate", "fastq_django", verbosity=0)
    assert ids(only_last) == ["fastq.W001"]
    # Up to three are listed by name; more are counted from the first.
    assert re.search(
        r"\((unapplied: |\d+ unapplied, from )fastq_django\.0008_job_checks", only_last[0].msg
    )
    assert ids(none_applied) == ["fastq.W001"]
    assert "run python manage.py migrate" in none_applied[0].msg
    assert "from fastq_django.0001_initial" in none_applied[0].msg
    assert fastq_messages(databases=["default"]) == []


# ---- manage.py, as a user runs it ------------------------------------------------------


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environ = dict(os.environ)
    environ["DJANGO_SETTINGS_MODULE"] = "testproject.settings"
    environ["PYTHONPATH"] = os.pathsep.join([str(HERE), environ.get("PYTHONPATH", "")])
    environ.update(env)
    return subprocess.run(
        [sys.executable, str(HERE / "manage.py"), *args],
        cwd=HERE,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _pg_params() -> dict[str, str]:
    return {
        "host": os.environ.get("FASTQ_TEST_PG_HOST", "127.0.0.1"),
        "port": os.environ.get("FASTQ_TEST_PG_PORT", "5432"),
        "user": os.environ.get("FASTQ_TEST_PG_USER", "postgres"),
        "password": os.environ.get("FASTQ_TEST_PG_PASSWORD", ""),
    }


@pytest.fixture
def empty_database(tmp_path: Path) -> Iterator[str]:
    """The name of a database with no tables at all, of the kind under test."""
    if os.environ.get("FASTQ_TEST_DB", "sqlite") == "sqlite":
        yield str(tmp_path / "empty.sqlite3")
        return
    import psycopg

    name = f"fastq_empty_{os.getpid()}"
    with psycopg.connect(dbname="postgres", autocommit=True, **_pg_params()) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    yield name
    with psycopg.connect(dbname="postgres", autocommit=True, **_pg_params()) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("--burst",),
        ("--no-scheduler",),
        ("--burst", "--processes", "0"),
        ("--no-scheduler", "--processes", "2", "-l", "debug"),
    ],
)
def test_worker_without_migrations_exits_2_with_one_line(worker, empty_database, args):
    code, out = worker(*args, env={"FASTQ_TEST_DB_NAME": empty_database}).wait(60)
    assert code == 2, out
    assert out.strip() == MIGRATE_LINE, out


def test_check_warns_about_unapplied_migrations(empty_database):
    done = _manage("check", env={"FASTQ_TEST_DB_NAME": empty_database})
    assert done.returncode == 0, done.stderr
    assert "fastq.W001" in done.stderr and "run python manage.py migrate" in done.stderr
    assert "Traceback" not in done.stderr


UNREACHABLE = {
    "FASTQ_TEST_DB": "postgres",
    "FASTQ_TEST_PG_HOST": "127.0.0.1",
    "FASTQ_TEST_PG_PORT": "1",
    "FASTQ_TEST_DB_NAME": "fastq_nowhere",
}


@pytest.mark.parametrize("args", [(), ("--burst",), ("--no-scheduler", "--processes", "0")])
def test_worker_on_an_unreachable_database_exits_1_naming_host_and_port(worker, args):
    code, out = worker(*args, env=UNREACHABLE).wait(60)
    assert code == 1, out
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    assert lines[0].startswith("fastq_worker: cannot connect to database 'default'"), out
    assert "127.0.0.1:1" in lines[0]
    assert "migrate" not in lines[0]


def test_check_on_an_unreachable_database_warns_naming_host_and_port():
    done = _manage("check", env=UNREACHABLE)
    assert done.returncode == 0, done.stderr
    assert "fastq.W002" in done.stderr and "127.0.0.1:1" in done.stderr
    assert "migrate" not in done.stderr.replace("fastq_worker", "")
    assert "Traceback" not in done.stderr


def test_check_fails_on_an_unknown_key(tmp_path):
    settings_module = tmp_path / "typo_settings.py"
    settings_module.write_text(
        "from testproject.settings import *  # noqa: F403\n"
        'FASTQ = {**FASTQ, "EAGERR": True}  # noqa: F405\n'
    )
    done = _manage(
        "check",
        env={
            "DJANGO_SETTINGS_MODULE": "typo_settings",
            "PYTHONPATH": os.pathsep.join([str(tmp_path), str(HERE)]),
            "FASTQ_TEST_DB": "sqlite",
            "FASTQ_TEST_DB_NAME": str(tmp_path / "db.sqlite3"),
        },
    )
    assert done.returncode == 1, done.stderr
    assert "fastq.E001" in done.stderr and "'EAGERR'" in done.stderr
    assert "did you mean 'EAGER'" in done.stderr


@pytest.mark.django_db(transaction=True)
def test_migrate_does_not_tell_the_user_to_run_migrate():
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("migrate", "fastq_django", "0007", verbosity=0, stdout=out, stderr=err)
        call_command("migrate", "fastq_django", verbosity=0, stdout=out, stderr=err)
    finally:
        call_command("migrate", "fastq_django", verbosity=0)
    assert "fastq.W001" not in out.getvalue() + err.getvalue()


# ---- a worker process on a database without fastq's tables ---------------------------

SUPERVISE = """
import sys, time
import django
django.setup()
from fastq.worker import Worker, run_supervised
from fastq_django.broker import default_broker
from fastq_django.discovery import import_task_modules
import_task_modules()
broker = default_broker()
stats = run_supervised(broker, lambda: Worker(broker), processes=2, slots_per_child=8)
print(f"RESULT {stats.exit_code} {stats.started}")
"""


def test_the_supervisor_stops_on_a_missing_table_instead_of_restarting(empty_database):
    # What fastq_worker's start-up test prevents, met past it (tables dropped under a
    # running fleet, or run_supervised called directly): a setup error, not an outage.
    if os.environ.get("FASTQ_TEST_DB", "sqlite") == "sqlite":
        import sqlite3

        sqlite3.connect(empty_database).close()  # the file exists, without fastq's tables
    environ = dict(os.environ)
    environ["DJANGO_SETTINGS_MODULE"] = "testproject.settings"
    environ["PYTHONPATH"] = os.pathsep.join([str(HERE), environ.get("PYTHONPATH", "")])
    environ["FASTQ_TEST_DB_NAME"] = empty_database
    done = subprocess.run(
        [sys.executable, "-c", SUPERVISE],
        cwd=HERE,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    code, started = done.stdout.split()[-2:]
    assert code == "1", done.stderr
    assert int(started) <= 2, f"restarted {started} process(es):\n{done.stderr}"
    assert "could not run with this configuration; stopping" in done.stderr
    assert "Traceback" not in done.stderr


# ---- logging --------------------------------------------------------------------------


def _wait_for_output(w, text: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while text not in w.output():
        assert w.proc.poll() is None, w.output()
        assert time.monotonic() < deadline, w.output()
        time.sleep(0.05)
    return w.output()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("level", ["info", "INFO", "Info"])
def test_loglevel_in_any_case(level):
    run_worker("--burst", "-l", level)


@pytest.mark.django_db(transaction=True)
def test_the_projects_logging_is_kept_and_loglevel_applies_to_fastq(worker):
    # tests/django/testproject/settings.py: LOGGING sends "fastq" to a console handler
    # at WARNING. -l info lowers that logger's level; no second handler is added.
    w = worker("--processes", "0", "-l", "info")
    _wait_for_output(w, "schedules from code")
    w.signal(signal.SIGTERM)
    out = w.finish(30)
    (line,) = [x for x in out.splitlines() if "schedules from code" in x]
    assert line.startswith("schedules from code"), "LOGGING's handler, not basicConfig's"


@pytest.mark.django_db(transaction=True)
def test_without_loglevel_the_projects_level_stands(worker):
    w = worker("--processes", "0")
    _wait_for_output(w, "fastq worker ")
    time.sleep(1.0)
    w.signal(signal.SIGTERM)
    out = w.finish(30)
    assert "schedules from code" not in out, "INFO is below the project's WARNING"


@pytest.mark.django_db(transaction=True)
def test_without_logging_settings_fastq_logs_to_stderr(worker, tmp_path):
    (tmp_path / "nolog_settings.py").write_text(
        "from testproject.settings import *  # noqa: F403\nLOGGING = {}\n"
    )
    env = {
        "DJANGO_SETTINGS_MODULE": "nolog_settings",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(HERE)]),
    }
    w = worker("--processes", "0", env=env)
    _wait_for_output(w, "schedules from code")
    w.signal(signal.SIGTERM)
    out = w.finish(30)
    (line,) = [x for x in out.splitlines() if "schedules from code" in x]
    assert " INFO fastq.worker: schedules from code" in line

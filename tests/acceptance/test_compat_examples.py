"""Acceptance: the Celery-style and Django-Q2-style example projects (examples/
celery_project, examples/djangoq_project), whose only change from their originals is
their import lines, run the way their users run them: ``manage.py migrate``, a command
that enqueues work, and the worker started as ``python -m fastq.compat.celery -A proj
worker ...`` or ``manage.py qcluster``; outcomes are read back with a report command.
Once on SQLite and once on PostgreSQL at 127.0.0.1 (a database of its own, dropped at
the end); PostgreSQL's absence skips that run locally and fails it under CI=true.

No assertion is about speed: the test waits, generously, for outcomes to appear.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TIMEOUT = 240.0


def _pg_params() -> dict[str, str]:
    return {
        "host": os.environ.get("FASTQ_TEST_PG_HOST", "127.0.0.1"),
        "port": os.environ.get("FASTQ_TEST_PG_PORT", "5432"),
        "user": os.environ.get("FASTQ_TEST_PG_USER", "postgres"),
        "password": os.environ.get("FASTQ_TEST_PG_PASSWORD", ""),
    }


def _postgres_admin() -> Any:
    import psycopg

    try:
        return psycopg.connect(
            dbname="postgres", autocommit=True, connect_timeout=3, **_pg_params()
        )
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI but unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    if request.param == "sqlite":
        yield {"EXAMPLE_SQLITE_PATH": str(tmp_path / "example.sqlite3")}
        return
    name = f"fastq_compat_example_{os.getpid()}"
    with _postgres_admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    p = _pg_params()
    auth = p["user"] + (f":{p['password']}" if p["password"] else "")
    try:
        yield {"EXAMPLE_DATABASE_URL": f"postgresql://{auth}@{p['host']}:{p['port']}/{name}"}
    finally:
        with _postgres_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Project:
    def __init__(self, root: Path, settings: str, env: dict[str, str]) -> None:
        self.root = root
        self.env = {
            **os.environ,
            **env,
            "DJANGO_SETTINGS_MODULE": settings,
            "PYTHONUNBUFFERED": "1",
        }

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=self.root,
            env=self.env,
            text=True,
            capture_output=True,
            timeout=120,
        )
        assert done.returncode == 0, f"manage.py {' '.join(args)}:\n{done.stderr}"
        return done.stdout

    def run_until(self, argv: list[str], what: str, check: Callable[[], bool]) -> str:
        """Start ``argv`` (the worker), wait for ``check``, stop it with SIGTERM."""
        with tempfile.TemporaryFile(mode="w+") as log:
            proc = subprocess.Popen(
                [sys.executable, *argv],
                cwd=self.root,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                deadline = time.monotonic() + TIMEOUT
                while not check():
                    if time.monotonic() > deadline or proc.poll() is not None:
                        log.seek(0)
                        raise AssertionError(f"waiting for {what}:\n{log.read()[-6000:]}")
                    time.sleep(1.0)
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    code = proc.wait(timeout=90)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    code = proc.wait()
            log.seek(0)
            output = log.read()
        assert code == 0, f"worker exited {code}:\n{output[-6000:]}"
        return output


def test_celery_project(database: dict[str, str]) -> None:
    project = Project(
        EXAMPLES / "celery_project", "proj.settings", {**database, "EXAMPLE_FAST": "1"}
    )
    project.manage("migrate", "--verbosity", "0")
    placed = json.loads(project.manage("place_orders", "--count", "3"))
    task_ids = [p["task"] for p in placed]
    state: dict[str, Any] = {}

    def done() -> bool:
        state["report"] = report = json.loads(project.manage("orders_report", *task_ids))
        return (
            all(report["orders"][str(p["order"])] == "paid" for p in placed)
            and len(report["emails"]) == 3
            and "expired" in report["orders"].values()
        )

    output = project.run_until(
        [
            "-m",
            "fastq.compat.celery",
            "-A",
            "proj",
            "worker",
            "-l",
            "info",
            "-Q",
            "celery,mail,payments",
            "-c",
            "2",
            "--max-tasks-per-child",
            "1000",
            "-B",
        ],
        "the orders to be paid, mailed and expired",
        done,
    )
    report = state["report"]
    # Retries with backoff: the gateway refused two calls per order, then took it.
    assert report["gateway_calls"] == 9
    for task_id in task_ids:
        assert report["tasks"][task_id]["state"] == "SUCCESS"
        assert report["tasks"][task_id]["retries"] == 2
        assert report["tasks"][task_id]["result"]["calls"] == 3
    # Routes: the receipts went through the "mail" queue (a glob route).
    assert {queue for _, _, queue in report["emails"]} == {"mail"}
    # The beat schedule became fastq schedules: the crontab in CELERY_TIMEZONE.
    rows = {
        s["name"]: s
        for s in json.loads(
            project.manage(
                "shell",
                "-c",
                "import json; from fastq_django.models import Schedule; "
                "print(json.dumps(list(Schedule.objects.values('name', 'cron', 'timezone', "
                "'every', 'last_run_at')), default=str))",
            )
            .strip()
            .splitlines()[-1]  # after the shell's own banner
        )
    }
    assert rows["nightly-report"]["cron"] == "30 2 * * *"
    assert rows["nightly-report"]["timezone"] == "Europe/London"
    assert rows["expire-unpaid"]["every"] == 2.0 and rows["expire-unpaid"]["last_run_at"]
    assert "2 process(es) x concurrency 1" in output
    # beat: a no-op that says why.
    beat = subprocess.Popen(
        [sys.executable, "-m", "fastq.compat.celery", "-A", "proj", "beat"],
        cwd=project.root,
        env=project.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert beat.stdout is not None
    with beat.stdout:
        line = beat.stdout.readline()
        beat.send_signal(signal.SIGTERM)
        assert beat.wait(timeout=60) == 0
    assert "runs the scheduler" in line

    # close_day's chord (celery.chord of a group, then a callback), on fastq's workflows:
    # one order_total per paid order, then summarize once with every total.
    def shell(code: str) -> Any:
        return json.loads(project.manage("shell", "-c", code).strip().splitlines()[-1])

    expected = shell(
        "import json; from orders.models import Order; "
        "paid = Order.objects.filter(status='paid'); "
        "print(json.dumps([list(paid.values_list('pk', flat=True)), "
        "sum(paid.values_list('amount', flat=True))]))"
    )
    shell(
        "import json; from orders.tasks import close_day; "
        f"print(json.dumps(close_day({expected[0]!r}).id))"
    )

    def reports() -> list[list[int]]:
        return shell(
            "import json; from orders.models import Report; "
            "print(json.dumps(list(Report.objects.values_list('paid', 'total'))))"
        )

    project.run_until(
        ["-m", "fastq.compat.celery", "-A", "proj", "worker", "-l", "info", "-Q", "celery"],
        "the close_day chord's callback",
        lambda: bool(reports()),
    )
    assert reports() == [[len(expected[0]), expected[1]]]


def test_djangoq_project(database: dict[str, str]) -> None:
    project = Project(EXAMPLES / "djangoq_project", "mysite.settings", database)
    project.manage("migrate", "--verbosity", "0")
    started = json.loads(project.manage("kickoff"))
    state: dict[str, Any] = {}

    def done() -> bool:
        state["report"] = report = json.loads(
            project.manage("newsroom_report", "--wire", started["wire"])
        )
        return (
            report["group_count"] == 3
            and report["wire"] == "fetched"
            and report["digests"] >= 1
            and len(report["hooks"]) >= 5
        )

    project.run_until(["manage.py", "qcluster"], "the newsroom's background work", done)
    report = state["report"]
    assert sorted(report["words"].values()) == [5, 10, 15]
    assert report["group_results"] == [5, 10, 15]
    hooks = {(func, group) for func, _, _, group in report["hooks"]}
    assert ("reports.tasks.count_words", "morning") in hooks
    assert ("reports.tasks.digest", None) in hooks
    # The wire service failed once; Q_CLUSTER retry ran it again; the hook saw the success.
    wire_hooks = [h for h in report["hooks"] if h[0] == "reports.tasks.fetch_wire"]
    assert wire_hooks == [["reports.tasks.fetch_wire", True, "fetched", None]]
    assert report["failures"] == 0
    assert report["schedules"]["digest"] == ["I", "reports.tasks.digest"]
    assert report["schedules"]["weekly-digest"] == ["C", "reports.tasks.digest"]

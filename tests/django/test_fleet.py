"""The operator's side, with real worker subprocesses: the worker registry (heartbeats,
graceful stop, lost workers cleaned up by the leader), ``fastq_inspect``,
``fastq_health``, systemd's notify protocol on a real unix datagram socket, and the
worker's own ``--metrics-port``."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import fastq
import pytest
from django.core.management import call_command
from django.utils import timezone
from fastq_django.models import Job, WorkerProcess
from prometheus_client.parser import text_string_to_metric_families
from testapp import tasks
from testapp.models import Execution
from workerproc import HERE

pytestmark = pytest.mark.django_db(transaction=True)


def _wait_for(predicate: Callable[[], object], timeout: float = 90.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"condition not reached: {what}"
        time.sleep(0.05)


def _rows(**filters: object) -> list[WorkerProcess]:
    return list(WorkerProcess.objects.filter(**filters).order_by("kind", "pid"))


def _manage(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    from django.db import connection

    environ = dict(os.environ)
    environ["FASTQ_TEST_DB_NAME"] = str(connection.settings_dict["NAME"])
    environ["DJANGO_SETTINGS_MODULE"] = "testproject.settings"
    environ["PYTHONPATH"] = os.pathsep.join([str(HERE), environ.get("PYTHONPATH", "")])
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, str(HERE / "manage.py"), *args],
        cwd=HERE,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _inspect(sub: str, *args: str) -> object:
    from io import StringIO

    out = StringIO()
    call_command("fastq_inspect", sub, "--json", *args, stdout=out)
    return json.loads(out.getvalue())


# ---- registry -----------------------------------------------------------------------------


def test_prefork_registers_beats_and_marks_stopped(worker):
    w = worker("--processes", "2", "--concurrency", "3", "--lease", "3", "--no-scheduler")
    _wait_for(lambda: len(_rows(state="running")) == 3, what="supervisor and 2 workers")
    sup = _rows(kind="supervisor")[0]
    children = _rows(kind="worker")
    assert sup.pid == w.proc.pid
    assert sup.processes == 2
    assert sup.host == socket.gethostname()
    assert sup.version == fastq.__version__
    assert sup.rss_bytes > 0
    assert {c.supervisor for c in children} == {sup.id}
    for c in children:
        assert c.pid != sup.pid
        assert c.concurrency == 3
        assert "default" in c.queue_list
        assert tasks.add.name in c.task_list
        assert c.rss_bytes > 1_000_000, "a Python process holds more than a megabyte"
        assert c.expires_at > c.last_heartbeat

    results = [tasks.add.delay(i, 1) for i in range(30)]
    tasks.fail.delay("kaput")
    assert [r.get(timeout=60) for r in results] == [i + 1 for i in range(30)]
    # The counters arrive with the heartbeats (every lease/3 = 1 s): no round trip per job.
    _wait_for(
        lambda: (
            sum(c.processed for c in _rows(kind="worker")) == 31
            and sum(c.failed for c in _rows(kind="worker")) == 1
        ),
        what="processed/failed counters",
    )
    first_beat = {c.id: c.last_heartbeat for c in _rows(kind="worker")}
    _wait_for(
        lambda: all(c.last_heartbeat > first_beat[c.id] for c in _rows(kind="worker")),
        what="a later heartbeat",
    )

    w.signal(signal.SIGTERM)
    w.finish(60)
    rows = _rows()
    assert len(rows) == 3
    assert {r.state for r in rows} == {"stopped"}, [(r.kind, r.state) for r in rows]
    assert all(r.stopped_at is not None for r in rows)
    assert sum(r.processed for r in rows if r.kind == "worker") == 31


def test_a_killed_worker_is_shown_lost_and_marked_by_the_leader(worker):
    leader = worker("--processes", "0", "--lease", "2", "--scheduler-lease", "2")
    victim = worker("--processes", "0", "--lease", "2", "--no-scheduler")
    _wait_for(lambda: len(_rows(state="running", kind="worker")) == 2, what="two workers")
    victim_row = WorkerProcess.objects.get(pid=victim.proc.pid)
    victim.kill()
    victim.wait(30)
    # Silent past its lease: shown lost at once by readers, then marked by the leader.
    _wait_for(
        lambda: WorkerProcess.objects.get(pk=victim_row.pk).state == "lost",
        what="the leader marks the row lost",
    )
    data = _inspect("workers")
    shown = {(w["pid"], w["state"]) for w in data}
    assert (victim.proc.pid, "lost") in shown
    assert (leader.proc.pid, "running") in shown
    leader.signal(signal.SIGTERM)
    leader.finish(60)
    assert WorkerProcess.objects.get(pid=leader.proc.pid).state == "stopped"


# ---- inspect ------------------------------------------------------------------------------


def test_inspect_active_and_workers_see_a_running_job(worker):
    w = worker("--processes", "0", "--concurrency", "2", "--lease", "3")
    r = tasks.record.delay("long", 20)
    _wait_for(lambda: Execution.objects.filter(key="long").exists(), what="job started")
    _wait_for(
        lambda: Job.objects.filter(pk=r.id, started_at__isnull=False).exists(),
        what="start recorded",
    )
    active = _inspect("active")
    assert active["total"] == 1
    (job,) = active["jobs"]
    assert job["id"] == str(r.id)
    assert job["task"] == tasks.record.name
    assert job["worker"] == f"{socket.gethostname()}:{w.proc.pid}"
    assert job["runtime"] >= 0
    workers = _inspect("workers")
    assert [x["pid"] for x in workers if x["kind"] == "worker"] == [w.proc.pid]
    reg = _inspect("registered")
    assert tasks.record.name in reg["workers"][0]["tasks"]
    assert tasks.record.name not in reg["not_served"]
    w.signal(signal.SIGINT)
    w.signal(signal.SIGINT)  # a second Ctrl-C: the long job goes back, unspent
    w.wait(60)


def test_inspect_reads_states_queues_and_schedules():
    now = timezone.now()
    later = now + timezone.timedelta(hours=1)
    for i in range(5):
        Job.objects.create(
            task=tasks.add.name, queue="default", run_at=now - timezone.timedelta(seconds=10 + i)
        )
    for i in range(3):
        Job.objects.create(
            task=tasks.add.name, queue="other", run_at=later + timezone.timedelta(seconds=i)
        )
    Job.objects.create(
        task=tasks.add.name,
        state="running",
        worker="h:1",
        lease_token=1,
        lease_expires_at=later,
        started_at=now - timezone.timedelta(seconds=5),
    )
    Job.objects.create(
        task=tasks.add.name, state="running", worker="h:1", lease_token=1, lease_expires_at=later
    )
    assert _inspect("reserved")["total"] == 1
    assert _inspect("active")["total"] == 1
    scheduled = _inspect("scheduled", "--limit", "2")
    assert scheduled["total"] == 3
    assert len(scheduled["jobs"]) == 2
    assert scheduled["jobs"][0]["run_at"] < scheduled["jobs"][1]["run_at"]
    queues = {q["queue"]: q for q in _inspect("queues")}
    assert queues["default"]["depth"] == 5
    assert queues["default"]["oldest_wait"] >= 14
    assert queues["default"]["running"] == 1
    assert queues["default"]["reserved"] == 1
    assert queues["other"]["depth"] == 0
    assert queues["other"]["scheduled"] == 3
    # The human tables carry the same numbers.
    from io import StringIO

    out = StringIO()
    call_command("fastq_inspect", "queues", stdout=out)
    line = next(x for x in out.getvalue().splitlines() if x.startswith("default "))
    assert line.split()[1] == "5"


def test_inspect_queues_shows_pauses_and_limits():
    from io import StringIO

    from fastq_django import queues as controls

    controls.pause("other", by="test")
    controls.set_concurrency("default", 3, by="test")
    shown = {q["queue"]: q for q in _inspect("queues")}
    assert (shown["other"]["paused"], shown["other"]["limit"]) == (True, None)
    assert (shown["default"]["paused"], shown["default"]["limit"]) == (False, 3)
    out = StringIO()
    call_command("fastq_inspect", "queues", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].split()[-2:] == ["paused", "limit"]
    assert next(x for x in lines if x.startswith("other ")).split()[-2:] == ["paused", "-"]
    assert next(x for x in lines if x.startswith("default ")).split()[-2:] == ["-", "3"]


def test_inspect_stats_match_the_rows():
    now = timezone.now()
    runs = [0.1, 0.2, 0.3, 0.4, 2.0]
    for i, run in enumerate(runs):
        started = now - timezone.timedelta(seconds=30 + i)
        Job.objects.create(
            task=tasks.add.name,
            state="failed" if i == 0 else "succeeded",
            run_at=started - timezone.timedelta(seconds=1 + i),
            started_at=started,
            finished_at=started + timezone.timedelta(seconds=run),
        )
    old = now - timezone.timedelta(minutes=10)
    Job.objects.create(
        task=tasks.add.name,
        state="succeeded",
        run_at=old,
        started_at=old,
        finished_at=old + timezone.timedelta(seconds=1),
    )
    (row,) = _inspect("stats")
    assert (row["queue"], row["task"]) == ("default", tasks.add.name)
    one, fifteen = row["windows"]["1"], row["windows"]["15"]
    assert one["finished"] == 5
    assert fifteen["finished"] == 6
    assert one["failed"] == 1
    assert one["failure_rate"] == pytest.approx(0.2)
    assert one["per_second"] == pytest.approx(5 / 60)
    assert one["run_p50"] == pytest.approx(0.3, abs=1e-3)
    # percentile_cont: rank (5 - 1) * 0.95 = 3.8 between 0.4 and 2.0.
    assert one["run_p95"] == pytest.approx(0.4 + (2.0 - 0.4) * 0.8, abs=1e-3)
    assert one["wait_p50"] == pytest.approx(3.0, abs=1e-3)


# ---- health -------------------------------------------------------------------------------


def test_health_exit_codes_and_one_line(worker):
    down = _manage("fastq_health", "--queue", "default")
    assert down.returncode == 1
    assert down.stderr.strip().count("\n") == 0
    assert "queue 'default' has no live worker" in down.stderr

    w = worker("--processes", "0", "--queues", "default", "--lease", "3", "--no-scheduler")
    _wait_for(lambda: _rows(state="running", kind="worker"), what="worker registered")
    up = _manage("fastq_health", "--queue", "default", "--max-age", "30")
    assert up.returncode == 0, up.stderr
    assert up.stdout.startswith("fastq healthy: 1 queue(s) (default), 1 live worker(s)")
    assert up.stdout.strip().count("\n") == 0

    missing = _manage("fastq_health", "--queue", "default", "--queue", "nobody")
    assert missing.returncode == 1
    assert "queue 'nobody' has no live worker" in missing.stderr

    # Depth and wait: jobs for another queue this worker does not take.
    for _ in range(3):
        tasks.on_other_queue.apply_async(eta=timezone.now() - timezone.timedelta(minutes=5))
    w2 = worker("--processes", "0", "--queues", "mail", "--lease", "3", "--no-scheduler")
    _wait_for(lambda: len(_rows(state="running", kind="worker")) == 2, what="second worker")
    deep = _manage("fastq_health", "--queue", "default", "--queue", "other", "--max-depth", "3")
    assert deep.returncode == 1
    assert "queue 'other' has no live worker" in deep.stderr
    assert "queue 'other' has 3 jobs due (max 3)" in deep.stderr
    slow = _manage("fastq_health", "--queue", "default", "--queue", "other", "--max-wait", "60")
    assert "queue 'other' oldest job has waited" in slow.stderr
    ok = _manage("fastq_health", "--queue", "default", "--max-depth", "100", "--max-wait", "60")
    assert ok.returncode == 0, ok.stderr
    for proc in (w, w2):
        proc.signal(signal.SIGTERM)
        proc.finish(60)
    after = _manage("fastq_health", "--queue", "default")
    assert after.returncode == 1, "a stopped worker is not a live one"


def test_health_rejects_bad_arguments():
    bad = _manage("fastq_health", "--max-age", "-1")
    assert bad.returncode != 0
    assert "--max-age" in bad.stderr
    nul = _manage("fastq_health", "--queue", "a\udcff")
    assert nul.returncode == 1
    assert "Traceback" not in nul.stderr


# ---- systemd ------------------------------------------------------------------------------


@pytest.mark.parametrize("processes", ["0", "2"])
def test_systemd_notify_ready_watchdog_stopping(worker, processes):
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(60)
        try:
            w = worker(
                "--processes",
                processes,
                "--no-scheduler",
                env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"},
            )
            messages: list[str] = []

            def receive_until(word: str) -> None:
                while not any(word in m for m in messages):
                    messages.append(sock.recv(4096).decode())

            receive_until("READY=1")
            ready = next(m for m in messages if "READY=1" in m)
            assert f"MAINPID={w.proc.pid}" in ready
            if processes == "0":
                # Ready only once registered: the row is there.
                assert WorkerProcess.objects.filter(pid=w.proc.pid, state="running").exists()
            before = len(messages)
            while sum(1 for m in messages[before:] if m == "WATCHDOG=1") < 3:
                messages.append(sock.recv(4096).decode())
            w.signal(signal.SIGTERM)
            receive_until("STOPPING=1")
            w.finish(60)
        finally:
            sock.close()


# ---- worker process metrics ---------------------------------------------------------------


def _scrape(port: int) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = resp.read().decode()
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def test_metrics_port_serves_the_workers_process_metrics(worker):
    w = worker(
        "--processes",
        "2",
        "--concurrency",
        "2",
        "--no-scheduler",
        "--metrics-port",
        "0",
        "--metrics-address",
        "127.0.0.1",
        "--loglevel",
        "info",  # the test project logs fastq at WARNING; the port is INFO
    )
    _wait_for(lambda: "serving worker metrics on" in w.output(), what="metrics port logged")
    port = int(
        re.search(r"serving worker metrics on http://127\.0\.0\.1:(\d+)/metrics", w.output()).group(
            1
        )
    )
    m = _scrape(port)
    assert m["fastq_worker_processes"][()] == 2

    n = 40
    results = [tasks.record.delay(f"m{i}", 0.01) for i in range(n)]
    assert len([r.get(timeout=60) for r in results]) == n
    _wait_for(lambda: _scrape(port)["fastq_worker_outcomes_total"][()] >= n, what="outcomes")
    m = _scrape(port)
    succeeded = Job.objects.filter(state="succeeded").count()
    assert succeeded == n
    assert m["fastq_worker_outcomes_total"][()] == succeeded
    assert m["fastq_worker_executed_jobs_total"][()] == n
    assert m["fastq_worker_claimed_jobs_total"][()] == n
    assert m["fastq_worker_claim_batch_size_count"][()] >= 1
    assert m["fastq_worker_claim_batch_size_sum"][()] == n
    assert m["fastq_worker_job_run_seconds_count"][()] == n
    # Each job sleeps 10 ms: at least 0.4 s of run time, and executors were that busy.
    assert m["fastq_worker_job_run_seconds_sum"][()] >= n * 0.01
    assert m["fastq_worker_executor_busy_seconds_total"][()] >= n * 0.01
    assert m["fastq_worker_job_wait_seconds_count"][()] == n
    assert m["fastq_worker_flush_seconds_count"][()] == m["fastq_worker_flushes_total"][()]
    buckets = m["fastq_worker_job_run_seconds_bucket"]
    assert buckets[(("le", "+Inf"),)] == n
    assert buckets[(("le", "0.005"),)] == 0, "no 10 ms job ran under 5 ms"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/nope", timeout=10)
    assert err.value.code == 404
    err.value.close()
    w.signal(signal.SIGTERM)
    w.finish(60)


def test_metrics_port_refused_clearly():
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        out = _manage(
            "fastq_worker",
            "--processes",
            "1",
            "--no-scheduler",
            "--metrics-port",
            str(port),
            "--metrics-address",
            "127.0.0.1",
        )
    finally:
        busy.close()
    assert out.returncode == 1
    assert f"cannot serve metrics on 127.0.0.1:{port}" in out.stderr
    assert "Traceback" not in out.stderr
    inproc = _manage("fastq_worker", "--processes", "0", "--metrics-port", "9999")
    assert inproc.returncode == 1
    assert "use --processes 1 or more" in inproc.stderr

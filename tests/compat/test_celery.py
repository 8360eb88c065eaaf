"""fastq.compat.celery on a real database: a Celery-style project (compatproject) whose
tasks run on fastq_worker subprocesses and on ``python -m fastq.compat.celery``."""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import fastq
import pytest
from compatapp import tasks
from compatproject.celery import app
from conftest import burst
from fastq.compat.celery import Celery, shared_task, states
from fastq.compat.celery.__main__ import worker_argv
from fastq.compat.celery.exceptions import ImproperlyConfigured, MaxRetriesExceededError
from fastq.compat.celery.result import AsyncResult, EagerResult
from fastq.compat.celery.schedules import crontab, schedule
from fastq_django.models import Job, Schedule

pytestmark = pytest.mark.django_db(transaction=True)


def test_settings_from_the_celery_namespace():
    assert app.conf.timezone == "Europe/Berlin"
    assert app.conf.task_default_queue == "celery"
    assert app.conf["worker_max_tasks_per_child"] == 500
    assert app.conf.task_always_eager is False  # Celery's default
    # Routes: a glob, an exact name given as a string, a task's own queue= wins.
    assert tasks.route_me.queue == "routed"
    assert tasks.exact_route.queue == "exact"
    assert tasks.route_own.queue == "own"
    assert tasks.add.queue == "celery"
    # CELERY_TASK_SOFT_TIME_LIMIT fills tasks without their own; theirs wins.
    assert tasks.add.soft_time_limit == 120
    assert tasks.too_slow.soft_time_limit == 0.5
    assert tasks.add.name == "compatapp.tasks.add"
    assert "compatapp.tasks.add" in app.tasks


def test_meaningless_settings_warn_once_and_pickle_is_refused(caplog):
    other = Celery("other", set_as_current=False)
    with caplog.at_level(logging.WARNING, logger="fastq.compat.celery"):
        other.config_from_object(
            {
                "broker_url": "amqp://",
                "result_backend": "redis://",
                "task_serializer": "yaml",
                "worker_concurrency": 2,
                "no_such_setting": 1,
            },
            force=True,
        )
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1, warnings
    for name in ("broker_url", "result_backend", "task_serializer", "no_such_setting"):
        assert name in warnings[0]
    assert "worker_concurrency" not in warnings[0]
    with pytest.raises(ImproperlyConfigured, match="pickle is refused"):
        other.conf.task_serializer = "pickle"
    with pytest.raises(ImproperlyConfigured, match="pickle"):
        other.config_from_object({"accept_content": ["json", "pickle"]}, force=True)
        other.conf.get("accept_content")
    with pytest.raises(ImproperlyConfigured, match="pickle"):
        tasks.add.apply_async((1, 2), serializer="pickle")

    with pytest.raises(ImproperlyConfigured, match="pickle"):

        @shared_task(serializer="pickle")
        def pickled() -> None: ...


def test_crontab_and_beat_schedule_become_fastq_schedules(run):
    assert crontab(minute="*/15", hour="8-18", day_of_week="mon-fri").expression == (
        "*/15 8-18 * * 1-5"
    )
    assert crontab(0, 0, day_of_month=1, month_of_year="jan,jul").expression == "0 0 1 1,7 *"
    with pytest.raises(ValueError, match="crontab"):
        crontab(minute=61)
    assert schedule(timedelta(minutes=5)).seconds == 300
    # A worker that starts syncs CELERY_BEAT_SCHEDULE into the schedules table.
    proc = run(["manage.py", "fastq_worker", "--processes", "0"])
    deadline = time.monotonic() + 60
    while not Schedule.objects.filter(name="every-10s").exists():
        assert time.monotonic() < deadline, proc.output()
        time.sleep(0.1)
    proc.stop()
    rows = {s.name: s for s in Schedule.objects.all()}
    assert rows["nightly"].cron == "30 2 * * *"
    assert rows["nightly"].timezone == "Europe/Berlin"
    assert json.loads(rows["nightly"].args) == [1, 2]
    assert rows["every-10s"].every == 10 and rows["every-10s"].queue == "beat"
    assert rows["every-hour"].every == 3600
    assert json.loads(rows["every-hour"].kwargs) == {"x": 1, "y": 1}
    # CELERY_RESULT_EXPIRES: Celery's daily clean-up at 04:00.
    assert rows["celery.backend_cleanup"].cron == "0 4 * * *"


def test_apply_runs_here_with_retries_and_a_request():
    r = tasks.flaky.apply((2,))
    assert isinstance(r, EagerResult)
    assert r.state == states.SUCCESS and r.successful()
    seen = r.get()
    assert seen["retries"] == 2 and seen["is_eager"] is True and seen["args"] == [2]
    assert seen["current"] == "compatapp.tasks.flaky"
    failed = tasks.boom.apply()
    assert failed.state == states.FAILURE
    assert isinstance(failed.result, ValueError)
    with pytest.raises(ValueError, match="boom"):
        failed.get()
    assert failed.get(propagate=False).args == ("boom",)
    with pytest.raises(ValueError, match="boom"):
        tasks.boom.apply(throw=True)
    # A direct call is a function call.
    assert tasks.add(2, 3) == 5


def test_always_eager(settings):
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    try:
        r = tasks.add.delay(4, 5)
        assert isinstance(r, EagerResult) and r.get() == 9
        with pytest.raises(ValueError):
            tasks.boom.delay()
        assert not Job.objects.exists()
    finally:
        app.conf.task_always_eager = False
        app.conf.task_eager_propagates = False


def test_worker_runs_celery_tasks_with_celery_states(run):
    ok = tasks.flaky.delay(2)
    failing = tasks.boom.delay()
    backoff = tasks.always_down.delay()
    limited = tasks.retry_with_limit.delay()
    ignored = tasks.ignored.delay()
    routed = tasks.route_me.delay()
    revoked = tasks.add.apply_async((1, 1), countdown=3600)
    assert isinstance(ok, AsyncResult)
    assert ok.state == states.PENDING and not ok.ready()
    assert AsyncResult(str(uuid.uuid4())).state == states.PENDING  # Celery: unknown is PENDING
    revoked.revoke()
    assert revoked.state == states.REVOKED

    worker = run(["manage.py", "fastq_worker", "--queues", "celery,routed", "--processes", "0"])
    for r in (ok, failing, backoff, limited, ignored, routed):
        r.get(timeout=120, propagate=False)
    worker.stop()

    seen = ok.get(timeout=30)
    assert ok.state == states.SUCCESS and ok.successful()
    assert seen["retries"] == 2 and seen["id"] == ok.id and seen["is_eager"] is False
    assert seen["queue"] == "celery" and seen["args"] == [2]
    assert seen["hostname"] and ":" in seen["hostname"]
    assert ok.retries == 2 and ok.name == "compatapp.tasks.flaky"
    assert ok.date_done is not None and ok.worker == seen["hostname"]

    assert failing.state == states.FAILURE and failing.failed()
    assert isinstance(failing.result, ValueError) and isinstance(failing.info, ValueError)
    assert "boom" in failing.traceback
    with pytest.raises(ValueError, match="boom"):
        failing.get(timeout=5)
    assert isinstance(failing.get(timeout=5, propagate=False), ValueError)

    # autoretry_for with retry_backoff: 3 attempts, then the last ConnectionError.
    assert backoff.state == states.FAILURE
    assert Job.objects.get(pk=backoff.id).attempts == 3
    with pytest.raises(ConnectionError, match="provider down"):
        backoff.get(timeout=5)
    # self.retry(max_retries=1) gives up after one retry with the exception it was given.
    assert Job.objects.get(pk=limited.id).attempts == 2
    with pytest.raises(KeyError):
        limited.get(timeout=5)

    assert ignored.state == states.SUCCESS and ignored.get(timeout=5) is None
    assert routed.get(timeout=5) == "routed" and routed.queue == "routed"
    with pytest.raises(fastq.TaskFailed) as info:
        revoked.get(timeout=5)
    assert info.value.type == "fastq.Cancelled"
    revoked.forget()
    ok.forget()
    assert not Job.objects.filter(pk__in=[ok.id, revoked.id]).exists()


def test_retry_state_between_attempts(run):
    r = tasks.retry_later.delay()
    burst(run, "--processes", "0")
    # One attempt failed and asked for another in an hour: RETRY, with its exception.
    assert r.state == states.RETRY and not r.ready()
    assert isinstance(r.result, OSError) and "an hour" in str(r.info)
    assert Job.objects.get(pk=r.id).run_at > datetime.now(UTC) + timedelta(minutes=50)


def test_time_limits_and_max_retries_exceeded(run):
    soft = tasks.too_slow.delay()
    burst(run, "--processes", "1")
    assert soft.get(timeout=10) == "soft limit seen"
    with pytest.raises(MaxRetriesExceededError):
        tasks.flaky.retry()  # outside a job
    assert tasks.flaky.request.called_directly


def test_send_task_by_name_and_task_id(run):
    by_name = app.send_task("compatapp.tasks.add", args=(20, 22))
    fixed = str(uuid.uuid4())
    own_id = tasks.add.apply_async((1, 2), task_id=fixed)
    assert own_id.id == fixed
    unknown = app.send_task("nobody.knows.this", args=(1,), queue="celery")
    burst(run, "--processes", "0")
    assert by_name.get(timeout=5) == 42
    assert AsyncResult(fixed).get(timeout=5) == 3
    assert unknown.state == states.FAILURE
    with pytest.raises(fastq.TaskFailed, match="UnknownTask"):
        unknown.get(timeout=5)


def test_inspect_and_revoke_while_a_worker_runs(run, tmp_path: Path):
    gate = str(tmp_path / "gate")
    long = tasks.wait_for_file.delay(gate)
    later = tasks.add.apply_async((1, 2), countdown=3600)
    worker = run(
        [
            "manage.py",
            "fastq_worker",
            "--processes",
            "1",
            "--concurrency",
            "2",
            "--queues",
            "celery",
        ]
    )
    deadline = time.monotonic() + 60
    while not Path(gate + ".started").exists():
        assert time.monotonic() < deadline, worker.output()
        time.sleep(0.05)
    while long.state != states.STARTED:
        assert time.monotonic() < deadline, worker.output()
        time.sleep(0.05)
    i = app.control.inspect()
    active = i.active()
    assert active is not None and len(active) == 1
    ((name, running),) = active.items()
    pid = int(Path(gate + ".started").read_text())
    assert name.endswith(f":{pid}")
    assert [t["id"] for t in running] == [long.id]
    assert running[0]["name"] == "compatapp.tasks.wait_for_file"
    assert running[0]["args"] == [gate]
    assert running[0]["delivery_info"]["routing_key"] == "celery"
    assert running[0]["worker_pid"] == pid and running[0]["time_start"] > 0
    assert i.ping() == {name: {"ok": "pong"}}
    assert "compatapp.tasks.add" in i.registered()[name]
    stats = i.stats()[name]
    assert stats["pid"] == pid and stats["pool"]["max-concurrency"] == 2
    assert stats["uptime"] >= 0 and sorted(stats["queues"]) == ["celery"]
    assert isinstance(stats["total"], dict) and stats["rss_bytes"] > 0
    scheduled = i.scheduled()
    # Due later, held by no worker: under the database's key; the worker holds none.
    assert scheduled[name] == []
    (key,) = set(scheduled) - {name}
    assert key.startswith("fastq@")
    assert [e["request"]["id"] for e in scheduled[key]] == [later.id]
    assert i.reserved() == {name: []}
    assert i.active_queues() == {name: [{"name": "celery", "routing_key": "celery"}]}
    assert app.control.inspect(destination=["nobody:1"]).active() is None

    # The command line reads the same.
    out = run(["-m", "fastq.compat.celery", "-A", "compatproject", "inspect", "active"]).finish()
    assert f"->  {name}: OK" in out and long.id in out
    out = run(
        ["-m", "fastq.compat.celery", "-A", "compatproject", "inspect", "ping", "--json"]
    ).finish()
    assert json.loads(out.strip().splitlines()[-1]) == {name: {"ok": "pong"}}

    app.control.revoke(later.id)
    assert later.state == states.REVOKED
    Path(gate).write_text("go")
    assert long.get(timeout=60) == "released"
    worker.stop()


def test_command_line_worker_maps_onto_fastq_worker(run):
    r = tasks.add.delay(2, 2)
    routed = tasks.route_me.delay()
    out = run(
        [
            "-m",
            "fastq.compat.celery",
            "-A",
            "compatproject",
            "worker",
            "-l",
            "info",
            "-Q",
            "celery,routed",
            "-c",
            "2",
            "--max-tasks-per-child",
            "1000",
        ],
    )
    assert r.get(timeout=60) == 4 and routed.get(timeout=60) == "routed"
    log = out.stop()
    assert "queues celery,routed, 2 process(es) x concurrency 1" in log

    # CELERY_WORKER_* settings fill what the command line leaves out.
    class Opts:
        loglevel = "info"
        queues = ""
        concurrency = 3
        pool = None
        prefetch_multiplier = None
        max_tasks_per_child = None
        max_memory_per_child = None

    argv = worker_argv(app, Opts())
    assert argv[argv.index("--loglevel") + 1] == "INFO"
    Opts.loglevel = "warn"  # Celery's spelling
    assert worker_argv(app, Opts())[1] == "WARNING"
    assert argv[argv.index("--processes") + 1] == "3"
    assert argv[argv.index("--prefetch") + 1] == "2"
    assert argv[argv.index("--max-tasks-per-child") + 1] == "500"
    assert argv[argv.index("--max-memory-per-child") + 1] == "293"  # 300000 KiB in MB


def test_beat_command_is_a_no_op(run):
    beat = run(["-m", "fastq.compat.celery", "-A", "compatproject", "beat"])
    deadline = time.monotonic() + 60
    while "not a separate process" not in beat.output():
        assert time.monotonic() < deadline, beat.output()
        assert beat.proc.poll() is None, beat.output()
        time.sleep(0.1)
    assert "scheduler" in beat.stop()


def test_result_expires_cleanup_deletes_old_finished_jobs(run):
    old = tasks.add.delay(1, 1)
    fresh = tasks.add.delay(2, 2)
    waiting = tasks.add.apply_async((3, 3), countdown=3600)
    burst(run, "--processes", "0")
    Job.objects.filter(pk=old.id).update(finished_at=datetime.now(UTC) - timedelta(days=4))
    cleanup = fastq.registry["celery.backend_cleanup"].delay()
    burst(run, "--processes", "0")
    assert cleanup.get(timeout=5) == 1
    assert not Job.objects.filter(pk=old.id).exists()
    assert Job.objects.filter(pk__in=[fresh.id, waiting.id]).count() == 2


def test_base_class_handlers_run_in_the_worker(run, tmp_path: Path):
    log = tmp_path / "handlers.log"
    ok = tasks.audited.delay(False)
    bad = tasks.audited.delay(True)
    worker = run(
        ["manage.py", "fastq_worker", "--processes", "0"], env={"COMPAT_HANDLER_LOG": str(log)}
    )
    ok.get(timeout=60)
    bad.get(timeout=60, propagate=False)
    worker.stop()
    lines = log.read_text().splitlines()
    assert f"success {ok.id} fine" in lines
    assert f"after_return {ok.id} SUCCESS" in lines
    assert f"retry {bad.id} LookupError" in lines
    assert f"failure {bad.id} LookupError True" in lines
    assert f"after_return {bad.id} FAILURE" in lines
    assert bad.state == states.FAILURE


def test_status_and_purge_commands(run):
    queued = tasks.add.delay(1, 2)
    out = run(["-m", "fastq.compat.celery", "-A", "compatproject", "status"])
    code, text = out.wait()
    assert code == 69 and "No nodes replied" in text  # no worker holds or finished a job
    refused = run(["-m", "fastq.compat.celery", "-A", "compatproject", "purge"])
    assert refused.wait()[0] == 1
    assert (
        "Purged 1 messages."
        in run(["-m", "fastq.compat.celery", "-A", "compatproject", "purge", "-f"]).finish()
    )
    assert not Job.objects.filter(pk=queued.id).exists()


@pytest.mark.parametrize("name", ["", "a\x00b", "x" * 256, "\udcff", None])
def test_send_task_refuses_hostile_names(name):
    with pytest.raises(ValueError, match="send_task"):
        app.send_task(name, args=(1,))
    assert not Job.objects.exists()


def test_hostile_ids_read_as_pending():
    for bad in ("", "\x00", "x" * 10_000, "\udcff", "not-a-uuid"):
        r = AsyncResult(bad)
        assert r.state == states.PENDING and r.result is None and not r.ready()


def test_system_check_names_a_beat_entry_with_an_unknown_task():
    from django.core import checks

    before = app.conf.beat_schedule
    app.conf.beat_schedule = {
        **before,
        "typo": {"task": "compatapp.tasks.ad", "schedule": 60.0},
    }
    try:
        errors = [e for e in checks.run_checks() if e.id == "fastq.E003"]
    finally:
        app.conf.beat_schedule = before
    assert len(errors) == 1
    assert "'typo' (CELERY_BEAT_SCHEDULE)" in errors[0].msg
    assert "did you mean 'compatapp.tasks.add'" in errors[0].msg


def test_task_defaults_from_settings_and_rate_limits():
    other = Celery("defaults", set_as_current=False)
    other.conf.update(
        task_default_rate_limit=5,
        task_default_priority=3,
        task_time_limit=30,
        task_default_queue="low",
    )

    def probe() -> int:
        return 1

    t = other.task(name="compat.tests.defaults_probe")(probe)
    assert (t.rate_limit, t.rate_interval) == ("5/s", 0.2)  # a number: tasks per second
    assert (t.priority, t.time_limit, t.queue) == (3, 30.0, "low")
    own = other.task(name="compat.tests.own_probe", rate_limit="10/m", queue="q", priority=1)(probe)
    assert (own.rate_interval, own.queue, own.priority) == (6.0, "q", 1)
    with pytest.raises(TypeError, match="unknown option"):
        other.task(name="compat.tests.bad_probe", no_such_option=1)(probe)


def test_inspect_reads_the_worker_registry_idle_workers_included(run):
    """An idle worker answers (it holds no job and finished none): the registry, not the
    jobs, says who is there; a stopped one no longer answers."""
    worker = run(["manage.py", "fastq_worker", "--processes", "2", "--queues", "celery,beat"])
    i = app.control.inspect()
    deadline = time.monotonic() + 60
    while len(i.ping() or {}) < 2:
        assert time.monotonic() < deadline, worker.output()
        time.sleep(0.1)
    names = sorted(i.ping())
    assert i.active() == {n: [] for n in names}
    assert i.reserved() == {n: [] for n in names}
    queues = i.active_queues()
    assert {n: sorted(q["name"] for q in qs) for n, qs in queues.items()} == {
        n: ["beat", "celery"] for n in names
    }
    stats = i.stats()
    assert {s["supervisor"] is not None for s in stats.values()} == {True}
    assert len({s["pid"] for s in stats.values()}) == 2
    assert app.control.inspect(destination=[names[0]]).ping() == {names[0]: {"ok": "pong"}}
    # Jobs done by one process count in its stats' total, by task.
    done = tasks.add.delay(2, 3)
    assert done.get(timeout=60) == 5
    totals = {n: s["total"] for n, s in i.stats().items()}
    assert totals[done.worker] == {"compatapp.tasks.add": 1}
    worker.stop()
    assert i.ping() is None and i.active() is None and i.stats() is None


def test_update_state_reports_a_custom_state_until_the_job_ends(run, tmp_path: Path):
    gate = str(tmp_path / "gate")
    r = tasks.progress.delay(gate)
    assert r.state == states.PENDING
    worker = run(["manage.py", "fastq_worker", "--processes", "0", "--queues", "celery"])
    deadline = time.monotonic() + 60
    while r.state != "PROGRESS":
        assert time.monotonic() < deadline, worker.output()
        time.sleep(0.05)
    assert r.info == {"step": 1, "of": 2} and r.result == {"step": 1, "of": 2}
    assert not r.ready()
    Path(gate).write_text("go")
    assert r.get(timeout=60) == {"step": 2, "of": 2}
    assert r.state == states.SUCCESS and r.info == {"step": 2, "of": 2}
    worker.stop()


def test_update_state_of_another_job_and_its_checks():
    queued = tasks.add.apply_async((1, 1), countdown=3600)
    tasks.add.update_state(task_id=queued.id, state="WAITING", meta=[1, "x"])
    assert queued.state == "WAITING" and queued.info == [1, "x"]
    # Outside a job and without a task_id there is nothing to store (Celery: no result).
    tasks.add.update_state(state="IGNORED_HERE", meta=None)
    with pytest.raises(ValueError, match="state must be a name"):
        tasks.add.update_state(task_id=queued.id, state="", meta=None)
    with pytest.raises(ValueError, match="state must be a name"):
        tasks.add.update_state(task_id=queued.id, state="S" * 51, meta=None)
    with pytest.raises((TypeError, ValueError)):
        tasks.add.update_state(task_id=queued.id, state="X", meta=object())
    with pytest.raises((TypeError, ValueError)):
        tasks.add.update_state(task_id=queued.id, state="X", meta=float("nan"))
    with pytest.raises(ValueError, match="MAX_PAYLOAD_BYTES"):
        tasks.add.update_state(task_id=queued.id, state="X", meta="x" * (2 << 20))
    assert queued.state == "WAITING"
    # An id with no job: nothing written, nothing raised (Celery stores it anyway).
    tasks.add.update_state(task_id=str(uuid.uuid4()), state="X", meta=None)
    queued.revoke()
    assert queued.state == states.REVOKED  # the job's own end takes over


def test_purge_cancels_the_workflows_it_would_cut_and_forget_keeps_what_they_need(run):
    from fastq.compat.celery import chain

    plain = tasks.add.delay(1, 2)
    other = tasks.add.apply_async((3, 4), queue="routed")
    flow = chain(tasks.add.s(1, 2), tasks.add.s(10)).apply_async()
    steps = list(Job.objects.filter(workflow_id__isnull=False).values_list("state", flat=True))
    assert sorted(steps) == ["queued", "waiting"]
    # One queue: the plain job of "celery" goes; the chain (its first step queued there)
    # is cancelled whole, so its waiting step does not wait for ever.
    assert app.control.purge() == 4  # the two plain jobs and the chain's two steps
    assert not Job.objects.filter(pk__in=[plain.id, other.id]).exists()
    assert set(Job.objects.values_list("state", flat=True)) == {"cancelled"}
    assert AsyncResult(flow.id).state == states.REVOKED
    # Nothing left queued: a second purge finds nothing.
    assert app.control.purge() == 0

    # forget(): a finished step of a workflow that still has a step to run stays.
    flow = chain(tasks.add.s(5, 5).set(queue="routed"), tasks.add.s(1)).apply_async()
    parent = Job.objects.get(workflow_id__isnull=False, state="queued", queue="routed")
    burst(run, "--processes", "0", "--queues", "routed")
    assert Job.objects.get(pk=parent.id).state == "succeeded"
    assert Job.objects.get(pk=flow.id).state == "queued"  # in the default queue
    AsyncResult(str(parent.id)).forget()
    assert Job.objects.filter(pk=parent.id).exists(), "its child has still to read it"
    burst(run, "--processes", "0")
    assert flow.get(timeout=10) == 11
    AsyncResult(str(parent.id)).forget()
    assert not Job.objects.filter(pk=parent.id).exists(), "the workflow has ended"
    assert Job.objects.filter(pk=flow.id).exists()

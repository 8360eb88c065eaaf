"""Queue controls from Django: ``fastq_queues``, FASTQ["QUEUES"] concurrency, the queue
admin, and what a real worker does with a paused queue. The fleet-wide bounds under
load are in tests/integration/reliability/test_pause_and_limits.py."""

from __future__ import annotations

import json
import time

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from django.test import Client, override_settings
from django.urls import reverse
from fastq import conf
from fastq_django import queues
from fastq_django.models import Job, Queue
from testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)


def _run(*args: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command("fastq_queues", *args, stdout=out)
    return out.getvalue()


def test_list_shows_depth_running_and_controls() -> None:
    now_jobs = [tasks.noop.delay() for _ in range(3)]
    tasks.noop.apply_async(countdown=3600)
    Job.objects.filter(pk=now_jobs[0].id).update(state="running")
    _run("pause", "default")
    _run("limit", "other", "7")
    rows = {r["queue"]: r for r in json.loads(_run("list", "--json"))}
    assert rows["default"]["queued"] == 2
    assert rows["default"]["scheduled"] == 1
    assert rows["default"]["running"] == 1
    assert rows["default"]["paused"] is True
    assert rows["default"]["oldest_wait_seconds"] >= 0
    assert rows["other"]["concurrency"] == 7 and rows["other"]["paused"] is False
    text = _run()
    assert "default" in text and "paused" in text and "QUEUED" in text
    _run("resume", "default")
    _run("limit", "other", "none")
    row = Queue.objects.get(name="other")
    assert row.concurrency is None and row.changed_by == "fastq_queues"
    assert Queue.objects.get(name="default").paused is False


def test_a_pause_is_a_row_and_enqueueing_still_works() -> None:
    _run("pause", "default")
    result = tasks.noop.delay()
    assert Job.objects.get(pk=result.id).state == "queued"
    assert Queue.objects.get(name="default").paused
    # Another connection (a restarted process) reads the same row.
    from django.db import connection

    connection.close()
    assert Queue.objects.get(name="default").paused


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("pause", "a\x00b"), "NUL"),
        (("pause", "x" * 101), "at most 100"),
        (("pause", "\ud800"), "lone surrogates"),
        (("limit", "q", "0"), "from 1 to"),
        (("limit", "q", "99999999999999999999"), "from 1 to"),
        (("limit", "q", "-5"), "from 1 to"),
        (("limit", "q", "lots"), "whole number"),
    ],
)
def test_hostile_input_is_a_clear_error(args: tuple[str, ...], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        _run(*args)
    assert not Queue.objects.exists()


def test_queues_setting_is_validated() -> None:
    assert conf.type_problem("QUEUES", ["a", "b"]) is None
    assert conf.type_problem("QUEUES", {"a": {"concurrency": 2}, "b": None, "c": {}}) is None
    for bad in (
        {"a": {"concurrency": 0}},
        {"a": {"concurrency": True}},
        {"a": {"concurrency": 10**7}},
        {"a": {"concurency": 2}},
        {"a": 3},
        {"": {}},
        "default",
    ):
        assert conf.type_problem("QUEUES", bad), bad
    with override_settings(FASTQ={"QUEUES": {"a": {"concurrency": 2}, "b": {}}}):
        from fastq.worker import default_queues

        assert default_queues() == ["a", "b"]


def test_settings_sync_keeps_a_run_time_edit_until_the_setting_changes() -> None:
    with override_settings(FASTQ={"QUEUES": {"mail": {"concurrency": 5}, "default": {}}}):
        assert queues.sync_settings() == ["mail"]
        assert Queue.objects.get(name="mail").concurrency == 5
        assert not Queue.objects.filter(name="default").exists()
        queues.set_concurrency("mail", 2, by="admin")
        assert queues.sync_settings() == []  # unchanged setting: the edit stands
        assert Queue.objects.get(name="mail").concurrency == 2
    with override_settings(FASTQ={"QUEUES": {"mail": {"concurrency": 8}}}):
        assert queues.sync_settings() == ["mail"]  # changed setting: it wins
        assert Queue.objects.get(name="mail").concurrency == 8
    with override_settings(FASTQ={"QUEUES": ["mail"]}):
        assert queues.sync_settings() == ["mail"]  # setting removed: so is its limit
        row = Queue.objects.get(name="mail")
        assert (row.concurrency, row.settings_concurrency) == (None, None)


def test_an_unchanged_setting_costs_a_worker_one_read_and_no_lock() -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with override_settings(FASTQ={"QUEUES": {"mail": {"concurrency": 5}, "default": {}}}):
        assert queues.sync_settings() == ["mail"]
        with CaptureQueriesContext(connection) as ran:
            assert queues.sync_settings() == []
    assert len(ran.captured_queries) == 1, ran.captured_queries
    assert "FOR UPDATE" not in ran.captured_queries[0]["sql"].upper()
    with override_settings(FASTQ={"QUEUES": ["default"]}), CaptureQueriesContext(connection) as ran:
        assert queues.sync_settings() == ["mail"]  # and a change is still written
    assert len(ran.captured_queries) > 1


def test_workers_starting_together_sync_the_settings_once() -> None:
    import threading

    from django.db import connections

    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def start() -> None:
        try:
            barrier.wait()
            queues.sync_settings()
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    with override_settings(
        FASTQ={"QUEUES": {"mail": {"concurrency": 5}, "sms": {"concurrency": 2}}}
    ):
        threads = [threading.Thread(target=start) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors, errors
    assert dict(Queue.objects.values_list("name", "concurrency")) == {"mail": 5, "sms": 2}


def test_a_worker_leaves_a_paused_queue_alone_and_runs_it_once_resumed(worker) -> None:
    _run("pause", "other")
    held = [tasks.on_other_queue.delay() for _ in range(5)]
    ran = [tasks.add.delay(1, i) for i in range(5)]
    w = worker("--processes", "0", "--queues", "default,other")
    deadline = time.monotonic() + 60
    while Job.objects.filter(pk__in=[r.id for r in ran], state="succeeded").count() < 5:
        assert w.proc.poll() is None, w.output()
        assert time.monotonic() < deadline, w.output()
        time.sleep(0.05)
    assert set(Job.objects.filter(pk__in=[r.id for r in held]).values_list("state", flat=True)) == {
        "queued"
    }
    _run("resume", "other")
    deadline = time.monotonic() + 60
    while Job.objects.filter(pk__in=[r.id for r in held], state="succeeded").count() < 5:
        assert w.proc.poll() is None, w.output()
        assert time.monotonic() < deadline, w.output()
        time.sleep(0.05)
    w.signal(15)
    assert w.wait(60)[0] == 0


# ---- the queue admin ---------------------------------------------------------------------

ROLES = ("anonymous", "non_staff", "view_only", "permitted")


def _login(client: Client, role: str) -> None:
    if role == "anonymous":
        return
    user = User.objects.create_user(role, password="pw", is_staff=role != "non_staff")
    perms = Permission.objects.filter(content_type__app_label="fastq_django")
    if role == "non_staff":
        granted = perms
    elif role == "view_only":
        granted = perms.filter(codename__in=["view_queue", "view_job"])
    else:
        granted = perms.filter(codename__in=["view_queue", "change_queue"])
    user.user_permissions.set(granted)
    client.force_login(user)


@pytest.mark.parametrize("role", ROLES)
def test_queue_admin_actions_need_change_queue(role: str) -> None:
    Queue.objects.create(name="mail")
    client = Client()
    _login(client, role)
    url = reverse("admin:fastq_django_queue_changelist")
    page = client.get(url)
    response = client.post(url, {"action": "pause_queues", "_selected_action": ["mail"]})
    paused = Queue.objects.get(name="mail").paused
    if role in ("anonymous", "non_staff"):
        assert page.status_code == 302 and "/login/" in page["Location"]
        assert response.status_code == 302 and "/login/" in response["Location"]
        assert not paused
    elif role == "view_only":
        assert page.status_code == 200
        assert "pause_queues" not in page.content.decode()
        assert not paused
    else:
        assert page.status_code == 200 and "pause_queues" in page.content.decode()
        assert paused
        assert Queue.objects.get(name="mail").changed_by == "permitted"
        client.post(url, {"action": "resume_queues", "_selected_action": ["mail"]})
        assert not Queue.objects.get(name="mail").paused


def test_queue_admin_edits_the_limit_in_the_list() -> None:
    Queue.objects.create(name="mail", concurrency=3)
    client = Client()
    _login(client, "permitted")
    url = reverse("admin:fastq_django_queue_changelist")
    form = {
        "form-TOTAL_FORMS": "1",
        "form-INITIAL_FORMS": "1",
        "form-0-name": "mail",
        "form-0-concurrency": "9",
        "_save": "Save",
    }
    response = client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Queue.objects.get(name="mail").concurrency == 9
    form["form-0-concurrency"] = "0"
    response = client.post(url, form)
    assert response.status_code == 200  # the form shows the error
    assert Queue.objects.get(name="mail").concurrency == 9


def test_a_queue_name_with_a_lone_surrogate_fails_validation() -> None:
    # No HTTP client can send one (UTF-8 has no encoding for it); code can.
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="surrogate"):
        Queue(name="\ud800").full_clean()


@pytest.mark.parametrize("name", ["a\x00b", "x" * 101])
def test_queue_admin_refuses_a_bad_name_with_a_form_error(name: str) -> None:
    client = Client()
    _login(client, "permitted")
    User.objects.get(username="permitted").user_permissions.add(
        Permission.objects.get(codename="add_queue")
    )
    response = client.post(
        reverse("admin:fastq_django_queue_add"), {"name": name, "concurrency": "2"}
    )
    assert response.status_code == 200
    assert "errornote" in response.content.decode()
    assert not Queue.objects.exists()

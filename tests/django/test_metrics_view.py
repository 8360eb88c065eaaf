"""``/fastq/metrics``: who may read it (anonymous, non-staff, view-only staff, permitted
staff, a right and a wrong bearer token), and its numbers, parsed with
prometheus_client's parser, against the database, with a real worker's registry row."""

from __future__ import annotations

import signal
import time

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client, override_settings
from django.utils import timezone
from fastq_django.models import Job, Schedule, WorkerProcess
from prometheus_client.parser import text_string_to_metric_families
from testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/fastq/metrics"
TOKEN = "s3cret-token-\u00e9"  # non-ASCII on purpose: compared as bytes


def _parse(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def _client(role: str) -> Client:
    client = Client()
    if role == "anonymous":
        return client
    user = User.objects.create_user(role, password="pw", is_staff=role != "non_staff")
    fastq_perms = Permission.objects.filter(content_type__app_label="fastq_django")
    if role == "non_staff":
        user.user_permissions.set(fastq_perms)  # every permission but not staff
    elif role == "view_only":
        user.user_permissions.set(
            fastq_perms.filter(codename__startswith="view_").exclude(codename="view_metrics")
        )
    elif role == "permitted":
        user.user_permissions.set(fastq_perms.filter(codename="view_metrics"))
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("role", "status"),
    [("anonymous", 401), ("non_staff", 403), ("view_only", 403), ("permitted", 200)],
)
def test_who_may_read(role, status):
    response = _client(role).get(URL)
    assert response.status_code == status, response.content
    if status == 200:
        assert response["Content-Type"].startswith("text/plain; version=0.0.4")
        assert "fastq_jobs" in response.content.decode()
    else:
        assert b"fastq_jobs" not in response.content
    if status == 401:
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_superuser_may_read():
    user = User.objects.create_superuser("root", password="pw")
    client = Client()
    client.force_login(user)
    assert client.get(URL).status_code == 200


@override_settings(FASTQ={"METRICS_TOKEN": TOKEN})
@pytest.mark.parametrize(
    ("header", "status"),
    [
        (f"Bearer {TOKEN}", 200),
        (f"bearer {TOKEN}", 200),
        ("Bearer wrong", 403),
        (f"Bearer {TOKEN}x", 403),
        ("Basic dXNlcjpwdw==", 403),
        ("Bearer ", 403),
        ("Bearer \x00", 403),
    ],
)
def test_bearer_token(header, status):
    response = Client().get(URL, HTTP_AUTHORIZATION=header.encode().decode("latin-1"))
    assert response.status_code == status


def test_no_token_configured_refuses_any_token():
    assert Client().get(URL, HTTP_AUTHORIZATION="Bearer anything").status_code == 403


@override_settings(FASTQ={"METRICS_TOKEN": TOKEN})
def test_only_get():
    response = Client().post(URL, HTTP_AUTHORIZATION=f"Bearer {TOKEN}".encode().decode("latin-1"))
    assert response.status_code == 405


@override_settings(FASTQ={"METRICS_TOKEN": "t"})
def test_numbers_match_the_database(worker):
    now = timezone.now()
    for i in range(4):
        Job.objects.create(task=tasks.add.name, run_at=now - timezone.timedelta(seconds=20 + i))
    Job.objects.create(task=tasks.on_other_queue.name, queue="other", run_at=now)
    for state in ("succeeded", "succeeded", "failed", "dead"):
        Job.objects.create(task=tasks.add.name, state=state, finished_at=now)
    Job.objects.create(
        task=tasks.record.name,
        state="running",
        lease_token=5,
        lease_expires_at=now + timezone.timedelta(minutes=1),
        started_at=now,
    )
    Schedule.objects.create(
        name="late", task=tasks.add.name, every=60, next_run_at=now - timezone.timedelta(seconds=90)
    )
    Schedule.objects.create(
        name="fine", task=tasks.add.name, every=60, next_run_at=now + timezone.timedelta(seconds=30)
    )
    # A real worker on a queue with nothing to do: its registry row is the live worker.
    w = worker("--processes", "0", "--queues", "idle", "--no-scheduler", "--lease", "3")
    deadline = time.monotonic() + 60
    while not WorkerProcess.objects.filter(state="running").exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    WorkerProcess.objects.create(
        id="gone:1:x",
        kind="worker",
        host="gone",
        pid=1,
        state="running",
        started_at=now,
        last_heartbeat=now - timezone.timedelta(minutes=5),
        expires_at=now - timezone.timedelta(minutes=4),
    )

    response = Client().get(URL, HTTP_AUTHORIZATION="Bearer t")
    assert response.status_code == 200
    m = _parse(response.content.decode())

    for (queue, state), n in {
        (r["queue"], r["state"]): r["n"]
        for r in Job.objects.values("queue", "state").annotate(
            n=__import__("django").db.models.Count("id")
        )
    }.items():
        assert m["fastq_jobs"][(("queue", queue), ("state", state))] == n
    assert m["fastq_queue_depth"][(("queue", "default"),)] == 4
    assert m["fastq_queue_depth"][(("queue", "other"),)] == 1
    assert m["fastq_queue_oldest_wait_seconds"][(("queue", "default"),)] >= 23
    assert m["fastq_queue_running"][(("queue", "default"),)] == 1
    assert (
        m["fastq_task_finished_total"][
            (("queue", "default"), ("state", "succeeded"), ("task", tasks.add.name))
        ]
        == 2
    )
    assert m["fastq_task_failed_total"][(("queue", "default"), ("task", tasks.add.name))] == 2
    assert m["fastq_workers_alive"][(("kind", "worker"),)] == 1
    assert m["fastq_workers_lost"][()] == 1
    assert m["fastq_queue_workers"][(("queue", "idle"),)] == 1
    assert m["fastq_queue_workers"][(("queue", "default"),)] == 0
    assert 0 <= m["fastq_worker_heartbeat_age_seconds"][()] < 60
    assert m["fastq_schedule_lag_seconds"][(("schedule", "late"),)] >= 90
    assert m["fastq_schedule_lag_seconds"][(("schedule", "fine"),)] == 0
    w.signal(signal.SIGTERM)
    w.finish(60)

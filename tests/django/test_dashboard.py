"""The admin dashboard (/admin/fastq_django/dashboard/): who sees what and who may act,
the numbers against the database, the last hour's series, failure groups and the task
page. The browser test is test_dashboard_browser.py."""

from __future__ import annotations

import math
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from fastq_django import queues, stats
from fastq_django.models import Job, Queue, Schedule
from testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)

# Every kind of visitor: the four the admin distinguishes, and a staff user without any
# fastq permission (sees numbers, no arguments, no buttons).
ROLES = ("anonymous", "non_staff", "staff_no_perms", "view_only", "permitted")
SECRET_ARG = "arg-visible-only-with-view-job"


def _login(client: Client, role: str) -> None:
    if role == "anonymous":
        return
    user = User.objects.create_user(role, password="pw", is_staff=role != "non_staff")
    perms = Permission.objects.filter(content_type__app_label="fastq_django")
    granted = {
        "non_staff": perms,
        "staff_no_perms": perms.none(),
        "view_only": perms.filter(codename__in=["view_job", "view_queue", "view_schedule"]),
        "permitted": perms.filter(codename__in=["view_job", "change_job", "change_queue"]),
    }[role]
    user.user_permissions.set(granted)
    client.force_login(user)


def _failed(error_type: str, *, minutes_ago: float = 1, task: str | None = None) -> Job:
    now = timezone.now()
    return Job.objects.create(
        task=task or tasks.fail.name,
        args=f'["{SECRET_ARG}"]',
        state="failed",
        attempts=1,
        max_attempts=1,
        error_type=error_type,
        error=f"boom {SECRET_ARG}",
        run_at=now - timedelta(minutes=minutes_ago, seconds=3),
        started_at=now - timedelta(minutes=minutes_ago, seconds=1),
        finished_at=now - timedelta(minutes=minutes_ago),
    )


def _dashboard_url() -> str:
    return reverse("admin:fastq_django_dashboard_changelist")


def test_the_dashboard_lives_at_its_address_and_the_index_links_to_it() -> None:
    assert _dashboard_url() == "/admin/fastq_django/dashboard/"
    client = Client()
    _login(client, "staff_no_perms")
    index = client.get(reverse("admin:index")).content.decode()
    assert 'href="/admin/fastq_django/dashboard/"' in index


@pytest.mark.parametrize("role", ROLES)
def test_who_sees_what_and_who_may_act(role: str) -> None:
    failed = _failed("ValueError", task=tasks.fail.name)
    Queue.objects.create(name="mail")
    client = Client()
    _login(client, role)
    page = client.get(_dashboard_url())
    task_page = client.get(reverse("admin:fastq_django_dashboard_task", args=[tasks.fail.name]))
    partial = client.get(_dashboard_url() + "?partial=1")
    pause = client.post(
        reverse("admin:fastq_django_dashboard_queue"), {"action": "pause", "queue": "mail"}
    )
    retry = client.post(
        reverse("admin:fastq_django_dashboard_failures"),
        {"action": "retry", "error_type": "ValueError"},
    )
    paused = Queue.objects.get(name="mail").paused
    state = Job.objects.get(pk=failed.pk).state
    if role in ("anonymous", "non_staff"):
        for r in (page, task_page, partial, pause, retry):
            assert r.status_code == 302 and "/login/" in r["Location"], r
        assert not paused and state == "failed"
        return
    body = page.content.decode() + task_page.content.decode() + partial.content.decode()
    assert page.status_code == task_page.status_code == partial.status_code == 200
    assert 'data-queue="mail"' in body
    if role == "permitted":
        assert 'value="pause"' in body and 'value="retry"' in body
        assert SECRET_ARG in task_page.content.decode()
        assert pause.status_code == 302 and retry.status_code == 302
        assert paused and state == "queued"
        return
    assert 'value="pause"' not in body and 'value="retry"' not in body
    assert pause.status_code == 403 and retry.status_code == 403
    assert not paused and state == "failed"
    if role == "view_only":
        assert SECRET_ARG in task_page.content.decode()
    else:
        assert SECRET_ARG not in body, "a staff user without fastq permissions sees no arguments"


def test_actions_refuse_get_and_a_missing_csrf_token() -> None:
    Queue.objects.create(name="mail")
    client = Client(enforce_csrf_checks=True)
    _login(client, "permitted")
    url = reverse("admin:fastq_django_dashboard_queue")
    assert client.get(url).status_code == 405
    assert client.post(url, {"action": "pause", "queue": "mail"}).status_code == 403
    assert not Queue.objects.get(name="mail").paused
    page = client.get(_dashboard_url())
    token = page.cookies["csrftoken"].value
    response = client.post(url, {"action": "pause", "queue": "mail", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert Queue.objects.get(name="mail").paused


def _cell(html: str, queue: str, name: str) -> str:
    row = re.search(rf'<tr data-queue="{re.escape(queue)}">(.*?)</tr>', html, re.S)
    assert row, f"no row for {queue}"
    cell = re.search(rf'class="num {name}">([^<]*)<', row.group(1)) or re.search(
        rf'class="{name}">(.*?)</td>', row.group(1), re.S
    )
    assert cell, f"no {name} in {row.group(1)}"
    return re.sub(r"<[^>]+>", "", cell.group(1)).strip()


def test_numbers_match_the_database() -> None:
    for _ in range(4):
        tasks.noop.delay()
    tasks.noop.apply_async(countdown=600)
    Job.objects.filter(pk=tasks.add.delay(1, 2).id).update(state="running")
    for _ in range(3):
        tasks.on_other_queue.delay()
    queues.pause("other")
    queues.set_concurrency("default", 4)
    _failed("KeyError")
    _failed("KeyError")
    _failed("ValueError")
    client = Client()
    _login(client, "view_only")
    html = client.get(_dashboard_url()).content.decode()
    now = timezone.now()
    for q in ("default", "other"):
        due = Job.objects.filter(queue=q, state="queued", run_at__lte=now).count()
        assert _cell(html, q, "queue-depth") == str(due)
        assert _cell(html, q, "queue-running") == str(
            Job.objects.filter(queue=q, state="running").count()
        )
    assert _cell(html, "default", "queue-scheduled") == "1"
    assert _cell(html, "default", "queue-limit") == "4"
    assert _cell(html, "other", "queue-state") == "paused"
    assert _cell(html, "default", "queue-state") == "active"
    groups = dict(
        re.findall(r'<tr data-error-type="([^"]*)">.*?class="num failure-count">(\d+)<', html, re.S)
    )
    assert groups == {"KeyError": "2", "ValueError": "1"}
    assert re.search(r'id="fastq-hour-failed">3<', html)


def test_the_live_workers_panel_lists_the_registry_s_live_workers() -> None:
    from fastq_django.models import WorkerProcess

    now = timezone.now()

    def row(pid: int, state: str, expires: timedelta, kind: str = "worker") -> None:
        WorkerProcess.objects.create(
            id=f"h1:{pid}:x",
            kind=kind,
            host="h1",
            pid=pid,
            queues='["default", "other"]',
            concurrency=8,
            state=state,
            started_at=now - timedelta(minutes=5),
            last_heartbeat=now - timedelta(seconds=3),
            expires_at=now + expires,
            processed=41,
            failed=2,
            rss_bytes=50 * 1_048_576,
        )

    row(101, "running", timedelta(seconds=30))
    row(102, "running", timedelta(seconds=-5))  # silent past its lease: lost
    row(103, "stopped", timedelta(seconds=30))
    row(104, "running", timedelta(seconds=30), kind="supervisor")
    for worker in ("h1:101", "h1:101", "h1:102"):
        Job.objects.create(
            task=tasks.noop.name,
            state="running",
            worker=worker,
            lease_token=1,
            lease_expires_at=now + timedelta(seconds=30),
        )
    client = Client()
    _login(client, "view_only")
    html = client.get(_dashboard_url()).content.decode()
    panel = re.search(r'<section id="fastq-workers">(.*?)</section>', html, re.S)
    assert panel
    shown = re.findall(r'data-worker="([^"]+)"', panel.group(1))
    assert shown == ["h1:101"]
    assert re.search(r'worker-running">2<', panel.group(1))
    assert re.search(r'worker-processed">41<', panel.group(1))
    assert "default, other" in panel.group(1)


def test_hour_series_counts_and_p95_per_minute() -> None:
    now = timezone.now()
    waits = [0.5 * i for i in range(1, 21)]  # 20 jobs finished 10 minutes ago
    for i, wait in enumerate(waits):
        finished = now - timedelta(minutes=10)
        started = finished - timedelta(seconds=1)
        Job.objects.create(
            task=tasks.noop.name,
            state="succeeded" if i % 4 else "dead",
            run_at=started - timedelta(seconds=wait),
            started_at=started,
            finished_at=finished,
        )
    Job.objects.create(
        task=tasks.noop.name, state="succeeded", finished_at=now - timedelta(hours=2)
    )  # outside the hour
    series = stats.hour_series("default", now)
    start, _ = stats._window(now)
    b = int((now - timedelta(minutes=10) - start).total_seconds() // 60)
    assert series.finished[b] == 15 and series.failed[b] == 5
    assert series.total_finished == 15 and series.total_failed == 5
    nearest_rank = sorted(waits)[math.ceil(0.95 * len(waits)) - 1]
    assert series.p95_wait[b] == pytest.approx(nearest_rank, abs=0.01)
    assert sum(1 for v in series.p95_wait if v is not None) == 1


def test_cancel_this_group_cancels_the_jobs_waiting_for_another_attempt() -> None:
    retrying = Job.objects.create(
        task=tasks.flaky.name, state="queued", attempts=1, error_type="TimeoutError"
    )
    fresh = tasks.noop.delay()  # never failed: not in any group
    done = _failed("TimeoutError")
    client = Client()
    _login(client, "permitted")
    url = reverse("admin:fastq_django_dashboard_failures")
    assert client.post(url, {"action": "cancel", "error_type": "TimeoutError"}).status_code == 302
    assert Job.objects.get(pk=retrying.pk).state == "cancelled"
    assert Job.objects.get(pk=fresh.id).state == "queued"
    assert Job.objects.get(pk=done.pk).state == "failed", "history stays"
    # A group without a type would be every fresh job: refused.
    assert client.post(url, {"action": "cancel", "error_type": ""}).status_code == 400
    assert Job.objects.get(pk=fresh.id).state == "queued"


@pytest.mark.parametrize(
    "data",
    [
        {"action": "pause", "queue": "a\x00b"},
        {"action": "pause", "queue": "x" * 500},
        {"action": "limit", "queue": "q", "concurrency": "0"},
        {"action": "limit", "queue": "q", "concurrency": "9" * 40},
        {"action": "limit", "queue": "q", "concurrency": "many"},
        {"action": "explode", "queue": "q"},
    ],
)
def test_hostile_queue_actions_change_nothing(data: dict[str, str]) -> None:
    client = Client()
    _login(client, "permitted")
    response = client.post(reverse("admin:fastq_django_dashboard_queue"), data)
    assert response.status_code in (302, 400)
    assert not Queue.objects.exists()


def test_the_task_page_shows_failure_rate_and_run_times() -> None:
    now = timezone.now()
    for i, runtime in enumerate((0.005, 0.05, 0.05, 2.0)):
        Job.objects.create(
            task=tasks.add.name,
            state="failed" if i == 3 else "succeeded",
            run_at=now - timedelta(seconds=30),
            started_at=now - timedelta(seconds=10 + runtime),
            finished_at=now - timedelta(seconds=10),
        )
    ts = stats.task_stats("default", tasks.add.name, now - timedelta(hours=1))
    assert (ts.finished, ts.failed) == (4, 1)
    assert ts.failure_rate == pytest.approx(0.25)
    counts = dict(ts.runtime_histogram)
    assert sum(counts.values()) == 4
    assert (
        counts["1 ms to 10 ms"] == 1
        and counts["10 ms to 100 ms"] == 2
        and counts["1 s to 5 s"] == 1
    )
    assert ts.runtime_p50 == pytest.approx(0.05, abs=0.002)
    assert ts.runtime_p95 == pytest.approx(2.0, abs=0.002)
    client = Client()
    _login(client, "view_only")
    html = client.get(reverse("admin:fastq_django_dashboard_task", args=[tasks.add.name]))
    assert re.search(r'id="task-failure-rate">25 %<', html.content.decode())
    nul = client.get("/admin/fastq_django/dashboard/task/a%00b/")
    assert nul.status_code == 400


def test_schedules_show_next_fire_and_last_outcome() -> None:
    Schedule.objects.create(
        name="hourly", task=tasks.noop.name, every=3600, last_outcome="succeeded"
    )
    client = Client()
    _login(client, "staff_no_perms")
    html = client.get(_dashboard_url()).content.decode()
    section = re.search(r'<section id="fastq-schedules">(.*?)</section>', html, re.S)
    assert section and "hourly" in section.group(1) and "succeeded" in section.group(1)

"""The job admin shows failures as operators need them: an error type column, "retrying at
..." for a job waiting for its next attempt, a Retry button on a failed job's page (POST,
change_job: anonymous and non-staff users go to the login page, view-only staff get 403 and
no button), and tracebacks without fastq's own frames (the whole one folded below)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from fastq_django.models import Job
from fastq_django.tracebacks import without_own_frames
from testapp import tasks
from workerproc import run_worker

pytestmark = pytest.mark.django_db(transaction=True)

ROLES = ("anonymous", "non_staff", "view_only", "permitted")


def _login(client: Client, role: str) -> None:
    if role == "anonymous":
        return
    user = User.objects.create_user(role, password="pw", is_staff=role != "non_staff")
    perms = Permission.objects.filter(content_type__app_label="fastq_django")
    if role == "non_staff":
        granted = perms.filter(content_type__model="job")
    elif role == "view_only":
        granted = perms.filter(codename="view_job")
    else:
        granted = perms.filter(codename__in=["view_job", "change_job"])
    user.user_permissions.set(granted)
    client.force_login(user)


def _failed_job(**fields: Any) -> Job:
    values: dict[str, Any] = {
        "task": tasks.fail.name,
        "args": '["kaput"]',
        "state": "failed",
        "attempts": 1,
        "max_attempts": 1,
        "error_type": "ValueError",
        "error": "kaput",
        "finished_at": timezone.now(),
    }
    values.update(fields)
    return Job.objects.create(**values)


def _snapshot() -> list[dict[str, Any]]:
    return list(Job.objects.order_by("pk").values())


def test_the_list_shows_the_error_type_and_retrying_at(admin_client):
    _failed_job(error_type="shop.PaymentDeclined")
    retry_at = timezone.now() + timedelta(minutes=5)
    waiting = _failed_job(
        state="queued",
        attempts=1,
        max_attempts=4,
        error_type="ConnectionError",
        run_at=retry_at,
        finished_at=None,
    )
    Job.objects.create(task=tasks.noop.name)  # plainly queued
    page = admin_client.get(reverse("admin:fastq_django_job_changelist")).content.decode()
    assert "error type" in page.lower()
    assert "shop.PaymentDeclined" in page
    assert page.count("retrying at ") == 1
    assert ">Queued<" in page  # the job that never failed
    detail = admin_client.get(reverse("admin:fastq_django_job_change", args=[waiting.pk]))
    assert detail.status_code == 200


@pytest.mark.parametrize("role", ROLES)
def test_the_retry_button_needs_change_job(client, role):
    job = _failed_job()
    before = _snapshot()
    _login(client, role)
    page_url = reverse("admin:fastq_django_job_change", args=[job.pk])
    retry_url = reverse("admin:fastq_django_job_retry", args=[job.pk])

    page = client.get(page_url)
    posted = client.post(retry_url)

    if role in ("anonymous", "non_staff"):
        for response in (page, posted):
            assert response.status_code == 302
            assert response.url.startswith(reverse("admin:login"))
        assert _snapshot() == before
    elif role == "view_only":
        assert page.status_code == 200
        assert retry_url not in page.content.decode()
        assert posted.status_code == 403
        assert _snapshot() == before
    else:
        assert page.status_code == 200
        assert f'action="{retry_url}"' in page.content.decode()
        assert posted.status_code == 302 and posted.url == page_url
        row = Job.objects.get(pk=job.pk)
        assert (row.state, row.attempts, row.error_type) == ("queued", 0, "")


def test_the_retry_view_takes_only_post_and_only_unsuccessful_jobs(admin_client):
    job = _failed_job()
    retry_url = reverse("admin:fastq_django_job_retry", args=[job.pk])
    assert admin_client.get(retry_url).status_code == 405
    assert Job.objects.get(pk=job.pk).state == "failed"

    done = Job.objects.create(task=tasks.noop.name, state="succeeded", attempts=1)
    page_url = reverse("admin:fastq_django_job_change", args=[done.pk])
    assert "/retry/" not in admin_client.get(page_url).content.decode()
    response = admin_client.post(
        reverse("admin:fastq_django_job_retry", args=[done.pk]), follow=True
    )
    assert "only failed, dead, expired or cancelled jobs can be retried" in (
        response.content.decode()
    )
    assert Job.objects.get(pk=done.pk).state == "succeeded"
    missing = reverse("admin:fastq_django_job_retry", args=["0193a000-0000-7000-8000-000000000000"])
    assert admin_client.post(missing).status_code == 404


def test_the_traceback_hides_fastq_frames(admin_client):
    """A traceback written by a real worker: the task's frame is shown, fastq's (the
    worker's call into the task) only in the folded whole."""
    result = tasks.fail.delay("from the worker")
    run_worker("--processes", "0")
    job = Job.objects.get(pk=result.id)
    assert "/fastq/task.py" in job.traceback  # the row keeps everything
    short, hidden = without_own_frames(job.traceback)
    assert hidden >= 1
    assert "/fastq/" not in short
    assert short.startswith("Traceback (most recent call last):\n")
    assert 'tasks.py", line' in short and "raise ValueError(message)" in short
    assert short.rstrip().endswith("ValueError: from the worker")

    page = admin_client.get(reverse("admin:fastq_django_job_change", args=[job.pk]))
    html = page.content.decode()
    assert f"{hidden} frame(s) of fastq hidden" in html
    shown, folded = html.split(f"{hidden} frame(s) of fastq hidden", 1)
    assert "raise ValueError(message)" in shown
    assert "/fastq/task.py" not in shown.split("traceback")[-1]
    assert "/fastq/task.py" in folded


def test_frames_of_user_code_are_all_kept():
    text = (
        "Traceback (most recent call last):\n"
        '  File "/srv/venv/lib/python3.12/site-packages/fastq/task.py", line 10, in run_job\n'
        "    result = task(*args, **kwargs)\n"
        "             ^^^^^^^^^^^^^^^^^^^^^\n"
        '  File "/srv/shop/orders/tasks.py", line 5, in charge\n'
        "    gateway.charge(order)\n"
        '  File "/srv/shop/fastq_helpers/task.py", line 3, in charge\n'
        "    raise Declined()\n"
        "orders.Declined: no\n"
    )
    short, hidden = without_own_frames(text)
    assert hidden == 1
    assert short == (
        "Traceback (most recent call last):\n"
        '  File "/srv/shop/orders/tasks.py", line 5, in charge\n'
        "    gateway.charge(order)\n"
        '  File "/srv/shop/fastq_helpers/task.py", line 3, in charge\n'
        "    raise Declined()\n"
        "orders.Declined: no\n"
    )

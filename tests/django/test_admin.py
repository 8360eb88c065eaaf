"""The admin: jobs by state, filters, search, detail with traceback, retry action."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from fastq_django.models import Job
from testapp import tasks
from workerproc import run_worker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin_client(client):
    user = User.objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(user)
    return client


def test_changelist_filters_search_and_detail(admin_client):
    ok = tasks.add.delay(1, 2)
    bad = tasks.fail.delay("kaput")
    tasks.on_other_queue.delay()
    run_worker("--queues", "default")
    url = reverse("admin:fastq_django_job_changelist")

    page = admin_client.get(url)
    assert page.status_code == 200
    body = page.content.decode()
    assert tasks.add.name in body and tasks.fail.name in body
    for label in ("Queued", "Succeeded", "Failed"):
        assert label in body

    def listed(**params: str) -> set[str]:
        response = admin_client.get(url, params)
        assert response.status_code == 200
        return {str(job.id) for job in response.context["cl"].result_list}

    other = Job.objects.get(queue="other")
    assert listed() == {ok.id, bad.id, str(other.id)}
    assert listed(state__exact="failed") == {bad.id}
    assert listed(state__exact="queued") == {str(other.id)}
    assert listed(queue__exact="other") == {str(other.id)}
    assert listed(task__exact=tasks.add.name) == {ok.id}
    assert listed(q=bad.id) == {bad.id}
    assert listed(q="on_other_queue") == {str(other.id)}

    detail = admin_client.get(reverse("admin:fastq_django_job_change", args=[bad.id]))
    assert detail.status_code == 200
    text = detail.content.decode()
    assert "kaput" in text and "ValueError" in text
    assert "raise ValueError(message)" in text
    assert "&quot;kaput&quot;" in text  # the arguments, pretty-printed JSON


def test_retry_action_requeues_failed_jobs_only(admin_client):
    ok = tasks.add.delay(1, 2)
    bad = tasks.fail.delay("once")
    run_worker()
    url = reverse("admin:fastq_django_job_changelist")
    response = admin_client.post(
        url,
        {"action": "retry_jobs", "_selected_action": [str(ok.id), str(bad.id)]},
        follow=True,
    )
    assert response.status_code == 200
    assert "1 job(s) queued again" in response.content.decode()
    job = Job.objects.get(pk=bad.id)
    assert job.state == "queued"
    assert job.attempts == 0 and job.error == "" and job.traceback == ""
    assert Job.objects.get(pk=ok.id).state == "succeeded"
    run_worker()
    assert Job.objects.get(pk=bad.id).state == "failed"  # it raises again, as it should

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


def test_retry_is_the_core_operation_on_every_ended_state_and_skips_hostile_ids():
    from django.db import transaction
    from django.utils import timezone
    from fastq_django.admin import retry_failed
    from fastq_django.broker import default_broker

    now = timezone.now()
    ended = {
        state: Job.objects.create(
            task=tasks.noop.name,
            state=state,
            attempts=2,
            error_type="E",
            error="boom",
            traceback="tb",
            result="1",
            started_at=now,
            finished_at=now,
            expires_at=now,
            cancel_requested=True,
            worker="w:1",
            lease_token=7,
        )
        for state in ("failed", "dead", "expired", "cancelled", "succeeded", "running", "queued")
    }
    ids = [str(j.pk) for j in ended.values()]
    hostile = [
        "not-a-uuid",
        "'); DELETE FROM fastq_job; --",
        '{"a","b"}',
        "",
        str(ended["failed"].pk).upper(),
    ]
    with pytest.raises(RuntimeError), transaction.atomic():
        assert default_broker().retry(ids + hostile) == 4
        raise RuntimeError("roll back")
    assert Job.objects.filter(state="queued").count() == 1
    assert default_broker().retry(hostile[:-1]) == 0
    assert retry_failed(Job.objects.all()) == 4
    for state in ("failed", "dead", "expired", "cancelled"):
        job = Job.objects.get(pk=ended[state].pk)
        assert job.state == "queued"
        assert (job.attempts, job.error_type, job.error, job.traceback, job.result) == (
            0,
            "",
            "",
            "",
            None,
        )
        assert job.started_at is job.finished_at is job.expires_at is job.lease_token is None
        assert not job.cancel_requested and job.worker == ""
        assert job.run_at >= now
    assert Job.objects.get(pk=ended["succeeded"].pk).state == "succeeded"
    assert Job.objects.get(pk=ended["running"].pk).state == "running"
    assert Job.objects.count() == 7
    assert retry_failed(Job.objects.all()) == 0

"""The admin's workflow page: the graph drawn server-side, states, timings and the failed
step's error, linked from each step's job page. Viewing needs view_job (staff);
cancelling from it needs change_job. Anonymous and non-staff users go to the login page."""

from __future__ import annotations

import uuid

import fastq
import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from fastq_django import workflows
from fastq_django.models import Job
from testapp import workflow_tasks as wt
from workerproc import run_worker

pytestmark = pytest.mark.django_db(transaction=True)

ROLES = ("anonymous", "non_staff", "view_only", "permitted")


def _login(client: Client, role: str) -> None:
    if role == "anonymous":
        return
    user = User.objects.create_user(role, password="pw", is_staff=role != "non_staff")
    perms = Permission.objects.filter(content_type__app_label="fastq_django")
    if role == "view_only":
        perms = perms.filter(codename="view_job")
    elif role == "permitted":
        perms = perms.filter(codename__in=["view_job", "change_job"])
    user.user_permissions.set(perms)
    client.force_login(user)


def _states(workflow_id: str) -> list[str]:
    return sorted(Job.objects.filter(workflow_id=workflow_id).values_list("state", flat=True))


@pytest.mark.parametrize("role", ROLES)
def test_workflow_page_and_cancel_need_their_permissions(client, role):
    r = (wt.add.s(1, 1) | wt.add.s(1) | wt.add.s(1)).delay()
    url = reverse("admin:fastq_django_job_workflow", args=[r.workflow_id])
    _login(client, role)
    before = _states(r.workflow_id)

    page = client.get(url)
    posted = client.post(url, {"cancel": "1"})
    if role in ("anonymous", "non_staff"):
        assert page.status_code == 302 and "/login/" in page["Location"]
        assert posted.status_code == 302 and "/login/" in posted["Location"]
        assert _states(r.workflow_id) == before
        return
    assert page.status_code == 200
    body = page.content.decode()
    assert "<svg" in body and "wf.add" in body
    if role == "view_only":
        assert "Cancel every unfinished step" not in body
        assert posted.status_code == 403
        assert _states(r.workflow_id) == before
    else:
        assert "Cancel every unfinished step" in body
        assert posted.status_code == 302
        assert _states(r.workflow_id) == ["cancelled"] * 3


def test_page_shows_the_failed_step_timings_and_links_back(client):
    flow = wt.add.s(1, 1) | wt.boom.s() | wt.add.s(1)
    r = flow.delay()
    run_worker()
    _login(client, "view_only")
    failed = Job.objects.get(workflow_id=r.workflow_id, task="wf.boom")
    detail = client.get(reverse("admin:fastq_django_job_change", args=[failed.id]))
    url = reverse("admin:fastq_django_job_workflow", args=[r.workflow_id])
    assert url in detail.content.decode(), "a step's page links to its workflow"
    body = client.get(url).content.decode()
    assert "boom in a step" in body and "ValueError" in body
    assert f"upstream job {failed.id} failed" in body
    assert reverse("admin:fastq_django_job_change", args=[failed.id]) in body
    assert " s</td>" in body  # a duration
    assert not workflows.running(r.workflow_id)


def test_unknown_workflow_is_404_and_hostile_text_is_escaped(client):
    _login(client, "view_only")
    missing = reverse("admin:fastq_django_job_workflow", args=[uuid.uuid4()])
    assert client.get(missing).status_code == 404
    r = (wt.add.s("<script>x</script>", "") | wt.add.s("!")).delay()
    Job.objects.filter(workflow_id=r.workflow_id).update(task="<script>alert(1)</script>")
    body = client.get(reverse("admin:fastq_django_job_workflow", args=[r.workflow_id]))
    assert body.status_code == 200
    assert "<script>alert(1)" not in body.content.decode()
    assert workflows.running(r.workflow_id)


def test_group_workflow_page_lists_every_member(client):
    g = fastq.group(wt.add.s(i, i) for i in range(5)).delay()
    _login(client, "view_only")
    body = client.get(reverse("admin:fastq_django_job_workflow", args=[g.root_id])).content
    assert body.decode().count("wf.add</a>") == 5

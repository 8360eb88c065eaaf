"""Who may act in the admin, and what it shows. Every fastq action needs its model's
change permission (Django's own delete action the delete one); anonymous and non-staff
users are sent to the login page, view-only staff are offered no action and change
nothing. Each case compares the whole job and schedule tables before and after.
FASTQ["ADMIN_REDACT"] masks secrets on every page; a NUL in a list's query is a 400."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import fastq
import pytest
from django.contrib.auth.models import Permission, User
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from fastq_django.models import Job, Schedule
from fastq_django.redact import MASK, Redaction, configured_rule
from testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)

ROLES = ("anonymous", "non_staff", "view_only", "permitted")


def _snapshot() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return (
        list(Job.objects.order_by("pk").values()),
        list(Schedule.objects.order_by("pk").values()),
    )


def _login(client: Client, role: str, model: str, perm: str) -> None:
    """Logs ``client`` in as ``role``: non-staff users get every fastq permission (staff
    status is what they lack), view-only staff the view permissions, permitted staff the
    view permission and ``perm`` on ``model``."""
    if role == "anonymous":
        return
    user = User.objects.create_user(role, password="pw", is_staff=role != "non_staff")
    fastq = Permission.objects.filter(content_type__app_label="fastq_django")
    if role == "non_staff":
        granted = fastq.filter(content_type__model__in=["job", "schedule"])
    elif role == "view_only":
        granted = fastq.filter(codename__in=["view_job", "view_schedule"])
    else:
        granted = fastq.filter(codename__in=[f"view_{model}", f"{perm}_{model}"])
    user.user_permissions.set(granted)
    client.force_login(user)


def _failed_job() -> Job:
    return Job.objects.create(
        task=tasks.fail.name,
        args='["kaput"]',
        state="failed",
        attempts=1,
        max_attempts=1,
        error_type="ValueError",
        error="kaput",
        finished_at=timezone.now(),
    )


def _queued_job() -> Job:
    return Job.objects.create(task=tasks.noop.name)


def _schedule(enabled: bool = True) -> Schedule:
    return Schedule.objects.create(
        name="every-hour", task=tasks.noop.name, every=3600, enabled=enabled
    )


def _job_state(state: str) -> Callable[[Any], None]:
    def check(pk: Any) -> None:
        assert Job.objects.get(pk=pk).state == state

    return check


def _enabled(enabled: bool) -> Callable[[Any], None]:
    def check(pk: Any) -> None:
        assert Schedule.objects.get(pk=pk).enabled is enabled

    return check


def _ran_now(pk: Any) -> None:
    schedule = Schedule.objects.get(pk=pk)
    job = Job.objects.get()
    assert job.task == tasks.noop.name and job.state == "queued"
    assert schedule.last_job_id == job.id and schedule.last_outcome == "queued"


def _deleted(model: type[Job] | type[Schedule]) -> Callable[[Any], None]:
    def check(pk: Any) -> None:
        assert not model.objects.filter(pk=pk).exists()

    return check


@dataclass
class Action:
    model: str
    name: str
    perm: str
    make: Callable[[], Job | Schedule]
    check: Callable[[Any], None]  # asserts the permitted run changed the row


ACTIONS = [
    Action("job", "retry_jobs", "change", _failed_job, _job_state("queued")),
    Action("job", "cancel_jobs", "change", _queued_job, _job_state("cancelled")),
    Action("job", "delete_selected", "delete", _failed_job, _deleted(Job)),
    Action("schedule", "run_now_action", "change", _schedule, _ran_now),
    Action("schedule", "enable_schedules", "change", lambda: _schedule(False), _enabled(True)),
    Action("schedule", "disable_schedules", "change", _schedule, _enabled(False)),
    Action("schedule", "delete_selected", "delete", _schedule, _deleted(Schedule)),
]


def _offered(response: Any) -> set[str]:
    form = response.context["action_form"]  # None: no action at all
    return set() if form is None else {name for name, _ in form.fields["action"].choices}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: f"{a.model}-{a.name}")
def test_action_needs_staff_and_its_permission(client, action, role):
    row = action.make()
    before = _snapshot()
    _login(client, role, action.model, action.perm)
    url = reverse(f"admin:fastq_django_{action.model}_changelist")

    page = client.get(url)
    posted = client.post(
        url,
        # "post": the confirmation of Django's delete action; the others ignore it.
        {"action": action.name, "_selected_action": [str(row.pk)], "post": "yes"},
    )

    if role in ("anonymous", "non_staff"):
        for response in (page, posted):
            assert response.status_code == 302
            assert response.url.startswith(reverse("admin:login"))
        assert _snapshot() == before
    elif role == "view_only":
        assert page.status_code == 200
        assert action.name not in _offered(page)
        # Django ignores an action it does not offer: the list is shown again.
        assert posted.status_code == 200
        assert _snapshot() == before
    else:
        assert page.status_code == 200
        assert action.name in _offered(page)
        assert posted.status_code == 302 and posted.url == url
        action.check(row.pk)


@pytest.mark.parametrize("role", ["view_only", "permitted"])
def test_job_page_is_read_only_even_with_change_job(client, role):
    """change_job lets a user retry and cancel; it does not make the job's page a form
    (saving one would write every column back over the worker's)."""
    job = _failed_job()
    before = _snapshot()
    _login(client, role, "job", "change")
    url = reverse("admin:fastq_django_job_change", args=[job.pk])

    page = client.get(url)
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    posted = client.post(url, {"state": "succeeded", "attempts": "0", "_save": "Save"})
    assert posted.status_code == 403
    assert _snapshot() == before


@pytest.mark.parametrize("role", ROLES)
def test_schedule_form_needs_change_schedule(client, role):
    schedule = _schedule()
    before = _snapshot()
    _login(client, role, "schedule", "change")
    url = reverse("admin:fastq_django_schedule_change", args=[schedule.pk])
    form = {
        "name": schedule.name,
        "task": schedule.task,
        # "enabled" left out: unchecked
        "every": "3600",
        "cron": "",
        "timezone": "UTC",
        "catch_up": "latest",
        "max_instances": "1",
        "args": "[]",
        "kwargs": "{}",
        "queue": "",
        "priority": "0",
        "_save": "Save",
    }

    posted = client.post(url, form)

    if role in ("anonymous", "non_staff"):
        assert posted.status_code == 302 and posted.url.startswith(reverse("admin:login"))
        assert _snapshot() == before
    elif role == "view_only":
        assert posted.status_code == 403
        assert _snapshot() == before
    else:
        assert posted.status_code == 302
        assert posted.url == reverse("admin:fastq_django_schedule_changelist")
        assert Schedule.objects.get(pk=schedule.pk).enabled is False


@pytest.mark.parametrize(
    ("model", "params"),
    [
        ("job", {"q": "a\x00b"}),
        ("job", {"state__exact": "\x00"}),
        ("job", {"state": "failed\x00"}),
        ("job", {"queue__exact": "default\x00"}),
        ("job", {"task__exact": "\x00"}),
        ("job", {"state__exact": "failed", "o\x00": "1"}),
        ("schedule", {"q": "\x00"}),
        ("schedule", {"enabled__exact": "1\x00"}),
        ("schedule", {"source__exact": "\x00admin"}),
    ],
)
def test_nul_in_the_query_string_is_a_bad_request(client, model, params):
    """PostgreSQL refuses a NUL in a filter value (it was a 500); SQLite matched nothing.
    Both answer 400 now, and a clean query still lists the rows."""
    _failed_job()
    _schedule()
    before = _snapshot()
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw"))
    url = reverse(f"admin:fastq_django_{model}_changelist")

    response = client.get(url, params)

    assert response.status_code == 400
    assert _snapshot() == before
    clean = {k.replace("\x00", ""): v.replace("\x00", "") for k, v in params.items()}
    listed = client.get(url, clean)
    assert listed.status_code == 200


@fastq.task(name="admin_tests.login")
def login(user, password, *extra, **options):
    """Only its signature matters: positional arguments are masked by parameter name."""


def _superuser_client(client: Client) -> Client:
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw"))
    return client


def _pages(client: Client, model: str, pk: Any) -> list[str]:
    pages = [
        client.get(reverse(f"admin:fastq_django_{model}_changelist")),
        client.get(reverse(f"admin:fastq_django_{model}_change", args=[pk])),
    ]
    assert [p.status_code for p in pages] == [200, 200]
    return [p.content.decode() for p in pages]


def test_redact_by_name_on_the_job_pages(client, settings):
    settings.FASTQ = {**settings.FASTQ, "ADMIN_REDACT": ["PASSWORD", "api_key", "token"]}
    job = Job.objects.create(
        task=login.name,
        state="failed",
        args='["alice", "hunter2-positional", "extra-arg"]',
        kwargs='{"Api_Key": "hunter2-keyword", "nested": {"deep": [{"password": '
        '"hunter2-nested"}]}, "note": "visible-note"}',
        result='{"token": {"value": "hunter2-result"}, "user": "alice"}',
        error_type="ValueError",
        error="login refused with hunter2-positional",
        traceback='Traceback:\n  File "x.py", line 1\nValueError: key hunter2-keyword',
    )

    changelist, detail = _pages(_superuser_client(client), "job", job.pk)

    for html in (changelist, detail):
        assert "hunter2" not in html
    assert detail.count(MASK) >= 6  # password, Api_Key, nested password, token, error, tb
    for shown in ("alice", "extra-arg", "visible-note", "login refused with", "line 1"):
        assert shown in detail
    # What is stored is untouched: the worker runs the job with the real values.
    assert "hunter2-positional" in Job.objects.get(pk=job.pk).args


def test_redact_with_a_callable_on_the_job_pages(client, settings):
    def secret(name: str, value: Any) -> bool:
        return name.startswith("secret_") or (isinstance(value, str) and value[:3] == "sk_")

    settings.FASTQ = {**settings.FASTQ, "ADMIN_REDACT": secret}
    job = Job.objects.create(
        task=tasks.add.name,
        kwargs='{"secret_pin": 98765, "stripe": "sk_live_hidden", "plain": "visible-value"}',
        result='[{"secret_out": "hidden-result"}]',
    )

    changelist, detail = _pages(_superuser_client(client), "job", job.pk)

    for html in (changelist, detail):
        for secret_value in ("98765", "sk_live_hidden", "hidden-result"):
            assert secret_value not in html
    assert detail.count(MASK) == 3
    assert "visible-value" in detail


def test_nothing_is_masked_without_the_setting(client):
    job = Job.objects.create(task=login.name, args='["alice", "pw-shown"]')
    _, detail = _pages(_superuser_client(client), "job", job.pk)
    assert "pw-shown" in detail and MASK not in detail


@pytest.mark.parametrize("setting", ["password", 42, ["password", 1]])
def test_a_bad_setting_is_refused(settings, setting):
    settings.FASTQ = {**settings.FASTQ, "ADMIN_REDACT": setting}
    with pytest.raises(ImproperlyConfigured, match="ADMIN_REDACT"):
        configured_rule()


def _secret_schedule() -> Schedule:
    return Schedule.objects.create(
        name="nightly-login",
        task=login.name,
        every=3600,
        args='["alice", "hunter2-positional"]',
        kwargs='{"api_key": "hunter2-keyword", "region": "eu"}',
    )


@pytest.mark.parametrize("role", ["view_only", "permitted"])
def test_redact_on_the_schedule_pages(client, settings, role):
    """View-only staff read args and kwargs masked; editors get them masked in the form."""
    settings.FASTQ = {**settings.FASTQ, "ADMIN_REDACT": ["password", "api_key"]}
    schedule = _secret_schedule()
    _login(client, role, "schedule", "change")

    changelist, detail = _pages(client, "schedule", schedule.pk)

    for html in (changelist, detail):
        assert "hunter2" not in html
    assert MASK in detail and "alice" in detail and "eu" in detail
    assert ('name="kwargs"' in detail) is (role == "permitted")


def test_saving_a_masked_schedule_form_keeps_the_secrets(client, settings):
    settings.FASTQ = {**settings.FASTQ, "ADMIN_REDACT": ["password", "api_key"]}
    schedule = _secret_schedule()
    _login(client, "permitted", "schedule", "change")
    url = reverse("admin:fastq_django_schedule_change", args=[schedule.pk])
    form = client.get(url).context["adminform"].form
    fields = "name task cron timezone every catch_up max_instances args kwargs queue priority"
    data = {name: form[name].value() for name in fields.split()}
    assert MASK in data["args"] and MASK in data["kwargs"]
    data["enabled"] = "on"

    # Left masked: the stored secrets stay; the region is changed.
    data["kwargs"] = data["kwargs"].replace('"eu"', '"us"')
    assert client.post(url, {**data, "_continue": "1"}).status_code == 302
    saved = Schedule.objects.get(pk=schedule.pk)
    assert json.loads(saved.args) == ["alice", "hunter2-positional"]
    assert json.loads(saved.kwargs) == {"api_key": "hunter2-keyword", "region": "us"}

    # Typed over: the new value is stored.
    data["kwargs"] = data["kwargs"].replace(f'"{MASK}"', '"new-key"')
    assert client.post(url, {**data, "_continue": "1"}).status_code == 302
    saved = Schedule.objects.get(pk=schedule.pk)
    assert json.loads(saved.kwargs) == {"api_key": "new-key", "region": "us"}
    assert json.loads(saved.args) == ["alice", "hunter2-positional"]


@fastq.task(name="admin_tests.bound_login", bind=True)
def bound_login(self, password):
    """A bound task: its first parameter is the task, not an argument."""


def test_positional_arguments_are_named_by_the_registered_task():
    redaction = Redaction(lambda name, value: name == "password")
    assert redaction.call(bound_login.name, ["pw-1234"], {}) == ([MASK], {})
    assert redaction.call(login.name, ["bob", "pw-5678", "x"], {}) == (["bob", MASK, "x"], {})
    # Not registered in this process: only keyword names are known.
    assert redaction.call("elsewhere.login", ["pw-9"], {"password": "pw-9"}) == (
        ["pw-9"],
        {"password": MASK},
    )
    assert redaction.text("refused: pw-1234, pw-5678") == f"refused: {MASK}, {MASK}"

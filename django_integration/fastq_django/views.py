"""``/fastq/metrics``: the fleet's metrics in Prometheus' text exposition format, read
from the database (so one scrape of any web process sees every worker).

Mount with ``path("fastq/", include("fastq_django.urls"))``. Readable by a logged-in
active staff user holding ``fastq_django.view_metrics`` (superusers hold it), or by a
request carrying
``Authorization: Bearer <FASTQ["METRICS_TOKEN"]>``. Anyone else gets 401 (no
credentials) or 403 (credentials without the right).
"""

from __future__ import annotations

import hmac
from collections import defaultdict
from collections.abc import Iterable

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from fastq import conf

from fastq_django import inspect
from fastq_django.models import JobState, WorkerProcess, WorkerState

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PERMISSION = "fastq_django.view_metrics"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
    return "{" + inner + "}" if inner else ""


class _Exposition:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, labels: Iterable[tuple[str, str]], value: float) -> None:
        self.lines.append(f"{name}{_labels(labels)} {float(value)!r}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _token_ok(request: HttpRequest) -> bool | None:
    """True/False for a bearer token that matches or not; None when none was sent."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        return None
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        return False
    expected = conf.get("METRICS_TOKEN")
    if not expected:
        return False
    # WSGI hands header values over as latin-1 decoded bytes: compare the raw bytes with
    # the token's UTF-8.
    try:
        raw = given.strip().encode("latin-1")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(raw, str(expected).encode())


def render() -> str:
    """The exposition text: every metric from one consistent pass over the database."""
    out = _Exposition()
    now = timezone.now()
    counts = inspect.job_counts()

    by_queue_state: dict[tuple[str, str], int] = defaultdict(int)
    for queue, _task, state, n in counts:
        by_queue_state[(queue, state)] += n
    out.family("fastq_jobs", "gauge", "Jobs in the table by queue and state.")
    for (queue, state), n in sorted(by_queue_state.items()):
        out.sample("fastq_jobs", [("queue", queue), ("state", state)], n)

    queues = inspect.queues()
    out.family("fastq_queue_depth", "gauge", "Queued jobs due now (runnable), per queue.")
    for q in queues:
        out.sample("fastq_queue_depth", [("queue", q["queue"])], q["depth"])
    out.family(
        "fastq_queue_oldest_wait_seconds",
        "gauge",
        "How long the oldest due job of the queue has waited (0 when none waits).",
    )
    for q in queues:
        out.sample("fastq_queue_oldest_wait_seconds", [("queue", q["queue"])], q["oldest_wait"])
    out.family("fastq_queue_running", "gauge", "Jobs running (started), per queue.")
    for q in queues:
        out.sample("fastq_queue_running", [("queue", q["queue"])], q["running"])
    out.family("fastq_queue_reserved", "gauge", "Jobs claimed but not started, per queue.")
    for q in queues:
        out.sample("fastq_queue_reserved", [("queue", q["queue"])], q["reserved"])

    finished = [
        (queue, task, state, n)
        for queue, task, state, n in counts
        if state in (JobState.SUCCEEDED, JobState.FAILED, JobState.DEAD)
    ]
    out.family(
        "fastq_task_finished_total",
        "counter",
        "Jobs of the task that ended (succeeded, failed or dead) and are still in the table "
        "(pruning old jobs lowers it: a counter reset).",
    )
    for queue, task, state, n in finished:
        out.sample(
            "fastq_task_finished_total", [("queue", queue), ("task", task), ("state", state)], n
        )
    out.family(
        "fastq_task_failed_total",
        "counter",
        "Jobs of the task that ended failed or dead and are still in the table.",
    )
    failed: dict[tuple[str, str], int] = defaultdict(int)
    for queue, task, state, n in finished:
        if state in (JobState.FAILED, JobState.DEAD):
            failed[(queue, task)] += n
    for (queue, task), n in sorted(failed.items()):
        out.sample("fastq_task_failed_total", [("queue", queue), ("task", task)], n)

    rows = list(WorkerProcess.objects.using(inspect.alias()).exclude(state=WorkerState.STOPPED))
    alive: dict[str, int] = defaultdict(int)
    lost = 0
    for w in rows:
        if w.shown_state == WorkerState.RUNNING:
            alive[w.kind] += 1
        elif w.shown_state == WorkerState.LOST:
            lost += 1
    out.family("fastq_workers_alive", "gauge", "Processes whose heartbeat is within their lease.")
    for kind in ("worker", "supervisor"):
        out.sample("fastq_workers_alive", [("kind", kind)], alive.get(kind, 0))
    out.family(
        "fastq_workers_lost", "gauge", "Processes silent past their lease (not yet cleaned up)."
    )
    out.sample("fastq_workers_lost", [], lost)
    per_queue: dict[str, int] = defaultdict(int)
    for w in rows:
        if w.shown_state == WorkerState.RUNNING and w.kind == "worker":
            for q in w.queue_list:
                per_queue[q] += 1
    out.family("fastq_queue_workers", "gauge", "Live worker processes consuming the queue.")
    for q in queues:
        out.sample("fastq_queue_workers", [("queue", q["queue"])], per_queue.get(q["queue"], 0))
    newest = max(
        (w.last_heartbeat for w in rows if w.shown_state == WorkerState.RUNNING), default=None
    )
    out.family(
        "fastq_worker_heartbeat_age_seconds",
        "gauge",
        "Age of the newest heartbeat of any live process (absent when none is live).",
    )
    if newest is not None:
        out.sample("fastq_worker_heartbeat_age_seconds", [], (now - newest).total_seconds())

    out.family(
        "fastq_schedule_lag_seconds",
        "gauge",
        "How late each enabled schedule's next fire is (0 when it is not due yet).",
    )
    for name, lag in inspect.schedule_lag():
        out.sample("fastq_schedule_lag_seconds", [("schedule", name)], lag)
    return out.text()


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    token = _token_ok(request)
    if token is False:
        return HttpResponse("invalid bearer token\n", status=403, content_type="text/plain")
    if token is None:
        user = request.user if hasattr(request, "user") else None
        if user is None or not user.is_authenticated:
            response = HttpResponse(
                "authentication required: staff login or bearer token\n",
                status=401,
                content_type="text/plain",
            )
            response["WWW-Authenticate"] = 'Bearer realm="fastq"'
            return response
        if not (user.is_active and user.is_staff and user.has_perm(PERMISSION)):
            return HttpResponse(
                f"forbidden: staff with {PERMISSION} only\n", status=403, content_type="text/plain"
            )
    try:
        body = render()
    except DatabaseError as exc:
        return HttpResponse(
            f"cannot read the fastq tables: {exc}\n", status=503, content_type="text/plain"
        )
    return HttpResponse(body, content_type=CONTENT_TYPE)

"""The fleet dashboard in the Django admin: ``/admin/fastq_django/dashboard/``.

It is the change list of the ``Dashboard`` proxy model, so the admin index links to it
and the admin's login, staff check and CSRF protection guard every view
(``AdminSite.admin_view``): anonymous and non-staff requests get the login page.

What a staff user sees and may do depends on fastq's model permissions:

* any staff user: queue numbers, the last hour's charts, schedules, failure counts;
* ``view_job`` (or ``change_job``): job arguments (``FASTQ["ADMIN_REDACT"]`` applied)
  and error messages on the task page and in failure groups;
* ``change_queue``: pause, resume and set a queue's concurrency limit;
* ``change_job``: "retry this group" and "cancel this group" on recent failures.

Every number comes from one indexed aggregate (fastq_django/stats.py, queues.py). The
page redraws its live part every few seconds with a small inline script (no CDN, no
network beyond this server); the charts are SVG drawn here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from fastq_django import queues, retention, stats
from fastq_django.models import Dashboard, Job, JobState, Schedule, WorkerProcess, WorkerState
from fastq_django.redact import shown_job
from fastq_django.schedules import last_outcome, next_run

REFRESH_SECONDS = 5
FAILURE_WINDOW = timedelta(hours=24)
TASK_WINDOW = timedelta(hours=24)
RECENT_JOBS = 30


def live_workers(alias: str, now: Any) -> list[dict[str, Any]]:
    """The registry's worker processes whose heartbeat is within their lease (table
    fastq_worker, written by every worker with its lease renewal), each with the jobs it
    runs now (through the lease index: running rows only)."""
    rows = list(
        WorkerProcess.objects.using(alias)
        .filter(state=WorkerState.RUNNING, kind="worker", expires_at__gte=now)
        .order_by("host", "pid")
    )
    names = [f"{w.host}:{w.pid}" for w in rows]
    busy = dict(
        Job.objects.using(alias)
        .filter(state=JobState.RUNNING, worker__in=names)
        .values_list("worker")
        .annotate(n=Count("id"))
        .order_by()
    )
    return [
        {
            "w": w,
            "queues": ", ".join(w.queue_list),
            "running": busy.get(f"{w.host}:{w.pid}", 0),
            "rss_mb": f"{w.rss_bytes / 1_048_576:.0f}",
            "heartbeat_age": max(0.0, (now - w.last_heartbeat).total_seconds()),
        }
        for w in rows
    ]


def can_see_jobs(request: HttpRequest) -> bool:
    user = request.user
    return user.has_perm("fastq_django.view_job") or user.has_perm("fastq_django.change_job")


def can_steer_queues(request: HttpRequest) -> bool:
    return request.user.has_perm("fastq_django.change_queue")


def can_act_on_jobs(request: HttpRequest) -> bool:
    return request.user.has_perm("fastq_django.change_job")


def svg_bars(
    values: list[Any], *, color: str, unit: str = "", title: str, height: int = 110
) -> SafeString:
    """A bar chart of one value per minute (None: no data), as inline SVG."""
    width, pad_left, pad_bottom = 620, 44, 16
    n = len(values)
    top = max((v for v in values if v is not None), default=0) or 1
    plot_h = height - pad_bottom - 6
    bar_w = (width - pad_left) / n
    bars = []
    for i, v in enumerate(values):
        if v is None or v == 0:
            continue
        h = max(1.0, plot_h * float(v) / float(top))
        x = pad_left + i * bar_w
        label = f"{v:.3g}{unit}" if isinstance(v, float) else f"{v}{unit}"
        bars.append(
            format_html(
                '<rect x="{}" y="{}" width="{}" height="{}" fill="{}">'
                "<title>{} min ago: {}</title></rect>",
                f"{x:.1f}",
                f"{6 + plot_h - h:.1f}",
                f"{max(1.0, bar_w - 1):.1f}",
                f"{h:.1f}",
                color,
                n - 1 - i,
                label,
            )
        )
    top_label = f"{top:.3g}{unit}" if isinstance(top, float) else f"{top}{unit}"
    return format_html(
        '<svg class="fastq-chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
        'aria-label="{title}"><line x1="{pl}" y1="6" x2="{pl}" y2="{base}" stroke="#999"/>'
        '<line x1="{pl}" y1="{base}" x2="{w}" y2="{base}" stroke="#999"/>'
        '<text x="2" y="14" font-size="10" fill="#555">{top}</text>'
        '<text x="2" y="{base}" font-size="10" fill="#555">0</text>'
        '<text x="{pl}" y="{h1}" font-size="10" fill="#555">-60 min</text>'
        '<text x="{wr}" y="{h1}" font-size="10" fill="#555" text-anchor="end">now</text>'
        "{bars}</svg>",
        w=width,
        h=height,
        title=title,
        pl=pad_left,
        base=6 + plot_h,
        top=top_label,
        h1=height - 2,
        wr=width - 2,
        bars=mark_safe("".join(bars)),  # each bar built by format_html above
    )


class DashboardAdmin(admin.ModelAdmin):
    """The dashboard pages; see the module docstring for who sees and does what."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("", wrap(self.dashboard_view), name="fastq_django_dashboard_changelist"),
            path("task/<path:task>/", wrap(self.task_view), name="fastq_django_dashboard_task"),
            path("queue/", wrap(self.queue_action), name="fastq_django_dashboard_queue"),
            path("failures/", wrap(self.failure_action), name="fastq_django_dashboard_failures"),
        ]

    # ---- pages ---------------------------------------------------------------------------

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        alias = queues.broker_alias()
        now = timezone.now()
        series = stats.hour_series(alias, now)
        context = {
            **self.admin_site.each_context(request),
            "title": "fastq dashboard",
            "opts": self.model._meta,
            "now": now,
            "refresh_seconds": REFRESH_SECONDS,
            "queues": queues.overview(alias, now),
            "series": series,
            "chart_finished": svg_bars(series.finished, color="#16a34a", title="finished"),
            "chart_failed": svg_bars(series.failed, color="#dc2626", title="failed"),
            "chart_wait": svg_bars(series.p95_wait, color="#2563eb", unit=" s", title="p95 wait"),
            "schedules": [
                {"s": s, "next": next_run(s, now), "last": last_outcome(s)}
                for s in Schedule.objects.using(alias).order_by("name")
            ],
            "failures": stats.failure_groups(alias, now - FAILURE_WINDOW),
            "failure_hours": int(FAILURE_WINDOW.total_seconds() // 3600),
            "tasks": self._tasks(alias, now),
            "workers": live_workers(alias, now),
            "can_see_jobs": can_see_jobs(request),
            "can_steer_queues": can_steer_queues(request),
            "can_act_on_jobs": can_act_on_jobs(request),
            "retention": retention.in_force(),
        }
        template = (
            "admin/fastq_django/dashboard_live.html"
            if request.GET.get("partial") == "1"
            else "admin/fastq_django/dashboard.html"
        )
        return TemplateResponse(request, template, context)

    @staticmethod
    def _tasks(alias: str, now: Any) -> list[str]:
        """Tasks with jobs that finished in the last day, and every registered one."""
        from fastq import registry

        recent = (
            Job.objects.using(alias)
            .filter(finished_at__gte=now - TASK_WINDOW)
            .values_list("task", flat=True)
            .distinct()
            .order_by()
        )
        return sorted(set(recent) | set(registry))

    def task_view(self, request: HttpRequest, task: str) -> HttpResponse:
        if "\x00" in task or len(task) > 255:
            return HttpResponseBadRequest("not a task name")
        alias = queues.broker_alias()
        now = timezone.now()
        since = now - TASK_WINDOW
        see = can_see_jobs(request)
        jobs = Job.objects.using(alias)
        recent = list(
            jobs.filter(task=task, state=JobState.RUNNING).order_by("-started_at")[:RECENT_JOBS]
        ) + list(
            jobs.filter(task=task, finished_at__gte=since).order_by("-finished_at")[:RECENT_JOBS]
        )
        rows = []
        for job in recent[:RECENT_JOBS]:
            shown = shown_job(job) if see else None
            rows.append({"job": job, "shown": shown})
        ts = stats.task_stats(alias, task, since)
        series = stats.hour_series(alias, now, task=task)
        top = max((n for _, n in ts.runtime_histogram), default=0) or 1
        context = {
            **self.admin_site.each_context(request),
            "title": f"fastq task {task}",
            "opts": self.model._meta,
            "task": task,
            "stats": ts,
            "histogram": [(label, n, 100 * n / top) for label, n in ts.runtime_histogram],
            "rows": rows,
            "can_see_jobs": see,
            "chart_finished": svg_bars(series.finished, color="#16a34a", title="finished"),
            "chart_failed": svg_bars(series.failed, color="#dc2626", title="failed"),
            "window_hours": int(TASK_WINDOW.total_seconds() // 3600),
        }
        return TemplateResponse(request, "admin/fastq_django/dashboard_task.html", context)

    # ---- actions (POST, CSRF-checked by admin_view, permission-checked here) -----------

    def _back(self) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:fastq_django_dashboard_changelist"))

    def queue_action(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not can_steer_queues(request):
            raise PermissionDenied
        action = request.POST.get("action", "")
        name = request.POST.get("queue", "")
        by = request.user.get_username()
        try:
            if action == "pause":
                queues.pause(name, by=by)
                messages.success(request, f"Queue {name} paused: no worker starts its jobs now.")
            elif action == "resume":
                queues.resume(name, by=by)
                messages.success(request, f"Queue {name} resumed.")
            elif action == "limit":
                raw = request.POST.get("concurrency", "").strip()
                limit = int(raw) if raw else None
                queues.set_concurrency(name, limit, by=by)
                messages.success(
                    request,
                    f"Queue {name}: "
                    + (f"at most {limit} jobs run at once." if limit else "no concurrency limit."),
                )
            else:
                return HttpResponseBadRequest("unknown action")
        except ValueError as exc:
            messages.error(request, str(exc) if str(exc) else "invalid value")
        return self._back()

    def failure_action(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not can_act_on_jobs(request):
            raise PermissionDenied
        action = request.POST.get("action", "")
        error_type = request.POST.get("error_type", "")
        if "\x00" in error_type or len(error_type) > 255:
            return HttpResponseBadRequest("not an exception type")
        alias = queues.broker_alias()
        since = timezone.now() - FAILURE_WINDOW
        if action == "retry":
            from fastq_django.admin import retry_failed

            n = retry_failed(stats.failure_group_jobs(alias, error_type, since))
            messages.success(
                request, f"{n} job(s) failed with {error_type or '(none)'}: queued again."
            )
        elif action == "cancel":
            if not error_type:
                return HttpResponseBadRequest(
                    "a group without an exception type cannot be cancelled"
                )
            cancelled, asked = cancel_pending(alias, error_type)
            messages.success(
                request,
                f"{error_type or '(none)'}: {cancelled} job(s) waiting for another attempt "
                f"cancelled, {asked} running job(s) asked to stop.",
            )
        else:
            return HttpResponseBadRequest("unknown action")
        return self._back()


def cancel_pending(alias: str, error_type: str) -> tuple[int, int]:
    """Cancels the jobs of a failure group that will run again: queued ones (waiting for
    their next attempt after failing with ``error_type``) end cancelled, running ones are
    asked to stop. Finished ones are history and stay as they are. Each goes through the
    one cancel operation, as the list's Cancel action and ``AsyncResult.cancel`` do."""
    from collections import Counter

    from fastq_django.broker import DatabaseBroker

    # attempts > 0: a job that failed before; with error_type never empty (the view
    # refuses it), fresh jobs are never in a group.
    ids = Job.objects.using(alias).filter(
        error_type=error_type, attempts__gt=0, state__in=[JobState.QUEUED, JobState.RUNNING]
    )
    broker = DatabaseBroker(alias)
    outcomes = Counter(broker.cancel(str(pk)) for pk in ids.values_list("pk", flat=True))
    return outcomes["cancelled"], outcomes["requested"]


admin.site.register(Dashboard, DashboardAdmin)

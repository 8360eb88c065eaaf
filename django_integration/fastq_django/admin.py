"""The job admin: watch jobs by state (a job waiting for its next attempt says "retrying
at ..."), read arguments, results and tracebacks (fastq's own frames folded away), retry
failures from the list or from a job's page. The schedule admin: periodic schedules,
enable/disable, run now. The queue admin: pause, resume and fleet-wide concurrency limits.
The worker registry, read-only. The dashboard: dashboard.py.

Every action needs the change permission of its model (change_job, change_schedule,
change_queue).
Arguments and results are shown with ``FASTQ["ADMIN_REDACT"]`` applied (redact.py)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from fastq_django import queues, workflows
from fastq_django.broker import DatabaseBroker
from fastq_django.models import Job, JobState, Queue, Schedule, WorkerProcess
from fastq_django.redact import (
    Redaction,
    configured_rule,
    loads,
    restore,
    shown_call,
    shown_job,
)
from fastq_django.schedules import last_outcome, next_run, run_now
from fastq_django.tracebacks import without_own_frames


class _RejectNul(admin.ModelAdmin):
    """Answers 400 to a list whose query string holds a NUL: PostgreSQL refuses the
    character in a filter value (a 500 otherwise) and no row could match it."""

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, object] | None = None
    ) -> HttpResponse:
        for key, values in request.GET.lists():
            if "\x00" in key or any("\x00" in value for value in values):
                return HttpResponseBadRequest("NUL character in the query string")
        return super().changelist_view(request, extra_context)


@admin.register(Job)
class JobAdmin(_RejectNul):
    list_display = (
        "id",
        "task",
        "colored_state",
        "error_type_column",
        "queue",
        "priority",
        "attempts",
        "interrupted",
        "run_at",
        "created_at",
        "finished_at",
    )
    list_filter = ("state", "queue", "task")
    change_form_template = "admin/fastq_django/job/change_form.html"
    search_fields = ("=id", "task")
    list_per_page = 50
    show_full_result_count = False  # counting a million rows on every page is slow
    # Newest first by id (UUIDv7, time-ordered): the job store's id indexes serve it at
    # any size, with or without a state filter (docs/job-store.md); created_at would sort
    # the whole history.
    ordering = ("-id",)
    date_hierarchy = None
    actions = ("retry_jobs", "cancel_jobs")
    readonly_fields = (
        "id",
        "task",
        "state",
        "queue",
        "priority",
        "attempts",
        "max_attempts",
        "interrupted",
        "run_at",
        "created_at",
        "started_at",
        "finished_at",
        "worker",
        "lease_expires_at",
        "pretty_args",
        "pretty_kwargs",
        "pretty_result",
        "error_type",
        "shown_error",
        "pretty_traceback",
        "workflow_link",
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "task",
                    "state",
                    "queue",
                    "priority",
                    "attempts",
                    "max_attempts",
                    "interrupted",
                )
            },
        ),
        (
            "Timing",
            {
                "fields": (
                    "run_at",
                    "created_at",
                    "started_at",
                    "finished_at",
                    "worker",
                    "lease_expires_at",
                )
            },
        ),
        ("Call", {"fields": ("pretty_args", "pretty_kwargs")}),
        ("Outcome", {"fields": ("pretty_result", "error_type", "shown_error", "pretty_traceback")}),
        ("Workflow", {"fields": ("workflow_link",)}),
    )

    _COLORS = {
        "waiting": "#a855f7",
        "queued": "#64748b",
        "running": "#2563eb",
        "succeeded": "#16a34a",
        "failed": "#dc2626",
        "expired": "#a16207",
        "cancelled": "#6b7280",
        "dead": "#7f1d1d",
    }

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # The worker owns a job's row, so no one edits one through the form (saving it
        # would write every column back over the worker's). change_job is what lets a
        # user run the actions (retry, cancel), which Django checks without an object.
        if obj is not None:
            return False
        return super().has_change_permission(request)

    @admin.display(description="state", ordering="state")
    def colored_state(self, obj: Job) -> str:
        if waiting_to_retry(obj):
            # A failed attempt waiting for its next one: not just "Queued".
            return format_html(
                '<b style="color:{}">retrying at {}</b>',
                self._COLORS["failed"],
                date_format(timezone.localtime(obj.run_at), "DATETIME_FORMAT"),
            )
        return format_html(
            '<b style="color:{}">{}</b>',
            self._COLORS.get(obj.state, "#000"),
            obj.get_state_display(),
        )

    @admin.display(description="error type", ordering="error_type")
    def error_type_column(self, obj: Job) -> str:
        return obj.error_type or ""

    def get_urls(self) -> list[URLPattern]:
        retry = path(
            "<path:object_id>/retry/",
            self.admin_site.admin_view(self.retry_view),
            name="fastq_django_job_retry",
        )
        workflow = path(
            "workflow/<uuid:workflow_id>/",
            self.admin_site.admin_view(self.workflow_view),
            name="fastq_django_job_workflow",
        )
        return [workflow, retry, *super().get_urls()]

    def retry_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The detail page's Retry button (POST): queues a failed, dead, expired or
        cancelled job again. Needs change_job, like the list's Retry action."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_change_permission(request):
            raise PermissionDenied
        job = self.get_object(request, unquote(object_id))
        if job is None:
            raise Http404("no such job")
        if retry_failed(Job.objects.using(job._state.db).filter(pk=job.pk)):
            self.message_user(request, "The job is queued again.", messages.SUCCESS)
        else:
            self.message_user(
                request,
                f"The job is {job.get_state_display().lower()}: only failed, dead, expired or "
                "cancelled jobs can be retried.",
                messages.WARNING,
            )
        return HttpResponseRedirect(
            reverse(
                "admin:fastq_django_job_change",
                args=[quote(job.pk)],
                current_app=self.admin_site.name,
            )
        )

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        job = self.get_object(request, unquote(object_id))
        context = dict(extra_context or {})
        context["fastq_can_retry"] = (
            job is not None and job.state in _RETRYABLE and self.has_change_permission(request)
        )
        return super().change_view(request, object_id, form_url, context)

    @admin.display(description="workflow")
    def workflow_link(self, obj: Job) -> str:
        if obj.workflow_id is None:
            return "—"
        url = reverse("admin:fastq_django_job_workflow", args=[obj.workflow_id])
        return format_html(
            '<a href="{}">{}</a> ({} parent(s) still to finish)',
            url,
            obj.workflow_id,
            obj.parents_pending,
        )

    def workflow_view(self, request: HttpRequest, workflow_id: Any) -> HttpResponse:
        """A workflow's steps: the graph (SVG), states, timings, the failed step's
        error. Needs view_job; cancelling (POST) needs change_job."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        can_cancel = self.has_change_permission(request)
        qs = self.get_queryset(request)
        if request.method == "POST":
            if not can_cancel:
                raise PermissionDenied
            n = DatabaseBroker(qs.db).cancel_workflow(str(workflow_id))
            self.message_user(
                request, f"{n} unfinished step(s) cancelled or asked to stop.", messages.SUCCESS
            )
            return redirect(request.path)
        graph = workflows.load(workflow_id, qs)
        if graph is None:
            raise Http404("no such workflow")
        links = {
            s.job.id: reverse("admin:fastq_django_job_change", args=[s.job.id]) for s in graph.steps
        }
        rows = []
        for s in graph.steps:
            shown = shown_job(s.job)
            rows.append(
                {
                    "job": s.job,
                    "layer": s.layer,
                    "link": links[s.job.id],
                    "color": self._COLORS.get(s.job.state, "#000"),
                    "parent_count": len(s.parents),
                    "duration": s.duration,
                    "error_type": s.job.error_type,
                    "error": shown["error"],
                }
            )
        failed = [r for r in rows if r["job"].state in (JobState.FAILED, JobState.DEAD)]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Workflow {workflow_id}",
            "graph": graph,
            "rows": rows,
            "states": [
                (state, n, self._COLORS.get(state, "#000"))
                for state, n in sorted(graph.states.items())
            ],
            "picture": mark_safe(workflows.svg(graph, links)),
            "can_cancel": can_cancel,
            "failed": failed,
        }
        return TemplateResponse(request, "admin/fastq_django/workflow.html", context)

    @admin.display(description="args")
    def pretty_args(self, obj: Job) -> str:
        return format_html("<pre>{}</pre>", shown_job(obj)["args"])

    @admin.display(description="kwargs")
    def pretty_kwargs(self, obj: Job) -> str:
        return format_html("<pre>{}</pre>", shown_job(obj)["kwargs"])

    @admin.display(description="result")
    def pretty_result(self, obj: Job) -> str:
        return format_html("<pre>{}</pre>", shown_job(obj)["result"])

    @admin.display(description="error")
    def shown_error(self, obj: Job) -> str:
        return shown_job(obj)["error"] or self.get_empty_value_display()

    @admin.display(description="traceback")
    def pretty_traceback(self, obj: Job) -> str:
        full = shown_job(obj)["traceback"]
        if not full:
            return "—"
        short, hidden = without_own_frames(full)
        if not hidden:
            return format_html("<pre>{}</pre>", full)
        return format_html(
            "<pre>{}</pre><details><summary>{} frame(s) of fastq hidden: show the whole "
            "traceback</summary><pre>{}</pre></details>",
            short,
            hidden,
            full,
        )

    @admin.action(
        permissions=["change"], description="Retry selected failed, dead, expired or cancelled jobs"
    )
    def retry_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        total = queryset.count()
        n = retry_failed(queryset)
        self.message_user(request, f"{n} job(s) queued again.", messages.SUCCESS)
        if total > n:
            self.message_user(
                request,
                f"{total - n} job(s) had not ended unsuccessfully and were left alone.",
                messages.WARNING,
            )

    @admin.action(permissions=["change"], description="Cancel selected jobs")
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        broker = DatabaseBroker(queryset.db)
        outcomes = Counter(broker.cancel(str(pk)) for pk in queryset.values_list("pk", flat=True))
        self.message_user(
            request,
            f"{outcomes['cancelled']} queued job(s) cancelled, {outcomes['requested']} running "
            f"job(s) asked to stop, {outcomes['finished']} already finished.",
            messages.SUCCESS,
        )


_RETRYABLE = [JobState.FAILED, JobState.DEAD, JobState.EXPIRED, JobState.CANCELLED]


def waiting_to_retry(job: Job) -> bool:
    """Queued again after a failed attempt (the row keeps that attempt's error)."""
    return job.state == JobState.QUEUED and job.attempts > 0 and bool(job.error_type)


def retry_failed(queryset: QuerySet[Job]) -> int:
    """Queue jobs that ended unsuccessfully again (attempts, error, result, expiry and
    cancel cleared): the core's retry operation on the queryset's database, which wakes
    the workers on PostgreSQL."""
    alias = queryset.db
    with transaction.atomic(using=alias):
        ids = [str(pk) for pk in queryset.filter(state__in=_RETRYABLE).values_list("pk", flat=True)]
        return DatabaseBroker(alias).retry(ids) if ids else 0


class ScheduleForm(forms.ModelForm):
    """The schedule form with ``FASTQ["ADMIN_REDACT"]`` applied to args and kwargs: a
    masked value shows as the mask and, left as it is, keeps its stored value on save."""

    class Meta:
        model = Schedule
        fields = "__all__"  # the admin's fieldsets pick

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._masked: dict[str, tuple[Any, Any]] = {}  # field -> (stored, shown)
        if self.instance.pk is None:
            return
        ok_args, stored_args = loads(self.instance.args)
        ok_kwargs, stored_kwargs = loads(self.instance.kwargs)
        shown_args, shown_kwargs = Redaction(configured_rule()).call(
            self.instance.task, stored_args, stored_kwargs
        )
        for name, ok, stored, shown in (
            ("args", ok_args, stored_args, shown_args),
            ("kwargs", ok_kwargs, stored_kwargs, shown_kwargs),
        ):
            if ok and shown != stored and name in self.fields:
                self._masked[name] = (stored, shown)
                self.initial[name] = json.dumps(shown, ensure_ascii=False)

    def _unmasked(self, name: str) -> str:
        text = self.cleaned_data[name]
        ok, submitted = loads(text)
        if name not in self._masked or not ok:
            return text
        restored = restore(submitted, *self._masked[name])
        return text if restored == submitted else json.dumps(restored, ensure_ascii=False)

    def clean_args(self) -> str:
        return self._unmasked("args")

    def clean_kwargs(self) -> str:
        return self._unmasked("kwargs")


@admin.register(Schedule)
class ScheduleAdmin(_RejectNul):
    """Edits take effect within seconds: the leader re-reads the table every 2 s, and a
    changed expression, interval, zone or a re-enable makes it compute the next slot from
    now. Schedules declared in code are written again at each worker start."""

    list_display = (
        "name",
        "kind",
        "task",
        "enabled",
        "expression",
        "source",
        "next_run_display",
        "last_run_at",
        "last_outcome_display",
    )
    list_filter = ("enabled", "source", "catch_up")
    search_fields = ("name", "task")
    actions = ("enable_schedules", "disable_schedules", "run_now_action")
    form = ScheduleForm
    readonly_fields = (
        "source",
        "last_run_at",
        "last_job_id",
        "last_outcome",
        "updated_at",
        "shown_args",
        "shown_kwargs",
    )
    fieldsets = (
        (None, {"fields": ("name", "task", "enabled", "source")}),
        ("When", {"fields": ("cron", "timezone", "every", "catch_up", "max_instances")}),
        ("Call", {"fields": ("args", "kwargs", "queue", "priority")}),
        (
            "State",
            {"fields": ("next_run_at", "last_run_at", "last_job_id", "last_outcome", "updated_at")},
        ),
    )

    def get_fieldsets(self, request: HttpRequest, obj: Schedule | None = None) -> Any:
        """Whoever may not edit the schedule reads args and kwargs masked (a read-only
        field would show the stored text)."""
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or self.has_change_permission(request, obj):
            return fieldsets
        shown = {"args": "shown_args", "kwargs": "shown_kwargs"}
        return [
            (title, {**options, "fields": [shown.get(f, f) for f in options["fields"]]})
            for title, options in fieldsets
        ]

    @admin.display(description="args")
    def shown_args(self, obj: Schedule) -> str:
        return format_html("<pre>{}</pre>", shown_call(obj.task, obj.args, obj.kwargs)[0])

    @admin.display(description="kwargs")
    def shown_kwargs(self, obj: Schedule) -> str:
        return format_html("<pre>{}</pre>", shown_call(obj.task, obj.args, obj.kwargs)[1])

    @admin.display(description="next run", ordering="next_run_at")
    def next_run_display(self, obj: Schedule) -> object:
        return next_run(obj) or "—"

    @admin.display(description="last outcome")
    def last_outcome_display(self, obj: Schedule) -> str:
        return last_outcome(obj)

    @admin.action(permissions=["change"], description="Enable selected schedules")
    def enable_schedules(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        # From the next slot after now, not a backlog of the time it was off.
        n = queryset.filter(enabled=False).update(
            enabled=True, next_run_at=None, updated_at=timezone.now()
        )
        self.message_user(request, f"{n} schedule(s) enabled.", messages.SUCCESS)

    @admin.action(permissions=["change"], description="Disable selected schedules")
    def disable_schedules(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        n = queryset.filter(enabled=True).update(enabled=False, updated_at=timezone.now())
        self.message_user(request, f"{n} schedule(s) disabled.", messages.SUCCESS)

    @admin.action(permissions=["change"], description="Run selected schedules now (one job each)")
    def run_now_action(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        ids = [run_now(schedule) for schedule in queryset]
        self.message_user(
            request, f"{len(ids)} job(s) enqueued: {', '.join(ids)}", messages.SUCCESS
        )


@admin.register(WorkerProcess)
class WorkerProcessAdmin(_RejectNul):
    """The worker registry, read-only: the workers write it (view_workerprocess to see
    it). No one adds, edits or deletes a row here; the leader cleans up lost ones."""

    list_display = (
        "host",
        "pid",
        "kind",
        "shown_state",
        "queues",
        "concurrency",
        "processes",
        "processed",
        "failed",
        "rss_mb",
        "started_at",
        "last_heartbeat",
    )
    list_filter = ("kind", "state", "host")
    search_fields = ("id", "host")
    ordering = ("host", "pid")
    readonly_fields = [f.name for f in WorkerProcess._meta.fields]

    @admin.display(description="state")
    def shown_state(self, obj: WorkerProcess) -> str:
        return obj.shown_state

    @admin.display(description="RSS (MB)", ordering="rss_bytes")
    def rss_mb(self, obj: WorkerProcess) -> str:
        return f"{obj.rss_bytes / 1_048_576:.1f}"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Queue)
class QueueAdmin(_RejectNul):
    """Queue controls. Pausing and limits take effect on every worker within a second
    (fastq_django/queues.py); queues without a row are unpaused and unlimited, and the
    dashboard lists every queue, with or without a row."""

    list_display = (
        "name",
        "shown_state",
        "concurrency",
        "settings_concurrency",
        "changed_by",
        "updated_at",
    )
    list_editable = ("concurrency",)
    actions = ("pause_queues", "resume_queues")
    fields = ("name", "paused", "concurrency", "settings_concurrency", "changed_by", "updated_at")
    readonly_fields = ("settings_concurrency", "changed_by", "updated_at")
    search_fields = ("name",)

    def get_readonly_fields(self, request: HttpRequest, obj: Queue | None = None) -> Any:
        if obj is not None:
            return ("name", *self.readonly_fields)
        return self.readonly_fields

    @admin.display(description="state", ordering="paused")
    def shown_state(self, obj: Queue) -> str:
        if obj.paused:
            return format_html('<b style="color:#b45309">{}</b>', "paused")
        return format_html('<span style="color:#15803d">{}</span>', "active")

    def save_model(self, request: HttpRequest, obj: Queue, form: Any, change: bool) -> None:
        queues.check_name(obj.name)
        obj.changed_by = request.user.get_username()[:150]
        obj.updated_at = timezone.now()
        super().save_model(request, obj, form, change)
        queues.notify(obj._state.db or "default")

    @admin.action(permissions=["change"], description="Pause selected queues (fleet-wide)")
    def pause_queues(self, request: HttpRequest, queryset: QuerySet[Queue]) -> None:
        names = list(queryset.values_list("name", flat=True))
        for name in names:
            queues.pause(name, by=request.user.get_username(), alias=queryset.db)
        self.message_user(request, f"{len(names)} queue(s) paused.", messages.SUCCESS)

    @admin.action(permissions=["change"], description="Resume selected queues")
    def resume_queues(self, request: HttpRequest, queryset: QuerySet[Queue]) -> None:
        names = list(queryset.values_list("name", flat=True))
        for name in names:
            queues.resume(name, by=request.user.get_username(), alias=queryset.db)
        self.message_user(request, f"{len(names)} queue(s) resumed.", messages.SUCCESS)


from fastq_django import dashboard  # noqa: E402, F401  (registers the dashboard)

"""The admin's workflow page: a workflow's steps laid out in layers (a step's layer is the
longest path to it from a step without parents), drawn server-side as an SVG and listed
with states, timings and the failed step's error.

A retention job must not delete a step whose workflow still runs: :func:`running` says
whether any step of a workflow is still waiting, queued or running (docs/workflows.md).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import QuerySet
from django.utils.html import escape

from fastq_django.models import Dependency, Job, JobState, Workflow

UNFINISHED = (JobState.WAITING, JobState.QUEUED, JobState.RUNNING)
# Steps drawn at most; a larger workflow is listed, and drawn only in part.
MAX_DRAWN = 400

COLORS = {
    "waiting": "#a855f7",
    "queued": "#64748b",
    "running": "#2563eb",
    "succeeded": "#16a34a",
    "failed": "#dc2626",
    "expired": "#a16207",
    "cancelled": "#6b7280",
    "dead": "#7f1d1d",
}


def running(workflow_id: uuid.UUID | str, using: str = "default") -> bool:
    """True while any step of the workflow is waiting, queued or running: its finished
    steps must then be kept (their results feed the steps still to run)."""
    return (
        Job.objects.using(using)
        .filter(workflow_id=uuid.UUID(str(workflow_id)), state__in=UNFINISHED)
        .exists()
    )


@dataclass
class Step:
    job: Job
    layer: int = 0
    row: int = 0
    parents: list[uuid.UUID] = field(default_factory=list)

    @property
    def duration(self) -> float | None:
        j = self.job
        if j.started_at and j.finished_at:
            return (j.finished_at - j.started_at).total_seconds()
        return None


@dataclass
class Graph:
    workflow_id: uuid.UUID
    steps: list[Step]
    edges: list[tuple[uuid.UUID, uuid.UUID]]
    records: list[Workflow]
    failed: list[Step]
    created: datetime | None
    finished: datetime | None

    @property
    def states(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.steps:
            out[s.job.state] = out.get(s.job.state, 0) + 1
        return out

    @property
    def unfinished(self) -> bool:
        return any(s.job.state in UNFINISHED for s in self.steps)


def load(workflow_id: uuid.UUID, jobs: QuerySet[Job]) -> Graph | None:
    """The workflow's steps (from ``jobs``, the admin's queryset), edges and layers."""
    rows = list(jobs.filter(workflow_id=workflow_id).order_by("created_at", "id"))
    if not rows:
        return None
    db = jobs.db
    edges = [
        (p, c)
        for p, c in Dependency.objects.using(db)
        .filter(workflow_id=workflow_id)
        .order_by("child_id", "position")
        .values_list("parent_id", "child_id")
    ]
    steps = {j.id: Step(j) for j in rows}
    for p, c in edges:
        if c in steps:
            steps[c].parents.append(p)
    # Longest path from a root: parents before children (the graph is acyclic).
    order = _topological(steps, edges)
    for sid in order:
        s = steps[sid]
        s.layer = max((steps[p].layer + 1 for p in s.parents if p in steps), default=0)
    rows_in_layer: dict[int, int] = {}
    for sid in order:
        s = steps[sid]
        s.row = rows_in_layer.get(s.layer, 0)
        rows_in_layer[s.layer] = s.row + 1
    ordered = sorted(steps.values(), key=lambda s: (s.layer, s.row))
    failed = [s for s in ordered if s.job.state in (JobState.FAILED, JobState.DEAD)]
    finished = [s.job.finished_at for s in ordered if s.job.finished_at]
    records = list(Workflow.objects.using(db).filter(root_id=workflow_id).order_by("created_at"))
    return Graph(
        workflow_id,
        ordered,
        edges,
        records,
        failed,
        min(s.job.created_at for s in ordered),
        None if any(s.job.state in UNFINISHED for s in ordered) else max(finished, default=None),
    )


def _topological(steps: dict[uuid.UUID, Step], edges: list[tuple[uuid.UUID, uuid.UUID]]) -> list:
    children: dict[uuid.UUID, list[uuid.UUID]] = {}
    indegree = dict.fromkeys(steps, 0)
    for p, c in edges:
        if p in steps and c in steps:
            children.setdefault(p, []).append(c)
            indegree[c] += 1
    ready = [sid for sid in steps if indegree[sid] == 0]
    out: list[uuid.UUID] = []
    while ready:
        sid = ready.pop(0)
        out.append(sid)
        for c in children.get(sid, ()):
            indegree[c] -= 1
            if indegree[c] == 0:
                ready.append(c)
    out += [sid for sid in steps if sid not in set(out)]  # a cycle written by hand
    return out


BOX_W, BOX_H, GAP_X, GAP_Y = 170, 44, 60, 14


def svg(graph: Graph, link: dict[uuid.UUID, str]) -> str:
    """The graph as an SVG (escaped text; each box links to its job's page)."""
    drawn = [s for s in graph.steps if s.row < MAX_DRAWN]
    if not drawn:
        return ""
    at = {s.job.id: s for s in drawn}
    width = (max(s.layer for s in drawn) + 1) * (BOX_W + GAP_X)
    height = (max(s.row for s in drawn) + 1) * (BOX_H + GAP_Y)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="workflow graph" '
        'style="font:12px sans-serif">'
    ]
    for p, c in graph.edges:
        if p in at and c in at:
            a, b = at[p], at[c]
            x1 = a.layer * (BOX_W + GAP_X) + BOX_W
            y1 = a.row * (BOX_H + GAP_Y) + BOX_H // 2
            x2 = b.layer * (BOX_W + GAP_X)
            y2 = b.row * (BOX_H + GAP_Y) + BOX_H // 2
            parts.append(
                f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#94a3b8" stroke-width="1"/>'
            )
    for s in drawn:
        x = s.layer * (BOX_W + GAP_X)
        y = s.row * (BOX_H + GAP_Y)
        color = COLORS.get(s.job.state, "#000")
        name = s.job.task.rsplit(".", 1)[-1][:24]
        parts.append(
            f'<a href="{escape(link[s.job.id])}"><rect x="{x}" y="{y}" width="{BOX_W}" '
            f'height="{BOX_H}" rx="6" fill="#fff" stroke="{color}" stroke-width="2"/>'
            f'<text x="{x + 8}" y="{y + 17}" fill="#111">{escape(name)}</text>'
            f'<text x="{x + 8}" y="{y + 34}" fill="{color}">{escape(s.job.state)}</text></a>'
        )
    parts.append("</svg>")
    return "".join(parts)

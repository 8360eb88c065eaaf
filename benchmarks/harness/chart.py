"""latest.png from latest.json: ``python chart.py latest.json latest.png``.

Runs with the peers' virtualenv (matplotlib); standard library otherwise.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

COLORS = {
    "fastq": "#1f77b4",
    "fastq-tasks": "#17becf",
    "limit": "#7f7f7f",
    "celery": "#2ca02c",
    "django-q2": "#ff7f0e",
    "django-tasks": "#d62728",
}
ORDER = ("fastq", "fastq-tasks", "limit", "celery", "django-q2", "django-tasks")
BROKERS = ("postgres", "sqlite", "redis")


def medians(
    records: list[dict[str, Any]], workload: str, field: str
) -> list[tuple[str, str, float]]:
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in records:
        if r["workload"] == workload and r.get(field) is not None:
            groups[(r["system"], r["broker"])].append(float(r[field]))
    keys = sorted(groups, key=lambda k: (ORDER.index(k[0]), BROKERS.index(k[1])))
    return [(s, b, statistics.median(groups[(s, b)])) for s, b in keys]


def panel(ax: Any, rows: list[tuple[str, str, float]], title: str, unit: str, log: bool) -> None:
    labels = [f"{s}\n{b}" for s, b, _ in rows]
    values = [v for _, _, v in rows]
    ax.barh(labels, values, color=[COLORS[s] for s, _, _ in rows])
    ax.invert_yaxis()
    if log and values and min(values) > 0:
        ax.set_xscale("log")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(unit, fontsize=8)
    ax.tick_params(labelsize=7)
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:,.0f}" if v >= 10 else f" {v:.1f}", va="center", fontsize=7)


def main() -> None:
    with open(sys.argv[1]) as f:
        data = json.load(f)
    records = data["records"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    panel(
        axes[0][0],
        medians(records, "noop", "jobs_per_s"),
        "no-op drain (higher is better)",
        "jobs/s, log scale",
        True,
    )
    panel(
        axes[0][1],
        medians(records, "latency", "p50_ms"),
        "enqueue-to-start latency p50 (lower is better)",
        "ms, log scale",
        True,
    )
    panel(
        axes[1][0],
        medians(records, "io", "jobs_per_s"),
        "io: HTTP calls of 50 ms (higher is better)",
        "jobs/s (peers cut off at the cap: jobs done by then / time)",
        False,
    )
    panel(
        axes[1][1],
        medians(records, "noop", "peak_rss_mb"),
        "peak RSS of the workers during no-op",
        "MiB",
        False,
    )
    run = data["run"]
    fig.suptitle(
        f"fastq and its peers on {data['machine']['cpus']} cores "
        f"(median of {run['repeats']}{', quick run' if run['quick'] else ''})",
        fontsize=12,
    )
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=72)


if __name__ == "__main__":
    main()

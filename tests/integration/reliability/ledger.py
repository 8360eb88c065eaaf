"""The ledger checker: what ran (the ledger written by testapp.reliability_tasks) against
what was enqueued and what the job table says.

- lost: enqueued, never executed to completion, and not in a terminal state;
- duplicated: more than one completed execution of one job;
- unexpected: executions of jobs that were never enqueued;
- untraceable duplicates: a duplicated job is traceable when all its completed executions
  but one ran in processes the test killed (a process killed after a job ended but before
  its outcome was written leaves an execution whose outcome never reached the database;
  the job then runs again). Anything else is a job run twice by live workers;
- phantom: the table says succeeded, but no execution of the job completed;
- reused tokens: two executions under one lease token, i.e. one claim run twice.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TERMINAL = frozenset({"succeeded", "failed", "dead", "expired", "cancelled"})


def job_key(job_id: Any) -> str:
    """One spelling for job ids (the table's UUIDs, the ledger's strings)."""
    return uuid.UUID(str(job_id)).hex


@dataclass
class Execution:
    """One run of a task body: its start line and, unless the process died, its end line."""

    job: str
    task: str | None
    attempt: int | None
    token: int | None
    pid: int
    pgid: int
    key: str
    started: float
    ended: float | None = None
    outcome: str | None = None
    notes: list[dict[str, Any]] = field(default_factory=list)  # other lines (cleanup, ...)

    @property
    def completed(self) -> bool:
        return self.ended is not None

    def __str__(self) -> str:
        end = f"{self.ended:.3f} {self.outcome}" if self.completed else "no end"
        return (
            f"job {self.job} attempt {self.attempt} token {self.token} pid {self.pid} "
            f"pgid {self.pgid}: start {self.started:.3f}, {end}"
        )


def read(path: Path) -> list[Execution]:
    """Pairs the ledger's start and end lines into executions, in order of start."""
    executions: list[Execution] = []
    open_: dict[tuple[Any, ...], list[Execution]] = {}
    if not path.exists():
        return executions
    with path.open() as f:
        for n, text in enumerate(f, 1):
            if not text.endswith("\n"):
                break  # the last line, still being written by a live worker
            if not text.strip():
                continue
            try:
                line = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: not a ledger line (interleaved?): {text!r}") from exc
            job = job_key(line["job"])
            k = (job, line["pid"], line["attempt"], line["token"])
            event = line["event"]
            if event == "start":
                e = Execution(
                    job=job,
                    task=line.get("task"),
                    attempt=line["attempt"],
                    token=line["token"],
                    pid=line["pid"],
                    pgid=line.get("pgid", line["pid"]),
                    key=line.get("key", ""),
                    started=line["t"],
                )
                executions.append(e)
                open_.setdefault(k, []).append(e)
            elif not open_.get(k):
                raise ValueError(f"{path}:{n}: {event} line without a start: {text!r}")
            elif event == "end":
                e = open_[k].pop()
                e.ended = line["t"]
                e.outcome = line.get("outcome")
            else:
                open_[k][-1].notes.append(line)
    return executions


@dataclass
class JobRow:
    state: str
    attempts: int
    error_type: str


@dataclass
class Report:
    executions: list[Execution]
    rows: dict[str, JobRow]
    enqueued: set[str]
    lost: set[str]
    duplicated: dict[str, list[Execution]]
    unexpected: set[str]
    untraceable: dict[str, list[Execution]]
    phantom: set[str]
    reused_tokens: dict[tuple[str, int], list[Execution]]

    @property
    def duplicates_traceable(self) -> bool:
        return not self.untraceable

    def of(self, job_id: Any) -> list[Execution]:
        k = job_key(job_id)
        return [e for e in self.executions if e.job == k]

    def states(self, jobs: Iterable[Any] | None = None) -> Counter[str]:
        keys = self.enqueued if jobs is None else {job_key(j) for j in jobs}
        return Counter(self.rows[k].state if k in self.rows else "missing" for k in keys)

    def summary(self, examples: int = 5) -> str:
        completed = sum(e.completed for e in self.executions)
        lines = [
            f"{len(self.enqueued)} enqueued, {len(self.executions)} executions "
            f"({completed} completed), states {dict(self.states())}",
            f"lost {len(self.lost)}, duplicated {len(self.duplicated)} "
            f"(untraceable {len(self.untraceable)}), unexpected {len(self.unexpected)}, "
            f"phantom {len(self.phantom)}, reused tokens {len(self.reused_tokens)}",
        ]
        for name, jobs in (
            ("lost", self.lost),
            ("unexpected", self.unexpected),
            ("phantom", self.phantom),
        ):
            for k in sorted(jobs)[:examples]:
                row = self.rows.get(k)
                lines.append(f"  {name} {k}: {row}; executions: {[str(e) for e in self.of(k)]}")
        for k, runs in list(self.untraceable.items())[:examples]:
            lines.append(f"  untraceable duplicate {k}: {self.rows.get(k)}")
            lines += [f"    {e}" for e in runs]
        for (k, token), runs in list(self.reused_tokens.items())[:examples]:
            lines.append(f"  token {token} of {k} ran {len(runs)} times")
        return "\n".join(lines)

    def assert_clean(self) -> None:
        """Nothing lost, nothing unexpected, no phantom, duplicates only from kills."""
        assert not (
            self.lost or self.unexpected or self.untraceable or self.phantom or self.reused_tokens
        ), self.summary()


def check(
    path: Path,
    enqueued: Iterable[Any],
    *,
    killed_pids: Iterable[int] = (),
    killed_pgids: Iterable[int] = (),
) -> Report:
    """Reads the ledger and the job table (through Django) and compares them."""
    from fastq_django.models import Job

    executions = read(path)
    rows = {
        job_key(pk): JobRow(state, attempts, error_type or "")
        for pk, state, attempts, error_type in Job.objects.values_list(
            "id", "state", "attempts", "error_type"
        )
    }
    wanted = {job_key(j) for j in enqueued}
    killed_pid_set, killed_pgid_set = set(killed_pids), set(killed_pgids)

    completed: dict[str, list[Execution]] = {}
    by_token: dict[tuple[str, int], list[Execution]] = {}
    for e in executions:
        if e.completed:
            completed.setdefault(e.job, []).append(e)
        if e.token is not None:
            by_token.setdefault((e.job, e.token), []).append(e)

    def killed(e: Execution) -> bool:
        return e.pid in killed_pid_set or e.pgid in killed_pgid_set

    lost = {
        k for k in wanted if k not in completed and (k not in rows or rows[k].state not in TERMINAL)
    }
    duplicated = {k: runs for k, runs in completed.items() if len(runs) > 1}
    untraceable = {
        k: runs for k, runs in duplicated.items() if len(runs) - sum(killed(e) for e in runs) > 1
    }
    phantom = {k for k in wanted if k in rows and rows[k].state == "succeeded"} - set(completed)
    return Report(
        executions=executions,
        rows=rows,
        enqueued=wanted,
        lost=lost,
        duplicated=duplicated,
        unexpected={e.job for e in executions} - wanted,
        untraceable=untraceable,
        phantom=phantom,
        reused_tokens={k: runs for k, runs in by_token.items() if len(runs) > 1},
    )

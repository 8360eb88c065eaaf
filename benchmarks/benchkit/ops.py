"""The operations `run.py` asks of every system, as ``manage.py bench <op> ...``.

Each operation prints one JSON object on the last line of stdout. The system-specific
parts (how to enqueue, how to count finished jobs) come from an :class:`Adapter`; the
loops and the arithmetic are here, so that every system is driven the same way.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from typing import Any, Protocol


class Adapter(Protocol):
    def reset(self) -> None:
        """Remove every job and result, except the depth backlog (see ``depth``)."""

    def prefill(self, n: int, task: str, url: str) -> None:
        """Put ``n`` jobs of ``task`` ("noop" or "io", which GETs ``url``) on the queue the
        worker consumes, by the fastest means the system has (the drain is measured, not
        this)."""

    def depth(self, n: int) -> int:
        """Make sure ``n`` jobs wait where the worker never takes them (another queue, or
        another cluster's key); returns how many were already there."""

    def enqueue(self, n: int) -> None:
        """``n`` no-op jobs, one public enqueue call each (``.delay()`` or equivalent)."""

    def enqueue_bulk(self, n: int) -> bool:
        """``n`` no-op jobs through the system's bulk path; False if it has none."""

    def done(self) -> int:
        """Jobs finished successfully (read from the system's own results or ledger)."""

    def last_finish(self) -> float | None:
        """Epoch seconds at which the last job finished, as the system recorded it, or
        None if it records no such time."""

    def probe(self, enqueued_at: float) -> Any:
        """Enqueue one ``probe(enqueued_at)`` job; returns a handle for ``probe_starts``."""

    def probe_starts(self, handles: list[Any], timeout: float) -> list[float | None]:
        """The start time each probe job returned (None: not finished within timeout)."""


BULK_CHUNK = 5000  # jobs per bulk call: the batch fastq's task.map hands its broker


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted, non-empty sequence."""
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _timed(fn: Any, *args: Any) -> float:
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def op_drain(
    adapter: Adapter, jobs: int, task: str, url: str, cap: float, poll: float, external: bool
) -> None:
    """Resets and prefills the queue, says ``ready``, and waits for ``go <t0>`` on stdin
    (the harness sends it as it starts the worker). Then either polls until ``jobs`` are
    done or ``cap`` seconds have passed since t0, or (``external``: a worker that exits by
    itself when the queue is empty) waits for a ``finished`` line. Reports how many jobs
    finished and when the last one did."""
    adapter.reset()
    prefill_s = _timed(adapter.prefill, jobs, task, url)
    adapter.done()  # connect before the clock starts
    emit({"ready": True, "prefill_s": prefill_s})
    t0 = float(sys.stdin.readline().split()[1])
    if external:
        sys.stdin.readline()
        done, observed = adapter.done(), time.time()
    else:
        while True:
            done = adapter.done()
            observed = time.time()
            if done >= jobs or observed - t0 >= cap:
                break
            time.sleep(poll)
    end = adapter.last_finish() if done >= jobs else None
    emit({"done": done, "end": end if end is not None else observed, "prefill_s": prefill_s})


def op_enqueue(adapter: Adapter, jobs: int, cap: float) -> None:
    """``.delay()`` in a loop, then the bulk path in calls of BULK_CHUNK jobs; each stops
    at ``jobs`` or after ``cap`` seconds."""
    out: dict[str, Any] = {}
    adapter.reset()
    done, started = 0, time.perf_counter()
    while done < jobs and time.perf_counter() - started < cap:
        step = min(100, jobs - done)
        adapter.enqueue(step)
        done += step
    out["enqueue"] = {"jobs": done, "seconds": time.perf_counter() - started}
    adapter.reset()
    # The first call is small, so that a slow bulk path cannot overrun the cap by much;
    # then calls grow to what a quarter of the cap takes, at most BULK_CHUNK.
    done, started, step = 0, time.perf_counter(), min(500, jobs)
    while done < jobs and time.perf_counter() - started < cap:
        if not adapter.enqueue_bulk(step):
            break
        done += step
        rate = done / (time.perf_counter() - started)
        step = min(jobs - done, max(100, min(BULK_CHUNK, int(rate * cap / 4))))
    if done:
        out["enqueue-bulk"] = {"jobs": done, "seconds": time.perf_counter() - started}
    adapter.reset()
    emit(out)


def op_latency(adapter: Adapter, rate: float, seconds: float, timeout: float) -> None:
    """Resets the queue, says ``ready`` and waits for ``go`` (the harness then starts
    the worker); enqueues probes at a steady ``rate`` for ``seconds`` and reports
    enqueue-to-start percentiles."""
    adapter.reset()
    emit({"ready": True})
    sys.stdin.readline()
    # The worker may still be starting: wait until a first probe has run.
    warm = [adapter.probe(time.time()) for _ in range(3)]
    if None in adapter.probe_starts(warm, timeout):
        emit({"error": "the worker did not run the warm-up probes"})
        return
    count = int(rate * seconds)
    handles: list[tuple[float, Any]] = []
    start = time.perf_counter()
    for i in range(count):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        enqueued_at = time.time()
        handles.append((enqueued_at, adapter.probe(enqueued_at)))
    achieved = count / (time.perf_counter() - start)
    starts = adapter.probe_starts([h for _, h in handles], timeout)
    lat = sorted(
        (s - e) * 1000.0 for (e, _), s in zip(handles, starts, strict=True) if s is not None
    )
    if not lat:
        emit({"error": "no probe finished", "n": count})
        return
    emit(
        {
            "n": len(lat),
            "missing": count - len(lat),
            "rate": achieved,
            "p50_ms": percentile(lat, 50),
            "p95_ms": percentile(lat, 95),
            "p99_ms": percentile(lat, 99),
            "max_ms": lat[-1],
        }
    )


def main(adapter: Adapter, argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="manage.py bench")
    sub = parser.add_subparsers(dest="op", required=True)
    sub.add_parser("reset")
    p = sub.add_parser("drain")
    p.add_argument("--jobs", type=int, required=True)
    p.add_argument("--task", choices=["noop", "io"], default="noop")
    p.add_argument("--url", default="")
    p.add_argument("--cap", type=float, required=True)
    p.add_argument("--poll", type=float, default=0.05)
    p.add_argument("--external", action="store_true")
    p = sub.add_parser("depth")
    p.add_argument("--jobs", type=int, required=True)
    p = sub.add_parser("enqueue")
    p.add_argument("--jobs", type=int, required=True)
    p.add_argument("--cap", type=float, required=True)
    sub.add_parser("stats")
    p = sub.add_parser("latency")
    p.add_argument("--rate", type=float, default=200.0)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--timeout", type=float, default=30.0)
    opts = parser.parse_args(argv)

    if opts.op == "reset":
        emit({"seconds": _timed(adapter.reset)})
    elif opts.op == "drain":
        op_drain(adapter, opts.jobs, opts.task, opts.url, opts.cap, opts.poll, opts.external)
    elif opts.op == "depth":
        started = time.perf_counter()
        present = adapter.depth(opts.jobs)
        emit({"seconds": time.perf_counter() - started, "present": present})
    elif opts.op == "enqueue":
        op_enqueue(adapter, opts.jobs, opts.cap)
    elif opts.op == "stats":
        emit({"done": adapter.done(), "end": adapter.last_finish()})
    elif opts.op == "latency":
        op_latency(adapter, opts.rate, opts.seconds, opts.timeout)

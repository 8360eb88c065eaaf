"""Rate limits hold across worker processes: ``rate_limit="50/s"`` over three workers,
and a keyed limit (``rate_limit_key``) that holds per key while keys run side by side.

Tolerance: a limiter may let a small burst through, so no 1-second window may hold more
than the rate plus BURST_SHARE of it (50/s: 60 starts; 20/s: 24 starts)."""

from __future__ import annotations

import signal

import ledger as ledger_check
import pytest
from fleet import unfinished, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

BURST_SHARE = 0.2
ENV = {"FASTQ_TEST_IMPORTS": "testapp.rate_limit_tasks"}


def _busiest_second(starts: list[float]) -> int:
    """The most starts in any window [t, t + 1 s) opened by a start."""
    starts = sorted(starts)
    best, j = 0, 0
    for i, t in enumerate(starts):
        while j < len(starts) and starts[j] < t + 1.0:
            j += 1
        best = max(best, j - i)
    return best


def _start(fleet) -> list:
    """Three workers, up and idle before the jobs arrive. A small prefetch keeps one of
    them from taking every job, so the limit has to hold across processes."""
    workers = [fleet("--concurrency", "4", "--prefetch", "4", env=ENV) for _ in range(3)]
    for w in workers:
        wait_for(lambda w=w: "fastq worker" in w.output(), 60, "the worker to start", alive=[w])
    return workers


def _finish(workers, ledger, ids: list[str]) -> ledger_check.Report:
    wait_for(lambda: unfinished() == 0, 180, "every job to run", alive=workers, interval=0.2)
    for w in workers:
        w.signal(signal.SIGTERM)
    for w in workers:
        w.finish(60)
    report = ledger_check.check(ledger, ids)
    assert report.states() == {"succeeded": len(ids)}, report.summary()
    report.assert_clean()
    assert len({e.pgid for e in report.executions}) > 1, "one worker ran everything: vacuous"
    return report


@pytest.mark.slow
def test_a_rate_limit_holds_across_three_workers(fleet, ledger):
    from testapp import rate_limit_tasks

    workers = _start(fleet)
    ids = [r.id for r in rate_limit_tasks.limited.map([(i,) for i in range(200)])]
    report = _finish(workers, ledger, ids)
    starts = sorted(e.started for e in report.executions)
    span, busiest = starts[-1] - starts[0], _busiest_second(starts)
    print(f"\n200 starts over {span:.2f} s, at most {busiest} in one second")
    assert span >= 3.5
    assert busiest <= 50 * (1 + BURST_SHARE)


@pytest.mark.slow
def test_a_keyed_rate_limit_holds_per_key_and_keys_run_side_by_side(fleet, ledger):
    from testapp import rate_limit_tasks

    calls = [(provider, i) for i in range(60) for provider in ("a", "b")]
    workers = _start(fleet)
    ids = [r.id for r in rate_limit_tasks.per_provider.map(calls)]
    report = _finish(workers, ledger, ids)
    spans = {}
    for provider in ("a", "b"):
        starts = sorted(e.started for e in report.executions if e.key == provider)
        assert len(starts) == 60
        busiest = _busiest_second(starts)
        spans[provider] = (starts[0], starts[-1])
        print(f"\n{provider}: 60 starts over {starts[-1] - starts[0]:.2f} s, at most {busiest}/s")
        assert busiest <= 20 * (1 + BURST_SHARE)
        assert starts[-1] - starts[0] >= 2.5
    # Each key has its own budget: the two ran in parallel, not one after the other.
    overlap = min(spans["a"][1], spans["b"][1]) - max(spans["a"][0], spans["b"][0])
    for first, last in spans.values():
        assert overlap >= 0.5 * (last - first), spans

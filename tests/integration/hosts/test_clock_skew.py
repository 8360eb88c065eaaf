"""Hosts whose wall clocks are two minutes off, one ahead, one behind, next to one whose
clock is right, all on leases shorter than their jobs: leases are judged on the
database's clock, so no host steals a lease that is alive (the one ahead would see every
lease as expired on its own clock) nor loses its own (the one behind would write leases
that expired two minutes ago)."""

from __future__ import annotations

import re
import signal
from collections import Counter

import ledger as ledger_check
import pytest
from fastq_django.models import Job
from fleet import unfinished, wait_for
from ledger import job_key
from testapp import reliability_tasks

pytestmark = pytest.mark.django_db(transaction=True)

SKEW = 120  # seconds
LEASE = 2.0
LONG, LONG_SECONDS, SHORT = 24, 4.0, 600
WORKER_ARGS = (
    *("--processes", "1", "--concurrency", "4", "--prefetch", "2"),
    *("--lease", str(LEASE), "--no-scheduler"),
)


@pytest.mark.slow
def test_skewed_clocks_neither_steal_nor_lose_leases(hosts, start_on, ledger):
    skews = (SKEW, -SKEW, 0)
    workers = [start_on(h, *WORKER_ARGS, skew=s) for h, s in zip(hosts, skews, strict=True)]
    # Every host up and running jobs first (fed a few at a time until each has run one:
    # the first host up would drain a fixed batch before the others start); then long
    # jobs, more than all hosts take at once, so that every host holds some through
    # several renewals.
    ids: list[str] = []

    def every_host_ran_one() -> bool:
        if {e.pgid for e in ledger_check.read(ledger)} == {w.pid for w in workers}:
            return True
        n = len(ids)
        ids.extend(
            r.id for r in reliability_tasks.sleep.map([(0.05, f"w{n + i}") for i in range(6)])
        )
        return False

    wait_for(every_host_ran_one, 120, "every host to run a job", alive=workers, interval=0.5)
    long = reliability_tasks.sleep.map([(LONG_SECONDS, f"l{i}") for i in range(LONG)])
    ids += [r.id for r in long]
    ids += [r.id for r in reliability_tasks.sleep.map([(0.02, f"s{i}") for i in range(SHORT)])]
    wait_for(lambda: unfinished() == 0, 180, "every job to finish", alive=workers, interval=0.2)
    for w in workers:
        w.signal(signal.SIGTERM)
    out = {w.pid: w.finish(120) for w in workers}

    report = ledger_check.check(ledger, ids)
    started_at = {job_key(pk): t for pk, t in Job.objects.values_list("id", "started_at")}
    long_by_host = Counter(e.pgid for e in report.executions if e.key.startswith("l"))
    print(f"\nlong jobs per host {dict(long_by_host)}\n{report.summary()}")
    for w, skew in zip(workers, skews, strict=True):
        # The skew took effect: the host's wall clock (the ledger's times) is off by it
        # against the database's (the claim's started_at).
        offsets = [
            e.started - started_at[e.job].timestamp() for e in report.executions if e.pgid == w.pid
        ]
        assert offsets, f"host with skew {skew:+d} s ran nothing"
        assert all(abs(o - skew) < 10 for o in offsets), (
            skew,
            sorted(offsets)[:: len(offsets) // 5 or 1],
        )
        assert long_by_host[w.pid] >= 2, f"host with skew {skew:+d} s held too few long jobs"
        stats = out[w.pid]
        assert re.search(r" 0 rescued, 0 fenced", stats), stats
    # No lease was lost nor stolen: every job ran once, on its first attempt.
    failed = Counter(Job.objects.exclude(state="succeeded").values_list("error_type", "error"))
    assert report.states() == {"succeeded": len(ids)}, (failed.most_common(3), report.summary())
    assert not report.duplicated, report.summary()
    report.assert_clean()
    attempts = Counter(Job.objects.values_list("attempts", flat=True))
    assert attempts == {1: len(ids)}, attempts

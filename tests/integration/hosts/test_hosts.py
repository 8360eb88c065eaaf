"""The harness itself: each host reaches the database through its own cable only, and
the hosts share one queue."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter

import ledger as ledger_check
import pytest
from fleet import unfinished, wait_for
from testapp import reliability_tasks

pytestmark = pytest.mark.django_db(transaction=True)

PROBE = "import socket,sys; socket.create_connection((sys.argv[1], 5432), 2)"


def _reaches(host, addr: str) -> bool:
    run = subprocess.run(
        [*host.prefix(), sys.executable, "-c", PROBE, addr], capture_output=True, timeout=30
    )
    return run.returncode == 0


def test_hosts_reach_the_database_only_through_their_cable(hosts):
    h = hosts[0]
    assert _reaches(h, h.db_addr)
    assert not _reaches(h, "127.0.0.1"), "the namespace reaches the machine's loopback"
    assert not _reaches(h, hosts[1].db_addr), "a host reaches another host's cable"
    h.cut()
    try:
        assert not _reaches(h, h.db_addr), "a cut cable still carries traffic"
    finally:
        h.heal()
    # A link just set up may refuse the first connection (its neighbour entry failed while
    # the cable was cut and is probed again): the cable must carry traffic again soon.
    wait_for(lambda: _reaches(h, h.db_addr), 60, "the healed cable to carry traffic")


def test_three_hosts_share_one_queue(hosts, start_on, ledger):
    ids = [r.id for r in reliability_tasks.sleep.map([(0.01, f"s{i}") for i in range(300)])]
    workers = [
        start_on(h, "--processes", "1", "--concurrency", "2", "--prefetch", "2", "--no-scheduler")
        for h in hosts
    ]
    wait_for(lambda: unfinished() == 0, 120, "every job to finish", alive=workers)
    for w in workers:
        w.signal(signal.SIGTERM)
    for w in workers:
        w.finish(60)
    report = ledger_check.check(ledger, ids)
    by_host = Counter(e.pgid for e in report.executions)
    assert set(by_host) == {w.pid for w in workers}, by_host
    assert report.states() == {"succeeded": 300}, report.summary()
    assert not report.duplicated, report.summary()
    report.assert_clean()

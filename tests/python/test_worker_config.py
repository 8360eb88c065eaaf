"""The worker's options are one bound config object (fastq._core.WorkerConfig) whose
defaults, those of the C++ struct, are the only ones."""

import threading

import fastq
import pytest
from fastq import _core

seen: dict[str, object] = {}


@fastq.task(name="tests.worker_config.note_cancel")
def note_cancel() -> bool:
    job = fastq.current_job()
    assert job is not None
    seen["cancel_requested"] = job.cancel_requested
    return True


def test_a_new_config_holds_the_defaults():
    c = _core.WorkerConfig()
    assert c.queues == ["default"]
    assert c.concurrency == 4
    assert c.prefetch == -1
    assert c.claim_batch == 256
    assert c.lease == 30.0
    assert c.grace == 30.0
    assert c.rescue_interval == 0.0  # derived from the lease by the worker
    assert c.handle_signals is False
    assert c.registry is None
    assert c.capacity == 4 + 256  # a negative prefetch holds one claim batch


def test_fields_are_named_and_durations_are_seconds():
    c = _core.WorkerConfig()
    c.concurrency = 8
    c.prefetch = 0
    c.lease = 2.5
    c.flush_interval = 0.002
    c.rate_limits = {"t": _core.RateLimit(100_000, 3)}
    c.registered = ["b", "a"]
    assert c.capacity == 8
    assert c.lease == 2.5
    assert c.flush_interval == pytest.approx(0.002)
    assert c.rate_limits["t"].interval_us == 100_000
    assert c.rate_limits["t"].burst == 3
    assert c.registered == ["a", "b"]
    with pytest.raises(ValueError):
        c.lease = -1
    with pytest.raises(ValueError, match="registry needs an id"):
        c.registry = {"host": "h"}
    copy = c.copy()
    copy.concurrency = 1
    assert c.concurrency == 8


def test_worker_fills_a_config_and_keywords_override_it(broker):
    base = _core.WorkerConfig()
    base.queues = ["emails"]
    base.claim_batch = 10
    w = fastq.Worker(config=base, lease=3.0, prefetch=0)
    assert w.config.queues == ["emails"]
    assert w.config.claim_batch == 10
    assert w.config.lease == 3.0
    assert w.config.capacity == 4
    assert "tests.worker_config.note_cancel" in w.config.registered
    assert w.config.registry is not None and w.config.registry["id"] == w.registry_id
    assert base.lease == 30.0, "the caller's config is not changed"
    plain = fastq.Worker()
    assert plain.config.claim_batch == _core.WorkerConfig().claim_batch
    assert "default" in plain.config.queues


def test_a_running_job_reads_cancel_requests_from_its_own_worker(broker):
    seen.clear()
    r = note_cancel.delay()
    w = fastq.Worker(queues=["default"])
    t = threading.Thread(target=w.run)
    t.start()
    try:
        assert r.get(timeout=10) is True
    finally:
        w.stop()
        t.join(10)
    assert seen["cancel_requested"] is False
    # Outside a worker (eagerly) there is no worker to ask.
    assert fastq.runtime.JobContext("x", "t", 1).cancel_requested is False

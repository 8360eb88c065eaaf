"""Signals around a job's life, on the memory broker."""

import fastq
import pytest
from fastq import signals

from .conftest import run_burst


@fastq.task
def double(x):
    return 2 * x


@fastq.task(autoretry_for=(KeyError,), max_retries=1, default_retry_delay=0)
def always_keyerror():
    raise KeyError("missing")


@pytest.fixture
def seen():
    events = []

    def make(name):
        def receiver(sender, **kw):
            events.append((name, sender.name, kw))

        return receiver

    receivers = {
        name: make(name)
        for name in (
            "task_enqueued",
            "task_started",
            "task_succeeded",
            "task_failed",
            "task_retried",
        )
    }
    for name, r in receivers.items():
        getattr(signals, name).connect(r)
    yield events
    for name, r in receivers.items():
        getattr(signals, name).disconnect(r)


def test_lifecycle_signals(broker, seen):
    ok = double.delay(21)
    run_burst()
    names = [e[0] for e in seen]
    assert names == ["task_enqueued", "task_started", "task_succeeded"]
    assert seen[0][2]["job_ids"] == [ok.id]
    assert seen[1][2]["job"].id == ok.id
    assert seen[2][2]["result"] == 42


def test_retry_then_failure_signals(broker, seen):
    always_keyerror.delay()
    run_burst()
    names = [e[0] for e in seen]
    assert names == ["task_enqueued", "task_started", "task_retried", "task_started", "task_failed"]
    retried = seen[2][2]
    assert isinstance(retried["exception"], KeyError)
    assert 0 <= retried["countdown"] <= 1
    assert isinstance(seen[4][2]["exception"], KeyError)


@fastq.task(bind=True, max_retries=0)
def retries_itself(self):
    self.retry(exc=ValueError("no luck"), countdown=0)


def test_exhausted_self_retry_sends_failed(broker, seen):
    retries_itself.delay()
    run_burst()
    assert [e[0] for e in seen] == ["task_enqueued", "task_started", "task_failed"]
    assert isinstance(seen[2][2]["exception"], ValueError)

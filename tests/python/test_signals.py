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


@pytest.fixture
def broken_receiver():
    """Connects a receiver that raises to a signal for the test; disconnected after."""
    connected = []

    def connect(signal):
        def receiver(sender, **kw):
            raise RuntimeError(f"receiver bug in {signal.name}")

        signal.connect(receiver)
        connected.append((signal, receiver))

    yield connect
    for signal, receiver in connected:
        signal.disconnect(receiver)


@pytest.mark.parametrize("name", ["task_started", "task_succeeded"])
def test_a_receiver_that_raises_is_logged_and_the_job_succeeds(
    broker, seen, broken_receiver, caplog, name
):
    broken_receiver(getattr(signals, name))
    with caplog.at_level("ERROR", logger="fastq.signals"):
        ok = double.delay(21)
        run_burst()
    assert ok.get(timeout=5) == 42
    assert [e[0] for e in seen] == ["task_enqueued", "task_started", "task_succeeded"]
    (record,) = [r for r in caplog.records if r.name == "fastq.signals"]
    assert f"fastq signal {name}" in record.getMessage()
    assert ok.id in record.getMessage() and "receiver bug" in record.getMessage()
    assert record.exc_info is not None  # the traceback is in the log


def test_a_receiver_that_raises_does_not_change_a_failure(broker, seen, broken_receiver, caplog):
    broken_receiver(signals.task_failed)
    broken_receiver(signals.task_retried)
    with caplog.at_level("ERROR", logger="fastq.signals"):
        always_keyerror.delay()
        run_burst()
    names = [e[0] for e in seen]
    assert names == ["task_enqueued", "task_started", "task_retried", "task_started", "task_failed"]
    job = broker.fetch(seen[0][2]["job_ids"][0])
    assert job is not None and job.state == "dead" and job.error_type == "KeyError", job
    assert len([r for r in caplog.records if r.name == "fastq.signals"]) == 2


def test_a_task_enqueued_receiver_that_raises_does_not_fail_delay(broker, broken_receiver, caplog):
    broken_receiver(signals.task_enqueued)
    with caplog.at_level("ERROR", logger="fastq.signals"):
        result = double.delay(1)
    run_burst()
    assert result.get(timeout=5) == 2
    assert "task_enqueued" in caplog.text and "1 job(s) of" in caplog.text


def test_a_soft_time_limit_during_a_receiver_is_still_the_jobs(broker):
    def limit_arrives(sender, **kw):
        raise fastq.SoftTimeLimitExceeded("late")

    signals.task_started.connect(limit_arrives)
    try:
        job = double.delay(1)
        run_burst()
    finally:
        signals.task_started.disconnect(limit_arrives)
    assert broker.fetch(job.id).error_type == "fastq.SoftTimeLimitExceeded"

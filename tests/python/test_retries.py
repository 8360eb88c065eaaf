"""Retries: autoretry_for, self.retry(), max_retries, backoff; decided per attempt."""

import fastq
import pytest
from fastq.task import Task

from .conftest import run_burst

calls: dict[str, int] = {}


def _count(key: str) -> int:
    calls[key] = calls.get(key, 0) + 1
    return calls[key]


@fastq.task(autoretry_for=(ConnectionError,), max_retries=2, default_retry_delay=0)
def flaky(key, failures):
    if _count(key) <= failures:
        raise ConnectionError(f"provider down (call {calls[key]})")
    return calls[key]


@fastq.task(bind=True, max_retries=5)
def polls(self, key, ready_after):
    n = _count(key)
    assert self.request.attempt == n
    if n < ready_after:
        self.retry(countdown=0)
    return {"attempt": self.request.attempt, "retries": self.request.retries}


@fastq.task(bind=True, max_retries=1)
def gives_up(self, key):
    _count(key)
    self.retry(exc=LookupError("still missing"), countdown=0)


@fastq.task(bind=True, max_retries=0)
def retry_without_exc(self):
    self.retry(countdown=0)


@pytest.fixture(autouse=True)
def _reset_calls():
    calls.clear()


def test_autoretry_until_success(broker):
    r = flaky.delay("a", 2)
    stats = run_burst()
    assert r.get() == 3
    assert stats.retried == 2
    assert broker.fetch(r.id).attempts == 3


def test_autoretry_exhausted_is_dead_with_the_last_error(broker):
    r = flaky.delay("b", 10)
    run_burst()
    assert r.status == "DEAD"
    with pytest.raises(fastq.TaskFailed) as info:
        r.get()
    assert info.value.type == "ConnectionError"
    assert "call 3" in info.value.message
    assert calls["b"] == 3  # max_retries=2: three attempts


def test_other_exceptions_do_not_retry(broker):
    r = flaky.delay("c", "not a number")  # TypeError comparing int and str
    run_burst()
    assert r.status == "FAILED"
    assert calls["c"] == 1


def test_bound_task_retries_itself(broker):
    r = polls.delay("d", 3)
    run_burst()
    assert r.get() == {"attempt": 3, "retries": 2}


def test_retry_with_no_attempts_left_raises_the_exception(broker):
    r = gives_up.delay("e")
    run_burst()
    with pytest.raises(fastq.TaskFailed) as info:
        r.get()
    assert info.value.type == "LookupError"
    assert calls["e"] == 2
    r2 = retry_without_exc.delay()
    run_burst()
    with pytest.raises(fastq.TaskFailed) as info:
        r2.get()
    assert info.value.type == "fastq.task.MaxRetriesExceededError"


def test_max_retries_per_call(broker):
    r = flaky.apply_async(args=("f", 5), max_retries=5)
    run_burst()
    assert r.get() == 6
    with pytest.raises(ValueError, match="max_retries must be from 0 to 999999, got -1"):
        flaky.apply_async(args=("g", 1), max_retries=-1)


@fastq.task(bind=True, default_retry_delay=3600)
def retry_later(self):
    self.retry(exc=TimeoutError("provider slow"))


def test_retry_waits_for_its_delay_and_keeps_the_error(broker):
    r = retry_later.delay()
    stats = run_burst()
    assert stats.retried == 1
    assert r.status == "QUEUED"  # due in an hour: the burst worker left it
    snap = broker.fetch(r.id)
    assert snap.attempts == 1
    assert snap.error_type == "TimeoutError"
    assert snap.error == "provider slow"


def test_backoff_grows_and_is_capped():
    t = Task(
        lambda: None,
        name="backoff_probe",
        retry_backoff=2,
        retry_jitter=False,
        retry_backoff_max=30,
    )
    assert [t.retry_delay(a) for a in range(1, 7)] == [2, 4, 8, 16, 30, 30]
    jittered = Task(lambda: None, name="backoff_jitter", retry_backoff=True)
    assert all(0 <= jittered.retry_delay(4) <= 8 for _ in range(100))


def test_eager_mode_retries_inline(broker):
    fastq.configure(EAGER=True)
    assert flaky.delay("j", 2).get() == 3
    failed = flaky.delay("k", 10)
    assert failed.status == "DEAD"  # retried as asked; attempts spent

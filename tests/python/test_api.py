"""The Python API on the C++ in-memory driver: no database, same worker."""

import threading
import time
from datetime import UTC, datetime, timedelta

import fastq
import pytest
from fastq.task import registry

from .conftest import run_burst


@fastq.task
def add(a, b):
    return a + b


@fastq.task(name="custom.name", queue="emails", priority=3)
def send_email(to, subject="hi"):
    return {"to": to, "subject": subject}


@fastq.task
def explode(message):
    raise KeyError(message)


@fastq.task
def whoami():
    job = fastq.current_job()
    return {"id": job.id, "attempt": job.attempt, "task": job.task}


@fastq.task
def returns_object():
    return object()


def test_default_name_is_module_path_and_direct_call_runs_inline():
    assert add.name == "tests.python.test_api.add" or add.name.endswith("test_api.add")
    assert registry[add.name] is add
    assert add(2, 3) == 5
    assert send_email.name == "custom.name"
    assert send_email.queue == "emails"
    assert send_email.priority == 3


def test_delay_then_worker_gives_result(broker):
    r = add.delay(2, 3)
    assert isinstance(r, fastq.AsyncResult)
    assert r.status == "QUEUED"
    assert not r.ready()
    stats = run_burst()
    assert stats.succeeded == 1
    assert r.status == "SUCCEEDED"
    assert r.ready() and r.successful()
    assert r.result == 5
    assert r.get(timeout=1) == 5
    assert fastq.AsyncResult(r.id).get() == 5


def test_kwargs_queue_and_priority(broker):
    r = send_email.apply_async(args=["a@b.c"], kwargs={"subject": "yo"})
    run_burst()
    assert r.get() == {"to": "a@b.c", "subject": "yo"}


def test_failure_carries_type_message_and_traceback(broker):
    r = explode.delay("nope")
    run_burst()
    assert r.status == "FAILED"
    assert not r.successful()
    with pytest.raises(fastq.TaskFailed) as info:
        r.get(timeout=1)
    assert info.value.type == "KeyError"
    assert "nope" in info.value.message
    assert "raise KeyError(message)" in info.value.traceback
    assert isinstance(r.result, fastq.TaskFailed)


def test_unserializable_result_fails_the_job_clearly(broker):
    r = returns_object.delay()
    run_burst()
    with pytest.raises(fastq.TaskFailed) as info:
        r.get()
    assert info.value.type == "fastq.ResultNotSerializable"


def test_current_job_inside_a_task(broker):
    r = whoami.delay()
    run_burst()
    assert r.get() == {"id": r.id, "attempt": 1, "task": whoami.name}
    assert fastq.current_job() is None


def test_non_json_argument_raises_type_error_naming_it(broker):
    with pytest.raises(TypeError, match=r"positional argument 1 of type object"):
        add.delay(1, object())
    with pytest.raises(TypeError, match=r"argument 'when' of type datetime"):
        send_email.delay("x", when=datetime.now())


def test_map_enqueues_many(broker):
    results = add.map([(i, i) for i in range(2500)])
    assert len(results) == 2500
    stats = run_burst(concurrency=2)
    assert stats.succeeded == 2500
    assert [r.result for r in results[:5]] == [0, 2, 4, 6, 8]
    assert results[-1].result == 4998


def test_worker_runs_only_its_queues(broker):
    r_default = add.delay(1, 1)
    r_emails = send_email.delay("x")
    run_burst(queues=["emails"])
    assert r_emails.status == "SUCCEEDED"
    assert r_default.status == "QUEUED"


def test_countdown_and_eta_delay_the_start(broker):
    later = add.apply_async(args=(1, 2), countdown=3600)
    at = add.apply_async(args=(1, 2), eta=datetime.now(UTC) + timedelta(hours=1))
    now = add.apply_async(args=(1, 2), countdown=0)
    run_burst()
    assert later.status == "QUEUED"
    assert at.status == "QUEUED"
    assert now.status == "SUCCEEDED"
    with pytest.raises(ValueError, match="not both"):
        add.apply_async(args=(1, 2), eta=datetime.now(UTC), countdown=1)


def test_get_times_out(broker):
    r = add.delay(1, 2)
    with pytest.raises(fastq.TimeoutError, match="still QUEUED"):
        r.get(timeout=0.05)
    assert fastq.AsyncResult("00000000-0000-0000-0000-000000000000").status == "UNKNOWN"


def test_get_waits_for_a_running_worker(broker):
    w = fastq.Worker()
    t = threading.Thread(target=w.run)
    t.start()
    try:
        r = add.delay(20, 22)
        assert r.get(timeout=10) == 42
    finally:
        w.stop()
        t.join(10)
    assert not t.is_alive()


def test_eager_runs_inline(broker):
    fastq.configure(EAGER=True)
    r = add.delay(2, 2)
    assert isinstance(r, fastq.EagerResult)
    assert r.status == "SUCCEEDED"
    assert r.get() == 4
    failed = explode.delay("x")
    assert failed.status == "FAILED"
    with pytest.raises(fastq.TaskFailed):
        failed.get()
    assert [x.get() for x in add.map([(1, 1), (2, 2)])] == [2, 4]


def test_no_broker_outside_django_is_a_clear_error():
    fastq.set_broker(None)
    with pytest.raises(RuntimeError, match="no broker"):
        add.delay(1, 2)


def test_unknown_setting_is_refused():
    with pytest.raises(ValueError, match="unknown fastq setting"):
        fastq.configure(EAGERLY=True)


def test_tasks_must_be_module_level():
    def inner():
        pass

    with pytest.raises(ValueError, match="module-level"):
        fastq.task(inner)


def test_executor_threads_overlap_for_io(broker):
    results = sleepy.map([(0.2,)] * 8)
    run_burst(concurrency=8)
    spans = [r.get() for r in results]
    # The GIL is released while a task sleeps, so other executors run meanwhile: some
    # pair of executions overlaps in time.
    overlapping = sum(1 for a in spans for b in spans if a is not b and a[0] < b[1] and b[0] < a[1])
    assert overlapping > 0


@fastq.task
def sleepy(seconds):
    start = time.monotonic()
    time.sleep(seconds)
    return [start, time.monotonic()]


def test_cancel_and_expiry_on_the_memory_broker(broker):
    queued = add.delay(1, 1)
    assert queued.cancel() == "cancelled"
    stale = add.apply_async(args=(1, 2), expires=-1)
    fresh = add.apply_async(args=(1, 3), expires=60)
    stats = run_burst()
    assert stats.skipped == 1
    assert queued.status == "CANCELLED"
    assert stale.status == "EXPIRED"
    assert fresh.get() == 4
    assert fresh.cancel() == "finished"


@fastq.task(unique=True)
def refresh_rates(currency):
    return currency


@fastq.task(unique_key=lambda order_id, **_: order_id)
def track(order_id, note=""):
    return order_id


def test_unique_jobs_return_the_active_job(broker):
    a = refresh_rates.delay("USD")
    assert refresh_rates.delay("USD") == a
    b = refresh_rates.delay("EUR")
    assert b != a
    t1 = track.delay(7, note="first")
    assert track.delay(7, note="second") == t1  # the key is the order id only
    assert track.map([(7,), (8,), (8,)])[0] == t1
    run_burst()
    assert a.get() == "USD" and t1.get() == 7
    assert refresh_rates.delay("USD") != a  # a finished job frees its key


@fastq.task
async def fetch_status(order_id):
    import asyncio

    await asyncio.sleep(0.01)
    return {"order": order_id, "status": "delivered"}


def test_async_def_tasks_run_on_the_worker(broker):
    results = fetch_status.map([(i,) for i in range(20)])
    stats = run_burst(concurrency=4)
    assert stats.succeeded == 20
    assert results[3].get() == {"order": 3, "status": "delivered"}

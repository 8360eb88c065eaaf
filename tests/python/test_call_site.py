"""Mistakes caught where the call is written, not in the worker: arguments that do not bind
to the task's signature raise TypeError at .delay()/.apply_async()/.map() (as Celery does);
a naive eta or expires is read in the local zone outside Django (Django's TIME_ZONE inside,
tests/django/test_settings_defaults.py); countdown and expires take a timedelta; a queue
no worker configuration names logs a warning, once."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import fastq
import pytest
from fastq import limits
from fastq.task import _warned_queues

from .conftest import run_burst


@fastq.task(name="call_site.charge")
def charge(order_id, amount, *, currency="EUR"):
    return [order_id, amount, currency]


@fastq.task(name="call_site.bound", bind=True)
def bound(self, x):
    return [self.name, x]


@fastq.task(name="call_site.anything")
def anything(*args, **kwargs):
    return len(args) + len(kwargs)


@fastq.task(name="call_site.needs_keyword")
def needs_keyword(*, key):
    return key


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: charge.delay(1), r"call_site\.charge\(\): missing a required argument: 'amount'"),
        (lambda: charge.delay(1, 2, 3), r"call_site\.charge\(\): too many positional arguments"),
        (
            lambda: charge.delay(1, 2, colour="red"),
            r"call_site\.charge\(\): got an unexpected keyword argument 'colour'",
        ),
        (
            lambda: charge.apply_async(args=(1,), kwargs={"order_id": 2, "amount": 3}),
            r"multiple values for argument 'order_id'",
        ),
        (lambda: bound.delay(), r"call_site\.bound\(\): missing a required argument: 'x'"),
        (lambda: bound.delay(1, 2), r"too many positional arguments"),
        (lambda: charge.map([(1, 2), (3,)]), r"missing a required argument: 'amount'"),
        (lambda: needs_keyword.map([()]), r"missing a required (keyword-only )?argument: 'key'"),
    ],
)
def test_arguments_that_do_not_bind_raise_at_the_call(broker, call, message):
    with pytest.raises(TypeError, match=message):
        call()
    assert run_burst().claimed == 0  # nothing was enqueued


def test_arguments_that_bind_are_enqueued(broker):
    results = [
        charge.delay(1, 2),
        charge.delay(order_id=1, amount=2, currency="USD"),
        bound.delay(5),
        anything.delay(1, 2, a=3),
        needs_keyword.delay(key="k"),
        *charge.map([(1, 2), [3, 4]]),
        *anything.map([(), (1, 2, 3)]),
    ]
    run_burst()
    assert [r.get() for r in results] == [
        [1, 2, "EUR"],
        [1, 2, "USD"],
        ["call_site.bound", 5],
        3,
        "k",
        [1, 2, "EUR"],
        [3, 4, "EUR"],
        0,
        3,
    ]


def test_eager_mode_raises_at_the_call_too(broker):
    fastq.configure(EAGER=True)
    with pytest.raises(TypeError, match="missing a required argument"):
        charge.delay(1)


def test_countdown_and_expires_take_a_timedelta(broker):
    later = charge.apply_async(args=(1, 2), countdown=timedelta(hours=1))
    now = charge.apply_async(args=(1, 2), countdown=timedelta(0))
    stale = charge.apply_async(args=(1, 2), expires=timedelta(seconds=-1))
    run_burst()
    assert later.status == "QUEUED"
    assert now.status == "SUCCEEDED"
    assert stale.status == "EXPIRED"
    with pytest.raises(ValueError, match="reaches past the dates a job can hold"):
        charge.apply_async(args=(1, 2), countdown=timedelta.max)


def test_a_naive_eta_is_read_in_the_local_zone_outside_django(broker):
    naive = datetime(2031, 5, 6, 7, 8, 9)
    assert limits.aware_datetime("eta", naive) == naive.astimezone()
    later = charge.apply_async(args=(1, 2), eta=datetime.now() + timedelta(hours=2))
    due = charge.apply_async(args=(1, 2), eta=datetime.now() - timedelta(seconds=1))
    run_burst()
    assert later.status == "QUEUED"
    assert due.status == "SUCCEEDED"
    aware = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert limits.aware_datetime("eta", aware) is aware


def test_an_unknown_queue_is_warned_about_once(broker, caplog):
    _warned_queues.discard("reprots")
    with caplog.at_level(logging.WARNING, logger="fastq.task"):
        charge.apply_async(args=(1, 2), queue="reprots")
        charge.apply_async(args=(1, 2), queue="reprots")
        charge.apply_async(args=(1, 2), queue="default")
    warnings = [r for r in caplog.records if r.name == "fastq.task"]
    assert len(warnings) == 1
    assert "'reprots'" in warnings[0].getMessage()
    assert "--queues reprots" in warnings[0].getMessage()


def test_a_queue_named_in_settings_or_by_a_task_is_not_warned_about(broker, caplog):
    fastq.configure(QUEUES=["default", "reports"])
    _warned_queues.clear()
    with caplog.at_level(logging.WARNING, logger="fastq.task"):
        charge.apply_async(args=(1, 2), queue="reports")
        charge.apply_async(args=(1, 2), queue="default")
    assert not [r for r in caplog.records if r.name == "fastq.task"]

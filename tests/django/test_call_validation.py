"""Validation at the call site on the Django broker (SQLite and PostgreSQL alike): each
value a job cannot carry raises the same TypeError or ValueError as on the in-memory
broker (tests/python/test_validation.py), naming the argument, and no row is written;
the caller's transaction stays usable. Values at the edge of each bound are stored as
given and come back unchanged through a worker."""

from __future__ import annotations

import math
import re

import fastq
import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from fastq_django.models import Job, Schedule
from testapp import tasks
from validation_cases import (
    BAD_ARGUMENTS,
    BAD_OPTIONS,
    BAD_RESULTS,
    EDGE_ARGUMENTS,
    EDGE_OPTIONS,
    RESULT_MESSAGES,
    on_every_path,
)
from workerproc import run_worker


def _enqueue(path: str, args: tuple, kwargs: dict) -> fastq.AsyncResult:
    """The job for (args, kwargs) through one enqueue path; map() gets a good call first."""
    if path == "delay":
        return tasks.echo_call.delay(*args, **kwargs)
    if path == "apply_async":
        return tasks.echo_call.apply_async(args=args, kwargs=kwargs)
    if path == "map":  # PostgreSQL: COPY; SQLite: the multi-row INSERT
        return tasks.echo_call.map([(1,), args])[1]
    if path == "map-unique":  # the per-job path of map()
        return tasks.echo_unique.map([(1,), args])[1]
    raise AssertionError(path)


def _expected(path: str, args: tuple, kwargs: dict) -> object:
    return list(args) if path == "map-unique" else [list(args), kwargs]


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "args", "kwargs", "exc", "message"), on_every_path(BAD_ARGUMENTS))
def test_a_bad_argument_raises_and_writes_nothing(path, args, kwargs, exc, message):
    with pytest.raises(exc, match=message) as info:
        _enqueue(path, args, kwargs)
    task = tasks.echo_unique if path == "map-unique" else tasks.echo_call
    assert str(info.value).startswith(f"{task.name}(): ")
    assert Job.objects.count() == 0  # on PostgreSQL this also fails if the transaction broke


@pytest.mark.django_db
@pytest.mark.parametrize(("options", "exc", "message"), BAD_OPTIONS)
def test_a_bad_option_raises_and_writes_nothing(options, exc, message):
    with pytest.raises(exc, match=message) as info:
        tasks.echo_call.apply_async(args=(1,), **options)
    assert str(info.value).startswith(f"{tasks.echo_call.name}(): ")
    assert Job.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_refused_call_leaves_the_callers_transaction_usable():
    with transaction.atomic():
        for bad in ({"args": (2**63,)}, {"args": (1,), "priority": 10**9}):
            with pytest.raises(ValueError):
                tasks.echo_call.apply_async(**bad)
        with pytest.raises(ValueError):
            tasks.echo_call.map([(1,), (math.nan,)])
        good = tasks.echo_call.delay(1)
    assert [str(i) for i in Job.objects.values_list("id", flat=True)] == [good.id]


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "args", "kwargs"), on_every_path(EDGE_ARGUMENTS))
def test_edge_arguments_are_stored_as_given(path, args, kwargs):
    job = Job.objects.get(pk=_enqueue(path, args, kwargs).id)
    assert job.args_value == list(args)
    assert job.kwargs_value == kwargs


@pytest.mark.django_db
@pytest.mark.parametrize("options", EDGE_OPTIONS)
def test_edge_options_are_stored_as_given(options):
    job = Job.objects.get(pk=tasks.echo_call.apply_async(args=(1,), **options).id)
    if "priority" in options:
        assert job.priority == options["priority"]
    if "max_retries" in options:
        assert job.max_attempts == options["max_retries"] + 1
    for limit in ("time_limit", "soft_time_limit"):
        if limit in options:
            assert getattr(job, limit) == options[limit]
    if "eta" in options:
        assert job.run_at == options["eta"]


@pytest.mark.django_db(transaction=True)
def test_edge_values_round_trip_through_a_worker():
    calls = [
        (_enqueue(path, args, kwargs), _expected(path, args, kwargs))
        for path, args, kwargs in (p.values for p in on_every_path(EDGE_ARGUMENTS))
    ]
    calls += [
        (tasks.echo_call.apply_async(args=(1,), **options), [[1], {}])
        for (options,) in (p.values for p in EDGE_OPTIONS)
        if options.get("soft_time_limit", 1) >= 1
    ]
    # A 1 ms soft limit is a race the task may lose on a loaded machine: the job ends
    # either way, succeeded or failed with the soft limit's exception, never stuck.
    racing = [
        tasks.echo_call.apply_async(args=(1,), **options)
        for (options,) in (p.values for p in EDGE_OPTIONS)
        if options.get("soft_time_limit", 1) < 1
    ]
    assert racing
    run_worker()
    for result, expected in calls:
        assert result.get(timeout=10) == expected
    for result in racing:
        try:
            assert result.get(timeout=10) == [[1], {}]
        except fastq.TaskFailed as failure:
            assert "SoftTimeLimitExceeded" in str(failure)


@pytest.mark.django_db(transaction=True)
def test_a_result_json_cannot_carry_fails_the_job_naming_it():
    results = {kind: tasks.bad_result.delay(kind) for kind in BAD_RESULTS}
    run_worker()
    for kind, result in results.items():
        with pytest.raises(fastq.TaskFailed) as info:
            result.get(timeout=10)
        assert info.value.type == "fastq.ResultNotSerializable", kind
        assert re.search(RESULT_MESSAGES[kind], info.value.message), info.value.message
        assert Job.objects.get(pk=result.id).result is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "text", "message"),
    [
        ("args", "[NaN]", r"args\[0\] is nan"),
        ("args", "[1, 18446744073709551616]", r"args\[1\] is 18446744073709551616"),
        ("kwargs", '{"x": [1e400]}', r"kwargs\['x'\]\[0\] is inf"),
        ("kwargs", '{"s": "\\ud800"}', r"kwargs\['s'\] is a string with a lone surrogate"),
    ],
)
def test_the_admin_refuses_schedule_arguments_a_job_cannot_carry(field, text, message):
    schedule = Schedule(name="s", task=tasks.noop.name, every=60, **{field: text})
    with pytest.raises(ValidationError) as info:
        schedule.full_clean()
    assert re.search(message, " ".join(info.value.message_dict[field]))

"""delay() on a connection used again and again: on PostgreSQL the core prepares its
statements (named ``fastq_…``) where psycopg may prepare its own (``OPTIONS
["prepare_threshold"]`` a number), and never where it is None (Django's default, for a
transaction-pooling PgBouncer). Jobs go in as before, in the caller's transaction, across a
reconnect; settings changed under ``override_settings`` are seen at once."""

from __future__ import annotations

import json
from collections.abc import Iterator

import fastq
import pytest
from django.db import connection, transaction
from django.test import override_settings
from fastq_django.models import Job
from testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)

on_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's"
)


class Rollback(Exception):
    pass


def _reconnect_with(threshold: int | None) -> None:
    connection.close()
    connection.settings_dict["OPTIONS"]["prepare_threshold"] = threshold
    connection.ensure_connection()


@pytest.fixture(params=["default", "prepare"])
def prepare_threshold(request: pytest.FixtureRequest) -> Iterator[int | None]:
    """Each test with Django's default (None: no server-side prepares) and with psycopg's
    own default (5); on SQLite only the first."""
    if connection.vendor != "postgresql":
        if request.param != "default":
            pytest.skip("PostgreSQL only")
        yield None
        return
    options = connection.settings_dict.setdefault("OPTIONS", {})
    had, old = "prepare_threshold" in options, options.get("prepare_threshold")
    threshold = 5 if request.param == "prepare" else None
    _reconnect_with(threshold)
    try:
        yield threshold
    finally:
        connection.close()
        if had:
            options["prepare_threshold"] = old
        else:
            options.pop("prepare_threshold", None)


def _fastq_prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM pg_prepared_statements WHERE name LIKE 'fastq\\_%%' ORDER BY name"
        )
        return [name for (name,) in cursor.fetchall()]


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def test_delay_twice_inside_atomic_and_in_autocommit(prepare_threshold):
    with transaction.atomic():
        a = tasks.add.delay(1, 2)
        b = tasks.add.delay(3, 4)
        c = tasks.add.delay(5, 6)
        assert Job.objects.filter(pk__in=[a.id, b.id, c.id]).count() == 3
    d = tasks.add.delay(7, 8)
    e = tasks.add.delay(9, 10)
    f = tasks.add.delay(11, 12)
    ids = [r.id for r in (a, b, c, d, e, f)]
    assert len(set(ids)) == 6
    assert Job.objects.filter(pk__in=ids, state="queued").count() == 6
    args = sorted(json.loads(a) for a in Job.objects.values_list("args", flat=True))
    assert args == [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10], [11, 12]]


def test_a_rolled_back_atomic_leaves_no_job(prepare_threshold):
    tasks.add.delay(0, 0)
    tasks.add.delay(0, 1)  # prepared from here when preparing
    with pytest.raises(Rollback), transaction.atomic():
        tasks.add.delay(1, 1)
        tasks.add.delay(1, 2)
        assert Job.objects.count() == 4
        raise Rollback
    assert Job.objects.count() == 2
    # The connection goes on, in a transaction and out of one.
    with transaction.atomic():
        tasks.add.delay(2, 2)
    tasks.add.delay(2, 3)
    assert Job.objects.count() == 4


def test_delay_after_the_server_connection_is_replaced(prepare_threshold):
    for i in range(3):
        tasks.add.delay(i, i)
    first_pid = _backend_pid() if connection.vendor == "postgresql" else 0
    connection.close()
    for i in range(3):
        tasks.add.delay(i, -i)
    with transaction.atomic():
        tasks.add.delay(9, 9)
        tasks.add.delay(9, 8)
    assert Job.objects.count() == 8
    if connection.vendor == "postgresql":
        assert _backend_pid() != first_pid
        assert len(_fastq_prepared()) == (1 if prepare_threshold is not None else 0)


@on_postgres
def test_statements_are_prepared_only_where_psycopg_may(prepare_threshold):
    for i in range(3):
        tasks.add.delay(i, i)
    names = _fastq_prepared()
    if prepare_threshold is None:
        assert names == [], "OPTIONS prepare_threshold None: nothing prepared"
    else:
        assert len(names) == 1, names
        assert names[0].startswith("fastq_")
    fastq.AsyncResult(tasks.add.delay(1, 1).id).status  # noqa: B018 (get_job, run once)
    assert Job.objects.count() == 4


@on_postgres
def test_statements_deallocated_under_the_core_are_prepared_again():
    _reconnect_with(5)
    try:
        for i in range(3):
            tasks.add.delay(i, i)
        with connection.cursor() as cursor:
            cursor.execute("DEALLOCATE ALL")
        for i in range(3):
            tasks.add.delay(i, -i)
        assert Job.objects.count() == 6
        assert len(_fastq_prepared()) == 1
    finally:
        connection.close()
        connection.settings_dict["OPTIONS"].pop("prepare_threshold", None)


def test_override_settings_is_seen_at_the_next_delay():
    tasks.add.delay(1, 1)  # settings.FASTQ read (and kept)
    with override_settings(FASTQ={"EAGER": True}):
        eager = tasks.add.delay(2, 3)
        assert Job.objects.count() == 1, "EAGER: run here, no job written"
    assert eager.get(timeout=1) == 5
    tasks.add.delay(1, 1)
    assert Job.objects.count() == 2

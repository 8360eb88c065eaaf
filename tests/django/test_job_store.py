"""The job store (migration 0017, docs/job-store.md): on PostgreSQL the active table and the
finished log behind the ``fastq_job`` view; on SQLite one table with the same three names.

The migration is run both ways over a database holding jobs in every state; ORM writes
through the view are checked to land in the right table and to write only the columns
they change; the finished log's upkeep is checked to drop a day while keeping what still
depends on its jobs. The core's statements on the two tables are covered by the C++ store
conformance suite and by every worker test."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import timedelta

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from fastq_django.models import ActiveJob, Dependency, FinishedJob, Job, ScheduleRun, Workflow

pytestmark = pytest.mark.django_db(transaction=True)

STATES = ["waiting", "queued", "running", "succeeded", "failed", "dead", "expired", "cancelled"]
ACTIVE = {"waiting", "queued", "running"}
postgres_only = pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
    reason="the two tables and the partitions are PostgreSQL's",
)


def _rows() -> list[dict]:
    with connection.cursor() as c:
        c.execute("SELECT * FROM fastq_job ORDER BY id")
        cols = [d[0] for d in c.description]
        return [dict(zip(cols, r, strict=True)) for r in c.fetchall()]


def _where(job_id: uuid.UUID) -> str | None:
    if ActiveJob.objects.filter(pk=job_id).exists():
        assert not FinishedJob.objects.filter(pk=job_id).exists()
        return "active"
    if FinishedJob.objects.filter(pk=job_id).exists():
        return "finished"
    return None


def _jobs_in_every_state() -> list[Job]:
    """Three jobs per state, with the values that stress a copy: unique keys on the active
    ones, a megabyte of result, extreme priorities and attempts, a workflow step, and a
    finished job without finished_at."""
    now = timezone.now()
    jobs = []
    for state in STATES:
        for i in range(3):
            final = state not in ACTIVE
            jobs.append(
                Job(
                    task=f"tests.{state}",
                    state=state,
                    priority=(-32768, 0, 32767)[i],
                    attempts=(0, 1, 1_000_000_000)[i],
                    max_attempts=(1, 4, 1_000_000)[i],
                    unique_key=f"key-{state}-{i}" if state in ("queued", "running") else None,
                    result=("x" * 1_000_000) if (final and i == 0) else None,
                    error="\u00e9\u6f22\U0001f600 caf\u00e9" if state == "failed" else "",
                    finished_at=(now - timedelta(days=i)) if final and i < 2 else None,
                    lease_token=(2**63 - 1) if state == "running" else None,
                    lease_expires_at=now + timedelta(seconds=30) if state == "running" else None,
                    workflow_id=uuid.uuid4() if state == "waiting" else None,
                    parents_pending=1 if state == "waiting" else 0,
                    group_label="g" if i == 1 else None,
                    attempt_log="[]" if i == 2 else None,
                )
            )
    Job.objects.bulk_create(jobs)
    return jobs


def test_the_migration_moves_every_job_and_back() -> None:
    try:
        call_command("migrate", "fastq_django", "0016", verbosity=0)
        jobs = _jobs_in_every_state()
        before = _rows()
        assert len(before) == 3 * len(STATES)

        call_command("migrate", "fastq_django", "0017", verbosity=0)
        after = _rows()
        # Nothing lost, nothing changed, but on PostgreSQL a finished job without
        # finished_at: it gets its created_at (the log is partitioned by finished_at).
        if connection.vendor == "postgresql":
            for row in before:
                if row["state"] not in ACTIVE and row["finished_at"] is None:
                    row["finished_at"] = row["created_at"]
        assert after == before
        for job in jobs:
            assert _where(job.id) == ("active" if job.state in ACTIVE else "finished"), job.state
        if connection.vendor == "postgresql":
            with connection.cursor() as c:
                c.execute(
                    "SELECT indexname FROM pg_indexes WHERE tablename = 'fastq_active' "
                    "ORDER BY indexname"
                )
                assert [r[0] for r in c.fetchall()] == [
                    "fastq_active_claim",
                    "fastq_active_group",
                    "fastq_active_pkey",
                    "fastq_active_unique",
                    "fastq_active_workflow",
                ]
                c.execute("SELECT reloptions FROM pg_class WHERE relname = 'fastq_active'")
                assert c.fetchone()[0] == ["fillfactor=50"]
                # The two tables' columns in the same order: the statements and the
                # triggers copy whole rows between them.
                c.execute(
                    "SELECT attrelid::regclass::text, array_agg(attname ORDER BY attnum) "
                    "FROM pg_attribute WHERE attrelid IN ('fastq_active'::regclass, "
                    "'fastq_finished'::regclass) AND attnum > 0 AND NOT attisdropped "
                    "GROUP BY attrelid"
                )
                columns = dict(c.fetchall())
                assert columns["fastq_active"] == columns["fastq_finished"]
                # Today's partition and the six days after it exist.
                c.execute(
                    "SELECT count(*) FROM pg_inherits WHERE inhparent = 'fastq_finished'::regclass"
                )
                assert c.fetchone()[0] >= 8  # seven or eight days, and the default

        call_command("migrate", "fastq_django", "0016", verbosity=0)
        assert _rows() == after
        with connection.cursor() as c:
            c.execute("SELECT count(*) FROM fastq_job")  # a table again
            assert c.fetchone()[0] == len(after)
    finally:
        call_command("migrate", "fastq_django", verbosity=0)


def test_orm_writes_through_the_view_land_in_the_right_table() -> None:
    job = Job.objects.create(task="tests.orm", state="queued", unique_key="orm-1")
    assert _where(job.id) == "active"
    assert Job.objects.filter(pk=job.pk).update(group_label="g") == 1
    assert _where(job.id) == "active"
    assert Job.objects.get(pk=job.pk).group_label == "g"

    assert Job.objects.filter(pk=job.pk).update(state="succeeded", result="1") == 1
    assert _where(job.id) == "finished"
    row = Job.objects.get(pk=job.pk)
    assert (row.state, row.result, row.group_label, row.unique_key) == (
        "succeeded",
        "1",
        "g",
        "orm-1",
    )
    if connection.vendor == "postgresql":
        assert row.finished_at is not None  # the log is partitioned by it
    # Its key is free once it finished: a new job may take it.
    other = Job.objects.create(task="tests.orm", state="queued", unique_key="orm-1")

    other.delete()
    assert Job.objects.filter(pk=job.pk).update(state="queued", finished_at=None) == 1
    assert _where(job.id) == "active"
    assert Job.objects.get(pk=job.pk).result == "1"

    saved = Job.objects.get(pk=job.pk)
    saved.priority = 5
    saved.save()
    assert Job.objects.get(pk=job.pk).priority == 5

    failed = Job.objects.create(task="tests.orm", state="failed", error="boom")
    assert _where(failed.id) == "finished"
    assert Job.objects.filter(pk__in=[job.pk, failed.pk]).delete()[0] == 2
    assert _where(job.id) is None and _where(failed.id) is None
    assert Job.objects.count() == 0


@postgres_only
def test_an_orm_update_writes_only_the_columns_it_changes() -> None:
    """A task's ``update(attempt_log=...)`` while the worker writes the same row: the ORM
    statement reads the row before the worker's write commits and writes after it; the
    worker's change must survive (the view's trigger writes the changed column only)."""
    job = Job.objects.create(task="tests.orm", state="running", lease_token=7)
    db = connection.settings_dict
    dsn = {"host": db["HOST"], "port": db["PORT"] or 5432, "user": db["USER"], "dbname": db["NAME"]}
    other = psycopg.connect(**dsn)  # the worker: its write holds the row until it commits
    # Activity is read from its own connection: a transaction sees one snapshot of it.
    watch = psycopg.connect(**dsn, autocommit=True)
    try:
        other.execute("UPDATE fastq_active SET worker = 'the worker' WHERE id = %s", [job.id])
        done = threading.Event()

        errors: list[BaseException] = []

        def orm_update() -> None:
            from django.db import connections

            try:
                Job.objects.filter(pk=job.pk).update(attempt_log='["first"]')
            except BaseException as exc:  # reported by the test's thread
                errors.append(exc)
            finally:
                connections.close_all()
                done.set()

        thread = threading.Thread(target=orm_update)
        thread.start()
        deadline = time.monotonic() + 60
        while True:  # until the ORM's write waits for the worker's row lock
            row = watch.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"
            ).fetchone()
            if row and row[0] > 0:
                break
            assert not errors, errors
            assert time.monotonic() < deadline, "the ORM update never waited for the lock"
            time.sleep(0.05)
        other.commit()
        assert done.wait(60)
        thread.join()
        assert not errors, errors
    finally:
        other.close()
        watch.close()
    row = Job.objects.get(pk=job.pk)
    assert (row.worker, row.attempt_log, row.lease_token) == ("the worker", '["first"]', 7)


def _micros(t) -> int:
    return int(t.timestamp() * 1_000_000)


@postgres_only
def test_upkeep_drops_a_day_and_keeps_what_must_stay() -> None:
    """A day past the latest cutoff (the shortest retention) goes as one DROP TABLE; the
    jobs in it whose state keeps them longer (or for ever) and those something depends on
    are copied out first."""
    now = timezone.now()
    plain = Job.objects.create(task="tests.plain", state="succeeded", finished_at=now)
    slot = Job.objects.create(task="tests.slot", state="succeeded", finished_at=now)
    ScheduleRun.objects.create(schedule="s", slot=now, job_id=slot.id)
    workflow = uuid.uuid4()
    parent = Job.objects.create(
        task="tests.parent", state="succeeded", finished_at=now, workflow_id=workflow
    )
    child = Job.objects.create(task="tests.child", state="queued", workflow_id=workflow)
    Dependency.objects.create(workflow_id=workflow, parent_id=parent.id, child_id=child.id)
    done_wf = uuid.uuid4()
    gone_step = Job.objects.create(
        task="tests.step", state="succeeded", finished_at=now, workflow_id=done_wf
    )
    Dependency.objects.create(workflow_id=done_wf, parent_id=gone_step.id, child_id=gone_step.id)
    Workflow.objects.create(id=uuid.uuid4(), root_id=done_wf, kind="chain", created_at=now)
    failed = Job.objects.create(task="tests.failed", state="failed", finished_at=now)
    dead_young = Job.objects.create(task="tests.dead", state="dead", finished_at=now)
    cancelled_old = Job.objects.create(task="tests.cancelled", state="cancelled", finished_at=now)

    cutoffs = {
        "succeeded": _micros(now + timedelta(days=1)),  # today's successes are past it
        "dead": _micros(now - timedelta(days=10)),  # kept: finished after its cutoff
        "cancelled": _micros(now + timedelta(days=1)),
        # "failed": no key, kept for ever
    }
    with connection.cursor() as c:
        c.execute("SELECT fastq_finished_upkeep(7, NULL)")
        assert c.fetchone()[0] == 0
        c.execute("SELECT fastq_finished_upkeep(7, %s::jsonb)", [json.dumps(cutoffs)])
        assert c.fetchone()[0] == 1  # today's partition; tomorrow's ends later
        c.execute(
            "SELECT count(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhrelid "
            "WHERE i.inhparent = 'fastq_finished'::regclass AND p.relname = %s",
            [f"fastq_finished_p{now:%Y%m%d}"],
        )
        assert c.fetchone()[0] == 0

    assert set(Job.objects.values_list("id", flat=True)) == {
        slot.id,
        parent.id,
        child.id,
        failed.id,
        dead_young.id,
    }
    assert _where(plain.id) is None and _where(cancelled_old.id) is None
    assert _where(slot.id) == "finished" and _where(failed.id) == "finished"
    assert Dependency.objects.filter(workflow_id=workflow).count() == 1
    assert not Dependency.objects.filter(workflow_id=done_wf).exists()
    assert not Workflow.objects.filter(root_id=done_wf).exists()
    # A job finishing today now lands in the default partition, and upkeep does not fail
    # on the day it can no longer make.
    late = Job.objects.create(task="tests.late", state="succeeded", finished_at=now)
    with connection.cursor() as c:
        c.execute("SELECT fastq_finished_upkeep(7, NULL)")
        c.execute("SELECT tableoid::regclass::text FROM fastq_finished WHERE id = %s", [late.id])
        assert c.fetchone()[0] == "fastq_finished_default"


@postgres_only
def test_partitions_narrower_than_a_day_take_todays_jobs_and_go_whole() -> None:
    """Migration 0018: with successes kept a minute the leader asks for 6 s partitions.
    Today's day partition (and the days ahead) are made again 6 s wide, today's jobs moved
    into them or the default partition (none lost); a drop past the cutoff takes the 6 s
    partitions whole and copies out what must stay. Migrating back to 0017 restores its
    upkeep, which the day partitions' callers still use."""
    now = timezone.now()
    ok = Job.objects.create(task="tests.ok", state="succeeded", finished_at=now)
    failed = Job.objects.create(task="tests.failed", state="failed", finished_at=now)
    slot = Job.objects.create(task="tests.slot", state="succeeded", finished_at=now)
    ScheduleRun.objects.create(schedule="s", slot=now, job_id=slot.id)

    def widths() -> dict[int, int]:
        with connection.cursor() as c:
            c.execute(
                "SELECT extract(epoch FROM hi - lo)::int, count(*) "
                "FROM fastq_finished_partitions() WHERE hi > now() GROUP BY 1"
            )
            return dict(c.fetchall())

    try:
        with connection.cursor() as c:
            c.execute("SELECT fastq_finished_upkeep(7, NULL)")  # 0017's call: days
            assert set(widths()) == {86400}
            c.execute("SELECT fastq_finished_upkeep(6, 120, NULL)")
            assert c.fetchone()[0] == 0
            made = widths()
            assert set(made) == {6} and 20 <= made[6] <= 21, made
            c.execute(
                "SELECT count(*) FROM pg_class "
                "WHERE relname ~ '^fastq_finished_p[0-9]{8}_[0-9]{6}$'"
            )
            assert c.fetchone()[0] >= 20
        assert set(Job.objects.values_list("id", flat=True)) == {ok.id, failed.id, slot.id}

        # A minute's retention an hour from now: every 6 s partition is past it.
        cutoffs = {"succeeded": _micros(now + timedelta(hours=1))}
        with connection.cursor() as c:
            c.execute("SELECT fastq_finished_upkeep(6, 120, %s::jsonb)", [json.dumps(cutoffs)])
            assert c.fetchone()[0] >= 20
            assert widths() == {}
        # The plain success went (with its partition, or row by row from the default
        # partition); the failure (kept for ever) and the schedule run's job stayed.
        with connection.cursor() as c:
            c.execute(
                "SELECT id FROM fastq_finished WHERE tableoid <> 'fastq_finished_default'::regclass"
            )
            assert c.fetchall() == []
        kept = set(Job.objects.values_list("id", flat=True))
        assert {failed.id, slot.id} <= kept

        call_command("migrate", "fastq_django", "0017", verbosity=0)
        with connection.cursor() as c:
            c.execute("SELECT to_regprocedure('fastq_finished_upkeep(int, int, jsonb)')")
            assert c.fetchone()[0] is None
            c.execute("SELECT fastq_finished_upkeep(7, NULL)")
            assert c.fetchone()[0] == 0
    finally:
        call_command("migrate", "fastq_django", verbosity=0)

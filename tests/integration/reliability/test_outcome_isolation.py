"""One outcome or one row never costs another job anything.

- Hostile outcomes (NUL, lone surrogates, 10 MB texts and results, a 300-character class
  path, non-UTF-8 bytes in a str subclass) are stored sanitised or as a failure with a
  reason; the good jobs flushed in the same batches keep their results and run once.
- An outcome the database itself refuses (a constraint the test adds) is narrowed down to
  its own job, which ends as fastq.OutcomeNotStored; the rest of its batch is written.
- A row whose columns hold extreme values (written behind fastq's back, past the CHECK
  constraints) is dead-lettered as fastq.InvalidJob; the worker keeps serving every queue.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import ledger as ledger_check
import pytest
from django.db import connection
from fastq_django.models import Job
from fleet import wait_for
from testapp import reliability_tasks

pytestmark = pytest.mark.django_db(transaction=True)

GOOD = 600
EXPECTED_TYPE = {
    "nul_message": "ValueError",
    "long_type": None,  # the 300-character path, cut to the column with an ellipsis
    "surrogate_message": "ValueError",
    "huge_message": "ValueError",
    "non_utf8_str_subclass": "ValueError",
    "huge_result": "fastq.ResultTooLarge",
    # A lone surrogate has no UTF-8 form: the result encoder refuses it, as it refuses
    # one in the arguments at the call.
    "surrogate_result": "fastq.ResultNotSerializable",
}
SUCCEEDING = {"nul_result": "a\x00b"}


def _enqueue_mixed(kinds: list[str]) -> tuple[list[str], dict[str, str]]:
    """GOOD ledger jobs with the hostile ones spread among them, so that every flush of
    the worker carries good outcomes next to a bad one."""
    good: list[str] = []
    bad: dict[str, str] = {}
    step = GOOD // (len(kinds) + 1)
    pending = list(kinds)
    for i in range(GOOD):
        good.append(reliability_tasks.sleep.apply_async((0.0, f"good-{i}"), max_retries=0).id)
        if pending and i % step == step - 1:
            kind = pending.pop(0)
            bad[kind] = reliability_tasks.hostile.delay(kind).id
    for kind in pending:
        bad[kind] = reliability_tasks.hostile.delay(kind).id
    return good, bad


def _all_terminal(ids: list[str]) -> bool:
    return Job.objects.filter(pk__in=ids).exclude(state__in=ledger_check.TERMINAL).count() == 0


def _assert_good_ran_once(good: list[str], ledger) -> None:
    rows = {str(r.pk): r for r in Job.objects.filter(pk__in=good)}
    states = Counter(r.state for r in rows.values())
    assert states == Counter({"succeeded": len(good)}), states
    for i, job_id in enumerate(good):
        assert rows[job_id].result_value == f"good-{i}"
    keys = {ledger_check.job_key(j) for j in good}
    runs = Counter(e.job for e in ledger_check.read(ledger) if e.job in keys)
    assert set(runs) == keys
    assert max(runs.values()) == 1, [j for j, n in runs.items() if n > 1][:5]


def _assert_storable(row: Job) -> None:
    for field in ("error_type", "error", "traceback"):
        text = getattr(row, field)
        assert "\x00" not in text, field
        text.encode("utf-8")  # no lone surrogates came back
    assert len(row.error_type) <= 255
    assert len(row.error) <= 64 * 1024
    assert len(row.traceback.encode()) <= 256 * 1024


def test_hostile_outcomes_cost_only_their_own_job(fleet, ledger):
    kinds = list(EXPECTED_TYPE) + list(SUCCEEDING)
    good, bad = _enqueue_mixed(kinds)
    w = fleet("--concurrency", "4", "--processes", "1")
    wait_for(lambda: _all_terminal(good + list(bad.values())), 180, "every job to end", alive=[w])

    _assert_good_ran_once(good, ledger)
    for kind, job_id in bad.items():
        row = Job.objects.get(pk=job_id)
        _assert_storable(row)
        if kind in SUCCEEDING:
            assert row.state == "succeeded", (kind, row.error_type, row.error)
            assert row.result_value == SUCCEEDING[kind]
            continue
        assert row.state == "failed", (kind, row.state, row.error_type, row.error[:200])
        if EXPECTED_TYPE[kind]:
            assert row.error_type == EXPECTED_TYPE[kind], (kind, row.error_type, row.error[:200])
    nul = Job.objects.get(pk=bad["nul_message"])
    assert nul.error.startswith("before") and nul.error.endswith("after")
    long_type = Job.objects.get(pk=bad["long_type"])
    assert long_type.error_type.startswith("testapp.reliability_tasks.EEEE")
    assert long_type.error_type.endswith("\u2026") and len(long_type.error_type) == 255
    assert "surrogate" in Job.objects.get(pk=bad["surrogate_message"]).error
    huge = Job.objects.get(pk=bad["huge_message"])
    assert "truncated by fastq: 10000000 bytes in all" in huge.error
    assert "bytes" in Job.objects.get(pk=bad["non_utf8_str_subclass"]).error
    assert "over the limit" in Job.objects.get(pk=bad["huge_result"]).error
    assert w.alive(), w.output()


# Where a job's CHECK constraints live on PostgreSQL: the job store's two tables (migration
# 0017); fastq_job is a view over them.
PG_JOB_TABLES = ("fastq_active", "fastq_finished")


@contextmanager
def _store_refuses(text: str) -> Iterator[None]:
    """Makes the database itself refuse an outcome whose error is `text`: a CHECK
    constraint on PostgreSQL, a trigger on SQLite (whose ALTER TABLE cannot add one)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for table in PG_JOB_TABLES:
                cursor.execute(
                    f"ALTER TABLE {table} ADD CONSTRAINT test_refuse CHECK (error <> %s)", [text]
                )
        else:
            cursor.execute(
                "CREATE TRIGGER test_refuse BEFORE UPDATE ON fastq_job "
                f"WHEN NEW.error = '{text}' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
            )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                for table in PG_JOB_TABLES:
                    cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT test_refuse")
            else:
                cursor.execute("DROP TRIGGER test_refuse")


def test_an_outcome_the_store_refuses_is_narrowed_to_its_job(fleet, ledger):
    with _store_refuses("refused-by-the-store"):
        good, bad = _enqueue_mixed(["refused_message"])
        w = fleet("--concurrency", "4", "--processes", "1")
        wait_for(
            lambda: _all_terminal(good + list(bad.values())), 180, "every job to end", alive=[w]
        )
        _assert_good_ran_once(good, ledger)
        row = Job.objects.get(pk=bad["refused_message"])
        assert (row.state, row.error_type) == ("failed", "fastq.OutcomeNotStored"), row.error
        assert "could not be stored" in row.error
        assert "could not be stored" in w.output()
        assert w.alive(), w.output()


# Extreme values of each column a claim reads, and how the row must end.
EXTREME_ROWS = [
    ("attempts", 2**31 - 1, "dead", "fastq.InvalidJob"),
    ("attempts", -(2**31), "dead", "fastq.InvalidJob"),
    ("max_attempts", 0, "dead", "fastq.InvalidJob"),
    ("max_attempts", 2**31 - 1, "dead", "fastq.InvalidJob"),
    ("time_limit", 1e300, "dead", "fastq.InvalidJob"),
    ("time_limit", -1.0, "dead", "fastq.InvalidJob"),
    ("soft_time_limit", -1e300, "dead", "fastq.InvalidJob"),
    ("priority", 32767, "succeeded", ""),
    ("priority", -32768, "succeeded", ""),
    ("envelope", 32767, "dead", "fastq.UnknownEnvelope"),
    ("lease_token", 2**63 - 1, "succeeded", ""),
]


def _bound_checks() -> list:
    return [
        c
        for c in Job._meta.constraints
        if c.name.startswith("fastq_job_") and "unique" not in c.name
    ]


@contextmanager
def _rows_past_the_checks(mode: str) -> Iterator[None]:
    """Lets the test write rows the CHECK constraints refuse, as a bug or a hand-written
    UPDATE might. "absent": the constraints are gone (PostgreSQL), so the claim itself must
    cope with the values. "enforced": they hold for every later write (PostgreSQL: added
    back NOT VALID; SQLite: ignored on the test's connection only), so any UPDATE of such a
    row fails, the claim included."""
    checks = _bound_checks()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for c in checks:
                for table in PG_JOB_TABLES:
                    cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {c.name}")
        else:
            cursor.execute("PRAGMA ignore_check_constraints = ON")
    try:
        yield
    finally:
        Job.objects.all().delete()
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                with connection.schema_editor() as editor:
                    for c in checks:
                        check = c.constraint_sql(Job, editor)
                        for table in PG_JOB_TABLES:
                            cursor.execute(
                                f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {c.name}"
                            )
                            cursor.execute(f"ALTER TABLE {table} ADD {check}")
            else:
                cursor.execute("PRAGMA ignore_check_constraints = OFF")


def _enforce_again() -> None:
    """PostgreSQL: the constraints back, NOT VALID (rows already there stay as they are,
    every later UPDATE of them is checked)."""
    if connection.vendor != "postgresql":
        return
    with connection.schema_editor() as editor, connection.cursor() as cursor:
        for c in _bound_checks():
            check = c.constraint_sql(Job, editor)
            for table in PG_JOB_TABLES:
                cursor.execute(f"ALTER TABLE {table} ADD {check} NOT VALID")


def _set(job_id: str, column: str, value: object) -> None:
    pk = Job._meta.pk.get_db_prep_value(uuid.UUID(job_id), connection)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE fastq_job SET {column} = %s WHERE id = %s", [value, pk])
        assert cursor.rowcount == 1


@pytest.mark.parametrize("mode", ["absent", "enforced"])
def test_no_single_row_stops_a_worker(fleet, ledger, mode):
    if mode == "absent" and connection.vendor != "postgresql":
        pytest.skip("SQLite cannot drop a CHECK constraint")
    with _rows_past_the_checks(mode):
        rows = {}
        for column, value, _, _ in EXTREME_ROWS:
            job_id = reliability_tasks.sleep.apply_async((0.0, f"{column}={value}"), queue="a").id
            _set(job_id, column, value)
            rows[job_id] = (column, value)
        if mode == "enforced":
            _enforce_again()
        w = fleet("--concurrency", "2", "--processes", "1", "--queues", "a,b")
        wait_for(lambda: _all_terminal(list(rows)), 120, "every extreme row to end", alive=[w])
        for job_id, (column, value) in rows.items():
            want = next((s, t) for c, v, s, t in EXTREME_ROWS if (c, v) == (column, value))
            row = Job.objects.get(pk=job_id)
            assert (row.state, row.error_type) == want, (column, value, row.error)
            if want[0] == "dead":
                assert row.error.strip(), "a dead row says why"
        # The worker kept serving both of its queues.
        after = [
            reliability_tasks.sleep.apply_async((0.0, f"after-{q}"), queue=q) for q in ("a", "b")
        ]
        assert [r.get(timeout=60) for r in after] == ["after-a", "after-b"]
        assert w.alive(), w.output()
        assert "starting a new one" not in w.output(), w.output()[-2000:]


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "0190C3C27D1E7ABC8DEF0123456789AB", "42"])
def test_a_row_whose_id_is_not_a_uuid_is_dead_lettered(fleet, ledger, bad_id):
    if connection.vendor == "postgresql":
        pytest.skip("PostgreSQL's uuid column cannot hold such an id")
    job_id = reliability_tasks.sleep.delay(0.0, "odd id").id
    _set(job_id, "id", bad_id)
    w = fleet("--concurrency", "2", "--processes", "1")

    def row() -> tuple[str, str, str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT state, error_type, error FROM fastq_job WHERE id = %s", [bad_id])
            return cursor.fetchone()

    wait_for(lambda: row()[0] in ledger_check.TERMINAL, 60, "the odd row to end", alive=[w])
    state, error_type, error = row()
    assert (state, error_type) == ("dead", "fastq.InvalidJob"), error
    assert "not a UUID" in error
    assert not ledger_check.read(ledger), "a row fastq cannot name never runs"
    assert reliability_tasks.sleep.delay(0.0, "after").get(timeout=60) == "after"
    assert w.alive(), w.output()

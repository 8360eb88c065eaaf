"""How a worker process classifies a broker driver's error: an outage (the supervisor
starts a new process after a pause) or a setup error (the supervisor stops)."""

import pytest
from fastq import _core
from fastq.worker import is_driver_error, is_outage


@pytest.mark.parametrize(
    "message",
    [
        "cannot connect to PostgreSQL: connection to server at 127.0.0.1, port 5432 failed: "
        "Connection refused",
        "PostgreSQL reconnect failed: server closed the connection unexpectedly",
        "SQLite: PRAGMA journal_mode=WAL: database is locked",
    ],
)
def test_outages(message):
    assert is_driver_error(RuntimeError(message))
    assert is_outage(RuntimeError(message))


@pytest.mark.parametrize(
    "message",
    [
        "SQLite prepare failed: no such table: fastq_job in: UPDATE fastq_job SET ...",
        'PostgreSQL error in claim: ERROR: relation "fastq_job" does not exist',
        "cannot connect to PostgreSQL: FATAL: password authentication failed for user x",
        'cannot connect to PostgreSQL: FATAL: database "shop" does not exist',
        "cannot open SQLite database '/nowhere/db.sqlite3': unable to open database file",
    ],
)
def test_setup_errors(message):
    assert is_driver_error(RuntimeError(message))
    assert not is_outage(RuntimeError(message))


def test_only_driver_errors_are_driver_errors():
    assert is_driver_error(_core.DriverError("x"))
    assert not is_driver_error(RecursionError("deep"))
    assert not is_driver_error(NotImplementedError("x"))

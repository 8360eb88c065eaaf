"""fastq's PostgreSQL statements as the core runs them, for pgbench scripts: read from
src/sql/postgres.sql (the one home of the statements), so a benchmark measures the
statements the worker sends, not a copy that drifts."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ATTEMPTS_CEILING = 1_000_000_000  # kAttemptsCeiling (src/cpp/core/include/fastq/types.hpp)
LEASE_MS = 30000  # fastq_worker's default lease


def statement(name: str) -> str:
    """The statement ``name`` of src/sql/postgres.sql, comment lines dropped."""
    text = (ROOT / "src" / "sql" / "postgres.sql").read_text()
    for block in re.split(r"(?m)^-- name: ", text)[1:]:
        head, _, body = block.partition("\n")
        if head.strip() == name:
            lines = [ln for ln in body.splitlines() if not ln.lstrip().startswith("--")]
            return "\n".join(lines).strip().rstrip(";")
    raise KeyError(name)


def claim_complete_script() -> str:
    """pgbench: the worker's claim of :batch jobs of queue default (no limited queue), then
    their completion as succeeded, in the worker's two statements. The claim's RETURNING is
    turned into the JSON the completion takes (built by the server, not the worker)."""
    claim = statement("claim")
    for n, value in (
        ("$7", str(ATTEMPTS_CEILING)),
        ("$6", "false"),
        ("$5", "ARRAY['default']"),
        ("$4", "'bench'"),
        ("$3", ":token"),
        ("$2", str(LEASE_MS)),
        ("$1", ":batch"),
    ):
        claim = claim.replace(n, value)
    head, update = claim.split("\nUPDATE ", 1)
    complete = statement("complete").replace("$1::json", ":done::json")
    return f"""\\set token random(1, 4611686018427387903)
{head},
claimed AS (UPDATE {update})
SELECT coalesce(json_agg(json_build_object('id', id, 'token', :token::bigint,
  'state', 'succeeded', 'result', 'null', 'started_ago_us', 1000)), '[]') AS done FROM claimed
\\gset
{complete};
"""


def enqueue_script() -> str:
    """pgbench: the enqueue statement with one batch of :rows (a JSON array passed with
    pgbench -D) per transaction. The ids are drawn by the server (the same rows go in with
    every transaction); everything else is the statement the driver sends."""
    sql = statement("enqueue_jobs")
    drawn = sql.replace("SELECT id, task,", "SELECT gen_random_uuid(), task,", 1)
    assert drawn != sql, "enqueue_jobs changed shape: update enqueue_script()"
    return drawn.replace("$1::json", ":rows::json").replace("$2::int", "1") + ";\n"

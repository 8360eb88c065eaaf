"""Batch pollers on the Django side: a cycle compiles the poller's queryset to SQL and
hands it to the C++ core, which walks the keys and enqueues the checks (see
:mod:`fastq.pollers`)."""

from __future__ import annotations

import time
import uuid
from datetime import date, datetime
from datetime import time as dtime
from decimal import Decimal
from typing import Any

from django.db import connections
from django.db.models import QuerySet
from fastq.pollers import Poller, declared, job_template

from fastq_django.broker import default_broker

Param = None | bool | int | float | str


def _bindable(value: Any, connection: Any) -> Param:
    """A parameter of Django's compiled SQL as the core binds it."""
    vendor = connection.vendor
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date | dtime):
        if vendor == "sqlite" and isinstance(value, datetime):
            return str(connection.ops.adapt_datetimefield_value(value))
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return value.hex if vendor == "sqlite" else str(value)
    raise TypeError(
        f"a {type(value).__name__} parameter cannot be bound to a poller's query; "
        "filter on plain values (numbers, text, dates)"
    )


def compile_keys(qs: QuerySet[Any], alias: str) -> tuple[str, list[Param], str]:
    """The SQL selecting ``qs``'s primary keys, its parameters, and the quoted key column."""
    if qs.query.is_sliced:
        raise ValueError("a poller's queryset cannot be sliced: it is walked page by page")
    connection = connections[alias]
    keys = qs.order_by().values_list("pk", flat=True)
    compiler = keys.query.get_compiler(using=alias)
    sql, params = compiler.as_sql()
    # The key's name in the SELECT: Django aliases it ("pk") or leaves the column's.
    selected = compiler.select[0][2] or qs.model._meta.pk.column
    key = connection.ops.quote_name(selected)
    return sql, [_bindable(p, connection) for p in params], key


def run_cycle(name: str, now: datetime) -> dict[str, Any]:
    """One cycle of the poller ``name``: enqueues its checks (and alerts), records the
    counts as the schedule's last outcome, and returns them."""
    p: Poller | None = declared.get(name)
    if p is None:
        raise LookupError(
            f"no poller named {name!r} is declared in this worker (is its module imported?)"
        )
    alias = default_broker().alias
    qs = p.queryset()
    if not isinstance(qs, QuerySet):
        raise TypeError(f"poller {name!r}: queryset() returned {type(qs).__name__}, not a QuerySet")
    if qs.db != alias:
        raise ValueError(
            f"poller {name!r}: the queryset reads database {qs.db!r} but fastq's jobs are "
            f"in {alias!r}; the core walks the rows on fastq's own connection"
        )
    sql, params, key = compile_keys(qs, alias)
    stale_sql: str | None = None
    stale_params: list[Param] = []
    if p.stale_after is not None and p.on_stale is not None:
        stale_qs = qs.filter(**{f"{p.stale_field}__lt": now - p.stale_after})
        stale_sql, stale_params, _ = compile_keys(stale_qs, alias)
    started = time.monotonic()
    # A connection of its own for the cycle (cycles are seconds apart at least), closed
    # when it ends: nothing lingers in the worker's threads or a forked child.
    driver = default_broker().worker_driver()
    try:
        stats = driver.poll(
            name,
            sql,
            params,
            key,
            job_template(p.task),
            start_us=int(now.timestamp() * 1_000_000),
            span_us=int(p.span(now) * 1_000_000),
            min_gap_us=int(p.min_gap() * 1_000_000),
            batch=p.batch_size,
            stale_sql=stale_sql,
            stale_params=stale_params,
            alert=job_template(p.on_stale) if p.on_stale is not None else None,
        )
    finally:
        del driver
    result: dict[str, Any] = dict(stats)
    result["seconds"] = round(time.monotonic() - started, 3)
    outcome = f"polled {stats['rows']}: {stats['enqueued']} new, {stats['pending']} pending"
    if stale_sql is not None:
        outcome += f", {stats['alerted']} alerts"
    default_broker().set_schedule_outcome(name, outcome)  # cut to its 64 characters
    return result

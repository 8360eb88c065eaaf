"""``celery.schedules``: ``crontab`` and ``schedule`` as fastq cron and interval schedules."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastq._core import Cron, CronError

_DAYS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}


def _field(name: str, value: Any, names: dict[str, int] | None = None) -> str:
    if isinstance(value, bool):
        raise ValueError(f"crontab {name}: {value!r} is not a cron field")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple | set | frozenset):
        return ",".join(_field(name, v, names) for v in sorted(value, key=str))
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"crontab {name}: {value!r} is not a cron field")
    text = value.strip().lower()
    if names:
        # Celery accepts day and month names ("mon-fri", "jan,jul"); cron numbers are safe
        # everywhere.
        for word, number in sorted(names.items(), key=lambda kv: -len(kv[0])):
            text = text.replace(word, str(number))
    return text.replace(" ", "")


class crontab:
    """``crontab(minute="*/15", hour="8-18", day_of_week="mon-fri", day_of_month="*",
    month_of_year="*")``: a cron expression, fired by fastq's scheduler in the
    ``CELERY_TIMEZONE`` (default UTC, as Celery) or the entry's own ``tz``."""

    def __init__(
        self,
        minute: Any = "*",
        hour: Any = "*",
        day_of_week: Any = "*",
        day_of_month: Any = "*",
        month_of_year: Any = "*",
        tz: Any = None,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("nowfun") is not None:
            raise ValueError(
                "crontab(nowfun=...) has no meaning on fastq: its scheduler "
                "runs on the database's clock"
            )
        self._orig = (minute, hour, day_of_week, day_of_month, month_of_year)
        self.minute = _field("minute", minute)
        self.hour = _field("hour", hour)
        self.day_of_week = _field("day_of_week", day_of_week, _DAYS)
        self.day_of_month = _field("day_of_month", day_of_month)
        self.month_of_year = _field("month_of_year", month_of_year, _MONTHS)
        self.tz = None if tz is None else str(getattr(tz, "key", tz))
        try:
            Cron(self.expression, timezone=self.tz or "UTC")
        except CronError as exc:
            raise ValueError(f"crontab {self.expression!r}: {exc}") from None

    @property
    def expression(self) -> str:
        """The five-field cron expression (minute hour day-of-month month day-of-week)."""
        return (
            f"{self.minute} {self.hour} {self.day_of_month} {self.month_of_year} {self.day_of_week}"
        )

    def __repr__(self) -> str:
        return f"<crontab: {self.expression}>"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, crontab)
            and other.expression == self.expression
            and other.tz == self.tz
        )

    def __hash__(self) -> int:
        return hash((self.expression, self.tz))


class schedule:
    """``schedule(run_every=timedelta(...) or seconds)``: a fixed interval."""

    def __init__(
        self, run_every: timedelta | float | int, relative: bool = False, **_: Any
    ) -> None:
        seconds = (
            run_every.total_seconds() if isinstance(run_every, timedelta) else float(run_every)
        )
        if not seconds > 0:
            raise ValueError(f"schedule run_every must be positive, got {run_every!r}")
        self.run_every = timedelta(seconds=seconds)
        self.relative = relative

    @property
    def seconds(self) -> float:
        return self.run_every.total_seconds()

    def __repr__(self) -> str:
        return f"<freq: {self.run_every}>"


class solar:
    """Celery's sunrise/sunset schedules have no meaning on fastq: declaring one raises."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise ValueError(
            "celery.schedules.solar has no meaning on fastq; use a crontab in the "
            "location's time zone instead"
        )


__all__ = ["crontab", "schedule", "solar"]

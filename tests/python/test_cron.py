"""fastq.Cron: the C++ cron core seen from Python, checked against a brute-force reference."""

import bisect
import pickle
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from itertools import pairwise
from zoneinfo import ZoneInfo

import fastq
import pytest

MINUTE = timedelta(minutes=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def instant(dt: datetime) -> datetime:
    """The same instant in UTC. Compare these: Python compares two datetimes of one tzinfo by
    wall time (ignoring fold), and never finds an ambiguous wall time equal to another zone's."""
    return dt.astimezone(UTC)


# --- the Python face ------------------------------------------------------------------------


def test_attributes_repr_equality_and_pickle() -> None:
    cron = fastq.Cron("*/5 * * * *", timezone="Europe/Berlin")
    assert cron.expression == "*/5 * * * *"
    assert cron.timezone == "Europe/Berlin"
    assert repr(cron) == "Cron('*/5 * * * *', timezone='Europe/Berlin')"
    assert fastq.Cron("@daily").timezone == "UTC"
    assert cron == fastq.Cron(" */5 * * * * ", "Europe/Berlin")
    assert cron != fastq.Cron("*/5 * * * *")
    assert cron != "*/5 * * * *"
    assert len({cron, fastq.Cron("*/5 * * * *", "Europe/Berlin")}) == 1
    assert pickle.loads(pickle.dumps(cron)) == cron


def test_next_after_returns_an_aware_datetime_in_the_schedule_zone() -> None:
    cron = fastq.Cron("0 9 * * MON-FRI", "America/New_York")
    nxt = cron.next_after(utc(2026, 1, 2, 15, 0))  # a Friday, 10:00 in New York
    assert nxt.tzinfo == ZoneInfo("America/New_York")
    assert instant(nxt) == utc(2026, 1, 5, 14, 0)
    assert (nxt.year, nxt.month, nxt.day, nxt.hour, nxt.minute) == (2026, 1, 5, 9, 0)


def test_any_aware_input_is_read_as_its_instant() -> None:
    cron = fastq.Cron("30 * * * *")
    plus5 = timezone(timedelta(hours=5))
    assert instant(cron.next_after(datetime(2026, 1, 1, 5, 10, tzinfo=plus5))) == utc(
        2026, 1, 1, 0, 30
    )
    # Microseconds count: strictly after.
    assert instant(cron.next_after(utc(2026, 1, 1, 0, 29, 59, 999999))) == utc(2026, 1, 1, 0, 30)
    assert instant(cron.next_after(utc(2026, 1, 1, 0, 30))) == utc(2026, 1, 1, 1, 30)
    # The second 02:00 of the Berlin fall-back day (fold=1) is one hour after the first.
    berlin = ZoneInfo("Europe/Berlin")
    first = datetime(2026, 10, 25, 2, 0, tzinfo=berlin)
    second = datetime(2026, 10, 25, 2, 0, fold=1, tzinfo=berlin)
    hourly = fastq.Cron("0 * * * *", "Europe/Berlin")
    nxt = hourly.next_after(first)
    assert instant(nxt) == instant(second) == utc(2026, 10, 25, 1, 0)
    assert nxt.fold == 1
    assert instant(hourly.next_after(second)) == utc(2026, 10, 25, 2, 0)


def test_naive_datetimes_and_other_types_are_refused() -> None:
    cron = fastq.Cron("* * * * *")
    with pytest.raises(ValueError, match="aware datetime"):
        cron.next_after(datetime(2026, 1, 1))
    with pytest.raises(TypeError, match="datetime"):
        cron.next_after("2026-01-01")  # type: ignore[arg-type]


def test_invalid_expressions_raise_value_error_with_the_field() -> None:
    with pytest.raises(ValueError) as info:
        fastq.Cron("*/5 25 * * *")
    assert str(info.value) == 'cron "*/5 25 * * *": hour field: 25 is out of range 0-23'
    assert isinstance(info.value, fastq.CronError)
    with pytest.raises(fastq.CronError, match="expected 5 fields"):
        fastq.Cron("* * *")
    with pytest.raises(fastq.CronError, match="unknown macro"):
        fastq.Cron("@sometimes")
    with pytest.raises(fastq.CronError, match="never fire"):
        fastq.Cron("0 0 30 2 *")


def test_unknown_time_zone_raises_value_error() -> None:
    with pytest.raises(ValueError, match='unknown time zone "Europe/Atlantis"'):
        fastq.Cron("* * * * *", "Europe/Atlantis")


def test_past_year_9999_raises_overflow_error() -> None:
    with pytest.raises(OverflowError):
        fastq.Cron("0 0 1 1 *").next_after(utc(9999, 6, 1))


def test_dst_examples() -> None:
    daily = fastq.Cron("30 2 * * *", "Europe/Berlin")
    # Spring forward: 02:30 does not exist; the job runs at the change, 03:00 CEST.
    spring = daily.next_after(utc(2026, 3, 28, 12))
    assert instant(spring) == utc(2026, 3, 29, 1, 0)
    assert (spring.hour, spring.minute, spring.utcoffset()) == (3, 0, timedelta(hours=2))
    # Fall back: once, at the first 02:30.
    fall = daily.next_after(utc(2026, 10, 24, 12))
    assert instant(fall) == utc(2026, 10, 25, 0, 30)
    assert (fall.hour, fall.minute, fall.fold) == (2, 30, 0)
    assert instant(daily.next_after(fall)) == utc(2026, 10, 26, 1, 30)
    # Leap day, across 2100 (not a leap year).
    assert instant(fastq.Cron("0 0 29 2 *").next_after(utc(2096, 3, 1))) == utc(2104, 2, 29)


# --- a brute-force reference ----------------------------------------------------------------
#
# An independent, deliberately naive implementation of the documented semantics: walk UTC
# minute by minute, look at the wall clock, and apply cronie's rule. Elapsed-time schedules
# (minute or hour field beginning with '*') fire whenever the wall clock matches; fixed-time
# ones fire only at the first of two repeated wall times (fold=0), and once at the instant
# clocks jump forward over wall times they match.


def parse_field(text: str, lo: int, hi: int) -> set[int]:
    values: set[int] = set()
    for item in text.split(","):
        base, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if base == "*":
            start, end = lo, hi
        elif "-" in base:
            a, b = base.split("-")
            start, end = int(a), int(b)
        else:
            start = int(base)
            end = hi if step_text else start
        values.update(range(start, end + 1, step))
    return values


def reference_matcher(expr: str) -> tuple[Callable[[datetime], bool], bool]:
    minute, hour, dom, month, dow = expr.split()
    minutes = parse_field(minute, 0, 59)
    hours = parse_field(hour, 0, 23)
    days = parse_field(dom, 1, 31)
    months = parse_field(month, 1, 12)
    weekdays = {d % 7 for d in parse_field(dow, 0, 7)}
    either = not dom.startswith("*") and not dow.startswith("*")

    def matches(wall: datetime) -> bool:
        if wall.minute not in minutes or wall.hour not in hours or wall.month not in months:
            return False
        dom_ok = wall.day in days
        dow_ok = (wall.weekday() + 1) % 7 in weekdays
        return (dom_ok or dow_ok) if either else (dom_ok and dow_ok)

    elapsed = minute.startswith("*") or hour.startswith("*")
    return matches, elapsed


@cache
def wall_clock(zone: str, start: datetime, end: datetime) -> list[tuple[datetime, datetime, int]]:
    """(utc, wall time, fold) for every minute in [start, end]."""
    tz = ZoneInfo(zone)
    out = []
    u = start
    while u <= end:
        local = u.astimezone(tz)
        out.append((u, local.replace(tzinfo=None, fold=0), local.fold))
        u += MINUTE
    return out


def reference_fires(expr: str, zone: str, start: datetime, end: datetime) -> list[datetime]:
    matches, elapsed = reference_matcher(expr)
    clock = wall_clock(zone, start, end)
    fires = []
    for (_, prev_wall, _), (u, wall, fold) in pairwise(clock):
        fire = matches(wall) and (elapsed or fold == 0)
        if not elapsed and wall - prev_wall > MINUTE:  # clocks jumped forward
            skipped = prev_wall + MINUTE
            while skipped < wall and not fire:
                fire = matches(skipped)
                skipped += MINUTE
        if fire:
            fires.append(u)
    return fires


def transitions(zone: str, year: int) -> list[datetime]:
    """UTC instants (to the minute) where the zone's offset changes during `year`."""
    tz = ZoneInfo(zone)
    found = []
    u = utc(year, 1, 1)
    while u.year == year:
        nxt = u + timedelta(hours=1)
        if u.astimezone(tz).utcoffset() != nxt.astimezone(tz).utcoffset():
            m = u
            while m.astimezone(tz).utcoffset() == u.astimezone(tz).utcoffset():
                m += MINUTE
            found.append(m)
        u = nxt
    return found


ZONE_YEARS = [
    ("Europe/Berlin", 2026),
    ("Europe/Berlin", 2040),  # past the transitions listed in the file: footer rule
    ("America/New_York", 2026),
    ("America/New_York", 2040),
    ("Asia/Tehran", 2021),  # changes at midnight
    ("Australia/Lord_Howe", 2026),  # 30-minute DST
    ("America/Nuuk", 2040),  # rule times of -1:00
    ("America/Santiago", 2040),  # rule times of 24:00
    ("Asia/Jerusalem", 2040),  # rule time of 26:00
    ("Europe/Dublin", 2040),  # negative DST: winter is the "saving" time
    ("Pacific/Apia", 2011),  # 30 December 2011 skipped
]

EXPRESSIONS = [
    "30 2 * * *",
    "0 2 * * *",
    "59 1 * * *",
    "0 3 * * *",
    "0 0 * * *",
    "30 23 * * *",
    "45 0 * * *",
    "0,30 0-3 * * *",
    "0-59/20 2 * * *",
    "15,45 1,2 * * 0",
    "0 12 1 * 1",
    "*/15 * * * *",
    "0 * * * *",
    "*/10 2 * * *",
    "5 */2 * * *",
]

WINDOWS = [
    (zone, tr - timedelta(days=1, hours=12), tr + timedelta(days=1, hours=12))
    for zone, year in ZONE_YEARS
    for tr in transitions(zone, year)
]


def test_reference_windows_cover_every_zone() -> None:
    zones = {zone for zone, _, _ in WINDOWS}
    assert zones == {zone for zone, _ in ZONE_YEARS}
    assert len(WINDOWS) >= 2 * len(ZONE_YEARS) - 2  # Apia 2011 has one change in range


@pytest.mark.parametrize(("zone", "start", "end"), WINDOWS, ids=lambda v: str(v)[:16])
def test_matches_brute_force_reference_around_dst_changes(
    zone: str, start: datetime, end: datetime
) -> None:
    rng = random.Random(f"{zone}{start}")
    for expr in EXPRESSIONS:
        expected = reference_fires(expr, zone, start, end)
        cron = fastq.Cron(expr, zone)
        got = []
        t = start
        while True:
            t = cron.next_after(t)
            if t > end:
                break
            assert t.tzinfo == ZoneInfo(zone)
            got.append(instant(t))
        assert got == expected, f"{expr!r} in {zone} between {start} and {end}"
        # From arbitrary instants, including microseconds.
        if expected:
            span = int((expected[-1] - start).total_seconds() * 1_000_000)
            for _ in range(25):
                after = start + timedelta(microseconds=rng.randrange(span))
                want = expected[bisect.bisect_right(expected, after)]
                got_next = instant(cron.next_after(after))
                assert got_next == want, f"{expr!r} in {zone} after {after}"

"""Periods the lifecycle metrics are reported by: UTC days, ISO weeks (Monday to Sunday) and calendar months.

Pure arithmetic on dates. Each period has a key that sorts in time order as text, so counters keyed by
it are read with one range: ``2026-11-23`` (a day), ``2026-W48`` (an ISO week: its ISO year and number),
``2026-11`` (a month).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

Granularity = Literal["day", "week", "month"]
GRANULARITIES: tuple[Granularity, ...] = ("day", "week", "month")
#: The most periods one request may cover: a year of days, two years of weeks, three years of months.
MAX_PERIODS: Mapping[Granularity, int] = {"day": 366, "week": 104, "month": 36}
#: How many periods a request covers when it names no ``from``: a month of days, a quarter of weeks,
#: a year of months.
DEFAULT_PERIODS: Mapping[Granularity, int] = {"day": 30, "week": 13, "month": 12}


@dataclass(frozen=True, slots=True, order=True)
class Period:
    """One day, ISO week or month: its first and last day (inclusive) and its key."""

    first: date
    last: date
    granularity: Granularity
    key: str

    def previous(self) -> Period:
        return period_of(self.first - timedelta(days=1), self.granularity)

    def next(self) -> Period:
        return period_of(self.last + timedelta(days=1), self.granularity)

    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]


def day_of(at: datetime) -> date:
    """The UTC day of an aware time."""
    return at.astimezone(UTC).date()


def period_of(day: date, granularity: Granularity) -> Period:
    if granularity == "day":
        return Period(day, day, "day", day.isoformat())
    if granularity == "week":
        first = day - timedelta(days=day.weekday())
        year, week, _ = day.isocalendar()
        return Period(first, first + timedelta(days=6), "week", f"{year}-W{week:02d}")
    first = day.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return Period(first, following - timedelta(days=1), "month", f"{first.year}-{first.month:02d}")


def periods(start: date, end: date, granularity: Granularity) -> list[Period]:
    """Every period from the one holding ``start`` to the one holding ``end``, in order."""
    if end < start:
        raise ValueError("the range ends before it starts")
    found = [period_of(start, granularity)]
    while found[-1].last < end:
        found.append(found[-1].next())
    return found


def month_key(day: date) -> str:
    return period_of(day, "month").key


def months_between(earlier: date, later: date) -> int:
    """Whole calendar months from ``earlier``'s month to ``later``'s (0: the same month)."""
    return (later.year - earlier.year) * 12 + later.month - earlier.month


def month_start(key: str) -> date:
    """The first day of a month key (``2026-11``)."""
    year, month = key.split("-")
    return date(int(year), int(month), 1)

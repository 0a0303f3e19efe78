"""Timer arithmetic on the calendar, in the contact's own time zone. Pure.

Months and years move the local date and keep the local time of day; a day that does not exist in the
target month is clamped to its last day (31 January + 1 month = 28 or 29 February; 29 February + 1 year
= 28 February). Series are computed from their origin, never step by step, so the clamping never
accumulates: 29 February + 4 years is 29 February again. Days and hours are exact durations.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.automations.model import Delay

#: traits a contact's time zone is read from, in order (an IANA name such as ``Europe/Warsaw``)
ZONE_TRAITS = ("timezone", "time_zone", "tz")


def zone_of(traits: dict[str, Any]) -> ZoneInfo:
    """The contact's time zone from its traits, else UTC (an unknown name is UTC too)."""
    for name in ZONE_TRAITS:
        value = traits.get(name)
        if isinstance(value, str) and 0 < len(value) <= 64:
            try:
                return ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def times(delay: Delay, n: int) -> Delay:
    """``delay`` taken ``n`` times (n >= 1)."""
    return Delay(years=delay.years * n, months=delay.months * n, days=delay.days * n, hours=delay.hours * n)


def plus(first: Delay, then: Delay) -> Delay:
    return Delay(
        years=first.years + then.years,
        months=first.months + then.months,
        days=first.days + then.days,
        hours=first.hours + then.hours,
    )


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def shift(at: datetime, delay: Delay, zone: ZoneInfo) -> datetime:
    """``at`` moved by ``delay``: calendar months and years in ``zone``, then exact days and hours (UTC)."""
    local = at.astimezone(zone)
    months = delay.years * 12 + delay.months
    if months:
        day = add_months(local.date(), months)
        local = _local(day, local.timetz().replace(tzinfo=None), zone)
    moved = local.astimezone(UTC) + timedelta(days=delay.days, hours=delay.hours)
    return moved


def _local(day: date, at: time, zone: ZoneInfo) -> datetime:
    """A local wall time. In a spring-forward gap (02:30 that day does not exist) it is the instant the
    pre-change offset names, which reads 03:30 after the change: moved forward by the gap. In an autumn
    fold it is the first of the two instants."""
    return datetime.combine(day, at).replace(tzinfo=zone, fold=0)


def anniversary(origin: date, year: int) -> date:
    """The date's anniversary in ``year``; 29 February falls on 28 February in common years."""
    return date(year, origin.month, min(origin.day, calendar.monthrange(year, origin.month)[1]))


def occurrences_of_date(
    origin: date, zone: ZoneInfo, *, hour: int, offset_days: int, after: datetime
) -> datetime:
    """The first yearly occurrence (the anniversary plus ``offset_days``, at ``hour`` local) after ``after``."""
    year = after.astimezone(zone).year - 1
    while True:
        day = anniversary(origin, year) + timedelta(days=offset_days)
        moment = _local(day, time(hour), zone).astimezone(UTC)
        if moment > after:
            return moment
        year += 1


def latest_date_occurrence(
    origin: date, zone: ZoneInfo, *, hour: int, offset_days: int, upto: datetime
) -> tuple[int, datetime]:
    """The last yearly occurrence at or before ``upto``, with its anniversary year (the occurrence key)."""
    year = upto.astimezone(zone).year + 1
    while True:
        day = anniversary(origin, year) + timedelta(days=offset_days)
        moment = _local(day, time(hour), zone).astimezone(UTC)
        if moment <= upto:
            return year, moment
        year -= 1


def parse_date(value: Any) -> date | None:
    """A date trait: ``YYYY-MM-DD`` or an ISO 8601 time (its date part); anything else is no date."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None

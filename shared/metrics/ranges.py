"""What a metrics request asks for: ``period=day|week|month&from=YYYY-MM-DD&to=YYYY-MM-DD``, validated."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from shared.errors import InvalidRequest
from shared.metrics.periods import (
    DEFAULT_PERIODS,
    GRANULARITIES,
    MAX_PERIODS,
    Granularity,
    Period,
    period_of,
    periods,
)

PARAMETERS = frozenset({"period", "from", "to"})


@dataclass(frozen=True, slots=True)
class MetricRange:
    """Whole periods from the one holding ``start`` to the one holding ``end`` (both inclusive)."""

    granularity: Granularity
    start: date
    end: date
    periods: tuple[Period, ...]

    @property
    def first(self) -> Period:
        return self.periods[0]

    @property
    def last(self) -> Period:
        return self.periods[-1]


def metric_range(
    query: Mapping[str, str], today: date, *, only: tuple[Granularity, ...] = GRANULARITIES
) -> MetricRange:
    """The range a request's query names; a 400 naming the parameter otherwise. ``to`` defaults to today,
    ``from`` to a month of days, a quarter of weeks or a year of months before it; neither may be after
    today, and the range may hold at most a year of days, two years of weeks or three years of months."""
    unknown = sorted(set(query) - PARAMETERS)
    if unknown:
        raise InvalidRequest(
            f"{unknown[0]}: unknown parameter (use period, from and to)",
            code="invalid_parameter",
            field=unknown[0],
        )
    default = "month" if only == ("month",) else "day"
    granularity = query.get("period", default)
    if granularity not in only:
        raise InvalidRequest(
            f"period: must be {' or '.join(only)}, not {granularity!r}",
            code="invalid_parameter",
            field="period",
        )
    end = _day(query, "to") or today
    if end > today:
        raise InvalidRequest(f"to: {end} is after today ({today})", code="invalid_parameter", field="to")
    start = _day(query, "from")
    if start is None:
        start = period_of(end, granularity).first
        for _ in range(DEFAULT_PERIODS[granularity] - 1):
            start = period_of(start, granularity).previous().first
    if start > end:
        raise InvalidRequest(f"from: {start} is after to ({end})", code="invalid_parameter", field="from")
    found = periods(start, end, granularity)
    if len(found) > MAX_PERIODS[granularity]:
        raise InvalidRequest(
            f"from: at most {MAX_PERIODS[granularity]} {granularity}s per request, not {len(found)}",
            code="invalid_parameter",
            field="from",
        )
    return MetricRange(granularity, start, end, tuple(found))


def _day(query: Mapping[str, str], name: str) -> date | None:
    text = query.get(name)
    if text is None:
        return None
    try:
        if len(text) != 10:
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(
            f"{name}: {text!r} is not a date (YYYY-MM-DD)", code="invalid_parameter", field=name
        ) from None

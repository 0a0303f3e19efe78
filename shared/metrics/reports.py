"""The lifecycle reports, computed from counter rows (``shared.metrics.counters``). Pure.

Definitions (docs/metrics.md says the same for the people who read them):

- **Stage distribution**: how many contacts are in each stage at the end of each period (the stage moves
  counted up to then), and how many entered and left each stage during it; of those that left, how many
  left the funnel (**removed**: merged into another contact, which is placed on its own, or erased).
- **Funnel**: per stage and period, the contacts that entered it, left it, and where they went; its
  **conversion**, of the contacts that entered it in the period, the share that have since moved on to a
  later stage of the funnel; and the **median whole days** spent in it by those who left it in the period.
- **Customers**: a customer is active in a period when it bought in it. Its first purchase in the period
  makes it **new** (no purchase before the period), **retained** (it bought in the period before too) or
  **returning** (it bought before, not in the period before). **Churned** in a period: active in the
  period before and not in this one (active before, minus retained).
- **Cohorts**: customers by the month of their first purchase; for each later month, how many of them
  bought in it, and that as a share of the cohort.
- **Revenue**: purchases' revenue and count by period, by the stage the contact was in when it bought,
  and by its RFM segment then (``none``: not scored yet).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from shared.metrics.counters import PREFIX, UNSCORED, CounterRow, summed
from shared.metrics.periods import Granularity, Period, month_key, month_start, months_between


class _Report(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)


class _InPeriod(_Report):
    period: str
    start: date
    end: date


class StagePeriod(_InPeriod):
    #: contacts in each stage at the end of the period
    population: dict[str, int]
    entered: dict[str, int]
    left: dict[str, int]
    #: of those that left, the contacts that left the funnel (merged into another contact, or erased)
    removed: dict[str, int]


class StagesReport(_Report):
    period: Granularity
    start: date = Field(alias="from")
    end: date = Field(alias="to")
    stages: list[str]
    periods: list[StagePeriod]


class FunnelStage(_Report):
    stage: str
    entered: int
    left: int
    #: of those that left, the contacts that left the funnel (merged into another contact, or erased)
    removed: int
    #: moves out of the stage in the period, by the stage moved to
    moved_to: dict[str, int]
    #: of the contacts that entered the stage in the period, how many have since left it, by where to
    converted_to: dict[str, int]
    #: of them, how many moved on to a later stage of the funnel
    converted: int
    #: ``converted / entered``; None when nobody entered
    conversion_rate: float | None
    #: the median whole days in the stage of the contacts that left it in the period (None: nobody did)
    median_days_in_stage: int | None
    #: how many exits that median is over (exits of events published before the metrics carry no time)
    timed_exits: int


class FunnelPeriod(_InPeriod):
    stages: list[FunnelStage]


class FunnelReport(_Report):
    period: Granularity
    start: date = Field(alias="from")
    end: date = Field(alias="to")
    stages: list[str]
    periods: list[FunnelPeriod]


class CustomerPeriod(_InPeriod):
    new: int
    retained: int
    returning: int
    #: customers who bought in the period: new + retained + returning
    active: int
    #: active in the period before, not in this one
    churned: int
    #: active in the period before
    previously_active: int
    #: ``retained / previously_active``; None when nobody was active before
    retention_rate: float | None


class CustomersReport(_Report):
    period: Granularity
    start: date = Field(alias="from")
    end: date = Field(alias="to")
    periods: list[CustomerPeriod]


class Cohort(_Report):
    #: the month of the first purchase
    cohort: str
    #: new customers that month
    size: int
    #: how many of them bought in the cohort's month (index 0, everyone), the month after (1), ...
    active: list[int]
    #: ``active`` as shares of ``size``
    retention: list[float]


class CohortsReport(_Report):
    period: Granularity = "month"
    start: date = Field(alias="from")
    end: date = Field(alias="to")
    cohorts: list[Cohort]


class Amount(_Report):
    revenue: float
    orders: int


class RevenuePeriod(_InPeriod):
    revenue: float
    orders: int
    by_stage: dict[str, Amount]
    by_rfm_segment: dict[str, Amount]


class RevenueReport(_Report):
    period: Granularity
    start: date = Field(alias="from")
    end: date = Field(alias="to")
    stages: list[str]
    periods: list[RevenuePeriod]


def median_of(histogram: Mapping[int, int]) -> int | None:
    """The median of whole-day counts: the middle value, the lower of the two middle ones for an even
    count (a whole number of days, as counted); ``None`` for no values."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    rank = (total + 1) // 2
    seen = 0
    for days in sorted(histogram):
        seen += histogram[days]
        if seen >= rank:
            return days
    raise AssertionError("unreachable")


def row_key(period: Period) -> str:
    """The counter row a day or month is kept under (weeks are summed from days)."""
    return PREFIX[period.granularity] + period.key


def rows_by_period(periods: Sequence[Period], rows: Sequence[CounterRow]) -> dict[str, dict[str, Decimal]]:
    """Each period's values: its month row, or its days' rows summed (day and week periods)."""
    by_key = {row.key: row for row in rows}
    found: dict[str, dict[str, Decimal]] = {}
    for period in periods:
        if period.granularity == "month":
            keys = [row_key(period)]
        else:
            keys = [PREFIX["day"] + day.isoformat() for day in period.days()]
        found[period.key] = summed([by_key[k] for k in keys if k in by_key])
    return found


def stage_order(known: Sequence[str], values: Sequence[Mapping[str, Decimal]]) -> list[str]:
    """The funnel's stages in its order, then any other stage the counters name (a stage since removed)."""
    seen = dict.fromkeys(known)
    for row in values:
        for name in row:
            kind, _, rest = name.partition(":")
            if kind in ("in", "out", "removed", "h", "stage", "stage_orders"):
                seen.setdefault(rest.split(":")[0])
            elif kind in ("move", "conv"):
                for stage in rest.split(">"):
                    seen.setdefault(stage)
    return list(seen)


def _by_prefix(values: Mapping[str, Decimal], prefix: str) -> dict[str, int]:
    return {name.removeprefix(prefix): int(v) for name, v in values.items() if name.startswith(prefix) and v}


def _in_order(counts: Mapping[str, int], order: Sequence[str]) -> dict[str, int]:
    """Counts by stage, in the funnel's order."""
    return {stage: counts[stage] for stage in order if stage in counts}


def stages_report(
    granularity: Granularity,
    start: date,
    end: date,
    periods: Sequence[Period],
    months: Sequence[CounterRow],
    days: Sequence[CounterRow],
    funnel: Sequence[str],
) -> StagesReport:
    """``months``: every month row up to the last period's month; ``days``: the day rows from the first
    day of the first period's month to the last period's end (day and week periods only)."""
    month_rows = {row.key: row for row in months}
    day_rows = {row.key: row for row in days}
    each = rows_by_period(periods, [*months, *days])
    order = stage_order(funnel, [*each.values(), *(r.values for r in months)])

    def population(last: date) -> dict[str, int]:
        """In minus out over every month before ``last``'s month and every day of it up to ``last``
        (for a month period, its whole month row)."""
        upto = month_key(last)
        counted: list[CounterRow] = [row for key, row in month_rows.items() if key[2:] < upto]
        if granularity == "month":
            counted += [month_rows[k] for k in [PREFIX["month"] + upto] if k in month_rows]
        else:
            first = month_start(upto)
            counted += [
                row for key, row in day_rows.items() if first.isoformat() <= key[2:] <= last.isoformat()
            ]
        values = summed(counted)
        return {
            stage: int(values.get(f"in:{stage}", Decimal(0)) - values.get(f"out:{stage}", Decimal(0)))
            for stage in order
        }

    return StagesReport(
        period=granularity,
        start=start,
        end=end,
        stages=order,
        periods=[
            StagePeriod(
                period=p.key,
                start=p.first,
                end=p.last,
                population=population(p.last),
                entered=_in_order(_by_prefix(each[p.key], "in:"), order),
                left=_in_order(_by_prefix(each[p.key], "out:"), order),
                removed=_in_order(_by_prefix(each[p.key], "removed:"), order),
            )
            for p in periods
        ],
    )


def funnel_report(
    granularity: Granularity,
    start: date,
    end: date,
    periods: Sequence[Period],
    rows: Sequence[CounterRow],
    funnel: Sequence[str],
) -> FunnelReport:
    each = rows_by_period(periods, rows)
    order = stage_order(funnel, list(each.values()))
    #: the funnel's order: a stage no longer in it is neither before nor after any other
    rank = {stage: n for n, stage in enumerate(funnel)}

    def stage(values: Mapping[str, Decimal], name: str) -> FunnelStage:
        moved = _in_order(_by_prefix(values, f"move:{name}>"), order)
        converted_to = _in_order(_by_prefix(values, f"conv:{name}>"), order)
        histogram = {int(days): n for days, n in _by_prefix(values, f"h:{name}:").items()}
        entered = int(values.get(f"in:{name}", Decimal(0)))
        forward = sum(
            n
            for target, n in converted_to.items()
            if name in rank and target in rank and rank[target] > rank[name]
        )
        return FunnelStage(
            stage=name,
            entered=entered,
            left=int(values.get(f"out:{name}", Decimal(0))),
            removed=int(values.get(f"removed:{name}", Decimal(0))),
            moved_to=moved,
            converted_to=converted_to,
            converted=forward,
            conversion_rate=round(forward / entered, 4) if entered else None,
            median_days_in_stage=median_of(histogram),
            timed_exits=sum(histogram.values()),
        )

    return FunnelReport(
        period=granularity,
        start=start,
        end=end,
        stages=order,
        periods=[
            FunnelPeriod(
                period=p.key, start=p.first, end=p.last, stages=[stage(each[p.key], s) for s in order]
            )
            for p in periods
        ],
    )


def customers_report(
    granularity: Granularity,
    start: date,
    end: date,
    periods: Sequence[Period],
    rows: Sequence[CounterRow],
) -> CustomersReport:
    """``rows``: the customers rows of the granularity from the period before the first to the last."""
    by_key = {row.key: row for row in rows}

    def counts(period: Period) -> tuple[int, int, int]:
        row = by_key.get(PREFIX[granularity] + period.key)
        if row is None:
            return 0, 0, 0
        return int(row.get("new")), int(row.get("retained")), int(row.get("returning"))

    found = []
    for period in periods:
        new, retained, returning = counts(period)
        before = sum(counts(period.previous()))
        found.append(
            CustomerPeriod(
                period=period.key,
                start=period.first,
                end=period.last,
                new=new,
                retained=retained,
                returning=returning,
                active=new + retained + returning,
                churned=before - retained,
                previously_active=before,
                retention_rate=round(retained / before, 4) if before else None,
            )
        )
    return CustomersReport(period=granularity, start=start, end=end, periods=found)


def cohorts_report(
    start: date, end: date, cohorts: Sequence[Period], rows: Sequence[CounterRow], today: date
) -> CohortsReport:
    """Each cohort's activity from its month to ``today``'s (a triangle: later cohorts have fewer months)."""
    by_key = {row.key: row for row in rows}
    found = []
    for month in cohorts:
        row = by_key.get(month.key)
        span = months_between(month.first, today) + 1
        active = [int(row.get(f"m{k}")) if row else 0 for k in range(max(span, 0))]
        size = active[0] if active else 0
        found.append(
            Cohort(
                cohort=month.key,
                size=size,
                active=active,
                retention=[round(n / size, 4) if size else 0.0 for n in active],
            )
        )
    return CohortsReport(start=start, end=end, cohorts=found)


def revenue_report(
    granularity: Granularity,
    start: date,
    end: date,
    periods: Sequence[Period],
    rows: Sequence[CounterRow],
    funnel: Sequence[str],
) -> RevenueReport:
    each = rows_by_period(periods, rows)
    order = stage_order(funnel, list(each.values()))

    def amounts(
        values: Mapping[str, Decimal], kind: str, names: Callable[[], list[str]]
    ) -> dict[str, Amount]:
        return {
            name: Amount(
                revenue=float(values.get(f"{kind}:{name}", Decimal(0))),
                orders=int(values.get(f"{kind}_orders:{name}", Decimal(0))),
            )
            for name in names()
            if values.get(f"{kind}_orders:{name}")
        }

    def segments(values: Mapping[str, Decimal]) -> list[str]:
        named = sorted(n.removeprefix("rfm_orders:") for n in values if n.startswith("rfm_orders:"))
        return sorted(named, key=lambda s: s == UNSCORED)  # ``none`` last

    return RevenueReport(
        period=granularity,
        start=start,
        end=end,
        stages=order,
        periods=[
            RevenuePeriod(
                period=p.key,
                start=p.first,
                end=p.last,
                revenue=float(each[p.key].get("revenue", Decimal(0))),
                orders=int(each[p.key].get("orders", Decimal(0))),
                by_stage=amounts(each[p.key], "stage", lambda: order),
                by_rfm_segment=amounts(each[p.key], "rfm", lambda v=each[p.key]: segments(v)),
            )
            for p in periods
        ],
    )

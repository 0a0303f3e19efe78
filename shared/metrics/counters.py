"""What a stage move or a purchase adds to the lifecycle counters, and the per-customer facts it claims.

Pure: the counters are named here, stored by an adapter (``shared.usecases.metrics.MetricStore``) and read
back as ``CounterRow``s. Four counters, each a row per key:

- ``stages``, by day (``D#2026-11-23``) and month (``M#2026-11``): ``in:<stage>`` and ``out:<stage>``
  (contacts that entered and left it), ``removed:<stage>`` (of those that left, the ones that left the
  funnel: merged into another contact or erased), ``move:<from>><to>`` (moves), ``conv:<from>><to>`` (moves out of
  ``<from>``, counted in the period the contact *entered* ``<from>``: the funnel's cohort conversion) and
  ``h:<stage>:<days>`` (contacts that left the stage after that many whole days in it).
- ``revenue``, by day and month: ``orders``, ``revenue``, ``stage:<stage>`` / ``stage_orders:<stage>``
  (the stage the contact was in when it bought) and ``rfm:<segment>`` / ``rfm_orders:<segment>``.
- ``customers``, by day, ISO week and month (``D#``, ``W#``, ``M#``): ``new``, ``retained``,
  ``returning``: each customer counted once per period, by its first purchase in it.
- ``cohorts``, by the month of the customers' first purchase (``2026-11``): ``m<k>``, how many of them
  bought in the k-th month after it (``m0``: the cohort's size).

A customer's facts (``Claim``): ``FIRST`` (the day of its first purchase) and one marker per period it
bought in (``D#...``, ``W#...``, ``M#...``), each written once, kept as long as the next period's first
purchase needs to look back at it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict

from shared.engagement.events import ContactRemoved, ContactStageChanged
from shared.metrics.periods import GRANULARITIES, Granularity, Period, day_of, month_key, period_of

#: issue 15: ``nps``, the net promoter score's answers and surveys sent (``shared.metrics.nps``)
Counter = Literal["stages", "revenue", "customers", "cohorts", "nps"]
#: The key prefix of each granularity's rows and markers.
PREFIX: Mapping[Granularity, str] = {"day": "D#", "week": "W#", "month": "M#"}
#: Whole days in a stage are counted exactly up to this; longer stays count as this many (the median of
#: a stage most contacts stay in for over a year reads 366).
MAX_DAYS_IN_STAGE = 366
#: The key of a customer's first purchase fact.
FIRST = "FIRST"
#: An RFM segment for customers the nightly pass has not scored (yet).
UNSCORED = "none"
#: How long a customer's marker of a period is kept after the period ends: its next period looks back.
KEEP_MARKER: Mapping[Granularity, timedelta] = {
    "day": timedelta(days=3),
    "week": timedelta(days=21),
    "month": timedelta(days=93),
}
CustomerClass = Literal["new", "retained", "returning"]


class CounterRow(BaseModel):
    """One row of a counter as read back: its key and its values, summed over the row's shards."""

    model_config = ConfigDict(frozen=True)

    key: str
    values: dict[str, Decimal]

    def get(self, name: str) -> Decimal:
        return self.values.get(name, Decimal(0))


@dataclass(frozen=True, slots=True)
class Add:
    """Numbers to add to one row of a counter."""

    counter: Counter
    key: str
    values: Mapping[str, int | Decimal]


@dataclass(frozen=True, slots=True)
class Claim:
    """A customer's fact, written once (a second claim of it fails): ``FIRST`` or a period marker."""

    key: str
    #: forgotten after this (``None``: kept)
    expires: datetime | None = None
    #: what it records (``FIRST``: the day, ISO)
    value: str = ""


@dataclass(frozen=True, slots=True)
class CustomerFacts:
    """What is known of a customer before its purchase is counted: its first purchase day, and which of
    the claimed keys asked about exist."""

    first: date | None = None
    claimed: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class PurchasePlan:
    adds: tuple[Add, ...]
    claims: tuple[Claim, ...] = ()
    #: granularity -> how the purchase classified the customer in its period (first purchase in it only)
    classes: Mapping[Granularity, CustomerClass] = field(default_factory=dict)


def transition(source: str, target: str) -> str:
    """``<from>><to>``: stage ids are ``[a-z][a-z0-9_-]*``, so ``>`` separates them."""
    return f"{source}>{target}"


def whole_days(since: datetime, until: datetime) -> int:
    """Whole days between two times, at least 0 and at most ``MAX_DAYS_IN_STAGE``."""
    return max(0, min(MAX_DAYS_IN_STAGE, (until - since) // timedelta(days=1)))


def merged(adds: Iterable[Add]) -> tuple[Add, ...]:
    """Adds to the same row folded into one (a write may name a row once)."""
    rows: dict[tuple[Counter, str], dict[str, int | Decimal]] = {}
    for add in adds:
        row = rows.setdefault((add.counter, add.key), {})
        for name, value in add.values.items():
            row[name] = row.get(name, 0) + value
    return tuple(Add(counter, key, values) for (counter, key), values in rows.items())


def stage_move(event: ContactStageChanged) -> tuple[Add, ...]:
    """What a stage move adds: to the day and month it happened, and (its conversion) to the day and
    month the contact entered the stage it left."""
    day = day_of(event.at)
    values: dict[str, int | Decimal] = {f"in:{event.to_stage}": 1}
    conversions: list[Add] = []
    if event.from_stage is not None:
        values[f"out:{event.from_stage}"] = 1
        values[f"move:{transition(event.from_stage, event.to_stage)}"] = 1
        if event.from_entered_at is not None:
            values[f"h:{event.from_stage}:{whole_days(event.from_entered_at, event.at)}"] = 1
            entered = day_of(event.from_entered_at)
            conversion = {f"conv:{transition(event.from_stage, event.to_stage)}": 1}
            conversions = [
                Add("stages", PREFIX["day"] + entered.isoformat(), conversion),
                Add("stages", PREFIX["month"] + month_key(entered), conversion),
            ]
    return merged(
        [
            Add("stages", PREFIX["day"] + day.isoformat(), values),
            Add("stages", PREFIX["month"] + month_key(day), values),
            *conversions,
        ]
    )


def stage_removal(event: ContactRemoved) -> tuple[Add, ...]:
    """What a removal from the funnel adds: out of its stage, and removed from it, on the day and month it
    happened (not a move: no transition, no conversion, no time in stage)."""
    day = day_of(event.at)
    values: dict[str, int | Decimal] = {f"out:{event.stage}": 1, f"removed:{event.stage}": 1}
    return (
        Add("stages", PREFIX["day"] + day.isoformat(), values),
        Add("stages", PREFIX["month"] + month_key(day), values),
    )


def stage_change(event: ContactStageChanged | ContactRemoved) -> tuple[Add, ...]:
    """What an entry of the stage history adds: a move, or a removal from the funnel."""
    return stage_removal(event) if isinstance(event, ContactRemoved) else stage_move(event)


def marker(period: Period) -> str:
    return PREFIX[period.granularity] + period.key


def facts_needed(day: date) -> tuple[str, ...]:
    """The customer's keys a purchase on ``day`` reads: its first purchase, and the markers of the
    purchase's periods and of the periods before them."""
    keys = [FIRST]
    for granularity in GRANULARITIES:
        period = period_of(day, granularity)
        keys += [marker(period), marker(period.previous())]
    return tuple(keys)


def classify(period: Period, facts: CustomerFacts) -> CustomerClass:
    """A customer's first purchase in ``period``: ``new`` (no purchase known before the period),
    ``retained`` (it bought in the period before too) or ``returning`` (it bought before, not then)."""
    if facts.first is None or facts.first >= period.first:
        return "new"
    return "retained" if marker(period.previous()) in facts.claimed else "returning"


def purchase(
    at: datetime, amount: Decimal, stage: str, segment: str | None, facts: CustomerFacts
) -> PurchasePlan:
    """What a purchase adds (revenue by stage and RFM segment; the customer's classes in the periods it
    is the first purchase of; its cohort's activity) and the facts it claims."""
    day = day_of(at)
    segment = segment or UNSCORED
    money: dict[str, int | Decimal] = {
        "orders": 1,
        "revenue": amount,
        f"stage:{stage}": amount,
        f"stage_orders:{stage}": 1,
        f"rfm:{segment}": amount,
        f"rfm_orders:{segment}": 1,
    }
    adds = [
        Add("revenue", PREFIX["day"] + day.isoformat(), money),
        Add("revenue", PREFIX["month"] + month_key(day), money),
    ]
    claims: list[Claim] = []
    classes: dict[Granularity, CustomerClass] = {}
    for granularity in GRANULARITIES:
        period = period_of(day, granularity)
        if marker(period) in facts.claimed:
            continue  # bought in this period before: counted then
        kind = classes[granularity] = classify(period, facts)
        claims.append(Claim(marker(period), expires=_end_of(period.last) + KEEP_MARKER[granularity]))
        adds.append(Add("customers", marker(period), {kind: 1}))
        if granularity == "month":
            # a new customer starts its cohort; the others belong to the month of their first purchase
            cohort = period.first if kind == "new" or facts.first is None else facts.first
            offset = (period.first.year - cohort.year) * 12 + period.first.month - cohort.month
            adds.append(Add("cohorts", month_key(cohort), {f"m{offset}": 1}))
    if facts.first is None:
        claims.append(Claim(FIRST, value=day.isoformat()))
    return PurchasePlan(adds=merged(adds), claims=tuple(claims), classes=classes)


def _end_of(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)


def summed(rows: Sequence[CounterRow]) -> dict[str, Decimal]:
    """Several rows' values added up."""
    total: dict[str, Decimal] = {}
    for row in rows:
        for name, value in row.values.items():
            total[name] = total.get(name, Decimal(0)) + value
    return total

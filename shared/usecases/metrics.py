"""Lifecycle metrics: counted as things happen, read as reports (``/admin/metrics``).

Two writers, each counting once whatever is redelivered:

- the ``metrics`` function counts each ``ContactStageChanged`` and ``ContactRemoved`` announced on the bus
  (``count_stage_move``): the counters' adds and a marker of the event's id are one write, so an event
  delivered twice finds its marker and adds nothing. Those markers are kept for good: the stage history
  holds the same events under the same ids, so counting it again (``metrics_backfill``, which seeds the
  counters with what happened before they existed) adds only what was never counted;
- the ``automation_events`` function counts each recorded purchase (``count_purchase``): revenue by
  stage and RFM segment, and the customer's facts (first purchase, the periods it bought in), which
  decide whether it is new, retained or returning in each period. The same write holds a marker of the
  event's log key and the customer's new facts, each written only if absent: a replay adds nothing, and
  two purchases of one customer racing for the same period count it once (the loser reads again).

Reports read a bounded number of counter rows (``MetricStore.rows``), never the contacts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol

from shared.clock import Clock
from shared.contacts.identity import ContactId
from shared.contacts.model import ContactRecord
from shared.engagement.events import ContactRemoved, ContactStageChanged
from shared.errors import DependencyUnavailable
from shared.metrics.counters import (
    PREFIX,
    Add,
    Claim,
    Counter,
    CounterRow,
    CustomerFacts,
    facts_needed,
    purchase,
    stage_change,
)
from shared.metrics.periods import day_of, month_key
from shared.metrics.ranges import MetricRange
from shared.metrics.reports import (
    CohortsReport,
    CustomersReport,
    FunnelReport,
    RevenueReport,
    StagesReport,
    cohorts_report,
    customers_report,
    funnel_report,
    revenue_report,
    stages_report,
)
from shared.tracking.behaviours import Behaviour
from shared.tracking.messages import TrackedEvent
from shared.usecases.engagement import FunnelSource

#: How often a purchase is counted again after another purchase of the customer claimed a fact first.
MAX_ATTEMPTS = 4
#: How far a contact's merges are followed to the contact holding its profile.
MAX_MERGE_HOPS = 4


class ClaimTaken(Exception):
    """A customer's fact a write claimed exists already (another purchase wrote it meanwhile): nothing was
    written; read the facts again."""


class MetricStore(Protocol):
    def record(
        self,
        marker: str,
        adds: Sequence[Add],
        claims: Sequence[Claim] = (),
        customer: str | None = None,
        *,
        keep: bool = False,
    ) -> bool:
        """Apply the adds, and write the customer's claims, once: ``False`` if ``marker`` was recorded
        before (nothing written). ``ClaimTaken`` if one of the claims exists (nothing written). ``keep``:
        the marker is kept for good (else it expires once no redelivery can bring the event again)."""
        ...

    def customer(self, customer: str, keys: Sequence[str]) -> CustomerFacts:
        """The customer's first purchase day, and which of ``keys`` it has claimed."""
        ...

    def rows(self, counter: Counter, first: str, last: str) -> list[CounterRow]:
        """The counter's rows with keys from ``first`` to ``last`` (inclusive), in key order."""
        ...


class StageTimeline(Protocol):
    def stage_at(self, contact: ContactId, at: datetime) -> str | None:
        """The stage the contact was in at ``at``, by its stage history: the stage of the last move at
        or before it, else the stage the first move after it left (where a first placement put it);
        ``None`` for a contact never placed."""
        ...


class ProfileReader(Protocol):
    def profile(self, contact: ContactId) -> ContactRecord | None: ...


class Telemetry(Protocol):
    def count(self, name: str, value: int) -> None: ...


@dataclass(frozen=True, slots=True)
class StageMetering:
    """The metrics function: stage moves from the bus."""

    store: MetricStore
    telemetry: Telemetry


@dataclass(frozen=True, slots=True)
class PurchaseMetering:
    """The events trigger's part: purchases from the event log's stream."""

    store: MetricStore
    contacts: ProfileReader
    timeline: StageTimeline
    funnels: FunnelSource
    telemetry: Telemetry


@dataclass(frozen=True, slots=True)
class MetricReading:
    """The admin API's reports."""

    store: MetricStore
    funnels: FunnelSource
    clock: Clock


# --- counting -------------------------------------------------------------------------------------------


def stage_marker(event: ContactStageChanged | ContactRemoved) -> str:
    """What a stage history entry is counted under, for good: the event's id, and for a move its time too.

    A move's id is the contact and its stage sequence, which start again when an erased contact's id is
    used again (a browser's anonymous id, a user signing up again): its time tells the two placements
    apart, and is the same in every delivery of the event and in its history entry. A removal's id holds
    the time its placement began already (and the two paths announcing it time it differently)."""
    if isinstance(event, ContactRemoved):
        return f"stage:{event.event_id}"
    return f"stage:{event.event_id}@{event.at.isoformat()}"


def count_stage_move(event: ContactStageChanged | ContactRemoved, deps: StageMetering) -> bool:
    """Count a stage move (or a removal from the funnel) once, ever; ``False`` if it was counted before."""
    counted = deps.store.record(stage_marker(event), stage_change(event), keep=True)
    deps.telemetry.count("StageMovesCounted", int(counted))
    return counted


def count_purchase(contact: ContactId, event: TrackedEvent, log_key: str, deps: PurchaseMetering) -> bool:
    """Count a recorded purchase once (any other event: nothing); ``False`` if it was counted before.

    The customer is the contact holding the profile now (a merged-away contact's purchase counts for the
    one it joined); its stage when it bought comes from its stage history at the purchase's time, its RFM
    segment from the last nightly pass."""
    if event.behaviour is not Behaviour.PURCHASE:
        return False
    record = _holding(contact, deps)
    customer = ContactId.parse(record.contact_id) if record is not None else contact
    stage = deps.timeline.stage_at(customer, event.timestamp) or deps.funnels.funnel().initial
    rfm = record.analytics.rfm if record is not None and record.analytics is not None else None
    amount = event.revenue if event.revenue is not None else Decimal(0)
    marker = f"purchase:{contact}#{log_key}"
    for _ in range(MAX_ATTEMPTS):
        facts = deps.store.customer(str(customer), facts_needed(day_of(event.timestamp)))
        plan = purchase(event.timestamp, amount, stage, rfm.segment if rfm else None, facts)
        try:
            counted = deps.store.record(marker, plan.adds, plan.claims, customer=str(customer))
        except ClaimTaken:
            continue
        deps.telemetry.count("PurchasesCounted", int(counted))
        return counted
    raise DependencyUnavailable("the customer's purchases kept changing; retry")


def _holding(contact: ContactId, deps: PurchaseMetering) -> ContactRecord | None:
    for _ in range(MAX_MERGE_HOPS):
        record = deps.contacts.profile(contact)
        if record is None or not record.merged_into:
            return record
        contact = ContactId.parse(record.merged_into)
    return None


# --- reading --------------------------------------------------------------------------------------------


def _stage_ids(deps: MetricReading) -> list[str]:
    return [stage.id for stage in deps.funnels.funnel().stages]


def _rows(deps: MetricReading, counter: Counter, first: str, last: str) -> list[CounterRow]:
    return deps.store.rows(counter, first, last)


def _span(span: MetricRange) -> tuple[str, str]:
    """The first and last row keys of the range: its months, or its days (weeks are summed from days)."""
    if span.granularity == "month":
        return PREFIX["month"] + span.first.key, PREFIX["month"] + span.last.key
    return PREFIX["day"] + span.first.first.isoformat(), PREFIX["day"] + span.last.last.isoformat()


def stage_distribution(span: MetricRange, deps: MetricReading) -> StagesReport:
    """Reads every month row up to the last period's month (populations are their running sum) and, for
    days and weeks, the day rows from the first period's month on: two queries, one for months."""
    months = _rows(deps, "stages", PREFIX["month"], PREFIX["month"] + month_key(span.last.last))
    days: list[CounterRow] = []
    if span.granularity != "month":
        first = span.first.first.replace(day=1)
        days = _rows(deps, "stages", PREFIX["day"] + first.isoformat(), _span(span)[1])
    return stages_report(span.granularity, span.start, span.end, span.periods, months, days, _stage_ids(deps))


def funnel(span: MetricRange, deps: MetricReading) -> FunnelReport:
    rows = _rows(deps, "stages", *_span(span))
    return funnel_report(span.granularity, span.start, span.end, span.periods, rows, _stage_ids(deps))


def customers(span: MetricRange, deps: MetricReading) -> CustomersReport:
    prefix = PREFIX[span.granularity]
    rows = _rows(deps, "customers", prefix + span.first.previous().key, prefix + span.last.key)
    return customers_report(span.granularity, span.start, span.end, span.periods, rows)


def cohorts(span: MetricRange, deps: MetricReading) -> CohortsReport:
    rows = _rows(deps, "cohorts", span.first.key, span.last.key)
    return cohorts_report(span.start, span.end, span.periods, rows, today(deps))


def revenue(span: MetricRange, deps: MetricReading) -> RevenueReport:
    rows = _rows(deps, "revenue", *_span(span))
    return revenue_report(span.granularity, span.start, span.end, span.periods, rows, _stage_ids(deps))


def today(deps: MetricReading) -> date:
    return day_of(deps.clock.now())

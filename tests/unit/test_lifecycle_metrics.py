"""Lifecycle metrics: a known population through the real use cases (fakes for the stores), each figure
checked by hand, and the definitions' edges (periods, medians, duplicates, races)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from shared.analytics.facts import Analytics, RfmFacts
from shared.clock import FixedClock
from shared.contacts.identity import ContactId
from shared.contacts.model import ContactRecord
from shared.engagement.events import ContactRemoved, ContactStageChanged, removal_id
from shared.errors import DependencyUnavailable, InvalidRequest
from shared.metrics.counters import MAX_DAYS_IN_STAGE, CustomerFacts, classify, facts_needed, purchase
from shared.metrics.periods import month_key, period_of, periods
from shared.metrics.ranges import metric_range
from shared.metrics.reports import median_of
from shared.tracking.messages import parse_calls
from shared.tracking.timestamps import format_time
from shared.tracking.wire import Limits
from shared.usecases.metrics import (
    MetricReading,
    PurchaseMetering,
    StageMetering,
    cohorts,
    count_purchase,
    count_stage_move,
    customers,
    funnel,
    revenue,
    stage_distribution,
)
from tests.fakes import (
    CountingTelemetry,
    MemoryContactStore,
    MemoryEngagementConfig,
    MemoryMetricStore,
    MemoryOutboxEntry,
    MemoryStageStore,
    MemoryStageTimeline,
)

TODAY = datetime(2026, 12, 31, 12, 0, tzinfo=UTC)


def at(day: str, clock: str = "10:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}:00+00:00")


@dataclass
class Profiles:
    """Profiles by contact (``ProfileReader``): what the purchase use case reads of a customer."""

    records: dict[ContactId, ContactRecord] = field(default_factory=dict)

    def profile(self, contact: ContactId) -> ContactRecord | None:
        return self.records.get(contact)


@dataclass
class World:
    store: MemoryMetricStore = field(default_factory=MemoryMetricStore)
    stages: MemoryStageStore = field(default_factory=lambda: MemoryStageStore(MemoryContactStore()))
    profiles: Profiles = field(default_factory=Profiles)
    config: MemoryEngagementConfig = field(default_factory=MemoryEngagementConfig)
    telemetry: CountingTelemetry = field(default_factory=CountingTelemetry)
    moves: list[ContactStageChanged] = field(default_factory=list)
    purchases: list[tuple[ContactId, object, str]] = field(default_factory=list)
    #: contact -> when it entered its current stage (as the stage function stores it)
    entered: dict[str, datetime] = field(default_factory=dict)
    current: dict[str, str] = field(default_factory=dict)

    def move(self, who: str, to: str, when: datetime) -> ContactStageChanged:
        """The stage function's announcement of a move, counted by the metrics function, and kept in the
        contact's stage history (what revenue by stage reads)."""
        contact = ContactId.user(who)
        seq = len(self.stages.outbox.get(contact, {})) + 1
        event = ContactStageChanged(
            event_id=f"{contact}#{seq}#0",
            contact_id=str(contact),
            at=when,
            from_stage=self.current.get(who),
            to_stage=to,
            phase="acquisition",
            reason="test",
            engagement=1.0,
            index=0.1,
            direction="steady",
            from_entered_at=self.entered.get(who),
        )
        self.current[who], self.entered[who] = to, when
        self.stages.outbox.setdefault(contact, {})[f"STAGE#{seq:08d}#00"] = MemoryOutboxEntry(event)
        self.moves.append(event)
        assert count_stage_move(event, StageMetering(self.store, self.telemetry))
        return event

    def remove(self, who: str, when: datetime, reason: str = "merged") -> ContactRemoved:
        """The contact leaves the funnel (merged into another contact, or erased), as announced and counted."""
        contact = ContactId.user(who)
        event = ContactRemoved(
            event_id=removal_id(str(contact), self.entered.get(who)),
            contact_id=str(contact),
            at=when,
            stage=self.current.pop(who),
            entered_at=self.entered.pop(who),
            reason=reason,
        )
        assert count_stage_move(event, StageMetering(self.store, self.telemetry))
        return event

    def buy(self, who: str, amount: str, when: datetime, message_id: str) -> None:
        call = {
            "type": "track",
            "userId": who,
            "event": "Order Completed",
            "messageId": message_id,
            "timestamp": format_time(when),
            "properties": {"revenue": float(amount), "order_id": message_id},
        }
        (event,) = parse_calls("/v1/batch", {"batch": [call]}, received_at=when, limits=Limits())
        contact = ContactId.user(who)
        key = f"E#{format_time(when)}#{message_id}"
        self.purchases.append((contact, event, key))
        assert count_purchase(contact, event, key, self.metering())

    def metering(self) -> PurchaseMetering:
        return PurchaseMetering(
            store=self.store,
            contacts=self.profiles,
            timeline=MemoryStageTimeline(self.stages),
            funnels=self.config,
            telemetry=self.telemetry,
        )

    def reading(self, now: datetime = TODAY) -> MetricReading:
        return MetricReading(store=self.store, funnels=self.config, clock=FixedClock(now))


def known_population() -> World:
    """Six contacts over October to December 2026 (what each report below must show, by hand):

    - c1..c4 first seen on Mon 2 Nov (subscriber); c1 and c2 identified on 5 Nov (lead, after 3 days);
      c1 bought on 9 Nov at 10:00 (100, as a lead) and became a customer at 10:01 (after 4 days as a lead);
      c3 became a lead on 10 Nov (after 8 days); c2 bought on 1 Dec at 09:00 (80, as a lead) and became
      a customer at 10:00 (after 26 days as a lead); c5 was first seen on 3 Dec.
    - c1 (scored "new" by the nightly pass in December) bought again on 15 Dec (50) and 16 Dec (10).
    - c6, never placed in a stage (a back-end's customer only), bought on 20 Oct (30) and 20 Dec (40).
    """
    world = World()
    for who in ("c1", "c2", "c3", "c4"):
        world.move(who, "subscriber", at("2026-11-02"))
    world.buy("c6", "30", at("2026-10-20"), "o-6a")
    world.move("c1", "lead", at("2026-11-05"))
    world.move("c2", "lead", at("2026-11-05"))
    world.buy("c1", "100", at("2026-11-09"), "o-1a")
    world.move("c1", "customer", at("2026-11-09", "10:01"))
    world.move("c3", "lead", at("2026-11-10"))
    world.buy("c2", "80", at("2026-12-01", "09:00"), "o-2a")
    world.move("c2", "customer", at("2026-12-01"))
    world.move("c5", "subscriber", at("2026-12-03"))
    world.profiles.records[ContactId.user("c1")] = ContactRecord(
        contact_id="user_id:c1",
        user_id="c1",
        analytics=Analytics(day=date(2026, 12, 1), rfm=RfmFacts(r=5, f=1, m=3, segment="new")),
    )
    world.buy("c1", "50", at("2026-12-15"), "o-1b")
    world.buy("c1", "10", at("2026-12-16"), "o-1c")
    world.buy("c6", "40", at("2026-12-20"), "o-6b")
    return world


def query(period: str, start: str, end: str) -> dict[str, str]:
    return {"period": period, "from": start, "to": end}


def test_stage_distribution_by_month_counts_each_stage_at_the_end_of_each_month() -> None:
    world = known_population()
    span = metric_range(query("month", "2026-10-01", "2026-12-31"), TODAY.date())
    report = stage_distribution(span, world.reading())
    by_month = {p.period: p for p in report.periods}
    assert report.stages[:8] == [
        "subscriber", "lead", "mql", "sql", "opportunity", "customer", "loyal", "at_risk",
    ]  # fmt: skip
    assert by_month["2026-10"].population == dict.fromkeys(report.stages, 0)
    november = by_month["2026-11"]
    assert {s: n for s, n in november.population.items() if n} == {"subscriber": 1, "lead": 2, "customer": 1}
    assert november.entered == {"subscriber": 4, "lead": 3, "customer": 1}
    assert november.left == {"subscriber": 3, "lead": 1}
    december = by_month["2026-12"]
    assert {s: n for s, n in december.population.items() if n} == {"subscriber": 2, "lead": 1, "customer": 2}
    assert december.entered == {"subscriber": 1, "customer": 1} and december.left == {"lead": 1}


def test_contacts_that_leave_the_funnel_leave_its_populations_once() -> None:
    """c4 (a subscriber since 2 Nov) merges into another contact on 10 Dec and c3 (a lead) is erased on 12
    Dec: December's populations lose them, they are counted as having left (and as removed), not as moves
    or exits with a time in stage; the same removals delivered again (or announced again by the erasure of
    a contact merged before) count nothing, and their markers are kept for good."""
    world = known_population()
    merged = world.remove("c4", at("2026-12-10"))
    erased = world.remove("c3", at("2026-12-12"), reason="erased")
    metering = StageMetering(world.store, world.telemetry)
    assert not count_stage_move(merged, metering)
    assert not count_stage_move(erased.model_copy(update={"reason": "merged"}), metering), (
        "one id per placement"
    )
    assert {f"stage:{merged.event_id}", f"stage:{erased.event_id}"} <= world.store.kept
    span = metric_range(query("month", "2026-11-01", "2026-12-31"), TODAY.date())
    december = stage_distribution(span, world.reading()).periods[-1]
    assert {s: n for s, n in december.population.items() if n} == {"subscriber": 1, "customer": 2}
    assert december.left == {"subscriber": 1, "lead": 2} and december.removed == {"subscriber": 1, "lead": 1}
    stages = {s.stage: s for s in funnel(span, world.reading()).periods[-1].stages}
    assert (stages["lead"].left, stages["lead"].removed, stages["lead"].moved_to) == (2, 1, {"customer": 1})
    assert stages["lead"].timed_exits == 1, "a removal is no exit with a time in the stage"
    assert (stages["subscriber"].left, stages["subscriber"].removed, stages["subscriber"].timed_exits) == (
        1,
        1,
        0,
    )


def test_every_stage_marker_is_kept_for_good_and_purchase_markers_expire() -> None:
    world = known_population()
    assert {m for m in world.store.markers if m.startswith("stage:")} == world.store.kept
    assert not any(m.startswith("purchase:") for m in world.store.kept)


def test_stage_distribution_by_day_and_week_agrees_with_the_months() -> None:
    world = known_population()
    days = stage_distribution(
        metric_range(query("day", "2026-11-04", "2026-11-10"), TODAY.date()), world.reading()
    )
    populated = {p.period: {s: n for s, n in p.population.items() if n} for p in days.periods}
    assert populated["2026-11-04"] == {"subscriber": 4}
    assert populated["2026-11-05"] == {"subscriber": 2, "lead": 2}
    assert populated["2026-11-09"] == {"subscriber": 2, "lead": 1, "customer": 1}
    assert populated["2026-11-10"] == {"subscriber": 1, "lead": 2, "customer": 1}
    weeks = stage_distribution(
        metric_range(query("week", "2026-11-30", "2026-12-31"), TODAY.date()), world.reading()
    )
    assert [p.period for p in weeks.periods] == ["2026-W49", "2026-W50", "2026-W51", "2026-W52", "2026-W53"]
    first = weeks.periods[0]  # Mon 30 Nov to Sun 6 Dec: c2 became a customer, c5 arrived
    assert (first.start, first.end) == (date(2026, 11, 30), date(2026, 12, 6))
    assert {s: n for s, n in first.population.items() if n} == {"subscriber": 2, "lead": 1, "customer": 2}
    assert first.entered == {"customer": 1, "subscriber": 1} and first.left == {"lead": 1}


def test_funnel_conversion_and_median_time_in_stage() -> None:
    world = known_population()
    report = funnel(metric_range(query("month", "2026-11-01", "2026-12-31"), TODAY.date()), world.reading())
    november = {s.stage: s for s in report.periods[0].stages}
    subscriber, lead = november["subscriber"], november["lead"]
    # 4 entered subscriber in November; 3 of them have moved on (to lead): 75 %, after 3, 3 and 8 days
    assert (subscriber.entered, subscriber.left, subscriber.converted) == (4, 3, 3)
    assert subscriber.conversion_rate == 0.75 and subscriber.converted_to == {"lead": 3}
    assert (subscriber.median_days_in_stage, subscriber.timed_exits) == (3, 3)
    assert subscriber.moved_to == {"lead": 3}
    # 3 became leads in November (c1, c2, c3); c1 and c2 have since become customers (c2 in December)
    assert (lead.entered, lead.converted, lead.conversion_rate) == (3, 2, 0.6667)
    assert lead.converted_to == {"customer": 2} and lead.moved_to == {"customer": 1}
    assert (lead.median_days_in_stage, lead.timed_exits) == (4, 1), "c1 left in November after 4 days"
    december = {s.stage: s for s in report.periods[1].stages}
    assert (december["lead"].median_days_in_stage, december["lead"].entered) == (26, 0)
    assert december["lead"].conversion_rate is None, "nobody became a lead in December"
    assert (december["subscriber"].entered, december["subscriber"].converted) == (1, 0)
    assert december["customer"].median_days_in_stage is None


def test_new_retained_returning_and_churned_customers_by_month() -> None:
    world = known_population()
    report = customers(
        metric_range(query("month", "2026-10-01", "2026-12-31"), TODAY.date()), world.reading()
    )
    figures = {
        p.period: (p.new, p.retained, p.returning, p.active, p.churned, p.previously_active)
        for p in report.periods
    }
    assert figures == {
        "2026-10": (1, 0, 0, 1, 0, 0),  # c6's first purchase
        "2026-11": (1, 0, 0, 1, 1, 1),  # c1 new; c6 bought in October, not November: churned
        "2026-12": (1, 1, 1, 3, 0, 1),  # c2 new, c1 retained (bought in November), c6 back
    }
    assert report.periods[2].retention_rate == 1.0 and report.periods[0].retention_rate is None


def test_customers_by_day_and_week() -> None:
    world = known_population()
    days = customers(metric_range(query("day", "2026-12-14", "2026-12-17"), TODAY.date()), world.reading())
    assert [(p.period, p.new, p.retained, p.returning, p.churned) for p in days.periods] == [
        ("2026-12-14", 0, 0, 0, 0),
        ("2026-12-15", 0, 0, 1, 0),  # c1 bought before (9 Nov), not on the 14th
        ("2026-12-16", 0, 1, 0, 0),  # c1 again, the day after
        ("2026-12-17", 0, 0, 0, 1),  # c1 bought on the 16th, not the 17th
    ]
    weeks = customers(metric_range(query("week", "2026-12-14", "2026-12-20"), TODAY.date()), world.reading())
    (week,) = weeks.periods  # Mon 14 to Sun 20 Dec: c1 (returning) and c6 (returning)
    assert (week.period, week.new, week.retained, week.returning, week.active) == ("2026-W51", 0, 0, 2, 2)


def test_monthly_cohort_retention() -> None:
    world = known_population()
    report = cohorts(metric_range(query("month", "2026-10-01", "2026-12-31"), TODAY.date()), world.reading())
    table = {c.cohort: (c.size, c.active, c.retention) for c in report.cohorts}
    assert table == {
        "2026-10": (1, [1, 0, 1], [1.0, 0.0, 1.0]),  # c6: October, nothing in November, December
        "2026-11": (1, [1, 1], [1.0, 1.0]),  # c1: November and December
        "2026-12": (1, [1], [1.0]),  # c2
    }


def test_revenue_by_stage_and_rfm_segment() -> None:
    world = known_population()
    report = revenue(metric_range(query("month", "2026-10-01", "2026-12-31"), TODAY.date()), world.reading())
    months = {p.period: p for p in report.periods}
    assert (months["2026-10"].revenue, months["2026-10"].orders) == (30.0, 1)
    # c6 was never placed: a contact not placed yet is in the funnel's first stage
    assert {s: (a.revenue, a.orders) for s, a in months["2026-10"].by_stage.items()} == {
        "subscriber": (30.0, 1)
    }
    assert {s: (a.revenue, a.orders) for s, a in months["2026-11"].by_stage.items()} == {"lead": (100.0, 1)}
    december = months["2026-12"]
    assert (december.revenue, december.orders) == (180.0, 4)
    assert {s: (a.revenue, a.orders) for s, a in december.by_stage.items()} == {
        "subscriber": (40.0, 1),
        "lead": (80.0, 1),  # c2 bought at 09:00, an hour before becoming a customer
        "customer": (60.0, 2),
    }
    assert {s: (a.revenue, a.orders) for s, a in december.by_rfm_segment.items()} == {
        "new": (60.0, 2),
        "none": (120.0, 2),
    }
    week = revenue(metric_range(query("week", "2026-12-14", "2026-12-20"), TODAY.date()), world.reading())
    assert (week.periods[0].revenue, week.periods[0].orders) == (100.0, 3)


def test_every_event_delivered_again_counts_once() -> None:
    world = known_population()
    before = {k: dict(v) for k, v in world.store.counters.items()}
    for move in world.moves:
        assert not count_stage_move(move, StageMetering(world.store, world.telemetry))
    for contact, event, key in world.purchases:
        assert not count_purchase(contact, event, key, world.metering())  # type: ignore[arg-type]
    assert world.store.counters == before
    assert world.telemetry.counts["StageMovesCounted"] == len(world.moves)
    assert world.telemetry.counts["PurchasesCounted"] == len(world.purchases)


def test_two_purchases_racing_for_a_period_count_the_customer_once() -> None:
    """The loser of the race finds the period claimed when it writes, reads again, and counts only its
    revenue."""
    world = known_population()
    store = world.store

    @dataclass
    class Racing:
        """Answers facts read before another purchase of the customer claimed them (once)."""

        stale: CustomerFacts | None = None

        def customer(self, customer: str, keys):
            if self.stale is None:
                self.stale = store.customer(customer, keys)
                return self.stale
            return store.customer(customer, keys)

        def record(self, *args, **kwargs):
            return store.record(*args, **kwargs)

        def rows(self, *args):
            return store.rows(*args)

    racing = Racing()
    racing.customer("user_id:c5", facts_needed(date(2026, 12, 30)))  # read before the other purchase
    world.buy("c5", "5", at("2026-12-30"), "o-5a")  # the other purchase wins
    metering = PurchaseMetering(
        racing, world.profiles, MemoryStageTimeline(world.stages), world.config, world.telemetry
    )  # type: ignore[arg-type]
    (event,) = parse_calls(
        "/v1/batch",
        {"batch": [{"type": "track", "userId": "c5", "event": "Order Completed", "messageId": "o-5b",
                    "timestamp": "2026-12-30T11:00:00.000Z", "properties": {"revenue": 7}}]},
        received_at=at("2026-12-30", "11:00"),
        limits=Limits(),
    )  # fmt: skip
    assert count_purchase(ContactId.user("c5"), event, "E#2026-12-30T11:00:00.000Z#o-5b", metering)
    report = customers(metric_range(query("day", "2026-12-30", "2026-12-30"), TODAY.date()), world.reading())
    assert report.periods[0].new == 1, "c5 counted once on the day"
    money = revenue(metric_range(query("day", "2026-12-30", "2026-12-30"), TODAY.date()), world.reading())
    assert (money.periods[0].revenue, money.periods[0].orders) == (12.0, 2), "both purchases' revenue"


def test_a_failed_write_counts_nothing_and_the_retry_counts_once() -> None:
    world = known_population()
    world.store.fail_next = 1
    move = ContactStageChanged(
        event_id="user_id:c4#9#0", contact_id="user_id:c4", at=at("2026-12-30"), from_stage="subscriber",
        to_stage="lead", phase="acquisition", reason="identified", engagement=1.0, index=0.1,
        direction="rising", from_entered_at=at("2026-11-02"),
    )  # fmt: skip
    with pytest.raises(DependencyUnavailable):
        count_stage_move(move, StageMetering(world.store, world.telemetry))
    assert count_stage_move(move, StageMetering(world.store, world.telemetry))
    assert not count_stage_move(move, StageMetering(world.store, world.telemetry))
    report = funnel(metric_range(query("month", "2026-12-01", "2026-12-31"), TODAY.date()), world.reading())
    subscriber = next(s for s in report.periods[0].stages if s.stage == "subscriber")
    assert (subscriber.left, subscriber.median_days_in_stage) == (1, 58)


def test_an_event_published_before_the_metrics_counts_its_move_without_a_time_in_stage() -> None:
    world = World()
    old = ContactStageChanged(
        event_id="user_id:z#2#0", contact_id="user_id:z", at=at("2026-12-02"), from_stage="lead",
        to_stage="mql", phase="acquisition", reason="20 points as a lead", engagement=1.0, index=0.1,
        direction="rising",
    )  # fmt: skip
    assert count_stage_move(old, StageMetering(world.store, world.telemetry))
    report = funnel(metric_range(query("month", "2026-12-01", "2026-12-31"), TODAY.date()), world.reading())
    lead = next(s for s in report.periods[0].stages if s.stage == "lead")
    assert (lead.left, lead.moved_to, lead.timed_exits, lead.median_days_in_stage) == (1, {"mql": 1}, 0, None)


def test_non_purchases_are_not_counted() -> None:
    world = World()
    (event,) = parse_calls(
        "/v1/batch", {"batch": [{"type": "page", "userId": "ann", "messageId": "p"}]}, received_at=TODAY, limits=Limits()
    )  # fmt: skip
    assert not count_purchase(ContactId.user("ann"), event, "E#x#p", world.metering())
    assert world.store.requests == 0


# --- the definitions' edges --------------------------------------------------------------------------------


def test_periods_are_utc_days_iso_weeks_and_months() -> None:
    assert period_of(date(2027, 1, 1), "week").key == "2026-W53"  # a Friday of 2026's ISO week 53
    assert period_of(date(2027, 1, 4), "week").key == "2027-W01"
    assert period_of(date(2026, 2, 14), "month").last == date(2026, 2, 28)
    assert period_of(date(2026, 12, 31), "month").next().key == "2027-01"
    assert [p.key for p in periods(date(2026, 11, 30), date(2027, 1, 2), "month")] == [
        "2026-11",
        "2026-12",
        "2027-01",
    ]
    assert month_key(date(2026, 3, 9)) == "2026-03"


@pytest.mark.parametrize(
    ("histogram", "median"),
    [
        ({}, None),
        ({5: 1}, 5),
        ({1: 1, 9: 1}, 1),
        ({1: 1, 2: 1, 9: 1}, 2),
        ({0: 3, 10: 2}, 0),
        ({3: 2, 4: 2}, 3),
    ],
)
def test_median_of_whole_days_is_the_middle_value_or_the_lower_of_two(histogram, median) -> None:
    assert median_of(histogram) == median


def test_time_in_stage_is_whole_days_capped() -> None:
    long = ContactStageChanged(
        event_id="x#1#0", contact_id="user_id:x", at=at("2026-12-02"), from_stage="loyal", to_stage="at_risk",
        phase="retention", reason="r", engagement=0.0, index=3.5, direction="falling",
        from_entered_at=at("2020-01-01"),
    )  # fmt: skip
    world = World()
    count_stage_move(long, StageMetering(world.store, world.telemetry))
    row = world.store.counters[("stages", "D#2026-12-02")]
    assert row[f"h:loyal:{MAX_DAYS_IN_STAGE}"] == 1
    assert world.store.counters[("stages", "D#2020-01-01")] == {"conv:loyal>at_risk": 1}


def test_classification_looks_at_the_period_before() -> None:
    december = period_of(date(2026, 12, 5), "month")
    assert classify(december, CustomerFacts()) == "new"
    assert classify(december, CustomerFacts(first=date(2026, 12, 1))) == "new"
    assert (
        classify(december, CustomerFacts(first=date(2026, 3, 1), claimed=frozenset({"M#2026-11"})))
        == "retained"
    )
    assert classify(december, CustomerFacts(first=date(2026, 3, 1))) == "returning"
    plan = purchase(at("2026-12-05"), Decimal("9.5"), "customer", None, CustomerFacts(first=date(2026, 3, 1)))
    assert plan.classes == {"day": "returning", "week": "returning", "month": "returning"}
    assert [c.key for c in plan.claims] == ["D#2026-12-05", "W#2026-W49", "M#2026-12"], "no FIRST: known"
    cohort = next(a for a in plan.adds if a.counter == "cohorts")
    assert (cohort.key, dict(cohort.values)) == ("2026-03", {"m9": 1})


@pytest.mark.parametrize(
    ("parameters", "problem"),
    [
        ({"period": "year"}, "period: must be day or week or month, not 'year'"),
        ({"from": "2026-13-01"}, "from: '2026-13-01' is not a date (YYYY-MM-DD)"),
        ({"to": "2027-01-01"}, "to: 2027-01-01 is after today (2026-12-31)"),
        ({"from": "2026-12-10", "to": "2026-12-01"}, "from: 2026-12-10 is after to (2026-12-01)"),
        ({"period": "day", "from": "2025-01-01"}, "from: at most 366 days per request, not 730"),
        ({"periods": "day"}, "periods: unknown parameter (use period, from and to)"),
    ],
)
def test_a_bad_range_is_refused_naming_the_parameter(parameters, problem) -> None:
    with pytest.raises(InvalidRequest) as refused:
        metric_range(parameters, TODAY.date())
    assert refused.value.message == problem


def test_a_range_defaults_to_recent_periods_up_to_today() -> None:
    span = metric_range({"period": "month"}, TODAY.date())
    assert (span.first.key, span.last.key, len(span.periods)) == ("2026-01", "2026-12", 12)
    assert len(metric_range({}, TODAY.date()).periods) == 30
    assert metric_range({"period": "week"}, TODAY.date()).last.key == "2026-W53"
    days = metric_range({"to": "2026-12-10"}, TODAY.date())
    assert (days.first.key, days.last.key) == ("2026-11-11", "2026-12-10")


def test_stage_moves_announce_when_the_stage_they_leave_was_entered() -> None:
    """The stage function's announcements carry what time in stage needs: the stored entry time for the
    first move, this moment for a chained one, nothing for a first placement."""
    from shared.engagement.funnel import default_funnel
    from shared.engagement.index import Quarter
    from shared.engagement.transitions import Evaluation, Move
    from shared.scoring.decay import Trend
    from shared.usecases.engagement import announcements

    now = at("2026-11-09")

    def announced(record: ContactRecord, *moves: Move) -> list[datetime | None]:
        evaluation = Evaluation(
            stage=moves[-1].target, quarter=Quarter.RETENTION, index=2.5, direction=Trend.RISING,
            engagement=30.0, moves=(*moves, Move("quarter", "nurturing", "retention", "e")), sales_ready=False,
            route=False, due_at=None, write_due=False,
        )  # fmt: skip
        outputs = announcements(ContactId.user("ann"), record, evaluation, default_funnel(), None, now)
        return [o.from_entered_at for o in outputs if isinstance(o, ContactStageChanged)]

    lead = ContactRecord(
        contact_id="user_id:ann", stage="lead", stage_entered_at=at("2026-11-05"), stage_seq=2
    )
    assert announced(lead, Move("stage", "lead", "customer", "first purchase")) == [at("2026-11-05")]
    new = ContactRecord(contact_id="user_id:ann")
    assert announced(
        new,
        Move("stage", None, "subscriber", "first seen"),
        Move("stage", "subscriber", "lead", "identified"),
        Move("stage", "lead", "customer", "first purchase"),
    ) == [None, now, now]


def test_stages_no_longer_in_the_funnel_are_reported_after_its_own() -> None:
    world = World()
    move = ContactStageChanged(
        event_id="user_id:z#2#0", contact_id="user_id:z", at=at("2026-12-02"), from_stage="lead",
        to_stage="trial", phase="acquisition", reason="r", engagement=1.0, index=0.1, direction="rising",
        from_entered_at=at("2026-12-01"),
    )  # fmt: skip
    count_stage_move(move, StageMetering(world.store, world.telemetry))
    span = metric_range(query("day", "2026-12-01", "2026-12-01"), TODAY.date())
    report = funnel(span, world.reading())
    assert report.stages[-1] == "trial" and report.stages[0] == "subscriber"
    lead = next(s for s in report.periods[0].stages if s.stage == "lead")
    assert (lead.converted_to, lead.converted) == ({"trial": 1}, 0), "only a later stage of the funnel counts"

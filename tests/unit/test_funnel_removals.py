"""Contacts leaving the funnel without a move (issue 13's metrics): a contact merged away is announced
leaving its stage once, by the stage function; an erased one by the erasure, with the same id, so the
lifecycle metrics count each placement out once, whichever path (or both) announces it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from shared.clock import FixedClock
from shared.contacts.identity import ContactId
from shared.contacts.model import ContactRecord
from shared.engagement.events import ContactRemoved, ContactStageChanged, removal_id
from shared.errors import DependencyUnavailable
from shared.metrics.periods import month_key
from shared.metrics.ranges import metric_range
from shared.scoring.decay import Decay
from shared.usecases.engagement import Engagement, move_to, on_change
from shared.usecases.erasure import Erasure, announce_removal, erase
from shared.usecases.metrics import MetricReading, StageMetering, count_stage_move, stage_distribution
from shared.usecases.recording import link
from tests.fakes import (
    EVENTS_CHANNEL,
    CountingTelemetry,
    MemoryContactErasure,
    MemoryContactStore,
    MemoryEngagementConfig,
    MemoryMetricStore,
    MemoryProfile,
    MemoryPublisher,
    MemoryStageStore,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DECAY = Decay(timedelta(days=30))
ANN = ContactId.user("ann")
VISITOR = ContactId.anonymous("v-1")


@dataclass
class World:
    clock: FixedClock = field(default_factory=lambda: FixedClock(NOW))
    contacts: MemoryContactStore = field(default_factory=MemoryContactStore)
    publisher: MemoryPublisher = field(default_factory=MemoryPublisher)
    telemetry: CountingTelemetry = field(default_factory=CountingTelemetry)
    metrics: MemoryMetricStore = field(default_factory=MemoryMetricStore)
    stages: MemoryStageStore = field(init=False)

    def __post_init__(self) -> None:
        self.stages = MemoryStageStore(self.contacts)

    @property
    def deps(self) -> Engagement:
        team = MemoryEngagementConfig()
        return Engagement(
            clock=self.clock,
            funnels=team,
            decay=DECAY,
            stages=self.stages,
            router=team,
            publisher=self.publisher,
            telemetry=self.telemetry,
        )

    def erasure(self) -> Erasure:
        return Erasure(
            contacts=self.contacts,
            erasure=MemoryContactErasure(self.contacts),
            telemetry=self.telemetry,
            engagement=self.deps,
        )

    def seen(self, contact: ContactId) -> MemoryProfile:
        """A contact seen now: the stage function places it (a visitor a subscriber, a known user a lead)."""
        profile = self.contacts.profiles.setdefault(contact, MemoryProfile(first_seen=NOW, last_seen=NOW))
        on_change(self.record(contact), self.deps)
        assert self.record(contact).stage == ("lead" if contact.kind == "user_id" else "subscriber")
        return profile

    def profile(self, contact: ContactId) -> MemoryProfile:
        return self.contacts.profiles[contact]

    def record(self, contact: ContactId) -> ContactRecord:
        found = self.contacts.profile(contact)
        assert found is not None
        return found

    def removals(self) -> list[ContactRemoved]:
        return [o for channel, o in self.publisher.sent if isinstance(o, ContactRemoved)]

    def count_announced(self) -> None:
        """What the metrics function does with everything the bus carried (each delivery counted once)."""
        metering = StageMetering(self.metrics, self.telemetry)
        for channel, output in self.publisher.sent:
            if channel == EVENTS_CHANNEL and isinstance(output, ContactStageChanged | ContactRemoved):
                count_stage_move(output, metering)

    def population(self) -> dict[str, int]:
        reading = MetricReading(store=self.metrics, funnels=MemoryEngagementConfig(), clock=self.clock)
        span = metric_range({"period": "month", "from": f"{month_key(NOW.date())}-01"}, NOW.date())
        found = stage_distribution(span, reading).periods[-1].population
        return {stage: n for stage, n in found.items() if n}


def merged(world: World, source: ContactId, target: ContactId, at: datetime = NOW) -> None:
    assert link(source, target, world.contacts, at, DECAY)


def test_a_contact_merged_away_is_announced_leaving_its_stage_once() -> None:
    world = World()
    world.seen(VISITOR)
    placed = world.record(VISITOR)
    merged(world, VISITOR, ANN, NOW + timedelta(hours=1))
    image = world.record(VISITOR)
    world.clock.advance(timedelta(minutes=5))  # the stage function sees the merge a little later
    assert on_change(image, world.deps) == 2  # the removal written, then published
    (removal,) = world.removals()
    assert removal == ContactRemoved(
        event_id=removal_id(str(VISITOR), placed.stage_entered_at),
        contact_id=str(VISITOR),
        at=NOW + timedelta(hours=1),  # when it merged, not when it was seen merged
        stage="subscriber",
        entered_at=placed.stage_entered_at,
        reason="merged",
        into=str(ANN),
    )
    assert world.record(VISITOR).stage_removed_at == NOW + timedelta(hours=1)
    assert world.record(VISITOR).stage == "subscriber", "kept: an erasure reads it"
    assert [key for key in world.stages.outbox[VISITOR] if key.startswith("STAGE#")] == [
        "STAGE#00000001#00",
        "STAGE#00000002#00",
    ], "kept in the stage history with the moves, which a back-fill of the metrics counts"
    for again in (image, world.record(VISITOR)):  # redelivered, and the profile as it is now
        assert on_change(again, world.deps) == 0
    assert len(world.removals()) == 1


def test_a_merged_away_contact_in_no_stage_announces_nothing() -> None:
    world = World()
    world.contacts.profiles[VISITOR] = MemoryProfile(first_seen=NOW, last_seen=NOW)
    merged(world, VISITOR, ANN)
    assert on_change(world.record(VISITOR), world.deps) == 0
    assert world.removals() == [] and world.stages.write_items == []


def test_a_stale_image_of_a_merged_away_contact_reads_it_again_and_removes_it_once() -> None:
    world = World()
    world.seen(VISITOR)
    merged(world, VISITOR, ANN)
    stale = world.record(VISITOR).model_copy(update={"stage_seq": 0})
    assert on_change(stale, world.deps) == 2
    assert len(world.removals()) == 1 and world.record(VISITOR).stage_seq == 2


def test_a_removal_the_bus_refused_for_now_is_published_by_the_next_delivery() -> None:
    world = World()
    world.seen(VISITOR)
    merged(world, VISITOR, ANN)
    world.publisher.unavailable.add(EVENTS_CHANNEL)
    with pytest.raises(DependencyUnavailable):
        on_change(world.record(VISITOR), world.deps)
    assert world.removals() == [] and world.record(VISITOR).pending_outputs == 1
    world.publisher.unavailable.clear()
    assert on_change(world.record(VISITOR), world.deps) == 1
    assert len(world.removals()) == 1 and world.record(VISITOR).pending_outputs == 0


def test_an_erased_contact_is_announced_leaving_its_stage_before_its_items_go() -> None:
    world = World()
    world.seen(ANN)
    placed = world.record(ANN)
    world.clock.advance(timedelta(days=2))
    assert erase(ANN, world.erasure()).complete
    (removal,) = world.removals()
    assert (removal.event_id, removal.reason, removal.stage, removal.at) == (
        removal_id(str(ANN), placed.stage_entered_at),
        "erased",
        "lead",
        NOW + timedelta(days=2),
    )
    assert erase(ANN, world.erasure()).complete and len(world.removals()) == 1, "gone: nothing again"


def test_an_erasure_the_bus_cannot_take_erases_nothing() -> None:
    world = World()
    world.seen(ANN)
    world.publisher.unavailable.add(EVENTS_CHANNEL)
    with pytest.raises(DependencyUnavailable):
        erase(ANN, world.erasure())
    assert world.contacts.profile(ANN) is not None
    world.publisher.unavailable.clear()
    assert erase(ANN, world.erasure()).complete and len(world.removals()) == 1


def test_a_visitor_merged_then_erased_leaves_the_population_once_whichever_path_announced_it() -> None:
    """The visitor is placed, identifies (merged into Ann, who is placed on her own), then Ann is erased:
    the visitor is counted out by the stage function, Ann by the erasure; the erasure announces the
    visitor again only while its removal is unpublished, and the metrics count that once."""
    world = World()
    world.seen(VISITOR)
    merged(world, VISITOR, ANN)
    world.seen(ANN)
    world.count_announced()
    assert world.population() == {"subscriber": 1, "lead": 1}, "before the stage function saw the merge"
    world.publisher.unavailable.add(EVENTS_CHANNEL)
    with pytest.raises(DependencyUnavailable):  # the visitor's removal is written, not yet published
        on_change(world.record(VISITOR), world.deps)
    world.publisher.unavailable.clear()
    assert erase(ANN, world.erasure()).complete
    world.publisher.sent.extend(list(world.publisher.sent))  # and the bus delivers everything twice
    world.count_announced()
    assert [r.contact_id for r in world.removals()] == [str(VISITOR), str(ANN)] * 2
    assert world.population() == {}


def test_a_visitor_who_identifies_counts_once_in_the_population() -> None:
    world = World()
    world.seen(VISITOR)
    merged(world, VISITOR, ANN)
    on_change(world.record(VISITOR), world.deps)
    world.seen(ANN)
    world.count_announced()
    assert world.population() == {"lead": 1}, "the visitor became Ann, a lead"
    assert world.telemetry.counts["ContactsRemoved"] == 1


def test_a_contact_id_used_again_after_an_erasure_is_a_new_placement_counted_again() -> None:
    """Its stage sequence starts again, so its moves' ids repeat: the metrics tell the placements apart by
    the move's time (the markers are kept for good)."""
    world = World()
    world.seen(ANN)
    world.clock.advance(timedelta(days=1))
    assert erase(ANN, world.erasure()).complete
    world.count_announced()
    assert world.population() == {}
    world.clock.advance(timedelta(days=1))
    world.seen(ANN)  # Ann signs up again, with the same user id
    moves = [o for _, o in world.publisher.sent if isinstance(o, ContactStageChanged)]
    assert len({m.event_id for m in moves}) < len(moves), "the ids repeat"
    world.count_announced()
    assert world.population() == {"lead": 1}


def test_a_move_racing_with_an_erasure_is_refused_and_counted_out_once() -> None:
    """An erasure that spans requests (its budget ran out) has removed the contact first: a move between
    its requests is refused, so the contact leaves the stage it was counted in, once."""
    world = World()
    world.seen(ANN)
    world.clock.advance(timedelta(hours=1))
    erasure = world.erasure()
    assert announce_removal(ANN, erasure) == 2  # the first request's first step: removed, published
    assert move_to(ANN, "customer", "an automation's step", world.deps) is None
    world.profile(ANN).tags["vip"] = NOW
    assert on_change(world.record(ANN), world.deps) == 0, "nothing evaluated any more"
    world.clock.advance(timedelta(hours=1))
    assert erase(ANN, erasure).complete  # the next request
    world.count_announced()
    assert world.population() == {} and len(world.removals()) == 1


def test_a_move_not_yet_announced_goes_out_before_the_erasure_counts_the_contact_out() -> None:
    world = World()
    world.seen(ANN)
    world.publisher.unavailable.add(EVENTS_CHANNEL)
    with pytest.raises(DependencyUnavailable):
        move_to(ANN, "customer", "an automation's step", world.deps)  # written, its announcement pending
    world.publisher.unavailable.clear()
    assert erase(ANN, world.erasure()).complete
    world.count_announced()
    sent = [
        (type(o).__name__, getattr(o, "to_stage", getattr(o, "stage", None))) for _, o in world.publisher.sent
    ]
    assert sent[-2:] == [("ContactStageChanged", "customer"), ("ContactRemoved", "customer")]
    assert world.population() == {}


def test_a_removal_is_never_timed_before_the_placement_it_ends() -> None:
    """The merge is timed before its claim: a placement committed just after it still ends after it began."""
    world = World()
    world.seen(VISITOR)
    placed = world.record(VISITOR)
    merged(world, VISITOR, ANN, at=placed.stage_entered_at - timedelta(seconds=2))
    on_change(world.record(VISITOR), world.deps)
    (removal,) = world.removals()
    assert removal.at == placed.stage_entered_at

"""Segment membership kept by the stage function's use case, with fakes: entering and leaving once under
redelivery, a time-driven departure through the due time, writes that stay within a transaction, merged
contacts, back-fills, and the announcements automations trigger on."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.automations.book import AutomationBook
from shared.automations.catalogue import parse_automation, stored_automation
from shared.automations.engine import Signal, signal_starts
from shared.clock import FixedClock
from shared.contacts.identity import ContactId
from shared.contacts.model import ContactRecord
from shared.engagement.events import SegmentMembershipChanged
from shared.scoring.decay import Decay
from shared.segments.model import parse_segment
from shared.usecases.engagement import MAX_WRITE_ITEMS, Backfill, Engagement, on_change, reevaluate
from tests.fakes import (
    CountingTelemetry,
    MemoryContactStore,
    MemoryEngagementConfig,
    MemoryProfile,
    MemoryPublisher,
    MemorySegmentRepository,
    MemoryStageStore,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DECAY = Decay(timedelta(days=30))
ANN = ContactId.user("ann")


@dataclass
class World:
    clock: FixedClock = field(default_factory=lambda: FixedClock(NOW))
    contacts: MemoryContactStore = field(default_factory=MemoryContactStore)
    segments: MemorySegmentRepository = field(default_factory=MemorySegmentRepository)
    publisher: MemoryPublisher = field(default_factory=MemoryPublisher)
    telemetry: CountingTelemetry = field(default_factory=CountingTelemetry)
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
            segments=self.segments,
        )

    def segment(self, segment_id: str, filter_: dict[str, Any], **fields: Any) -> None:
        body = {"name": segment_id.title(), "filter": filter_, **fields}
        self.segments.save(parse_segment(segment_id, body), NOW, None)

    def profile(self, contact: ContactId = ANN) -> MemoryProfile:
        return self.contacts.profiles.setdefault(contact, MemoryProfile(first_seen=NOW, last_seen=NOW))

    def record(self, contact: ContactId = ANN) -> ContactRecord:
        found = self.contacts.profile(contact)
        assert found is not None
        return found

    def announced(self) -> list[tuple[str, str, bool]]:
        return [
            (o.segment, o.change, o.initial)
            for _, o in self.publisher.sent
            if isinstance(o, SegmentMembershipChanged)
        ]

    def members(self, segment_id: str) -> set[str]:
        return self.stages.members.members.get(segment_id, set())


def test_a_contact_enters_once_however_often_its_change_is_delivered() -> None:
    world = World()
    world.segment("vip", {"tag": "vip"})
    world.profile().tags["vip"] = NOW
    image = world.record()
    assert on_change(image, world.deps) >= 1
    assert world.record().segments == {"vip"} and world.members("vip") == {str(ANN)}
    assert world.announced() == [("vip", "entered", False)]
    writes = len(world.stages.write_items)
    for _ in range(3):  # the same stream record again, and the profile as it is now
        assert on_change(image, world.deps) == 0
        assert on_change(world.record(), world.deps) == 0
    assert len(world.stages.write_items) == writes, "nothing written twice"
    assert world.announced() == [("vip", "entered", False)], "announced once"


def test_a_contact_leaves_when_what_placed_it_changes_and_the_announcement_triggers_automations() -> None:
    world = World()
    world.segment("vip", {"tag": "vip"})
    world.profile().tags["vip"] = NOW
    on_change(world.record(), world.deps)
    del world.profile().tags["vip"]
    on_change(world.record(), world.deps)
    assert world.record().segments == frozenset() and world.members("vip") == set()
    assert world.announced() == [("vip", "entered", False), ("vip", "left", False)]
    goodbye = stored_automation(
        parse_automation(
            "goodbye",
            {
                "name": "Goodbye",
                "trigger": {"type": "segment", "segment": "vip", "change": "left"},
                "steps": [{"action": "tag", "add": "ex-vip"}],
            },
        ),
        1,
        NOW,
    )
    for output in (o for _, o in world.publisher.sent if isinstance(o, SegmentMembershipChanged)):
        detail = json.loads(output.model_dump_json(by_alias=True))  # as the bus carries it
        assert detail["kind"] == "segment" and detail["from"] is None and detail["to"] is None
        signal = Signal(output.detail_type, output.event_id, output.contact_id, detail)
        started = signal_starts(AutomationBook([goodbye]), signal)
        assert [s.automation for s in started] == (["goodbye"] if output.change == "left" else [])


def test_a_decaying_score_takes_the_contact_out_at_its_due_time() -> None:
    world = World()
    world.segment("engaged", {"score": "global", "gte": 10})
    world.profile().add_scores({"global": 80}, _sums(80))
    on_change(world.record(), world.deps)
    assert world.record().segments == {"engaged"}
    leaves = NOW + 3 * DECAY.half_life  # 80 halves three times to 10
    runs = 0
    while world.record().segments:  # the timer function: each due time, re-evaluated
        due = world.record().due_at
        assert due is not None and due <= leaves + timedelta(minutes=2), "a due time always stands before"
        world.clock.at = due
        reevaluate(ANN, world.deps)
        runs += 1
        assert runs < 10
    assert leaves < world.clock.at <= leaves + timedelta(minutes=2)
    assert world.announced() == [("engaged", "entered", False), ("engaged", "left", False)]
    assert world.members("engaged") == set()


def test_a_visit_lapsing_moves_the_contact_when_its_days_have_passed() -> None:
    world = World()
    world.segment("lapsed", {"last": "visit", "more_than_days_ago": 30})
    world.profile().last_times["visit"] = NOW - timedelta(days=10)
    on_change(world.record(), world.deps)
    assert world.record().segments == frozenset()
    assert world.record().due_at == NOW + timedelta(days=20, minutes=1)
    world.clock.at = world.record().due_at
    reevaluate(ANN, world.deps)
    assert world.record().segments == {"lapsed"} and world.announced() == [("lapsed", "entered", False)]


def test_many_segments_entered_at_once_are_written_in_parts_each_within_a_transaction() -> None:
    world = World()
    for n in range(100):
        world.segment(f"s{n:03d}", {"tag": "vip"})
    world.profile().tags["vip"] = NOW
    on_change(world.record(), world.deps)
    assert world.record().segments == {f"s{n:03d}" for n in range(100)}
    assert all(world.members(f"s{n:03d}") == {str(ANN)} for n in range(100))
    assert len(world.stages.write_items) > 1 and max(world.stages.write_items) <= MAX_WRITE_ITEMS
    assert sorted(s for s, _, _ in world.announced()) == sorted(f"s{n:03d}" for n in range(100))
    event_ids = [o.event_id for _, o in world.publisher.sent]
    assert len(set(event_ids)) == len(event_ids), "every announcement has an id of its own"
    del world.profile().tags["vip"]
    on_change(world.record(), world.deps)
    assert world.record().segments == frozenset() and max(world.stages.write_items) <= MAX_WRITE_ITEMS


def test_a_removed_segment_loses_its_members_through_its_backfill_and_a_paused_one_keeps_them() -> None:
    world = World()
    world.segment("vip", {"tag": "vip"})
    world.segment("kept", {"tag": "vip"})
    world.profile().tags["vip"] = NOW
    on_change(world.record(), world.deps)
    world.segments.remove("vip", NOW, None)
    world.segment("kept", {"tag": "vip"}, paused=True)
    del world.profile().tags["vip"]
    on_change(world.record(), world.deps)
    assert world.record().segments == {"kept", "vip"}, (
        "a stream evaluation's book may be a stale cached copy: it leaves ids it does not know alone"
    )
    on_change(world.record(), world.deps, backfill=Backfill(segment="vip"))  # the deletion's back-fill
    assert world.record().segments == {"kept"} and world.members("vip") == set()
    assert world.announced()[-1] == ("vip", "left", True)


def test_a_stale_cached_book_never_drops_members_a_backfill_placed() -> None:
    """The stage function's book is cached (``rulesCacheSeconds``): an instance still holding the book
    from before a segment's save must not undo the members the segment's fresh back-fill placed."""
    from shared.segments.catalogue import FixedSegments

    world = World()
    world.profile().tags["vip"] = NOW
    stale = FixedSegments(world.segments.book())  # read before the save: no segment at all
    world.segment("vip", {"tag": "vip"})
    on_change(world.record(), world.deps, backfill=Backfill(segment="vip"))
    assert world.record().segments == {"vip"}
    world.profile().tags["kids"] = NOW  # a later change, evaluated by an instance with the stale book
    on_change(world.record(), replace(world.deps, segments=stale))
    assert world.record().segments == {"vip"} and world.members("vip") == {str(ANN)}
    assert world.announced() == [("vip", "entered", True)]


def test_a_contact_merged_away_leaves_its_segments_unannounced() -> None:
    world = World()
    world.segment("vip", {"tag": "vip"})
    world.profile().tags["vip"] = NOW
    on_change(world.record(), world.deps)
    world.profile().merged_into = "user_id:bob"
    # its stage's removal written and published (issue 13's metrics), its segments left
    assert on_change(world.record(), world.deps) == 3
    assert world.members("vip") == set() and world.record().segments == frozenset()
    assert on_change(world.record(), world.deps) == 0
    assert world.announced() == [("vip", "entered", False)]


def test_a_backfill_announces_what_it_finds_of_its_segment_as_initial() -> None:
    world = World()
    world.segment("vip", {"tag": "vip"})
    world.profile().tags["vip"] = NOW
    on_change(world.record(), world.deps, backfill=Backfill(segment="vip"))
    assert world.announced() == [("vip", "entered", True)]
    again = on_change(world.record(), world.deps, backfill=Backfill(segment="vip"))
    assert again == 0, "a back-fill run again finds nothing"


def test_a_backfill_for_another_segment_announces_a_real_change_as_one() -> None:
    """A contact who lost a tag (the stream change not yet evaluated) is found by a back-fill that the save
    of another segment started: the departure is genuine, so triggers that ignore ``initial`` see it."""
    world = World()
    world.segment("vip", {"tag": "vip"})
    world.profile().tags["vip"] = NOW
    on_change(world.record(), world.deps)
    del world.profile().tags["vip"]
    world.segment("kids", {"tag": "kids"})
    world.profile().tags["kids"] = NOW
    on_change(world.record(), world.deps, backfill=Backfill(segment="kids"))
    assert world.announced() == [("vip", "entered", False), ("kids", "entered", True), ("vip", "left", False)]


def test_a_backfill_by_hand_marks_nothing_initial() -> None:
    world = World()
    world.segment("vip", {"tag": "vip"})
    world.profile().tags["vip"] = NOW
    on_change(world.record(), world.deps, backfill=Backfill())
    assert world.announced() == [("vip", "entered", False)]


def test_segments_see_the_stage_the_evaluation_moves_the_contact_to() -> None:
    world = World()
    world.segment("leads", {"field": "stage", "eq": "lead"})
    world.profile()  # identified (user ann), no stage yet: subscriber then lead, in one evaluation
    on_change(world.record(), world.deps)
    assert world.record().stage == "lead" and world.record().segments == {"leads"}


def test_evaluations_read_the_segments_once_each() -> None:
    world = World()
    world.segment("vip", {"tag": "vip"})
    world.profile().tags["vip"] = NOW
    image = world.record()
    before = world.segments.books
    on_change(image, world.deps)
    assert world.segments.books - before == 2, "the image, then the profile read before the write"
    before = world.segments.books
    on_change(world.record(), world.deps)
    assert world.segments.books - before == 1, "nothing to change: the image alone"


@pytest.mark.parametrize("segment", ["vip", "rfm:champions"])
def test_automations_accept_segments_of_both_kinds(segment: str) -> None:
    automation = parse_automation(
        "hello",
        {
            "name": "Hello",
            "trigger": {"type": "segment", "segment": segment},
            "steps": [{"action": "tag", "add": "x"}],
        },
    )
    assert automation.trigger.segment == segment


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        ({"segment": "VIP list"}, r"is neither an RFM segment \(rfm:<id>\) nor a segment id"),
        ({"segment": "vip", "from": "trial"}, "from and to narrow an RFM segment's changes"),
    ],
)
def test_automations_refuse_what_a_segment_of_your_own_cannot_be(
    trigger: dict[str, Any], message: str
) -> None:
    from shared.errors import InvalidRequest

    body = {
        "name": "Hello",
        "trigger": {"type": "segment", **trigger},
        "steps": [{"action": "tag", "add": "x"}],
    }
    with pytest.raises(InvalidRequest, match=message):
        parse_automation("hello", body)


def _sums(points: float) -> dict[tuple[str, str, int], float]:
    return {
        ("global", memory.key, memory.bucket(NOW)): memory.scaled(points, NOW, memory.bucket(NOW))
        for memory in DECAY.memories
    }


def test_a_contact_moved_by_an_automation_or_a_salesperson_is_placed_in_its_new_stage() -> None:
    from shared.usecases.engagement import move_to

    world = World()
    world.segment("customers", {"field": "stage", "eq": "customer"})
    world.segment("wide", {"any": [{"field": "stage", "eq": "customer"}, {"tag": "never"}]})
    for n in range(60):  # more than one write holds with the stage move
        world.segment(f"c{n:02d}", {"field": "stage", "eq": "customer"})
    world.profile()
    on_change(world.record(), world.deps)
    assert world.record().segments == frozenset()
    assert move_to(ANN, "customer", "bought offline", world.deps) == "customer"
    assert world.record().stage == "customer"
    assert world.record().segments == {"customers", "wide", *(f"c{n:02d}" for n in range(60))}
    assert max(world.stages.write_items) <= MAX_WRITE_ITEMS

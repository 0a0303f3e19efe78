"""Segments' ports: the members port (what campaigns page through and the admin lists) as the stage store's
writes make it, and the segment repository; each fake and its DynamoDB adapter (on moto) alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.contacts.identity import ContactId
from shared.engagement.events import SegmentMembershipChanged
from shared.engagement.index import Quarter
from shared.engagement.transitions import Evaluation, Move
from shared.errors import Conflict, InvalidRequest, NotFound
from shared.scoring.decay import Trend
from shared.segments.model import Segment, parse_segment, with_paused
from tests.contract.helpers import NOW, change
from tests.fakes import MemoryContactStore, MemorySegmentRepository, MemoryStageStore

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def ports(implementation, contact_tables):
    """(contact store, stage store, segment members) over the same contacts."""
    if implementation == "fake":
        contacts = MemoryContactStore()
        stages = MemoryStageStore(contacts)
        return contacts, stages, stages.members
    from shared.adapters.segment_members import DynamoSegmentMembers
    from shared.adapters.stage_store import DynamoStageStore
    from tests.contract.helpers import DECAY

    tables = contact_tables()
    return (
        tables.stores(),
        DynamoStageStore(tables.db, contacts_table=tables.contacts, decay=DECAY),
        DynamoSegmentMembers(tables.db, table=tables.contacts),
    )


def seen(contacts, contact: ContactId) -> None:
    assert contacts.commit([change(contact, {"type": "page", "userId": contact.value, "messageId": "p1"})])[
        0
    ].committed


def moves(record, entered=(), left=()) -> tuple[Evaluation, list[SegmentMembershipChanged]]:
    """An evaluation that only enters and leaves segments, with its announcements."""
    segment_moves = (
        *(Move("segment", "out", "in", s) for s in entered),
        *(Move("segment", "in", "out", s) for s in left),
    )
    evaluation = Evaluation(
        stage=record.stage or "subscriber",
        quarter=Quarter.NURTURING,
        index=0.0,
        direction=Trend.STEADY,
        engagement=0.0,
        moves=segment_moves,
        sales_ready=False,
        route=False,
        due_at=None,
        write_due=False,
        segments=(record.segments | set(entered)) - set(left),
    )
    outputs = [
        SegmentMembershipChanged(
            event_id=f"{record.contact_id}#{record.stage_seq + 1}#{n}",
            contact_id=record.contact_id,
            at=NOW,
            segment=m.reason,
            change="entered" if m.target == "in" else "left",
        )
        for n, m in enumerate(segment_moves)
    ]
    return evaluation, outputs


def place(stages, contact: ContactId, entered=(), left=()) -> None:
    record = stages.profile(contact)
    evaluation, outputs = moves(record, entered, left)
    assert stages.apply(contact, record, evaluation, outputs, None, NOW)


def every_member(members, segment_id: str, limit: int) -> list[str]:
    found: list[str] = []
    after = None
    for _ in range(100):
        page = members.page(segment_id, after, limit)
        assert len(page.contact_ids) <= limit
        found += page.contact_ids
        after = page.after
        if after is None:
            return found
    raise AssertionError("the pages never ended")


def test_a_stage_write_entering_segments_makes_the_contact_a_member_of_each(ports):
    contacts, stages, members = ports
    ann = ContactId.user("ann")
    seen(contacts, ann)
    place(stages, ann, entered=("vip", "engaged"))
    assert stages.profile(ann).segments == {"vip", "engaged"}
    assert every_member(members, "vip", 10) == [str(ann)] and members.count("engaged") == 1
    assert [p.output.segment for p in stages.pending(ann)] == ["vip", "engaged"]
    place(stages, ann, left=("vip",))
    assert stages.profile(ann).segments == {"engaged"}
    assert every_member(members, "vip", 10) == [] and members.count("vip") == 0
    place(stages, ann, left=("engaged",))
    assert stages.profile(ann).segments == frozenset()
    assert members.count("engaged") == 0 and members.count("never-made") == 0


def test_a_stale_write_makes_nobody_a_member(ports):
    contacts, stages, members = ports
    ann = ContactId.user("ann")
    seen(contacts, ann)
    stale = stages.profile(ann)
    place(stages, ann, entered=("vip",))
    evaluation, outputs = moves(stale, entered=("engaged",))
    assert not stages.apply(ann, stale, evaluation, outputs, None, NOW)
    assert members.count("engaged") == 0 and stages.profile(ann).segments == {"vip"}


def test_pages_list_every_member_once_however_they_are_cut(ports):
    contacts, stages, members = ports
    people = [ContactId.user(f"u{n:02d}") for n in range(37)]
    for person in people:
        seen(contacts, person)
        place(stages, person, entered=("big",) if person.value != "u13" else ("other",))
    expected = sorted(str(p) for p in people if p.value != "u13")
    for limit in (1, 5, 36, 100):
        found = every_member(members, "big", limit)
        assert sorted(found) == expected and len(found) == len(expected), limit
    assert every_member(members, "big", 7) == every_member(members, "big", 7), "a stable order"
    assert members.count("big") == 36 and members.count("other") == 1


def test_a_merged_away_contact_leaves_every_segment(ports):
    contacts, stages, members = ports
    ann, bob = ContactId.user("ann"), ContactId.user("bob")
    for person in (ann, bob):
        seen(contacts, person)
    place(stages, ann, entered=("vip", "engaged"))
    assert contacts.claim(ann, bob, NOW).owner == bob
    stages.leave_segments(ann, frozenset({"vip", "engaged"}))
    assert members.count("vip") == 0 and members.count("engaged") == 0
    assert stages.profile(ann).segments == frozenset()
    stages.leave_segments(ann, frozenset({"vip"}))  # again: nothing left to do


def test_a_cursor_from_elsewhere_is_refused_by_the_adapter(implementation, ports):
    if implementation == "fake":
        pytest.skip("the fake's cursor is a contact id")
    _, _, members = ports
    with pytest.raises(InvalidRequest, match="after"):
        members.page("vip", "not-a-cursor", 10)


# --- the segment repository ---------------------------------------------------------------------------


@pytest.fixture
def segments(implementation, config_table):
    if implementation == "fake":
        return MemorySegmentRepository()
    from shared.adapters.segment_store import DynamoSegmentStore

    db, table = config_table()
    return DynamoSegmentStore(db, table=table, cache_seconds=0)


def vip(segment_id: str = "vip", **fields) -> Segment:
    body = {"name": "VIPs", "filter": {"all": [{"tag": "vip"}, {"last": "visit", "within_days": 30}]}}
    return parse_segment(segment_id, {**body, **fields})


def test_versions_count_up_and_every_version_is_kept(segments):
    first = segments.save(vip(), AT, None)
    second = segments.save(vip(name="Very important"), AT + timedelta(hours=1), 1)
    assert (first.version, second.version) == (1, 2)
    assert segments.stored() == [second] and segments.history("vip") == [second, first]
    assert segments.book().get("vip") == second and segments.book().last_times() == {"visit"}


def test_a_change_against_another_version_is_a_conflict_and_a_delete_leaves_a_tombstone(segments):
    segments.save(vip(), AT, 0)
    with pytest.raises(Conflict):
        segments.save(vip(name="Lost"), AT, 0)
    with pytest.raises(Conflict):
        segments.remove("vip", AT, 5)
    removed = segments.remove("vip", AT, 1)
    assert removed.version == 1 and segments.stored() == [] and len(segments.book()) == 0
    assert [s.version for s in segments.history("vip")] == [2, 1]
    with pytest.raises(NotFound):
        segments.remove("vip", AT, None)
    assert segments.save(vip(), AT, 0).version == 3, "versions never repeat"


def test_a_paused_segment_reads_back_paused(segments):
    saved = segments.save(vip(), AT, None)
    paused = segments.save(with_paused(saved, True), AT, saved.version)
    assert segments.stored()[0].paused and paused.version == 2
    assert segments.stored()[0].filter == saved.filter

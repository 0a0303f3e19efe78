"""Issue 13, history growth: a contact's past announcements (segment changes every day for years) do not
make its next change cost more. ``pending`` reads the profile and the pending entries only, ``stage_at``
the stage moves only; published announcements other than moves expire (the contacts table's TTL). Items
written before that layout (everything under ``STAGE#``, no pending keys on the profile) still read right.

Items read are counted: the fakes count what they look at as the adapter reads it, and on moto each
Query's ``ScannedCount`` (what DynamoDB reads and bills, before any filter) and each item a GetItem returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from shared.contacts.identity import ContactId
from shared.engagement.events import ContactStageChanged, Output, SegmentMembershipChanged
from shared.engagement.index import Quarter
from shared.engagement.transitions import Evaluation, Move
from shared.scoring.decay import Trend
from shared.usecases.engagement import Delivery
from tests.contract.helpers import DECAY, NOW, change
from tests.fakes import MemoryContactStore, MemoryStageStore, MemoryStageTimeline

ANN = ContactId.user("ann")
#: announcements per write when building a long past (a write holds at most 99 with the profile)
PER_WRITE = 60


class CountingClient:
    """A DynamoDB client that counts the items its reads read."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.items_read = 0

    def query(self, **request: Any) -> dict[str, Any]:
        page = self._client.query(**request)
        self.items_read += page["ScannedCount"]
        return page

    def get_item(self, **request: Any) -> dict[str, Any]:
        found = self._client.get_item(**request)
        self.items_read += 1 if "Item" in found else 0
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class Ports:
    def __init__(self, stages: Any, timeline: Any, pending_reads: Any, timeline_reads: Any) -> None:
        self.stages, self.timeline = stages, timeline
        self.pending_reads, self.timeline_reads = pending_reads, timeline_reads


@pytest.fixture
def ports(implementation, contact_tables) -> Ports:
    if implementation == "fake":
        contacts = MemoryContactStore()
        stages = MemoryStageStore(contacts)
        timeline = MemoryStageTimeline(stages)
        result = Ports(stages, timeline, lambda: stages.items_read, lambda: timeline.items_read)
    else:
        from shared.adapters.stage_store import DynamoStageStore
        from shared.adapters.stage_timeline import DynamoStageTimeline

        tables = contact_tables()
        contacts = tables.stores()
        store_client, timeline_client = CountingClient(tables.db), CountingClient(tables.db)
        stages = DynamoStageStore(store_client, contacts_table=tables.contacts, decay=DECAY)
        timeline = DynamoStageTimeline(timeline_client, contacts_table=tables.contacts)
        result = Ports(stages, timeline, lambda: store_client.items_read, lambda: timeline_client.items_read)
        result.db, result.table = tables.db, tables.contacts  # type: ignore[attr-defined]
    assert contacts.commit([change(ANN, {"type": "page", "userId": "ann", "messageId": "p1"})])[0].committed
    return result


def evaluation(stage: str, moves: Sequence[Move] = ()) -> Evaluation:
    return Evaluation(
        stage=stage, quarter=Quarter.NURTURING, index=0.1, direction=Trend.RISING, engagement=1.0,
        moves=tuple(moves), sales_ready=False, route=False, due_at=None, write_due=False,
    )  # fmt: skip


def moved(seq: int, source: str | None, target: str, at: datetime) -> ContactStageChanged:
    return ContactStageChanged(
        event_id=f"{ANN}#{seq}#0", contact_id=str(ANN), at=at, from_stage=source, to_stage=target,
        phase="acquisition", reason="r", engagement=1.0, index=0.1, direction="rising",
    )  # fmt: skip


def segment_changed(seq: int, number: int, at: datetime, change: str = "entered") -> SegmentMembershipChanged:
    return SegmentMembershipChanged(
        event_id=f"{ANN}#{seq}#{number}", contact_id=str(ANN), at=at, segment="daily", change=change
    )


def write(stages: Any, outputs: Sequence[Output], stage: str = "lead", moves: Sequence[Move] = ()) -> None:
    record = stages.profile(ANN)
    at = outputs[0].at if outputs else NOW
    assert stages.apply(ANN, record, evaluation(stage, moves), list(outputs), None, at)


def publish_all(stages: Any) -> None:
    stages.mark_delivered(ANN, [Delivery(p.key, sent=frozenset({"events"})) for p in stages.pending(ANN)])


def announce_segment_changes(stages: Any, count: int, start: datetime) -> datetime:
    """``count`` segment changes, published, as a time-driven segment makes them; returns the time after."""
    at = start
    while count > 0:
        seq = stages.profile(ANN).stage_seq + 1
        batch = [
            segment_changed(seq, n, at + timedelta(minutes=n), "entered" if n % 2 else "left")
            for n in range(min(count, PER_WRITE))
        ]
        write(stages, batch)
        publish_all(stages)
        count -= len(batch)
        at += timedelta(days=1)
    return at


def a_change_costs(ports: Ports, at: datetime, source: str, target: str) -> tuple[int, int]:
    """The items read by the stage function's ``pending`` after a change (a move and a segment change)
    and by the metrics' ``stage_at`` for a purchase just after it."""
    stages = ports.stages
    seq = stages.profile(ANN).stage_seq + 1
    write(
        stages,
        [moved(seq, source, target, at), segment_changed(seq, 1, at)],
        target,
        [Move("stage", source, target, "r")],
    )
    before = ports.pending_reads()
    pending = stages.pending(ANN)
    pending_reads = ports.pending_reads() - before
    assert [p.output.event_id for p in pending] == [f"{ANN}#{seq}#0", f"{ANN}#{seq}#1"]
    publish_all(stages)
    before = ports.timeline_reads()
    assert ports.timeline.stage_at(ANN, at + timedelta(seconds=1)) == target
    return pending_reads, ports.timeline_reads() - before


def test_the_cost_of_a_change_does_not_grow_with_the_contacts_past_announcements(ports) -> None:
    from shared.adapters.stage_timeline import PAGE

    write(
        ports.stages,
        [moved(1, None, "subscriber", NOW)],
        "subscriber",
        [Move("stage", None, "subscriber", "r")],
    )
    publish_all(ports.stages)
    later = announce_segment_changes(ports.stages, 10, NOW + timedelta(days=1))
    young = a_change_costs(ports, later, "subscriber", "lead")
    later = announce_segment_changes(ports.stages, 400, later + timedelta(days=1))
    old = a_change_costs(ports, later, "lead", "mql")
    assert old[0] == young[0] == 3, "pending: the profile and the two pending announcements, as young"
    assert young[1] <= 2 and old[1] <= 3, (
        "stage_at: the stage moves at most (2, then 3), none of the 410 others"
    )
    assert old[1] <= PAGE
    assert ports.timeline.stage_at(ANN, NOW + timedelta(days=1)) == "subscriber", "older moves still found"
    history = ports.stages.history(ANN, 3)
    assert [type(o).__name__ for o in history] == [
        "SegmentMembershipChanged",
        "ContactStageChanged",
        "SegmentMembershipChanged",
    ], "the card's history: the latest of every kind, newest first"
    assert history[1].to_stage == "mql"


def test_only_published_announcements_other_than_moves_expire(ports, implementation) -> None:
    if implementation == "fake":
        pytest.skip("expiry is the table's TTL")
    from shared.adapters.stage_store import ANNOUNCEMENTS_KEPT, EXPIRES
    from shared.adapters.tables import CONTACTS

    assert CONTACTS.ttl_attribute == EXPIRES
    stages = ports.stages
    write(
        stages,
        [moved(1, None, "lead", NOW), segment_changed(1, 1, NOW)],
        moves=[Move("stage", None, "lead", "r")],
    )
    write(stages, [segment_changed(2, 0, NOW + timedelta(hours=1), "left")])
    first, entered, left = stages.pending(ANN)
    stages.mark_delivered(ANN, [Delivery(k.key, sent=frozenset({"events"})) for k in (first, entered)])
    stages.mark_delivered(ANN, [Delivery(left.key, sent=frozenset({"events"}), retry=frozenset({"sns"}))])
    items = {
        i["sk"]["S"]: i
        for i in ports.db.query(
            TableName=ports.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"C#{ANN}"}},
        )["Items"]
    }
    assert EXPIRES not in items[first.key], "a stage move is kept"
    assert items[entered.key][EXPIRES] == {"N": str(int((NOW + ANNOUNCEMENTS_KEPT).timestamp()))}
    assert EXPIRES not in items[left.key], "not published yet: never expires"
    assert items["PROFILE"]["stagePending"] == {"SS": [left.key]}


def test_announcements_written_before_the_layout_still_read_right(ports, implementation) -> None:
    """Old items: every announcement under ``STAGE#`` with no ``keepUntil``, no pending keys on the profile."""
    if implementation == "fake":
        pytest.skip("the fake has no items written before")
    from shared.adapters.stage_store import ANNOUNCED, HISTORY, KEEP_UNTIL, PENDING

    stages, db, table = ports.stages, ports.db, ports.table
    write(
        stages,
        [moved(1, None, "lead", NOW), segment_changed(1, 1, NOW)],
        moves=[Move("stage", None, "lead", "r")],
    )
    publish_all(stages)
    write(
        stages,
        [
            moved(2, "lead", "mql", NOW + timedelta(hours=1)),
            segment_changed(2, 1, NOW + timedelta(hours=1), "left"),
        ],
        "mql",
        [Move("stage", "lead", "mql", "r")],
    )
    # Rewritten as before: the other announcements moved under STAGE#, the profile's list removed.
    key = {"pk": {"S": f"C#{ANN}"}}
    for item in db.query(
        TableName=table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :a)",
        ExpressionAttributeValues={":pk": key["pk"], ":a": {"S": ANNOUNCED}},
    )["Items"]:
        db.delete_item(TableName=table, Key={**key, "sk": item["sk"]})
        item.pop(KEEP_UNTIL)
        db.put_item(
            TableName=table, Item={**item, "sk": {"S": HISTORY + item["sk"]["S"].removeprefix(ANNOUNCED)}}
        )
    db.update_item(TableName=table, Key={**key, "sk": {"S": "PROFILE"}}, UpdateExpression=f"REMOVE {PENDING}")

    assert [p.key for p in stages.pending(ANN)] == ["STAGE#00000002#00", "STAGE#00000002#01"]
    assert ports.timeline.stage_at(ANN, NOW + timedelta(minutes=30)) == "lead"
    assert ports.timeline.stage_at(ANN, NOW + timedelta(hours=2)) == "mql"
    write(stages, [segment_changed(3, 0, NOW + timedelta(hours=2))], "mql")  # a new one, listed
    assert [p.key for p in stages.pending(ANN)] == [
        "STAGE#00000002#00",
        "STAGE#00000002#01",
        "ANNOUNCED#00000003#00",
    ]
    assert [o.event_id for o in stages.history(ANN, 10)] == [
        f"{ANN}#3#0",
        f"{ANN}#2#1",
        f"{ANN}#2#0",
        f"{ANN}#1#1",
        f"{ANN}#1#0",
    ]
    publish_all(stages)
    assert stages.pending(ANN) == [] and stages.profile(ANN).pending_outputs == 0
    # From now on, no query of the history: the profile and what is pending, read by key.
    write(stages, [segment_changed(4, 0, NOW + timedelta(hours=3))], "mql")
    before = ports.pending_reads()
    assert len(stages.pending(ANN)) == 1
    assert ports.pending_reads() - before == 2

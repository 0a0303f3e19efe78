"""The stage history a scan segment at a time (``StageHistoryScan``, the metrics back-fill's port), from the
history the stage store writes: fake (over ``MemoryStageStore``) and adapter (a filtered parallel Scan of
the contacts table on moto, over ``DynamoStageStore``'s items) alike."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest

from shared.contacts.identity import ContactId
from shared.engagement.events import (
    ContactRemoved,
    ContactStageChanged,
    EngagementQuarterChanged,
    Output,
    SegmentMembershipChanged,
    removal_id,
)
from shared.engagement.index import Quarter
from shared.engagement.transitions import Evaluation, Move
from shared.scoring.decay import Trend
from tests.contract.helpers import DECAY, NOW, change
from tests.fakes import MemoryContactStore, MemoryOutboxEntry, MemoryStageHistoryScan, MemoryStageStore

PEOPLE = [ContactId.user(name) for name in ("ann", "bob", "cy", "di", "ed")]


@dataclass
class Histories:
    """The stage store, the scan, the scan reading one item per page, and two ways to spoil the history:
    ``legacy`` puts an announcement under ``STAGE#`` as stored before issue 13, ``damage`` makes an entry's
    ``output`` unreadable."""

    stages: Any
    scan: Any
    paged: Any
    legacy: Callable[[ContactId, str, Output], None]
    damage: Callable[[ContactId, str], None]


@pytest.fixture
def histories(implementation, contact_tables) -> Histories:
    if implementation == "fake":
        contacts = MemoryContactStore()
        stages = MemoryStageStore(contacts)
        scan, paged = MemoryStageHistoryScan(stages), MemoryStageHistoryScan(stages, page_size=1)

        def legacy(contact: ContactId, key: str, output: Output) -> None:
            stages.outbox.setdefault(contact, {})[key] = MemoryOutboxEntry(output)

        def damage(contact: ContactId, key: str) -> None:
            scan.damage(contact, key)
            paged.damage(contact, key)

        histories = Histories(stages, scan, paged, legacy, damage)
    else:
        from shared.adapters.stage_history_scan import DynamoStageHistoryScan
        from shared.adapters.stage_store import DynamoStageStore

        tables = contact_tables()
        contacts = tables.stores()
        db, table = tables.db, tables.contacts

        def legacy(contact: ContactId, key: str, output: Output) -> None:
            detail = {"detail_type": output.detail_type, **output.model_dump(mode="json", by_alias=True)}
            item = {
                "pk": {"S": f"C#{contact}"},
                "sk": {"S": key},
                "type": {"S": output.detail_type},
                "output": {"S": json.dumps(detail)},
                "published": {"BOOL": True},
            }
            db.put_item(TableName=table, Item=item)

        def damage(contact: ContactId, key: str) -> None:
            db.update_item(
                TableName=table,
                Key={"pk": {"S": f"C#{contact}"}, "sk": {"S": key}},
                UpdateExpression="SET #o = :o",
                ExpressionAttributeNames={"#o": "output"},
                ExpressionAttributeValues={":o": {"S": '{"detail_type": "ContactStageChanged", "event_id"'}},
            )

        histories = Histories(
            DynamoStageStore(db, contacts_table=table, decay=DECAY),
            DynamoStageHistoryScan(db, contacts_table=table),
            DynamoStageHistoryScan(db, contacts_table=table, page_size=1),
            legacy,
            damage,
        )
    for who in PEOPLE:
        visit = {"type": "page", "userId": who.value, "messageId": f"{who.value}-p1"}
        assert contacts.commit([change(who, visit)])[0].committed
    return histories


def evaluation(source: str | None, target: str) -> Evaluation:
    return Evaluation(
        stage=target, quarter=Quarter.NURTURING, index=0.1, direction=Trend.RISING, engagement=1.0,
        moves=(Move("stage", source, target, "r"),), sales_ready=False, route=False, due_at=None,
        write_due=False,
    )  # fmt: skip


def move(stages: Any, who: ContactId, source: str | None, target: str, at: datetime) -> ContactStageChanged:
    """A move as the stage function records it: one write, the move and a quarter change beside it."""
    record = stages.profile(who)
    seq = record.stage_seq + 1
    moved = ContactStageChanged(
        event_id=f"{who}#{seq}#0", contact_id=str(who), at=at, from_stage=source, to_stage=target,
        phase="acquisition", reason="r", engagement=1.0, index=0.1, direction="rising",
    )  # fmt: skip
    quarter = EngagementQuarterChanged(
        event_id=f"{who}#{seq}#1", contact_id=str(who), at=at, from_quarter=None, to_quarter="nurturing",
        engagement=1.0, index=0.1, direction="rising",
    )  # fmt: skip
    assert stages.apply(who, record, evaluation(source, target), [moved, quarter], None, at)
    return moved


def remove(stages: Any, who: ContactId, stage: str, entered: datetime, at: datetime) -> ContactRemoved:
    record = stages.profile(who)
    removed = ContactRemoved(
        event_id=removal_id(str(who), entered), contact_id=str(who), at=at, stage=stage, entered_at=entered,
        reason="erased",
    )  # fmt: skip
    assert stages.apply(who, record, evaluation(stage, stage), [removed], None, at)
    return removed


def written(h: Histories) -> list[ContactStageChanged | ContactRemoved]:
    """Two moves each, Ann's removal, and a segment entry under ``STAGE#`` as stored before issue 13."""
    hour = timedelta(hours=1)
    kept: list[ContactStageChanged | ContactRemoved] = []
    for who in PEOPLE:
        kept.append(move(h.stages, who, None, "subscriber", NOW))
        kept.append(move(h.stages, who, "subscriber", "lead", NOW + hour))
    kept.append(remove(h.stages, PEOPLE[0], "lead", NOW + hour, NOW + 2 * hour))
    old = SegmentMembershipChanged(
        event_id="old", contact_id=str(PEOPLE[1]), at=NOW, segment="rfm:new", change="entered"
    )
    h.legacy(PEOPLE[1], "STAGE#00000000#05", old)
    return kept


def ids(pages: Any) -> list[str]:
    return sorted(e.event_id for page in pages for e in page.entries)


def test_the_segments_divide_the_moves_and_removals_between_them_and_hold_nothing_else(histories) -> None:
    kept = written(histories)
    assert len(kept) == 11
    for segments in (1, 3, 7):
        pages = [page for s in range(segments) for page in histories.scan.scan(s, segments)]
        assert ids(pages) == sorted(e.event_id for e in kept), segments
        assert sum(p.unreadable for p in pages) == 0
    found = {e.event_id: e for page in histories.scan.scan(0, 1) for e in page.entries}
    assert found == {e.event_id: e for e in kept}, "each entry as announced, its type told apart"


def test_pages_hand_on_the_history_as_read_and_count_every_item_read(histories) -> None:
    kept = written(histories)
    pages = [page for s in range(2) for page in histories.paged.scan(s, 2)]
    assert ids(pages) == sorted(e.event_id for e in kept)
    assert max(p.read for p in pages) <= 1 and max(len(p.entries) for p in pages) <= 1
    # every item of the contacts' partitions is read: profiles, the quarter changes, the legacy entry...
    assert sum(p.read for p in pages) >= 5 + 11 + 10 + 1


def test_an_entry_that_does_not_parse_is_unreadable_and_left_out(histories) -> None:
    kept = written(histories)
    histories.damage(PEOPLE[2], "STAGE#00000001#00")
    pages = list(histories.scan.scan(0, 1))
    assert sum(p.unreadable for p in pages) == 1
    assert ids(pages) == sorted(e.event_id for e in kept if e.event_id != f"{PEOPLE[2]}#1#0")


def test_a_table_without_history_yields_no_entry(histories) -> None:
    pages = [page for s in range(4) for page in histories.scan.scan(s, 4)]
    assert ids(pages) == [] and sum(p.unreadable for p in pages) == 0

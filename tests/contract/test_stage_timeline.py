"""The stage a contact was in at a time (``StageTimeline``), from the history the stage store writes: fake
(over ``MemoryStageStore``) and adapter (over ``DynamoStageStore``'s items) alike."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from shared.contacts.identity import ContactId
from shared.engagement.events import ContactStageChanged, EngagementQuarterChanged
from shared.engagement.index import Quarter
from shared.engagement.transitions import Evaluation, Move
from shared.scoring.decay import Trend
from tests.contract.helpers import DECAY, NOW, change
from tests.fakes import MemoryContactStore, MemoryStageStore, MemoryStageTimeline

ANN, BOB = ContactId.user("ann"), ContactId.user("bob")


@pytest.fixture
def ports(implementation, contact_tables):
    """(stage store, timeline) over the same contacts, with Ann known."""
    if implementation == "fake":
        contacts = MemoryContactStore()
        stages = MemoryStageStore(contacts)
        timeline = MemoryStageTimeline(stages)
    else:
        from shared.adapters.stage_store import DynamoStageStore
        from shared.adapters.stage_timeline import DynamoStageTimeline

        tables = contact_tables()
        contacts = tables.stores()
        stages = DynamoStageStore(tables.db, contacts_table=tables.contacts, decay=DECAY)
        timeline = DynamoStageTimeline(tables.db, contacts_table=tables.contacts)
    assert contacts.commit([change(ANN, {"type": "page", "userId": "ann", "messageId": "p1"})])[0].committed
    return stages, timeline


def moves(stages, *steps: tuple[str | None, str, datetime]) -> None:
    """Record each move as the stage function does (one evaluation each, with a quarter change between)."""
    for source, target, at in steps:
        record = stages.profile(ANN)
        seq = record.stage_seq + 1
        moved = ContactStageChanged(
            event_id=f"{ANN}#{seq}#0", contact_id=str(ANN), at=at, from_stage=source, to_stage=target,
            phase="acquisition", reason="r", engagement=1.0, index=0.1, direction="rising",
        )  # fmt: skip
        quarter = EngagementQuarterChanged(
            event_id=f"{ANN}#{seq}#1", contact_id=str(ANN), at=at, from_quarter=None, to_quarter="nurturing",
            engagement=1.0, index=0.1, direction="rising",
        )  # fmt: skip
        evaluation = Evaluation(
            stage=target, quarter=Quarter.NURTURING, index=0.1, direction=Trend.RISING, engagement=1.0,
            moves=(Move("stage", source, target, "r"),), sales_ready=False, route=False, due_at=None,
            write_due=False,
        )  # fmt: skip
        assert stages.apply(ANN, record, evaluation, [moved, quarter], None, at)


def test_the_stage_at_a_time_is_the_last_move_before_it(ports) -> None:
    stages, timeline = ports
    day = timedelta(days=1)
    moves(
        stages,
        (None, "subscriber", NOW),
        ("subscriber", "lead", NOW + day),
        ("lead", "customer", NOW + 3 * day),
    )
    assert timeline.stage_at(ANN, NOW + 2 * day) == "lead"
    assert timeline.stage_at(ANN, NOW + day) == "lead", "a move at that very time counts"
    assert timeline.stage_at(ANN, NOW + 9 * day) == "customer"
    assert timeline.stage_at(ANN, NOW + 0.5 * day) == "subscriber"


def test_before_the_first_move_it_is_where_the_first_placement_put_the_contact(ports) -> None:
    stages, timeline = ports
    moves(stages, (None, "subscriber", NOW), ("subscriber", "customer", NOW))
    assert timeline.stage_at(ANN, NOW - timedelta(hours=1)) == "subscriber"


def test_a_contact_never_placed_has_no_stage(ports) -> None:
    _, timeline = ports
    assert timeline.stage_at(ANN, NOW) is None
    assert timeline.stage_at(BOB, NOW) is None


def test_a_long_history_is_read_back_as_far_as_needed(ports) -> None:
    stages, timeline = ports
    steps: list[tuple[str | None, str, datetime]] = [(None, "subscriber", NOW)]
    for n in range(1, 40):  # more than a page of the history (moves and quarter changes)
        steps.append((steps[-1][1], "lead" if n % 2 else "mql", NOW + timedelta(hours=n)))
    moves(stages, *steps)
    assert timeline.stage_at(ANN, NOW + timedelta(minutes=30)) == "subscriber"
    assert timeline.stage_at(ANN, NOW + timedelta(hours=2, minutes=1)) == "mql"

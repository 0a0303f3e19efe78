"""The stage store (the stage function's port): writes guarded by the stage sequence, outbox, due times."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.contacts.identity import ContactId
from shared.engagement.events import ContactRemoved, ContactStageChanged, LeadRouted, removal_id
from shared.engagement.index import Quarter
from shared.engagement.routing import Salesperson
from shared.engagement.transitions import Evaluation, Move
from shared.scoring.decay import Trend
from shared.usecases.engagement import Delivery
from tests.contract.helpers import DECAY, NOW, change
from tests.fakes import MemoryContactStore, MemoryRunStore, MemoryStageStore

ANN, BOB, A1 = ContactId.user("ann"), ContactId.user("bob"), ContactId.anonymous("a1")
SELLER = Salesperson(id="sam", name="Sam", email="sam@example.com")


@pytest.fixture
def ports(implementation, contact_tables):
    """(contact store, stage store) over the same contacts."""
    if implementation == "fake":
        contacts = MemoryContactStore()
        return contacts, MemoryStageStore(contacts)
    from shared.adapters.stage_store import DynamoStageStore

    tables = contact_tables()
    contacts = tables.stores()
    return contacts, DynamoStageStore(tables.db, contacts_table=tables.contacts, decay=DECAY)


def seen(contacts, contact: ContactId, message_id: str = "p1") -> None:
    who = {"userId": contact.value} if contact.kind == "user_id" else {"anonymousId": contact.value}
    assert contacts.commit([change(contact, {"type": "page", **who, "messageId": message_id})])[0].committed


def evaluation(
    stage: str | None = "lead",
    *,
    source: str | None = None,
    due_in: timedelta | None = None,
    write_due: bool = True,
    sales_ready: bool = False,
) -> Evaluation:
    return Evaluation(
        stage=stage or "subscriber",
        quarter=Quarter.NURTURING,
        index=0.5,
        direction=Trend.RISING,
        engagement=12.0,
        moves=(Move("stage", source, stage, "first seen"),) if stage else (),
        sales_ready=sales_ready,
        route=False,
        due_at=None if due_in is None else NOW + due_in,
        write_due=write_due,
    )


def moved(contact: ContactId, seq: int, to: str = "lead") -> ContactStageChanged:
    return ContactStageChanged(
        event_id=f"{contact}#{seq}#0",
        contact_id=str(contact),
        at=NOW,
        from_stage=None,
        to_stage=to,
        phase="acquisition",
        reason="first seen",
        engagement=12.0,
        index=0.5,
        direction="rising",
    )


def routed(contact: ContactId, seq: int) -> LeadRouted:
    return LeadRouted(
        event_id=f"{contact}#{seq}#routed",
        contact_id=str(contact),
        at=NOW,
        salesperson_id=SELLER.id,
        salesperson_name=SELLER.name,
        salesperson_email=SELLER.email,
        stage="sql",
        engagement=61.0,
        reason="sales-ready",
    )


def test_a_write_from_the_sequence_read_records_the_stage_and_its_announcements(ports):
    contacts, stages = ports
    seen(contacts, ANN)
    record = stages.profile(ANN)
    outputs = [moved(ANN, 1), routed(ANN, 1)]
    assert stages.apply(ANN, record, evaluation(due_in=timedelta(days=3)), outputs, SELLER, NOW)
    after = stages.profile(ANN)
    assert (after.stage, after.quarter, after.stage_seq, after.owner) == ("lead", "nurturing", 1, "sam")
    assert after.stage_entered_at == NOW and after.due_at == NOW + timedelta(days=3)
    assert after.pending_outputs == 2 and after.stage_baseline is not None
    assert after.event_count == 1, "the contact's tracking attributes are untouched"
    assert [(p.output, p.done) for p in stages.pending(ANN)] == [(o, frozenset()) for o in outputs]
    assert stages.history(ANN, 10) == outputs[::-1] and stages.history(ANN, 1) == [outputs[1]]


def test_a_stale_sequence_writes_nothing(ports):
    contacts, stages = ports
    seen(contacts, ANN)
    stale = stages.profile(ANN)
    assert stages.apply(ANN, stale, evaluation(), [moved(ANN, 1)], None, NOW)
    assert not stages.apply(ANN, stale, evaluation("mql", source="lead"), [moved(ANN, 1, "mql")], None, NOW)
    fresh = stages.profile(ANN)
    assert (fresh.stage, fresh.stage_seq, fresh.pending_outputs) == ("lead", 1, 1)
    assert len(stages.history(ANN, 10)) == 1
    assert stages.apply(ANN, fresh, evaluation("mql", source="lead"), [moved(ANN, 2, "mql")], None, NOW)
    assert stages.profile(ANN).stage_seq == 2


def test_an_unknown_or_merged_away_contact_is_never_written(ports):
    contacts, stages = ports
    seen(contacts, A1)
    record = stages.profile(A1)
    contacts.claim(A1, ANN, NOW)
    assert not stages.apply(A1, record, evaluation(), [moved(A1, 1)], None, NOW)
    assert stages.profile(A1).stage is None and stages.pending(A1) == []
    from shared.contacts.model import ContactRecord

    assert not stages.apply(BOB, ContactRecord(contact_id=str(BOB)), evaluation(), [], None, NOW)
    assert stages.profile(BOB) is None


def test_a_merged_away_contact_leaves_its_stage_once_through_the_outbox(ports):
    """``remove``: the removal kept in the stage history and pending, the profile marked and its stage kept,
    on condition of the sequence read and the merge; a contact not merged away is never removed."""
    contacts, stages = ports
    seen(contacts, A1)
    placed = stages.profile(A1)
    assert stages.apply(A1, placed, evaluation("subscriber"), [moved(A1, 1, "subscriber")], None, NOW)
    record = stages.profile(A1)
    removal = ContactRemoved(
        event_id=removal_id(str(A1), record.stage_entered_at),
        contact_id=str(A1),
        at=NOW + timedelta(hours=1),
        stage="subscriber",
        entered_at=record.stage_entered_at,
        reason="merged",
        into=str(ANN),
    )
    assert not stages.remove(A1, record, removal), "not merged away"
    contacts.claim(A1, ANN, NOW)
    record = stages.profile(A1)
    assert record.merged_at == NOW
    assert not stages.remove(A1, record.model_copy(update={"stage_seq": 0}), removal), "a stale sequence"
    assert stages.remove(A1, record, removal)
    after = stages.profile(A1)
    assert (after.stage, after.stage_removed_at, after.stage_seq, after.pending_outputs) == (
        "subscriber",
        NOW + timedelta(hours=1),
        2,
        2,
    )
    assert [p.output for p in stages.pending(A1)][-1] == removal
    assert stages.history(A1, 1) == [removal]
    assert not stages.remove(A1, record, removal), "written once"


def test_a_contact_being_erased_leaves_its_stage_and_no_stage_write_follows(ports):
    contacts, stages = ports
    seen(contacts, ANN)
    assert stages.apply(ANN, stages.profile(ANN), evaluation(), [moved(ANN, 1)], None, NOW)
    record = stages.profile(ANN)
    removal = ContactRemoved(
        event_id=removal_id(str(ANN), record.stage_entered_at),
        contact_id=str(ANN),
        at=NOW,
        stage="lead",
        entered_at=record.stage_entered_at,
        reason="erased",
    )
    assert stages.remove(ANN, record, removal)
    removed = stages.profile(ANN)
    assert (removed.stage, removed.stage_removed_at, removed.stage_seq) == ("lead", NOW, 2)
    assert not stages.remove(ANN, removed, removal), "removed once"
    assert not stages.apply(ANN, removed, evaluation("mql", source="lead"), [moved(ANN, 3, "mql")], None, NOW)
    assert stages.profile(ANN).stage == "lead"
    from shared.contacts.model import ContactRecord

    assert not stages.remove(BOB, ContactRecord(contact_id=str(BOB)), removal), "an unknown contact"
    assert stages.profile(BOB) is None


def test_deliveries_are_recorded_per_channel_and_a_complete_one_leaves_the_outbox_once(ports):
    contacts, stages = ports
    seen(contacts, ANN)
    stages.apply(ANN, stages.profile(ANN), evaluation(), [moved(ANN, 1), routed(ANN, 1)], SELLER, NOW)
    first, lead = stages.pending(ANN)
    stages.mark_delivered(
        ANN,
        [
            Delivery(first.key, sent=frozenset({"events"})),
            Delivery(lead.key, sent=frozenset({"events"}), retry=frozenset({"sns", "ses"})),
        ],
    )
    assert [(p.key, p.done) for p in stages.pending(ANN)] == [(lead.key, frozenset({"events"}))]
    assert stages.profile(ANN).pending_outputs == 1
    done = Delivery(lead.key, sent=frozenset({"sns"}), refused={"ses": "MessageRejected"})
    stages.mark_delivered(ANN, [done])
    stages.mark_delivered(ANN, [done])  # a redelivered record marks it again: counted once
    assert stages.pending(ANN) == [] and stages.profile(ANN).pending_outputs == 0
    assert len(stages.history(ANN, 10)) == 2


def test_a_channel_refused_for_good_is_done_while_the_announcement_waits_for_others(ports):
    contacts, stages = ports
    seen(contacts, ANN)
    stages.apply(ANN, stages.profile(ANN), evaluation(), [routed(ANN, 1)], SELLER, NOW)
    (lead,) = stages.pending(ANN)
    stages.mark_delivered(
        ANN,
        [
            Delivery(
                lead.key,
                sent=frozenset({"events"}),
                refused={"ses": "MessageRejected"},
                retry=frozenset({"sns"}),
            )
        ],
    )
    assert [p.done for p in stages.pending(ANN)] == [frozenset({"events", "ses"})]


def test_due_lists_the_contacts_whose_due_time_has_come(ports, implementation):
    """What the stage writes reaches the due index as the timer function reads it (profiles only)."""
    contacts, stages = ports
    if implementation == "fake":
        runs = MemoryRunStore(contacts)
    else:
        from shared.adapters.automation_runs import DynamoRunStore

        runs = DynamoRunStore(stages._db, contacts_table=stages._table, due_shards=stages._shards)
    due = lambda at: [d.contact for d in runs.due(at) if d.kind == "profile"]
    for contact, due_in in ((ANN, timedelta(hours=1)), (BOB, timedelta(days=2)), (A1, timedelta(hours=2))):
        seen(contacts, contact)
        assert stages.apply(contact, stages.profile(contact), evaluation(due_in=due_in), [], None, NOW)
    assert due(NOW) == []
    assert due(NOW + timedelta(hours=1)) == [ANN]
    assert sorted(map(str, due(NOW + timedelta(days=3)))) == sorted(map(str, (ANN, BOB, A1)))
    contacts.claim(A1, ANN, NOW)  # merged away: never due again
    stages.apply(BOB, stages.profile(BOB), evaluation(None, write_due=True), [], None, NOW)  # due no more
    assert due(NOW + timedelta(days=3)) == [ANN]

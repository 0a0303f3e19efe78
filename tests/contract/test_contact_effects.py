"""What a run does to the contact: tags on the profile, and points through the log and its ledger,
folded into the scores but not counted as activity. The same assertions on the fake and on moto."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.automations.engine import Plan
from shared.automations.model import PointsStep
from shared.contacts.identity import ContactId
from tests.contract.helpers import DECAY, NOW, change
from tests.fakes import MemoryContactEffects, MemoryContactLog, MemoryContactStore

ANN, BOB = ContactId.user("ann"), ContactId.user("bob")
LATER = NOW + timedelta(days=40)


@pytest.fixture
def ports(implementation, contact_tables):
    """(contacts with their log and stream, contact effects, contact log)."""
    if implementation == "fake":
        contacts = MemoryContactStore()
        return contacts, MemoryContactEffects(contacts), MemoryContactLog(contacts)
    from shared.adapters.contact_effects import DynamoContactEffects
    from shared.adapters.contact_items import Retention
    from shared.adapters.contact_log import DynamoContactLog

    tables = contact_tables()
    effects = DynamoContactEffects(
        tables.db, contacts_table=tables.contacts, events_table=tables.events, retention=Retention()
    )
    return tables.stores(), effects, DynamoContactLog(tables.db, events_table=tables.events)


def seen(contacts, contact: ContactId) -> None:
    assert contacts.commit([change(contact, {"type": "page", "userId": contact.value, "messageId": "p1"})])[
        0
    ].committed


def win_back(occurrence: str = "lapse@1", *points: PointsStep) -> Plan:
    return Plan(
        contact_id=str(ANN),
        automation="win-back",
        version=3,
        occurrence=occurrence,
        step=0,
        status="acted",
        points=points
        or (
            PointsStep(action="points", points=10),
            PointsStep(action="points", points=4, dimension="tag:vip"),
        ),
    )


def test_tags_are_added_with_their_first_time_and_removed(ports):
    contacts, effects, _ = ports
    seen(contacts, ANN)
    effects.tag(ANN, ["vip", "lapsed"], [], NOW)
    effects.tag(ANN, ["vip"], ["lapsed", "never-had"], LATER)
    assert contacts.profile(ANN).tags == {"vip": NOW}


def test_tagging_a_contact_without_a_profile_does_nothing(ports):
    contacts, effects, _ = ports
    effects.tag(BOB, ["vip"], [], NOW)
    assert contacts.profile(BOB) is None


def test_points_go_into_the_scores_with_the_automation_in_the_ledger_and_are_no_activity(ports):
    contacts, effects, log = ports
    seen(contacts, ANN)
    contacts.deliver_events()
    before = contacts.profile(ANN)
    effects.award(ANN, win_back(), LATER)
    effects.award(ANN, win_back(), LATER + timedelta(minutes=5))  # a resumed run: awarded once
    assert contacts.deliver_events().events == 1
    after = contacts.profile(ANN)
    assert after.scores["global"].total == before.scores["global"].total + 10
    assert after.scores["tag:vip"].total == 4
    assert after.scores["global"].value(DECAY, LATER) > before.scores["global"].value(DECAY, LATER)
    assert (after.event_count, after.last_seen_at, after.first_seen_at, after.counts) == (
        before.event_count,
        before.last_seen_at,
        before.first_seen_at,
        before.counts,
    )
    [entry, *_] = log.ledger(ANN, 10).entries
    assert entry.message_id == "automation:win-back#lapse@1#00"
    assert entry.event == "Automation points"
    assert [(c.rule_id, c.rule_version, c.points, c.dimension) for c in entry.changes] == [
        ("automation:win-back", 3, 10, "global"),
        ("automation:win-back", 3, 4, "tag:vip"),
    ]


def test_each_run_awards_its_own_points(ports):
    contacts, effects, _ = ports
    seen(contacts, ANN)
    effects.award(ANN, win_back("lapse@1"), LATER)
    effects.award(ANN, win_back("lapse@2", PointsStep(action="points", points=-3)), LATER)
    contacts.deliver_events()
    assert contacts.profile(ANN).scores["global"].total == contacts_total_without_awards(contacts) + 7


def contacts_total_without_awards(contacts) -> int:
    """What the page call alone scored (the shipped rules)."""
    return int(
        change(ANN, {"type": "page", "userId": "ann", "messageId": "p1"}).scored.totals.get("global", 0)
    )

"""The contact log (admin's port): pages of a contact's events and score ledger, newest first."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.contacts.identity import ContactId
from shared.errors import InvalidRequest
from tests.contract.helpers import NOW, change
from tests.fakes import MemoryContactLog, MemoryContactStore

ANN, BOB = ContactId.user("ann"), ContactId.user("bob")


@pytest.fixture
def ports(implementation, contact_tables):
    """(contact store, contact log) over the same storage."""
    if implementation == "fake":
        store = MemoryContactStore()
        return store, MemoryContactLog(store)
    from shared.adapters.contact_log import DynamoContactLog

    tables = contact_tables()
    store = tables.stores()
    return store, DynamoContactLog(tables.db, events_table=tables.events)


def recorded(store, contact: ContactId, count: int, scored_every: int = 1) -> None:
    """``count`` calls an hour apart, the oldest first: every ``scored_every``-th an order (scored), else a
    custom event (not scored by the shipped rules)."""
    calls = [
        {
            "type": "track",
            "userId": contact.value,
            "messageId": f"{contact.value}-{n}",
            "event": "Order Completed" if n % scored_every == 0 else "Something Custom",
            "timestamp": (NOW - timedelta(hours=count - n)).isoformat(),
            "properties": {"revenue": 1, "n": n},
        }
        for n in range(count)
    ]
    assert store.commit([change(contact, *calls)])[0].committed


def pages(read, contact: ContactId, limit: int) -> list[list[str]]:
    found, cursor = [], None
    for _ in range(20):
        page = read(contact, limit, cursor)
        items = getattr(page, "events", None) or getattr(page, "entries", None) or []
        found.append([item.message_id for item in items])
        cursor = page.next_cursor
        if cursor is None:
            return [p for p in found if p]  # DynamoDB may end on an empty page after a full one
    raise AssertionError("the cursor never ran out")


def test_events_come_newest_first_a_page_at_a_time_each_once(ports):
    store, log = ports
    recorded(store, ANN, 5)
    recorded(store, BOB, 2)
    assert pages(log.events, ANN, 2) == [["ann-4", "ann-3"], ["ann-2", "ann-1"], ["ann-0"]]
    first = log.events(ANN, 10).events[0]
    assert (first.type, first.behaviour, first.event) == ("track", "purchase", "Order Completed")
    assert first.timestamp == NOW - timedelta(hours=1) and first.properties == {"revenue": 1, "n": 4}


def test_the_ledger_lists_only_scored_events_with_their_rule_lines(ports):
    store, log = ports
    recorded(store, ANN, 6, scored_every=2)
    assert pages(log.ledger, ANN, 2) == [["ann-4", "ann-2"], ["ann-0"]]
    (entry,) = log.ledger(ANN, 1).entries
    assert entry.changes and all(line.points and line.rule_id for line in entry.changes)
    assert {line.dimension for line in entry.changes} >= {"global"}


def test_an_unknown_contact_has_an_empty_log(ports):
    _, log = ports
    assert log.events(ANN, 5).events == [] and log.events(ANN, 5).next_cursor is None
    assert log.ledger(ANN, 5).entries == []


def test_a_cursor_is_refused_for_another_contact_or_when_it_is_not_one(ports):
    store, log = ports
    recorded(store, ANN, 3)
    recorded(store, BOB, 3)
    cursor = log.events(ANN, 1).next_cursor
    assert cursor is not None
    with pytest.raises(InvalidRequest):
        log.events(BOB, 1, cursor)
    with pytest.raises(InvalidRequest):
        log.events(ANN, 1, "not-a-cursor")
    ledger_cursor = log.ledger(ANN, 1).next_cursor
    assert ledger_cursor is not None
    with pytest.raises(InvalidRequest):
        log.ledger(BOB, 1, ledger_cursor)

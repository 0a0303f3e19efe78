"""The contact log (admin's port): pages of a contact's events and score ledger, newest first.

The log is what the tracking path appended (``EventLog.append``): calls that state their own time
sorted by it (their key), the calls without one placed by the time they were received; the ledger
lists the scored events only, as the aggregation last corrected them.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from shared.contacts.identity import ContactId
from shared.errors import InvalidRequest
from tests.contract.helpers import NOW, entries
from tests.fakes import MemoryContactLog, MemoryContactStore

ANN, BOB = ContactId.user("ann"), ContactId.user("bob")


@pytest.fixture
def ports(implementation, contact_tables):
    """(event log with its stream, contact log) over the same storage."""
    if implementation == "fake":
        store = MemoryContactStore()
        return store, MemoryContactLog(store)
    from shared.adapters.contact_log import DynamoContactLog

    tables = contact_tables()
    store = tables.stores()
    return store, DynamoContactLog(tables.db, events_table=tables.events)


def order(contact: ContactId, n: int, *, scored: bool = True, hours_ago: float | None = None) -> dict:
    """An order (scored by the shipped rules) or a custom event (not scored), stating its time or not."""
    call = {
        "type": "track",
        "userId": contact.value,
        "messageId": f"{contact.value}-{n}",
        "event": "Order Completed" if scored else "Something Custom",
        "properties": {"revenue": 1, "n": n},
    }
    if hours_ago is not None:
        call["timestamp"] = (NOW - timedelta(hours=hours_ago)).isoformat()
    return call


def recorded(log, contact: ContactId, count: int, scored_every: int = 1) -> None:
    """``count`` calls an hour apart, the oldest first: every ``scored_every``-th an order (scored), else a
    custom event (not scored by the shipped rules)."""
    calls = [order(contact, n, scored=n % scored_every == 0, hours_ago=count - n) for n in range(count)]
    assert log.append(entries(contact, *calls)) == frozenset()


def pages(read, contact: ContactId, limit: int) -> list[list[str]]:
    found, cursor = [], None
    for _ in range(200):
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
    assert first.received_at == NOW


def test_calls_without_a_time_of_their_own_are_placed_by_when_they_came(ports):
    store, log = ports
    for n, hours_ago in enumerate((5, 3, 1)):  # timed: ann-0, ann-1, ann-2
        store.append(entries(ANN, order(ANN, n, hours_ago=hours_ago)))
    for n, hours_ago in zip((10, 11, 12), (4, 2, 0), strict=True):  # untimed, received then
        store.append(entries(ANN, order(ANN, n), at=NOW - timedelta(hours=hours_ago)))
    newest_first = ["ann-12", "ann-2", "ann-11", "ann-1", "ann-10", "ann-0"]
    for limit in (1, 2, 4, 6, 10):
        page_by_page = pages(log.events, ANN, limit)
        assert [m for p in page_by_page for m in p] == newest_first, limit
        assert all(len(p) <= limit for p in page_by_page)
    assert [e.message_id for e in log.events(ANN, 3).events] == newest_first[:3]
    assert [e.message_id for e in log.ledger(ANN, 10).entries] == newest_first


def test_an_untimed_call_received_at_the_time_a_call_states_comes_after_it(ports):
    store, log = ports
    store.append(entries(ANN, order(ANN, 1), at=NOW - timedelta(hours=1)))
    store.append(entries(ANN, order(ANN, 0, hours_ago=1)))
    assert pages(log.events, ANN, 1) == [["ann-1"], ["ann-0"]]


def test_a_call_is_placed_by_the_time_it_states_even_when_its_clock_was_off(ports):
    store, log = ports
    # the client's clock ran two hours ahead: its call is dated by that clock, corrected by sentAt
    ahead = {
        "timestamp": (NOW + timedelta(hours=1)).isoformat(),
        "sentAt": (NOW + timedelta(hours=2)).isoformat(),
    }
    store.append(entries(ANN, {**order(ANN, 0), **ahead}))
    store.append(entries(ANN, order(ANN, 1, hours_ago=0.5)))
    (skewed,) = (e for e in log.events(ANN, 5).events if e.message_id == "ann-0")
    assert skewed.timestamp == NOW - timedelta(hours=1), "the event's time is corrected"
    assert pages(log.events, ANN, 1) == [["ann-0"], ["ann-1"]], "its place in the log is the time it stated"


def test_the_ledger_lists_only_scored_events_with_their_rule_lines(ports):
    store, log = ports
    recorded(store, ANN, 6, scored_every=2)
    assert pages(log.ledger, ANN, 2) == [["ann-4", "ann-2"], ["ann-0"]]
    (entry,) = log.ledger(ANN, 1).entries
    assert entry.changes and all(line.points and line.rule_id for line in entry.changes)
    assert {line.dimension for line in entry.changes} >= {"global"}


def test_the_ledger_pages_past_many_unscored_events(ports):
    store, log = ports
    calls = [order(ANN, n, scored=n in (0, 1, 130), hours_ago=200 - n) for n in range(131)]
    store.append(entries(ANN, *calls))
    assert pages(log.ledger, ANN, 2) == [["ann-130", "ann-1"], ["ann-0"]]
    assert len([m for p in pages(log.events, ANN, 50) for m in p]) == 131


def test_the_ledger_shows_what_the_aggregation_corrected(ports):
    store, log = ports
    recorded(store, ANN, 3)
    news = {n.event.message_id: n for n in store.new_events()}
    store.rewrite_ledger(ANN, news["ann-1"].key, ())  # a limit held: it scored nothing
    lines = (replace(news["ann-2"].ledger[0], points=5),)  # a daily limit kept part of it
    store.rewrite_ledger(ANN, news["ann-2"].key, lines)
    assert [e.message_id for e in log.ledger(ANN, 10).entries] == ["ann-2", "ann-0"]
    (latest,) = log.ledger(ANN, 1).entries
    assert [(c.rule_id, c.points) for c in latest.changes] == [(c.rule_id, c.points) for c in lines]
    assert news["ann-2"].ledger[0].points != 5
    assert [e.message_id for e in log.events(ANN, 10).events] == ["ann-2", "ann-1", "ann-0"]


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
    assert [e.message_id for e in log.events(ANN, 5, cursor).events] == ["ann-1", "ann-0"]

"""Engagement times (delivery's port, for the best hour): the stated times of a contact's latest events,
newest first, from the keys of the log; the same on the fake and on moto's events table."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.contacts.identity import ContactId
from tests.contract.helpers import NOW, entries
from tests.fakes import MemoryContactStore, MemoryEngagementTimes

ANN, BOB = ContactId.user("ann"), ContactId.user("bob")


@pytest.fixture
def ports(implementation, contact_tables):
    """(event log, engagement times) over the same log."""
    if implementation == "fake":
        contacts = MemoryContactStore()
        return contacts, MemoryEngagementTimes(contacts)
    from shared.adapters.engagement_times import DynamoEngagementTimes

    tables = contact_tables()
    return tables.stores(), DynamoEngagementTimes(tables.db, events_table=tables.events)


def page(contact: ContactId, message_id: str, hours_ago: float | None) -> dict:
    call = {"type": "page", "userId": contact.value, "messageId": message_id}
    if hours_ago is not None:
        call["timestamp"] = (NOW - timedelta(hours=hours_ago)).isoformat()
    return call


def test_the_latest_stated_times_come_newest_first_up_to_the_limit(ports) -> None:
    log, times = ports
    log.append(entries(ANN, *(page(ANN, f"p{h}", h) for h in (30, 5, 50, 1.5, 9))))
    log.append(entries(ANN, page(ANN, "untimed", None)))  # no time of its own: not in the answer
    log.append(entries(BOB, page(BOB, "b", 0.5)))
    assert times.recent_times("user_id:ann", 3) == [
        NOW - timedelta(hours=1.5),
        NOW - timedelta(hours=5),
        NOW - timedelta(hours=9),
    ]
    assert len(times.recent_times("user_id:ann", 100)) == 5
    assert times.recent_times("user_id:nobody", 10) == []
    assert times.recent_times("user_id:ann", 0) == []

"""The contact log's window read (issue 14, ``ContactLog.ledger_since``): the scored events from a time on,
newest first, bounded, for the scores-over-time chart. The fake and the DynamoDB adapter alike."""

from __future__ import annotations

from datetime import timedelta

from shared.contacts.identity import ContactId
from tests.contract.helpers import NOW, entries
from tests.contract.test_contact_log import order, ports  # noqa: F401 (the fixture)

ANN, BOB = ContactId.user("ann"), ContactId.user("bob")


def test_the_windows_scored_events_newest_first_timed_or_not(ports):  # noqa: F811
    store, log = ports
    calls = [order(ANN, n, scored=n != 3, hours_ago=48 - 10 * n) for n in range(5)]  # 48, 38, 28, 18, 8 h ago
    store.append(entries(ANN, *calls))
    store.append(entries(ANN, order(ANN, 9), at=NOW - timedelta(hours=3)))  # untimed, received then
    store.append(entries(ANN, order(ANN, 8), at=NOW - timedelta(hours=40)))  # untimed, before the window
    store.append(entries(BOB, order(BOB, 0, hours_ago=1)))
    found, complete = log.ledger_since(ANN, NOW - timedelta(hours=30), 10)
    assert [e.message_id for e in found] == ["ann-9", "ann-4", "ann-2"] and complete
    assert found[1].timestamp == NOW - timedelta(hours=8) and found[1].changes
    assert log.ledger_since(ANN, NOW - timedelta(hours=40), 10)[0][-1].message_id == "ann-8", "from on"


def test_a_window_with_more_than_the_limit_is_cut_to_the_newest_and_says_so(ports):  # noqa: F811
    store, log = ports
    store.append(entries(ANN, *[order(ANN, n, hours_ago=30 - n) for n in range(6)]))
    found, complete = log.ledger_since(ANN, NOW - timedelta(days=2), 4)
    assert [e.message_id for e in found] == ["ann-5", "ann-4", "ann-3", "ann-2"] and not complete
    assert log.ledger_since(ANN, NOW - timedelta(days=2), 6)[1], "exactly the limit: all of them"
    assert log.ledger_since(BOB, NOW - timedelta(days=2), 4) == ([], True)

"""Building what the ports take: validated calls, the changes and log entries recording would plan from
them, and changes placed in the stream as the aggregation places them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from shared.contacts.changes import ContactChange, plan_change
from shared.contacts.identity import ContactId
from shared.scoring.decay import Decay
from shared.scoring.engine import ScoringContext
from shared.scoring.rules import StoredRule
from shared.tracking.messages import TrackedEvent, parse_calls
from shared.tracking.wire import Limits
from shared.usecases.recording import NewEntry
from tests.fakes import StaticRules

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DECAY = Decay()


def calls(*batch: dict[str, Any], at: datetime = NOW) -> list[TrackedEvent]:
    return parse_calls("/v1/batch", {"batch": list(batch)}, received_at=at, limits=Limits())


def change(
    contact: ContactId, *batch: dict[str, Any], rules: Sequence[StoredRule] | None = None, at: datetime = NOW
) -> ContactChange:
    """What recording would plan for these calls of one contact, scored by the shipped rules or these."""
    return planned(contact, calls(*batch, at=at), rules)


def planned(
    contact: ContactId, events: Sequence[TrackedEvent], rules: Sequence[StoredRule] | None = None
) -> ContactChange:
    book = (StaticRules() if rules is None else StaticRules(list(rules))).book()
    return plan_change(contact, events, ScoringContext(book, DECAY))


def entries(
    contact: ContactId, *batch: dict[str, Any], rules: Sequence[StoredRule] | None = None, at: datetime = NOW
) -> list[NewEntry]:
    """What recording appends to the log for these calls of one contact: each with its predicted ledger."""
    planned_change = change(contact, *batch, rules=rules, at=at)
    return [
        NewEntry(contact, e, planned_change.scored.ledger.get(e.message_id, ()))
        for e in planned_change.events
    ]


def positioned(
    change: ContactChange, first: int, last: int | None = None, origin: ContactId | None = None
) -> ContactChange:
    """The change as the aggregation commits it: its events' stream positions, and the contact they were
    recorded for when that one was merged away (positions: text in stream order)."""
    return replace(
        change,
        first_position=position(first),
        last_position=position(first if last is None else last),
        origin=origin,
    )


def position(n: int) -> str:
    return f"{n:040d}"

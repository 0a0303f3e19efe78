"""Building what the ports take: validated calls, and the changes recording would plan from them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from shared.contacts.changes import ContactChange, plan_change
from shared.contacts.identity import ContactId
from shared.scoring.decay import Decay
from shared.scoring.engine import ScoringContext
from shared.scoring.rules import StoredRule
from shared.tracking.messages import TrackedEvent, parse_calls
from shared.tracking.wire import Limits
from tests.fakes import StaticRules

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DECAY = Decay()


def calls(*batch: dict[str, Any], at: datetime = NOW) -> list[TrackedEvent]:
    return parse_calls("/v1/batch", {"batch": list(batch)}, received_at=at, limits=Limits())


def change(
    contact: ContactId, *batch: dict[str, Any], rules: Sequence[StoredRule] | None = None, at: datetime = NOW
) -> ContactChange:
    """What recording would commit for these calls of one contact, scored by the shipped rules or these."""
    book = (StaticRules() if rules is None else StaticRules(list(rules))).book()
    return plan_change(contact, calls(*batch, at=at), ScoringContext(book, DECAY))

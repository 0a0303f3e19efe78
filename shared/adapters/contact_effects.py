"""What an automation's run does to the contact itself: tags on the profile, points through the log.

Tags are one conditional update of the profile (``lastWriter = automation``: the stage function's
trigger passes only tracking writes). Points are one entry in the contact's event log, keyed by the run
(``shared.automations.awards``): the aggregation folds it into the scores with its ledger, as it folds a
tracked call, so merges, re-routes and replays are handled as they are for calls, and the contact's
ledger shows the automation as the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from shared.adapters.contact_items import TAG, Retention, profile_key
from shared.adapters.dynamodb import error_code, failure, retried, s
from shared.adapters.event_log import DynamoEventLog
from shared.adapters.expressions import Expression
from shared.automations.awards import award_event, award_ledger
from shared.automations.engine import Plan
from shared.contacts.identity import ContactId
from shared.tracking.timestamps import format_time
from shared.usecases.recording import NewEntry

STORE = "the contact store"
WRITER = "automation"


class DynamoContactEffects:
    """``ContactEffects`` on the contacts and events tables."""

    def __init__(self, client: Any, *, contacts_table: str, events_table: str, retention: Retention) -> None:
        self._db = client
        self._contacts = contacts_table
        self._log = DynamoEventLog(client, events_table=events_table, retention=retention)

    def tag(self, contact: ContactId, added: Sequence[str], removed: Sequence[str], at: datetime) -> None:
        """Tags added (keeping the time a tag was first added) and removed; a missing profile: nothing."""
        if not added and not removed:
            return
        x = Expression()
        for tag in added:
            x.set_if_absent(TAG + tag, s(format_time(at)))
        for tag in removed:
            if tag not in added:
                x.remove(TAG + tag)
        x.set("lastWriter", s(WRITER))
        request = x.update(self._contacts, profile_key(contact), f"attribute_exists({x.name('pk')})")
        try:
            retried(lambda: self._db.update_item(**request), STORE)
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise failure(exc, STORE) from exc

    def award(self, contact: ContactId, run: Plan, at: datetime) -> None:
        """The run's points as one entry of the contact's log (once: a retry finds it there)."""
        ledger = award_ledger(run)
        if ledger:
            self._log.append([NewEntry(contact, award_event(run, at), ledger)])

"""Reading a contact's event log and score ledger, newest first, a page at a time (admin path)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from shared.adapters.contact_items import EVENT_PREFIX, TIMED_PREFIX, partition, stated_time_of, stored_event
from shared.adapters.dynamodb import failure
from shared.contacts.identity import ContactId
from shared.contacts.views import EventPage, EventView, LedgerEntry, LedgerPage
from shared.errors import InvalidRequest
from shared.tracking.timestamps import format_time

#: Above every timed key (``E#<time>#<id>``): ``$`` sorts right after ``#``.
_TIMED_END = "E$"
#: How far before a window the timed keys are read: a key holds the time the call stated
KEY_TIME_MARGIN = timedelta(days=1)


class DynamoContactLog:
    """A contact's log is its partition of the events table, in key order: calls that carry their own
    time by that time (the key), the rare calls without one (``M#``) placed by their arrival time."""

    def __init__(self, client: Any, *, events_table: str) -> None:
        self._db = client
        self._events = events_table

    def events(self, contact: ContactId, limit: int, before: str | None = None) -> EventPage:
        items, cursor = self._page(contact, limit, before, scored=False)
        return EventPage(events=[EventView.of(stored_event(item)) for item in items], next_cursor=cursor)

    def ledger(self, contact: ContactId, limit: int, before: str | None = None) -> LedgerPage:
        items, cursor = self._page(contact, limit, before, scored=True)
        return LedgerPage(entries=[LedgerEntry.of(stored_event(item)) for item in items], next_cursor=cursor)

    def ledger_since(self, contact: ContactId, since: datetime, limit: int) -> tuple[list[LedgerEntry], bool]:
        """The window's scored events: one range read of the timed calls from a day before ``since`` (a
        call's key holds the time it stated, which a skewed clock may put off its corrected time), up to
        ``limit`` + 1 of them, and the untimed ones (read whole, as for a page); then by their time."""
        lower = f"{TIMED_PREFIX}{format_time(since - KEY_TIME_MARGIN)}"
        values = {":lower": {"S": lower}, ":upper": {"S": _TIMED_END}}
        timed, more = self._query(contact, "sk BETWEEN :lower AND :upper", values, limit + 1, True)
        untimed, _ = self._query(contact, "begins_with(sk, :m)", {":m": {"S": EVENT_PREFIX}}, None, True)
        found = [e for e in map(stored_event, [*timed, *untimed]) if e.timestamp >= since]
        found.sort(key=lambda e: (e.timestamp, e.message_id), reverse=True)
        return [LedgerEntry.of(e) for e in found[:limit]], not more and len(found) <= limit

    def _page(
        self, contact: ContactId, limit: int, before: str | None, *, scored: bool
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page, newest first, and the cursor to the next: the newest ``limit`` of the timed calls
        before the cursor (one range read) and of the untimed ones (read whole: raw HTTP callers only)."""
        position = _decode_cursor(before, contact) if before else None
        upper = _TIMED_END
        if position is not None:
            time, key = position
            upper = key if key.startswith(TIMED_PREFIX) else f"{TIMED_PREFIX}{time}#\uffff"
        timed, more = self._query(contact, "sk < :upper", {":upper": {"S": upper}}, limit, scored)
        untimed, _ = self._query(contact, "begins_with(sk, :m)", {":m": {"S": EVENT_PREFIX}}, None, scored)
        candidates = sorted(
            (item for item in [*timed, *untimed] if position is None or _position(item) < position),
            key=_position,
            reverse=True,
        )
        page = candidates[:limit]
        more = more or len(candidates) > limit
        return page, _encode_cursor(contact, _position(page[-1])) if page and more else None

    def _query(
        self, contact: ContactId, condition: str, values: dict[str, Any], limit: int | None, scored: bool
    ) -> tuple[list[dict[str, Any]], bool]:
        """Items of the contact's partition on a key condition, newest key first, up to ``limit``."""
        request: dict[str, Any] = {
            "TableName": self._events,
            "KeyConditionExpression": f"pk = :pk AND {condition}",
            "ExpressionAttributeValues": {":pk": partition(contact), **values},
            "ScanIndexForward": False,
        }
        if scored:
            request["FilterExpression"] = "attribute_exists(ledger)"
        found: list[dict[str, Any]] = []
        while True:
            if limit is not None:
                request["Limit"] = max(limit - len(found), 1) if not scored else 100
            try:
                page = self._db.query(**request)
            except Exception as exc:
                raise failure(exc, "the event log") from exc
            found += page.get("Items", [])
            last = page.get("LastEvaluatedKey")
            if limit is not None and len(found) >= limit:
                return found[:limit], bool(last) or len(found) > limit
            if not last:
                return found, False
            request["ExclusiveStartKey"] = last


def _position(item: Mapping[str, Any]) -> tuple[str, str]:
    """Where an item sits in the log: (its time, its key). A timed key's time is the call's own."""
    key = item["sk"]["S"]
    return stated_time_of(key) or item["timestamp"]["S"], key


def _encode_cursor(contact: ContactId, position: tuple[str, str]) -> str:
    """The contact and the last item's position: a cursor is refused for any other contact."""
    cursor = [str(contact), *position]
    return base64.urlsafe_b64encode(json.dumps(cursor, separators=(",", ":")).encode()).decode()


def _decode_cursor(cursor: str, contact: ContactId) -> tuple[str, str]:
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        valid = (
            isinstance(position, list)
            and len(position) == 3
            and all(isinstance(p, str) for p in position)
            and position[0] == str(contact)
            and position[2].startswith((TIMED_PREFIX, EVENT_PREFIX))
        )
    except (ValueError, binascii.Error):
        valid = False
    if not valid:
        raise InvalidRequest("cursor is not valid for this contact", code="invalid_cursor")
    return position[1], position[2]

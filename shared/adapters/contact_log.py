"""Reading a contact's event log and score ledger, newest first, a page at a time (admin path)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from shared.adapters.contact_items import partition, stored_event
from shared.adapters.dynamodb import failure
from shared.adapters.tables import EVENTS
from shared.contacts.identity import ContactId
from shared.contacts.views import EventPage, EventView, LedgerEntry, LedgerPage
from shared.errors import InvalidRequest

BY_TIME, BY_SCORE = (index.name for index in EVENTS.local_indexes)


class DynamoContactLog:
    def __init__(self, client: Any, *, events_table: str) -> None:
        self._db = client
        self._events = events_table

    def events(self, contact: ContactId, limit: int, before: str | None = None) -> EventPage:
        items, cursor = self._page(BY_TIME, "at", contact, limit, before)
        return EventPage(events=[EventView.of(stored_event(item)) for item in items], next_cursor=cursor)

    def ledger(self, contact: ContactId, limit: int, before: str | None = None) -> LedgerPage:
        items, cursor = self._page(BY_SCORE, "scoredAt", contact, limit, before)
        return LedgerPage(entries=[LedgerEntry.of(stored_event(item)) for item in items], next_cursor=cursor)

    def _page(
        self, index: str, index_key: str, contact: ContactId, limit: int, before: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of a contact's items on a local index, newest first, and the cursor to the next."""
        request: dict[str, Any] = {
            "TableName": self._events,
            "IndexName": index,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": partition(contact)},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if before:
            request["ExclusiveStartKey"] = _decode_cursor(before, contact, index_key)
        try:
            page = self._db.query(**request)
        except Exception as exc:
            raise failure(exc, "the event log") from exc
        last = page.get("LastEvaluatedKey")
        return page.get("Items", []), _encode_cursor(last) if last else None


def _encode_cursor(key: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def _decode_cursor(cursor: str, contact: ContactId, index_key: str) -> dict[str, Any]:
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        valid = (
            isinstance(key, dict) and key.get("pk") == partition(contact) and {"sk", index_key} <= key.keys()
        )
    except (ValueError, binascii.Error):
        valid = False
    if not valid:
        raise InvalidRequest("cursor is not valid for this contact", code="invalid_cursor")
    return key

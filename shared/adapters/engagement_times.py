"""When a contact engages: the stated times of their most recent events, from the keys of their log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.adapters.contact_items import TIMED_PREFIX, partition, stated_time_of
from shared.adapters.dynamodb import failure, retried, s
from shared.contacts.identity import ContactId
from shared.tracking.timestamps import parse_time

STORE = "the event log"


class DynamoEngagementTimes:
    def __init__(self, client: Any, *, events_table: str) -> None:
        self._db = client
        self._table = events_table

    def recent_times(self, contact_id: str, limit: int) -> list[datetime]:
        """One Query of the keys alone, newest first: ``E#<stated time>#<messageId>`` keys only (a call
        without its own time, ``M#``, has no time in its key; an automation's points are such)."""
        if limit < 1:
            return []
        try:
            page = retried(
                lambda: self._db.query(
                    TableName=self._table,
                    KeyConditionExpression="pk = :pk AND begins_with(sk, :timed)",
                    ExpressionAttributeValues={
                        ":pk": partition(ContactId.parse(contact_id)),
                        ":timed": s(TIMED_PREFIX),
                    },
                    ProjectionExpression="sk",
                    ScanIndexForward=False,
                    Limit=limit,
                ),
                STORE,
            )
        except Exception as exc:
            raise failure(exc, STORE) from exc
        times = (stated_time_of(item["sk"]["S"]) for item in page.get("Items", []))
        return [parse_time(stated) for stated in times if stated]

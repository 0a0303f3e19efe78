"""The stage history, a parallel Scan segment of the contacts table at a time: the metrics back-fill.

The stage function keeps every stage move (``ContactStageChanged``) and every removal from the funnel
(``ContactRemoved``) in the contact's partition under ``STAGE#<seq>#<n>`` (``shared.adapters.stage_store``),
its ``type`` the detail type and ``output`` the announcement as published (with its ``detail_type``).
Items written there before issue 13 also hold the other announcements (segment, quarter, threshold, lead
routed): the filter leaves them out, by ``type``. Only ``output`` is projected (what the counting needs).

A filtered Scan is billed for every item it reads (profiles, events' copies, memberships...), not for
those it returns: each page says how many it read. The back-fill's step function is the only one granted
Scan on the contacts table for this (``infra.wiring.BACKFILL_SCANS``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from pydantic import TypeAdapter, ValidationError

from shared.adapters.dynamodb import s, scan_pages
from shared.adapters.stage_store import HISTORY
from shared.engagement.events import ContactRemoved, ContactStageChanged
from shared.usecases.backfills import HistoryEntry, HistoryPage

WHAT = "the contact store"
#: the detail types the lifecycle metrics count (``shared.adapters.stage_store.KEPT``)
COUNTED = (
    ContactStageChanged.model_fields["detail_type"].default,
    ContactRemoved.model_fields["detail_type"].default,
)
_ENTRY: TypeAdapter[ContactStageChanged | ContactRemoved] = TypeAdapter(HistoryEntry)


class DynamoStageHistoryScan:
    def __init__(self, client: Any, *, contacts_table: str, page_size: int | None = None) -> None:
        self._db = client
        self._table = contacts_table
        #: items read per page (None: DynamoDB's 1 MB pages)
        self._page_size = page_size

    def scan(self, segment: int, segments: int) -> Iterator[HistoryPage]:
        request: dict[str, Any] = {
            "TableName": self._table,
            "Segment": segment,
            "TotalSegments": segments,
            "FilterExpression": "begins_with(#sk, :history) AND #type IN (:moved, :removed)",
            "ProjectionExpression": "#output",
            "ExpressionAttributeNames": {"#sk": "sk", "#type": "type", "#output": "output"},
            "ExpressionAttributeValues": {
                ":history": s(HISTORY),
                ":moved": s(COUNTED[0]),
                ":removed": s(COUNTED[1]),
            },
        }
        for items, read in scan_pages(self._db, request, WHAT, self._page_size):
            entries = [e for e in map(history_entry, items) if e is not None]
            yield HistoryPage(entries=entries, read=read, unreadable=len(items) - len(entries))


def history_entry(item: dict[str, Any]) -> ContactStageChanged | ContactRemoved | None:
    """The stage move or removal a history item holds (its ``output``); ``None`` if it does not parse."""
    try:
        return _ENTRY.validate_python(json.loads(item["output"]["S"]))
    except (KeyError, TypeError, ValueError, ValidationError):
        return None

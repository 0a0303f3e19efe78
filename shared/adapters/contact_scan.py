"""The contacts table's profiles, a parallel Scan segment at a time: the contacts back-fill's read.

The only Scan of the contacts table, granted to the back-fill's step function alone (``infra.wiring``):
a whole-population pass run on demand on the workflow engine, never on a request or timer path. The
filter keeps profiles (``sk = PROFILE``); DynamoDB still reads, and bills, the contacts' other items
(history, runs, timers, the send ledger), which ``read`` counts. Pages are DynamoDB's (1 MB), each handed
on as it is read, so a segment is never held whole.

Issue 14: the filter also keeps the contacts' ``SEARCH`` items (small), so the back-fill knows which
contacts have search terms stored without a request of its own: a partition's items come in key order,
``SEARCH`` after ``PROFILE``, in the same page but when a page ends between them (the back-fill's write is
then refused by its condition: one request, nothing written).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from shared.adapters.contact_items import PROFILE, record_from_item
from shared.adapters.contact_search import STATE as SEARCH_STATE
from shared.adapters.dynamodb import scan_pages
from shared.usecases.backfills import ProfilePage

WHAT = "the contacts table"


class DynamoProfileScan:
    def __init__(self, client: Any, *, contacts_table: str, page_size: int | None = None) -> None:
        self._db = client
        self._table = contacts_table
        #: items read per page (None: DynamoDB's 1 MB pages)
        self._page_size = page_size

    def scan(self, segment: int, segments: int) -> Iterator[ProfilePage]:
        request: dict[str, Any] = {
            "TableName": self._table,
            "Segment": segment,
            "TotalSegments": segments,
            "FilterExpression": "#sk IN (:profile, :search)",
            "ExpressionAttributeNames": {"#sk": "sk"},
            "ExpressionAttributeValues": {":profile": {"S": PROFILE}, ":search": {"S": SEARCH_STATE}},
        }
        for items, read in scan_pages(self._db, request, WHAT, self._page_size):
            yield ProfilePage(
                profiles=[record_from_item(item) for item in items if item["sk"]["S"] == PROFILE],
                read=read,
                indexed=frozenset(
                    item["pk"]["S"].removeprefix("C#") for item in items if item["sk"]["S"] == SEARCH_STATE
                ),
            )

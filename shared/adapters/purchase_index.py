"""The purchase index (``byPurchase`` on the events table): a parallel Scan segment of it.

The index is sparse, so a Scan reads purchases only, and projects just what the nightly pass needs: the
contact (the partition key), the time, the revenue and the basket. It is the one whole-population read
of the system, made once a night by the extract step, segment by segment, page by page (each page handed
on as it is read, so a segment is never held whole as items).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from shared.adapters.contact_items import BASKET, BY_PURCHASE, PURCHASED_AT, scanned_purchases
from shared.adapters.dynamodb import scan_pages
from shared.usecases.analytics import ScannedPage

WHAT = "the purchase index"


class DynamoPurchaseScan:
    def __init__(self, client: Any, *, events_table: str, page_size: int | None = None) -> None:
        self._db = client
        self._table = events_table
        #: items per page (None: DynamoDB's 1 MB pages)
        self._page_size = page_size

    def scan(self, segment: int, segments: int) -> Iterator[ScannedPage]:
        """The segment's pages, each validated as it is read (the next is read when asked for)."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": BY_PURCHASE.name,
            "Segment": segment,
            "TotalSegments": segments,
            "ProjectionExpression": "#k, #t, #r, #b",
            "ExpressionAttributeNames": {"#k": "pk", "#t": PURCHASED_AT, "#r": "revenue", "#b": BASKET},
        }
        for items, read in scan_pages(self._db, request, WHAT, self._page_size):
            yield ScannedPage(purchases=scanned_purchases(items), read=read)

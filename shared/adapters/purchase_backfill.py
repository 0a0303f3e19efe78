"""Purchases the purchase index lacks, a parallel Scan segment of the event log at a time, and the
conditional update that puts each in it: the purchases back-fill.

Purchases stored before the ``byPurchase`` index existed carry no ``purchasedAt``, so the index (sparse:
only items with it) does not hold them. The scan reads the event log (the back-fill's step function is
the only one granted Scan on the table, ``infra.wiring``), keeps purchases without ``purchasedAt``
(``behaviour = purchase``), and projects what the index needs: the keys, the time and the body (the
basket is in the call's properties). The update writes them as tracking does for a new purchase
(``shared.adapters.contact_items.event_item``): ``purchasedAt`` is the event's time, ``basket`` its
(product, category) pairs when it names any; ``revenue`` is on every event that had one already. It is
conditional (the item is there and still lacks ``purchasedAt``), so a retried or concurrent run never
overwrites, and never brings back an item a merge moved or an erasure deleted. An update is a
``MODIFY`` on the events table's stream, which the aggregation and the automations do not read (they take
new events only).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from pydantic import ValidationError

from shared.adapters.contact_items import BASKET, PURCHASED_AT
from shared.adapters.dynamodb import error_code, failure, js, retried, s, scan_pages
from shared.tracking.baskets import Basket
from shared.tracking.behaviours import Behaviour
from shared.tracking.stored import expanded
from shared.tracking.timestamps import format_time
from shared.usecases.backfills import UnindexedPage, UnindexedPurchase

WHAT = "the event log"


class DynamoUnindexedPurchases:
    def __init__(self, client: Any, *, events_table: str, page_size: int | None = None) -> None:
        self._db = client
        self._table = events_table
        #: items read per page (None: DynamoDB's 1 MB pages)
        self._page_size = page_size

    def scan(self, segment: int, segments: int) -> Iterator[UnindexedPage]:
        request: dict[str, Any] = {
            "TableName": self._table,
            "Segment": segment,
            "TotalSegments": segments,
            "FilterExpression": "#behaviour = :purchase AND attribute_not_exists(#at)",
            "ProjectionExpression": "#pk, #sk, #time, #body",
            "ExpressionAttributeNames": {
                "#behaviour": "behaviour",
                "#at": PURCHASED_AT,
                "#pk": "pk",
                "#sk": "sk",
                "#time": "timestamp",
                "#body": "body",
            },
            "ExpressionAttributeValues": {":purchase": s(Behaviour.PURCHASE.value)},
        }
        for items, read in scan_pages(self._db, request, WHAT, self._page_size):
            purchases = [p for p in map(_purchase, items) if p is not None]
            yield UnindexedPage(purchases=purchases, read=read, unreadable=len(items) - len(purchases))

    def index(self, purchase: UnindexedPurchase, bought: Basket) -> bool:
        names = {"#pk": "pk", "#at": PURCHASED_AT, "#behaviour": "behaviour"}
        values: dict[str, Any] = {
            ":at": s(format_time(purchase.timestamp)),
            ":purchase": s(Behaviour.PURCHASE.value),
        }
        update = "SET #at = :at"
        if bought:
            names["#basket"] = BASKET
            values[":basket"] = js(bought)
            update += ", #basket = :basket"
        request = {
            "TableName": self._table,
            "Key": {"pk": s(purchase.partition), "sk": s(purchase.key)},
            "UpdateExpression": update,
            "ConditionExpression": "attribute_exists(#pk) AND attribute_not_exists(#at) AND #behaviour = :purchase",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        try:
            retried(lambda: self._db.update_item(**request), WHAT)
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False  # indexed meanwhile (another run), or moved or erased: left as it is
            raise failure(exc, WHAT) from exc
        return True


def _purchase(item: dict[str, Any]) -> UnindexedPurchase | None:
    """The purchase an item holds; ``None`` without a readable time (a body that is not a call only
    leaves the basket out)."""
    try:
        body = json.loads(item["body"]["S"])
        properties = expanded(body).get("properties") if isinstance(body, dict) else None
    except (KeyError, TypeError, ValueError):
        properties = None
    try:
        return UnindexedPurchase(
            partition=item["pk"]["S"],
            key=item["sk"]["S"],
            timestamp=item["timestamp"]["S"],
            properties=properties if isinstance(properties, dict) else {},
        )
    except (KeyError, TypeError, ValidationError):
        return None

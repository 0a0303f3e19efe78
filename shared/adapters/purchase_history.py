"""What a contact bought (issue 15, ``shared.usecases.recommendations.PurchaseHistory``): one Query of the
events table's sparse purchase index (``byPurchase``: partition the contact's, sort ``purchasedAt``),
newest first, projecting the basket alone.

Bounded: ``Limit`` purchases (``MAX_PURCHASES``, 500) and one page (DynamoDB's 1 MB), whatever the
contact's history, so serving stays O(1) requests. The index is eventually consistent: a purchase made a
moment ago may be missing, but the profile's recent products name it already.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import TypeAdapter

from shared.adapters.contact_items import BASKET, BY_PURCHASE, partition
from shared.adapters.dynamodb import failure, retried
from shared.contacts.identity import ContactId
from shared.usecases.recommendations import MAX_PURCHASES

STORE = "the purchase index"
#: a stored basket: ``[[product, category], ...]``, either may be null (``shared.tracking.baskets``)
_BASKET = TypeAdapter(list[tuple[str | None, str | None]])


class DynamoPurchaseHistory:
    def __init__(self, client: Any, *, events_table: str) -> None:
        self._db = client
        self._table = events_table

    def bought(self, contact: ContactId, limit: int = MAX_PURCHASES) -> frozenset[str]:
        if limit < 1:
            return frozenset()
        request = {
            "TableName": self._table,
            "IndexName": BY_PURCHASE.name,
            "KeyConditionExpression": "#k = :pk",
            "ExpressionAttributeNames": {"#k": "pk", "#b": BASKET},
            "ExpressionAttributeValues": {":pk": partition(contact)},
            "ProjectionExpression": "#b",
            "ScanIndexForward": False,
            "Limit": limit,
        }
        try:
            page = retried(lambda: self._db.query(**request), STORE)
        except Exception as exc:
            raise failure(exc, STORE) from exc
        products: set[str] = set()
        for item in page.get("Items", []):
            stored = item.get(BASKET)
            if stored:
                products.update(p for p, _ in _BASKET.validate_python(json.loads(stored["S"])) if p)
        return frozenset(products)

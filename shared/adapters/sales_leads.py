"""A salesperson's leads, read from the contacts table's look-up index (issue 14: the console's sales view).

Routing a lead (``shared.adapters.stage_store``) sets, on the profile item beside ``owner`` and
``routedAt``, the ``byLookup`` keys ``lookupKey`` ``OWNER#<salesperson>`` and ``lookupSort``
``<routed at>#<contact>``; a new routing replaces them, a merge takes them off the contact merged away
(``shared.adapters.contact_merges``), erasure deletes the item. The index is sparse (only routed
profiles and the search terms carry its keys) and keys-only: a page is one Query of the salesperson's
most recently routed leads and one BatchGetItem of their profiles (a retry for any unprocessed keys).
The index is eventually consistent: a profile read that shows another owner (re-routed a moment ago) is
left out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.adapters.contact_items import record_from_item
from shared.adapters.dynamodb import failure, retried, s, unavailable
from shared.contacts.identity import ContactId
from shared.contacts.model import ContactRecord
from shared.tracking.timestamps import format_time

#: the overloaded look-up index's key attributes (``shared.adapters.tables.CONTACTS``)
LOOKUP_INDEX = "byLookup"
LOOKUP_KEY = "lookupKey"
LOOKUP_SORT = "lookupSort"
OWNER_PREFIX = "OWNER#"
STORE = "the contact store"
#: BatchGetItem reads at most this many keys at once
BATCH_KEYS = 100


def owner_lookup_key(salesperson_id: str) -> str:
    return f"{OWNER_PREFIX}{salesperson_id}"


def owner_lookup_sort(routed_at: datetime, contact: ContactId) -> str:
    """Sorts the salesperson's leads by when they were routed (then by contact): newest last."""
    return f"{format_time(routed_at)}#{contact}"


class DynamoSalesLeads:
    def __init__(
        self, client: Any, *, contacts_table: str, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._db = client
        self._table = contacts_table
        self._sleep = sleep

    def leads(self, salesperson_id: str, limit: int) -> list[ContactRecord]:
        """The ``limit`` leads most recently routed to the salesperson (newest first), as profiles."""
        request = {
            "TableName": self._table,
            "IndexName": LOOKUP_INDEX,
            "KeyConditionExpression": "#k = :k",
            "ExpressionAttributeNames": {"#k": LOOKUP_KEY},
            "ExpressionAttributeValues": {":k": s(owner_lookup_key(salesperson_id))},
            "ScanIndexForward": False,
            "Limit": min(limit, BATCH_KEYS),
        }
        try:
            found = retried(lambda: self._db.query(**request), STORE)["Items"]
        except Exception as exc:
            raise failure(exc, STORE) from exc
        keys = [{"pk": item["pk"], "sk": item["sk"]} for item in found]
        profiles = {item["pk"]["S"]: record_from_item(item) for item in self._batch_get(keys)}
        records = [profiles[key["pk"]["S"]] for key in keys if key["pk"]["S"] in profiles]
        return [r for r in records if r.owner == salesperson_id and not r.merged_into]

    def _batch_get(self, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        wanted: dict[str, Any] = {self._table: {"Keys": keys}} if keys else {}
        for attempt in range(8):
            if not wanted:
                return items
            if attempt:
                self._sleep(min(0.05 * 2**attempt, 1.0))
            try:
                answer = retried(lambda wanted=wanted: self._db.batch_get_item(RequestItems=wanted), STORE)
            except Exception as exc:
                raise failure(exc, STORE) from exc
            items += answer.get("Responses", {}).get(self._table, [])
            wanted = answer.get("UnprocessedKeys") or {}
        raise unavailable(RuntimeError("BatchGetItem kept leaving keys unprocessed"), STORE)

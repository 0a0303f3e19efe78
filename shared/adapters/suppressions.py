"""The suppression list in the contacts table: one item per suppressed address, keyed by its hash.

``pk`` ``SUPPRESSED#<channel>#<sha256 of the normalised address>``, ``sk`` ``SUPPRESSED``, with the reason
and time. No address is stored, so an erasure leaves the list as it is (it keeps no PII) and a contact
who comes back with the same address stays suppressed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.adapters.dynamodb import failure, s
from shared.delivery.addresses import address_hash
from shared.delivery.requests import Channel
from shared.tracking.timestamps import format_time

PREFIX = "SUPPRESSED#"
SORT_KEY = "SUPPRESSED"


def suppression_key(channel: str, address: str) -> dict[str, Any]:
    return {"pk": s(f"{PREFIX}{channel}#{address_hash(channel, address)}"), "sk": s(SORT_KEY)}


class DynamoSuppressions:
    def __init__(self, client: Any, *, table: str) -> None:
        self._db = client
        self._table = table

    def suppressed(self, channel: Channel, address: str) -> str | None:
        try:
            item = self._db.get_item(
                TableName=self._table, Key=suppression_key(channel, address), ConsistentRead=True
            ).get("Item")
        except Exception as exc:
            raise failure(exc, "the suppression list") from exc
        return item["reason"]["S"] if item else None

    def suppress(self, channel: Channel, address: str, reason: str, at: datetime) -> None:
        """The first reason stays (a complaint after a bounce does not rewrite it); repeating is harmless."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key=suppression_key(channel, address),
                UpdateExpression="SET reason = if_not_exists(reason, :r), suppressedAt = if_not_exists(suppressedAt, :t)",
                ExpressionAttributeValues={":r": s(reason), ":t": s(format_time(at))},
            )
        except Exception as exc:
            raise failure(exc, "the suppression list") from exc

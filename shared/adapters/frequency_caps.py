"""Frequency caps on the rates table: one counter per contact, channel and window.

``pk`` ``cap:<channel>#<sha256 of the contact id>`` (no id in the clear), ``sk`` the window's key
(``d:2026-12-02``, ``w:2026-W49``), ``count``, and ``expiresAt`` (the table's TTL) a day after the window
ends. ``take`` counts one message in every window in ONE transaction of conditional adds (each under its
limit): all windows count it, or none does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from shared.adapters.dynamodb import n, s, transact_if
from shared.delivery.ports import CapWindow
from shared.delivery.requests import Channel

STORE = "the frequency caps"
#: a window's counter outlives its end by this much (the TTL deletes it within a day or two after)
KEEP_AFTER = timedelta(days=1)


def cap_partition(contact_id: str, channel: str) -> str:
    return f"cap:{channel}#{hashlib.sha256(contact_id.encode()).hexdigest()}"


class DynamoFrequencyCaps:
    def __init__(self, client: Any, *, table: str) -> None:
        self._db = client
        self._table = table

    def take(self, contact_id: str, channel: Channel, windows: Sequence[CapWindow], now: datetime) -> bool:
        """Conflicts and throttles are retried (``transact``); a window at its limit cancels the whole
        transaction: False, nothing counted."""
        if not windows:
            return True
        pk = cap_partition(contact_id, channel)
        items = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": {"pk": s(pk), "sk": s(window.key)},
                    "UpdateExpression": "ADD #c :one SET expiresAt = :expires",
                    "ConditionExpression": "attribute_not_exists(#c) OR #c < :limit",
                    "ExpressionAttributeNames": {"#c": "count"},
                    "ExpressionAttributeValues": {
                        ":one": n(1),
                        ":limit": n(window.limit),
                        ":expires": n(int((window.ends + KEEP_AFTER).timestamp())),
                    },
                }
            }
            for window in windows
        ]
        return transact_if(self._db, items, STORE)

"""The sending pause in the config table (``DELIVERY`` / ``PAUSE``): set by the reputation alarms through
the feedback function, cleared by an administrator; read by delivery before each marketing send, cached
for ``cache_seconds``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from shared.adapters.dynamodb import failure, s
from shared.adapters.expiring import Expiring
from shared.delivery.ports import SendingPause
from shared.tracking.timestamps import format_time

PAUSE_KEY = {"pk": s("DELIVERY"), "sk": s("PAUSE")}


class DynamoDeliveryControl:
    def __init__(
        self,
        client: Any,
        *,
        table: str,
        cache_seconds: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = client
        self._table = table
        self._cached = Expiring(cache_seconds, monotonic)

    def pause(self) -> SendingPause | None:
        return self._cached.get(self._load)

    def _load(self) -> SendingPause | None:
        try:
            item = self._db.get_item(TableName=self._table, Key=PAUSE_KEY, ConsistentRead=True).get("Item")
        except Exception as exc:
            raise failure(exc, "the sending pause") from exc
        if not item or "reason" not in item:
            return None
        return SendingPause(reason=item["reason"]["S"], at=item["at"]["S"])

    def set_pause(self, pause: SendingPause | None) -> None:
        try:
            if pause is None:
                self._db.delete_item(TableName=self._table, Key=PAUSE_KEY)
            else:
                self._db.put_item(
                    TableName=self._table,
                    Item={**PAUSE_KEY, "reason": s(pause.reason), "at": s(format_time(pause.at))},
                )
        except Exception as exc:
            raise failure(exc, "the sending pause") from exc
        self._cached.clear()

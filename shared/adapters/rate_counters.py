"""Rate-limit counters on DynamoDB: one atomic ``ADD`` per flush, answering the new total."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from shared.adapters.dynamodb import n as number
from shared.adapters.dynamodb import plain_item, s, unavailable
from shared.errors import DependencyUnavailable


class CounterTotal(BaseModel):
    """What ``UpdateItem`` returns of a counter (``UPDATED_NEW``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    count: int


class DynamoRateCounters:
    def __init__(self, client: Any, *, table: str) -> None:
        self._db = client
        self._table = table

    def add(self, scope: str, id: str, window: int, n: int, expires_at: int) -> int:
        try:
            answer = self._db.update_item(
                TableName=self._table,
                Key={"pk": s(f"{scope}#{id}"), "sk": s(str(window))},
                UpdateExpression="ADD #count :n SET expiresAt = :expires",
                ExpressionAttributeNames={"#count": "count"},
                ExpressionAttributeValues={":n": number(n), ":expires": number(expires_at)},
                ReturnValues="UPDATED_NEW",
            )
            return CounterTotal.model_validate(plain_item(answer["Attributes"])).count
        except DependencyUnavailable:
            raise
        except Exception as exc:
            # any failure (throttled, unreachable, refused): the limiter admits the request; the log
            # names the error's kind only, never the counter (an address's hash is still a trace)
            raise unavailable(exc, "the rate counters") from exc

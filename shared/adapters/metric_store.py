"""The lifecycle counters on the metrics table (``shared.usecases.metrics.MetricStore``).

Layout (``shared.adapters.tables.METRICS``):

- counters: pk ``<COUNTER>#<shard>`` (``STAGES``, ``REVENUE``, ``CUSTOMERS``, ``COHORTS``, ``NPS``), sk the row's key
  (``D#2026-11-23``, ``W#2026-W48``, ``M#2026-11``, a cohort's ``2026-11``), one number attribute per
  counted thing (``in:lead``, ``h:lead:4``, ``stage:customer``, ``new``, ``m2``...). Every stage move of
  the whole population adds to the same day's row: each row is spread over ``shards`` items (partitions),
  a write adding to one of them; a read queries every shard and sums.
- markers: pk ``SEEN#<hash of what was counted>``, sk ``SEEN``, expiring after ``marker_days`` (a stage
  history entry's: kept, ``keep``).
- customers' facts: pk ``CUSTOMER#<hash of the contact>``, sk ``FIRST`` (the first purchase's day) or a
  period marker (``D#...``, ``W#...``, ``M#...``), the markers expiring when no later period looks back.

A write is one transaction: the marker put if absent, the customer's claims put if absent, the adds. A
marker found means counted before (``False``); a claim found, ``ClaimTaken``. Two writes to the same shard
item at once cancel one of them (``TransactionConflict``): it is tried again on another shard, after a
pause, so the hot rows never hold up a writer for long.
"""

from __future__ import annotations

import hashlib
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from shared.adapters.dynamodb import (
    ATTEMPTS,
    RETRYABLE_REASONS,
    backoff,
    cancellation_codes,
    failure,
    is_transient,
    n,
    plain,
    query_all,
    s,
    unavailable,
)
from shared.adapters.expressions import Expression
from shared.errors import DependencyUnavailable
from shared.metrics.counters import FIRST, Add, Claim, Counter, CounterRow, CustomerFacts
from shared.usecases.metrics import ClaimTaken

#: Items each counter row is spread over: 8 shards take 8 times the writes one item takes.
SHARDS = 8
PARTITIONS: Mapping[Counter, str] = {
    "stages": "STAGES",
    "revenue": "REVENUE",
    "customers": "CUSTOMERS",
    "cohorts": "COHORTS",
    # issue 15: the net promoter score's answers and surveys sent
    "nps": "NPS",
}
#: How long a counted event's marker is kept: far beyond the stream's 24 hours and the bus's retries.
MARKER_DAYS = 30
WHAT = "the metrics store"


def hashed(text: str) -> str:
    """What the table names contacts and events by: no personal data in the metrics."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class DynamoMetricStore:
    def __init__(
        self,
        client: Any,
        *,
        table: str,
        shards: int = SHARDS,
        marker_days: int = MARKER_DAYS,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._db = client
        self._table = table
        self._shards = shards
        self._marker_days = marker_days
        self._clock = clock
        self._sleep = sleep

    # --- writing ----------------------------------------------------------------------------------------

    def record(
        self,
        marker: str,
        adds: Sequence[Add],
        claims: Sequence[Claim] = (),
        customer: str | None = None,
        *,
        keep: bool = False,
    ) -> bool:
        if claims and customer is None:
            raise ValueError("claims belong to a customer")
        seen = hashed(marker)
        for attempt in backoff(ATTEMPTS + 2, self._sleep):
            shard = zlib.crc32(f"{seen}#{attempt}".encode()) % self._shards
            items = self._items(seen, adds, claims, customer, shard, keep)
            try:
                self._db.transact_write_items(TransactItems=items)
                return True
            except Exception as exc:
                codes = cancellation_codes(exc)
                if codes is None:
                    if is_transient(exc):
                        continue
                    raise failure(exc, WHAT) from exc
                if codes[0] == "ConditionalCheckFailed":
                    return False  # counted before
                if "ConditionalCheckFailed" in codes:
                    raise ClaimTaken() from exc
                reasons = set(codes) - {"None", None}
                if reasons and reasons <= RETRYABLE_REASONS:
                    continue  # a concurrent write to the same shard item: another shard, after a pause
                raise failure(exc, WHAT) from exc
        raise DependencyUnavailable(f"{WHAT} is busy; retry")

    def _items(
        self,
        seen: str,
        adds: Sequence[Add],
        claims: Sequence[Claim],
        customer: str | None,
        shard: int,
        keep: bool = False,
    ) -> list[dict[str, Any]]:
        absent = "attribute_not_exists(pk)"
        mark: dict[str, Any] = {"pk": s(f"SEEN#{seen}"), "sk": s("SEEN")}
        if not keep:
            mark["expiresAt"] = n(int(self._clock()) + self._marker_days * 86400)
        items: list[dict[str, Any]] = [
            {"Put": {"TableName": self._table, "Item": mark, "ConditionExpression": absent}}
        ]
        for claim in claims:
            item = {"pk": s(f"CUSTOMER#{hashed(customer or '')}"), "sk": s(claim.key)}
            if claim.value:
                item["value"] = s(claim.value)
            if claim.expires is not None:
                item["expiresAt"] = n(int(claim.expires.timestamp()))
            items.append({"Put": {"TableName": self._table, "Item": item, "ConditionExpression": absent}})
        for add in adds:
            x = Expression()
            for name, value in sorted(add.values.items()):
                x.add(name, n(Decimal(value)))
            key = {"pk": s(f"{PARTITIONS[add.counter]}#{shard}"), "sk": s(add.key)}
            items.append({"Update": x.update(self._table, key)})
        return items

    # --- reading ----------------------------------------------------------------------------------------

    def customer(self, customer: str, keys: Sequence[str]) -> CustomerFacts:
        """One Query of the customer's few facts (its first purchase, the markers not yet expired)."""
        request = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": s(f"CUSTOMER#{hashed(customer)}")},
            "ConsistentRead": True,
        }
        found = {item["sk"]["S"]: item for item in query_all(self._db, request, WHAT)}
        first = found.get(FIRST, {}).get("value", {}).get("S")
        return CustomerFacts(
            first=date.fromisoformat(first) if first else None,
            claimed=frozenset(key for key in keys if key in found),
        )

    def rows(self, counter: Counter, first: str, last: str) -> list[CounterRow]:
        """One Query per shard (a page per MB), the shards' values summed per key."""
        totals: dict[str, dict[str, Decimal]] = {}
        for shard in range(self._shards):
            request = {
                "TableName": self._table,
                "KeyConditionExpression": "pk = :pk AND sk BETWEEN :first AND :last",
                "ExpressionAttributeValues": {
                    ":pk": s(f"{PARTITIONS[counter]}#{shard}"),
                    ":first": s(first),
                    ":last": s(last),
                },
            }
            try:
                items = query_all(self._db, request, WHAT)
            except DependencyUnavailable:
                raise
            except Exception as exc:
                raise unavailable(exc, WHAT) from exc
            for item in items:
                row = totals.setdefault(item["sk"]["S"], {})
                for name, value in item.items():
                    if name not in ("pk", "sk"):
                        row[name] = row.get(name, Decimal(0)) + plain(value)
        return [CounterRow(key=key, values=values) for key, values in sorted(totals.items())]

"""Exposures and result counters (``shared.campaigns.ports.Exposures``) on the contacts table.

- An **exposure**: ``pk`` ``C#<contact>`` (the contact's partition: erasure deletes it with the rest),
  ``sk`` ``EXPOSURE#<subject>`` (``campaign:<id>`` or ``automation:<id>``), with ``subject``, ``arm``,
  ``exposedAt``, ``until`` (the end of the conversion window), ``behaviour`` (the conversion),
  ``channel`` (unsubscribes count on it), and one ``<measure>At`` per measure counted for it. No PII.
- The **counters**: ``pk`` ``RESULTS#<subject>``, ``sk`` ``<arm>#<shard>`` (16 shards, ``00``-``15``), with
  ``arm`` and a number per measure (``assigned``, ``sent``, ... ``converted``), only ever ADDed to.
  A count is one transaction: the exposure's mark, set on condition it is absent (and the time in the
  window), and the counter's ADD; a redelivered event, a retried function or a second open finds the
  mark and counts nothing. Writers spread over the shards by contact, so concurrent transactions
  rarely touch one item (a conflict is retried).
- The planner exposes a page at a time: up to 25 exposures a transaction, each conditional, with one ADD
  per arm of them to one shard. If one of them exists already (a page planned again), the chunk is
  written one exposure at a time instead, the existing ones skipped.

Times are ``format_time`` text, so the window's condition compares them as text.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from shared.adapters.contact_items import partition
from shared.adapters.dynamodb import n, plain_item, query_all, s, transact_if
from shared.campaigns.results import MEASURES, ArmCounts, Exposure, Measure, totals
from shared.contacts.identity import ContactId
from shared.tracking.timestamps import format_time, parse_time

EXPOSURE, RESULTS = "EXPOSURE#", "RESULTS#"
SHARDS = 16
#: exposures per planner transaction (with an ADD per arm: well within DynamoDB's 100 items)
CHUNK = 25
STORE = "the campaign results"


def shard_of(contact_id: str) -> int:
    return hashlib.sha256(contact_id.encode()).digest()[0] % SHARDS


def exposure_key(contact_id: str, subject: str) -> dict[str, Any]:
    return {"pk": partition(ContactId.parse(contact_id)), "sk": s(EXPOSURE + subject)}


def counter_key(subject: str, arm: str, shard: int) -> dict[str, Any]:
    return {"pk": s(RESULTS + subject), "sk": s(f"{arm}#{shard:02d}")}


class DynamoExposures:
    """``Exposures``: ``DynamoExposures(client, contacts_table=...)``."""

    def __init__(self, client: Any, *, contacts_table: str) -> None:
        self._db = client
        self._table = contacts_table

    def expose(self, exposures: Sequence[Exposure]) -> int:
        new = 0
        for start in range(0, len(exposures), CHUNK):
            chunk = exposures[start : start + CHUNK]
            if self._together(chunk):
                new += len(chunk)
            else:
                new += sum(self._together([one]) for one in chunk)
        return new

    def _together(self, chunk: Sequence[Exposure]) -> bool:
        shard = shard_of(chunk[0].contact_id)
        arms = Counter((e.subject, e.arm) for e in chunk)
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": _exposure_item(exposure),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
            for exposure in chunk
        ]
        items += [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": counter_key(subject, arm, shard),
                    "UpdateExpression": "SET arm = :arm ADD assigned :k",
                    "ExpressionAttributeValues": {":arm": s(arm), ":k": n(k)},
                }
            }
            for (subject, arm), k in arms.items()
        ]
        return transact_if(self._db, items, STORE)

    def exposures(self, contact_id: str) -> list[Exposure]:
        request = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :e)",
            "ExpressionAttributeValues": {":pk": partition(ContactId.parse(contact_id)), ":e": s(EXPOSURE)},
            "ConsistentRead": True,
        }
        return [_exposure(contact_id, item) for item in query_all(self._db, request, STORE)]

    def count(
        self,
        contact_id: str,
        subject: str,
        arm: str,
        measure: Measure,
        at: datetime,
        *,
        windowed: bool = False,
    ) -> bool:
        mark = f"{measure}At"
        condition = "attribute_exists(pk) AND arm = :arm AND attribute_not_exists(#m)"
        values = {":arm": s(arm), ":at": s(format_time(at))}
        if windowed:
            condition += " AND exposedAt <= :at AND #u >= :at"
        names = {"#m": mark, **({"#u": "until"} if windowed else {})}
        return transact_if(
            self._db,
            [
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": exposure_key(contact_id, subject),
                        "UpdateExpression": "SET #m = :at",
                        "ConditionExpression": condition,
                        "ExpressionAttributeNames": names,
                        "ExpressionAttributeValues": values,
                    }
                },
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": counter_key(subject, arm, shard_of(contact_id)),
                        "UpdateExpression": "SET arm = :arm ADD #c :one",
                        "ExpressionAttributeNames": {"#c": measure},
                        "ExpressionAttributeValues": {":arm": s(arm), ":one": n(1)},
                    }
                },
            ],
            STORE,
        )

    def counts(self, subject: str) -> dict[str, ArmCounts]:
        request = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": s(RESULTS + subject)},
            "ConsistentRead": True,
        }
        rows = []
        for item in query_all(self._db, request, STORE):
            data = plain_item(item)
            rows.append(
                (
                    str(data["arm"]),
                    ArmCounts(**{k: int(data.get(k, 0)) for k in ("assigned", *MEASURES)}),
                )
            )
        return totals(rows)


def _exposure_item(exposure: Exposure) -> dict[str, Any]:
    item = {
        **exposure_key(exposure.contact_id, exposure.subject),
        "subject": s(exposure.subject),
        "arm": s(exposure.arm),
        "exposedAt": s(format_time(exposure.at)),
        "until": s(format_time(exposure.until)),
        "behaviour": s(exposure.behaviour.value),
    }
    if exposure.channel is not None:
        item["channel"] = s(exposure.channel)
    return item


def _exposure(contact_id: str, item: dict[str, Any]) -> Exposure:
    data = plain_item(item)
    return Exposure(
        contact_id=contact_id,
        subject=data["subject"],
        arm=data["arm"],
        at=parse_time(data["exposedAt"]),
        until=parse_time(data["until"]),
        behaviour=data["behaviour"],
        channel=data.get("channel"),
        counted=frozenset(m for m in MEASURES if f"{m}At" in data),
    )

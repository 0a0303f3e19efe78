"""The profile accesses that the contact stores share: the consistent read, times moved one way, and what
a merge takes back from a profile (and a re-route gives back)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from shared.adapters.contact_items import COUNT, RULE, SCORE, WRITER, profile_key, record_from_item
from shared.adapters.dynamodb import Cancelled, error_code, exact_number, failure, n, retried, s
from shared.adapters.expressions import Expression
from shared.contacts.identity import ContactId
from shared.contacts.model import ContactRecord
from shared.usecases.recording import Absorbed, Retraction

STORE = "the contact store"


def read_profile(client: Any, table: str, contact: ContactId) -> ContactRecord | None:
    """A contact's profile as it is now (a consistent read)."""
    try:
        item = client.get_item(TableName=table, Key=profile_key(contact), ConsistentRead=True).get("Item")
    except Exception as exc:
        raise failure(exc, STORE) from exc
    return record_from_item(item) if item else None


def move_if(
    client: Any,
    table: str,
    contact: ContactId,
    attribute: str,
    value: dict[str, str],
    op: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """``SET attribute = value`` if absent or if ``attribute op value`` (``<``: later, ``>``: earlier).

    Each a conditional write, retried while throttled: a stale read or an old import never moves it back.
    """
    try:
        retried(
            lambda: client.update_item(
                TableName=table,
                Key=profile_key(contact),
                UpdateExpression="SET #a = :v",
                ConditionExpression=f"attribute_exists(pk) AND (attribute_not_exists(#a) OR #a {op} :v)",
                ExpressionAttributeNames={"#a": attribute},
                ExpressionAttributeValues={":v": value},
            ),
            STORE,
            sleep=sleep,
        )
    except Exception as exc:
        if error_code(exc) != "ConditionalCheckFailedException":
            raise failure(exc, STORE) from exc


def taken_back(cancelled: Cancelled | None) -> Absorbed:
    """How a take-back or give-back transaction ended: its first item's condition failing means done
    before (``ALREADY``), its second's that the contact was merged away meanwhile (``MOVED``)."""
    if cancelled is None:
        return Absorbed.DONE
    codes = cancelled.codes
    if codes[0] == "ConditionalCheckFailed":
        return Absorbed.ALREADY
    if len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
        return Absorbed.MOVED
    raise failure(cancelled.error, STORE) from cancelled.error


def retraction_update(retraction: Retraction, sign: int = 1) -> Expression:
    """``ADD`` what a retraction takes back (all negative); ``sign=-1`` gives it back."""
    x = Expression()
    x.add("eventCount", n(sign * retraction.event_count))
    for behaviour, count in retraction.counts.items():
        x.add(COUNT + behaviour, n(sign * count))
    if retraction.revenue:
        x.add("revenueTotal", n(sign * retraction.revenue))
    for dimension, score in retraction.scores.items():
        if score.total:
            x.add(f"{SCORE}{dimension}:total", n(sign * score.total))
        for memory, buckets in score.sums.items():
            for bucket, value in buckets.items():
                x.add(f"{SCORE}{dimension}:{memory}:{bucket}", n(exact_number(sign * value)))
    for rule, count in retraction.rule_uses.items():
        x.add(f"{RULE}{rule}:n", n(sign * count))
    x.set("lastWriter", s(WRITER))
    x.add("rev", n(1))
    return x

"""The profile accesses that the contact stores share: the consistent read, and times moved one way."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from shared.adapters.contact_items import profile_key, record_from_item
from shared.adapters.dynamodb import error_code, failure, retried
from shared.contacts.identity import ContactId
from shared.contacts.model import ContactRecord

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

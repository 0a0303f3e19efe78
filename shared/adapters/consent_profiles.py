"""Consent written at once on the profile, by the unsubscribe and confirmation links (``ConsentProfiles``).

One conditional ``UpdateItem`` per link: ``consent:<channel>:revoked`` (a map ``{source, at}``) or
``consent:<channel>:confirmed`` (a time), on condition that the profile exists and was not merged away
(``ALL_OLD`` on failure says which: a merged-away profile is followed to the contact it joined, an absent
one, erased or never known, is left absent). ``lastWriter`` is this function's, so the stage function's
trigger (tracking writes only) ignores the write. The link also records the fact as an event; the
aggregation folds it in later, blindly, to the same value.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

from shared.adapters.contact_items import consent_attribute, consent_fact_value, profile_key
from shared.adapters.dynamodb import error_code, failure, retried, s
from shared.contacts.identity import ContactId
from shared.delivery.consent import ConsentFact
from shared.errors import LifecycleError
from shared.tracking.timestamps import format_time, parse_time

STORE = "the contact store"
#: the profile writer the stage function's trigger does not pass
WRITER = "preferences"
#: how far merges are followed to the profile that holds the contact now
MAX_MERGE_HOPS = 4


class DynamoConsentProfiles:
    """``ConsentProfiles`` on the contacts table."""

    def __init__(
        self, client: Any, *, contacts_table: str, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._db = client
        self._contacts = contacts_table
        self._sleep = sleep

    def revoke(self, contact: ContactId, channel: str, fact: ConsentFact) -> ContactId | None:
        value = consent_fact_value(fact.source, fact.at)
        return self._set(contact, consent_attribute(channel, "revoked"), value)

    def confirm(self, contact: ContactId, channel: str, at: datetime) -> ContactId | None:
        return self._set(contact, consent_attribute(channel, "confirmed"), s(format_time(at)))

    def granted_since(self, contact: ContactId, channel: str, at: datetime) -> bool:
        granted = consent_attribute(channel, "granted")
        for _ in range(MAX_MERGE_HOPS):
            request = {
                "TableName": self._contacts,
                "Key": profile_key(contact),
                "ConsistentRead": True,
                "ProjectionExpression": "#g, #m",
                "ExpressionAttributeNames": {"#g": granted, "#m": "mergedInto"},
            }
            try:
                item = retried(partial(self._db.get_item, **request), STORE, sleep=self._sleep).get("Item")
            except LifecycleError:
                raise
            except Exception as exc:
                raise failure(exc, STORE) from exc
            if not item:
                return False
            if "mergedInto" in item:
                contact = ContactId.parse(item["mergedInto"]["S"])
                continue
            fact = item.get(granted, {}).get("M")
            return fact is not None and parse_time(fact["at"]["S"]) >= at
        return False

    def _set(self, contact: ContactId, attribute: str, value: dict[str, Any]) -> ContactId | None:
        for _ in range(MAX_MERGE_HOPS):
            request = {
                "TableName": self._contacts,
                "Key": profile_key(contact),
                "UpdateExpression": "SET #a = :v, #w = :w",
                "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(#m)",
                "ExpressionAttributeNames": {"#a": attribute, "#w": "lastWriter", "#m": "mergedInto"},
                "ExpressionAttributeValues": {":v": value, ":w": s(WRITER)},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
            try:
                retried(partial(self._db.update_item, **request), STORE, sleep=self._sleep)
            except LifecycleError:
                raise
            except Exception as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise failure(exc, STORE) from exc
                item = (getattr(exc, "response", None) or {}).get("Item") or {}
                into = item.get("mergedInto", {}).get("S")
                if not into:
                    return None  # no profile: erased, or never known
                contact = ContactId.parse(into)
                continue
            return contact
        return None

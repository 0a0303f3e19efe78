"""Erasing a contact's partitions (``ContactErasure``): Query each partition for its keys, then
BatchWriteItem deletes, 25 at a time, sending unprocessed items again. No Scan: everything of a
contact is under its partition key (``C#<contact>``) in the contacts and events tables, and indexes
(the due index) hold attributes of those items, so their entries go with them.

The events partition goes first, then the contacts-table items, the profile last: until the profile
is gone, the merge pointers and anonymous ids that lead to the rest are still there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from shared.adapters.contact_items import MERGED_PREFIX, PROFILE, partition, profile_key
from shared.adapters.dynamodb import batch_write, failure, retried
from shared.contacts.identity import ContactId
from shared.usecases.erasure import Erased

WHAT = "the contact erasure"
#: keys read per Query page (a page is deleted before the next is read)
PAGE = 500


class DynamoContactErasure:
    def __init__(
        self,
        client: Any,
        *,
        contacts_table: str,
        events_table: str,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._db = client
        self._contacts = contacts_table
        self._events = events_table
        self._sleep = sleep

    def merged_identities(self, contact: ContactId) -> frozenset[ContactId]:
        """The merge markers' sources (``MERGED#<source>``, and ``MERGED#<source>#<n>`` for the parts of
        a big merge) and the profile's anonymous ids."""
        found: set[ContactId] = set()
        start: dict[str, Any] | None = None
        while True:
            keys, start = self._page(self._contacts, contact, PAGE, prefix=MERGED_PREFIX, start=start)
            for key in keys:
                source = key.removeprefix(MERGED_PREFIX)
                head, sep, tail = source.rpartition("#")
                found.add(ContactId.parse(head if sep and tail.isdigit() else source))
            if start is None:
                break
        try:
            item = self._call(
                lambda: self._db.get_item(
                    TableName=self._contacts,
                    Key=profile_key(contact),
                    ConsistentRead=True,
                    ProjectionExpression="anonymousIds",
                )
            ).get("Item")
        except Exception as exc:
            raise failure(exc, WHAT) from exc
        found |= {ContactId.anonymous(a) for a in (item or {}).get("anonymousIds", {}).get("SS", [])}
        found.discard(contact)
        return frozenset(found)

    def erase(self, contact: ContactId, limit: int) -> Erased:
        deleted = 0
        for table in (self._events, self._contacts):
            while True:
                room = limit - deleted
                if room <= 0:
                    return Erased(deleted=deleted, done=False)
                # one more than there is room for: a page that holds only the profile holds nothing else
                keys, _ = self._page(table, contact, min(PAGE, room) + 1)
                others = [k for k in keys if not (table == self._contacts and k == PROFILE)][:room]
                keys = others or keys  # the profile goes last, on its own
                if not keys:
                    break
                self._delete(table, contact, keys)
                deleted += len(keys)
        return Erased(deleted=deleted, done=True)

    def _page(
        self,
        table: str,
        contact: ContactId,
        limit: int,
        *,
        prefix: str | None = None,
        start: dict[str, Any] | None = None,
    ) -> tuple[list[str], dict[str, Any] | None]:
        """A page of the partition's sort keys, read consistently, and where the next page starts."""
        values: dict[str, Any] = {":pk": partition(contact)}
        condition = "pk = :pk"
        if prefix:
            values[":prefix"] = {"S": prefix}
            condition += " AND begins_with(sk, :prefix)"
        request: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ProjectionExpression": "sk",
            "ConsistentRead": True,
            "Limit": limit,
            **({"ExclusiveStartKey": start} if start else {}),
        }
        try:
            page = self._call(lambda: self._db.query(**request))
        except Exception as exc:
            raise failure(exc, WHAT) from exc
        return [item["sk"]["S"] for item in page.get("Items", [])], page.get("LastEvaluatedKey")

    def _delete(self, table: str, contact: ContactId, keys: list[str]) -> None:
        requests = [{"DeleteRequest": {"Key": {"pk": partition(contact), "sk": {"S": k}}}} for k in keys]
        batch_write(self._db, table, requests, WHAT, sleep=self._sleep)

    def _call(self, call: Callable[[], Any]) -> Any:
        return retried(call, WHAT, sleep=self._sleep)

"""Segment memberships on the contacts table, and the members of a segment read from its sparse index.

One item per (contact, segment), in the contact's partition (so erasure deletes it with the rest):
``pk`` ``C#<contact>``, ``sk`` ``SEGMENT#<segment>``, ``segmentShard`` ``<segment>#<n>`` (``n`` = CRC-32 of
the contact id mod 16) and ``segmentMember`` (the contact id): the keys of the ``bySegment`` index, which
only these items carry. ``enteredAt``: when the contact entered. The stage function writes them in the
same transaction as the profile's ``segments`` (``shared.adapters.stage_store``), so the two agree.

Listing reads the 16 partitions of the segment in turn, a Query each (keys only): O(members), never a
Scan. Counting is the same Queries with ``Select=COUNT``. The index is eventually consistent: a contact
who entered a moment ago may be missing from a page read at once.
"""

from __future__ import annotations

import zlib
from datetime import datetime
from typing import Any

from shared.adapters.contact_items import partition
from shared.adapters.dynamodb import failure, retried, s
from shared.adapters.tables import CONTACTS
from shared.contacts.identity import ContactId
from shared.errors import InvalidRequest
from shared.segments.members import MemberPage
from shared.tracking.timestamps import format_time

#: A segment's members are spread over this many index partitions (a hot segment of millions of members
#: then takes the index's writes on 16 partitions, not one).
MEMBER_SHARDS = 16
MEMBERSHIP = "SEGMENT#"
BY_SEGMENT = next(index for index in CONTACTS.global_indexes if index.name == "bySegment")
STORE = "the segment members"
#: at most this many members per page
MAX_PAGE = 1000


def member_shard(contact: ContactId | str) -> int:
    return zlib.crc32(str(contact).encode()) % MEMBER_SHARDS


def membership_key(contact: ContactId, segment_id: str) -> dict[str, Any]:
    return {"pk": partition(contact), "sk": s(MEMBERSHIP + segment_id)}


def membership_item(contact: ContactId, segment_id: str, at: datetime) -> dict[str, Any]:
    """The item that makes ``contact`` a member of ``segment_id`` in the index."""
    return {
        **membership_key(contact, segment_id),
        BY_SEGMENT.partition_key: s(f"{segment_id}#{member_shard(contact)}"),
        BY_SEGMENT.sort_key: s(str(contact)),
        "enteredAt": s(format_time(at)),
    }


class DynamoSegmentMembers:
    """``SegmentMembers`` on the contacts table's ``bySegment`` index.

    A page's ``after`` is ``<shard>#<contact>``: the index partition it stopped in, and the last member
    read there. A page may come back short (the end of a partition) or, at the very end, empty."""

    def __init__(self, client: Any, *, table: str) -> None:
        self._db = client
        self._table = table

    def page(self, segment_id: str, after: str | None, limit: int) -> MemberPage:
        shard, last = _cursor(after)
        limit = max(1, min(limit, MAX_PAGE))
        members: list[str] = []
        while shard < MEMBER_SHARDS and len(members) < limit:
            request = self._query(segment_id, shard)
            request["Limit"] = limit - len(members)
            if last is not None:
                request["ExclusiveStartKey"] = _start(segment_id, shard, last)
            page = self._call(request)
            members += [item[BY_SEGMENT.sort_key]["S"] for item in page.get("Items", [])]
            if "LastEvaluatedKey" in page:
                last = page["LastEvaluatedKey"][BY_SEGMENT.sort_key]["S"]
                continue  # more in this partition: the page is full (or DynamoDB's 1 MB came first)
            shard, last = shard + 1, None
        if shard >= MEMBER_SHARDS:
            return MemberPage(contact_ids=members, after=None)
        return MemberPage(contact_ids=members, after=f"{shard}#{last}" if last else f"{shard}#")

    def count(self, segment_id: str) -> int:
        total = 0
        for shard in range(MEMBER_SHARDS):
            request = {**self._query(segment_id, shard), "Select": "COUNT"}
            while True:
                page = self._call(request)
                total += int(page.get("Count", 0))
                if "LastEvaluatedKey" not in page:
                    break
                request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return total

    def _query(self, segment_id: str, shard: int) -> dict[str, Any]:
        return {
            "TableName": self._table,
            "IndexName": BY_SEGMENT.name,
            "KeyConditionExpression": "#p = :p",
            "ExpressionAttributeNames": {"#p": BY_SEGMENT.partition_key},
            "ExpressionAttributeValues": {":p": s(f"{segment_id}#{shard}")},
        }

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        try:
            return retried(lambda: self._db.query(**request), STORE)
        except Exception as exc:
            raise failure(exc, STORE) from exc


def _cursor(after: str | None) -> tuple[int, str | None]:
    """``<shard>#<contact>`` (``<shard>#``: that partition from its start) as (shard, last member)."""
    if after is None:
        return 0, None
    shard, sep, last = after.partition("#")
    if not sep or not shard.isdigit() or int(shard) >= MEMBER_SHARDS:
        raise InvalidRequest(f"after: {after[:80]!r} is not a cursor a page returned", code="invalid_cursor")
    return int(shard), last or None


def _start(segment_id: str, shard: int, last: str) -> dict[str, Any]:
    """The index position of member ``last`` of the partition: its table and index keys."""
    try:
        contact = ContactId.parse(last)
    except (ValueError, InvalidRequest):
        raise InvalidRequest("after: not a cursor a page returned", code="invalid_cursor") from None
    return {
        **membership_key(contact, segment_id),
        BY_SEGMENT.partition_key: s(f"{segment_id}#{shard}"),
        BY_SEGMENT.sort_key: s(last),
    }

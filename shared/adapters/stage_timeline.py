"""The stage a contact was in at a given time, from its stage history on the contacts table
(``shared.usecases.metrics.StageTimeline``): the ``STAGE#`` items the stage function writes with each move.

The moves are read newest first, a page at a time, only as far back as the time asked about: for a
purchase just recorded, one request of a few items. Only stage moves are written under ``STAGE#`` (the
other announcements are under ``ANNOUNCED#``), so what is read does not grow with a contact's segment,
threshold or quarter changes; the filter skips the other announcements written there before that layout.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from shared.adapters.contact_items import partition
from shared.adapters.dynamodb import failure, retried, s
from shared.adapters.stage_store import HISTORY
from shared.contacts.identity import ContactId
from shared.engagement.events import ContactStageChanged

#: Moves read per page (older items of other kinds are filtered out after the read).
PAGE = 8
WHAT = "the stage history"


class DynamoStageTimeline:
    def __init__(self, client: Any, *, contacts_table: str) -> None:
        self._db = client
        self._table = contacts_table

    def stage_at(self, contact: ContactId, at: datetime) -> str | None:
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :h)",
            "FilterExpression": "#type = :moved",
            "ExpressionAttributeNames": {"#type": "type"},
            "ExpressionAttributeValues": {
                ":pk": partition(contact),
                ":h": s(HISTORY),
                ":moved": s("ContactStageChanged"),
            },
            "ScanIndexForward": False,
            "Limit": PAGE,
        }
        found: str | None = None
        while True:
            try:
                page = retried(lambda request=request: self._db.query(**request), WHAT)
            except Exception as exc:
                raise failure(exc, WHAT) from exc
            for item in page.get("Items", []):
                move = ContactStageChanged.model_validate(json.loads(item["output"]["S"]))
                if move.at <= at:
                    return move.to_stage
                found = move.from_stage or move.to_stage
            start = page.get("LastEvaluatedKey")
            if not start:
                return found
            request = {**request, "ExclusiveStartKey": start}

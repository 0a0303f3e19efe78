"""Campaigns in the config table: their documents, versioned, and their states.

- Documents (``shared.adapters.versioned_documents``): the current version of each under ``CAMPAIGNS`` /
  ``<id>``, every version under ``CAMPAIGN#<id>`` / ``v%08d`` (a send freezes one: ``version`` reads it).
- States (``DynamoCampaignStates``): ``CAMPAIGN_STATES`` / ``<id>`` holds the state as JSON (``state``),
  with ``status`` and ``revision`` beside it for conditions and cheap reads; while a campaign is
  scheduled or sending, ``CAMPAIGNS_LIVE`` / ``<id>`` (``dueAt``: when it starts) marks it live. The
  planner Queries that partition, which holds only live campaigns, never the others; leaving it (sent,
  cancelled) is one transaction with the state. Every state write is conditional on the revision read.
- ``DynamoCampaignStatus``: the delivery function's read of whether a campaign was cancelled: one
  GetItem of ``status`` per campaign, kept ``cache_seconds``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

from shared.adapters.dynamodb import error_code, failure, n, plain_item, query_all, retried, s, transact_if
from shared.adapters.expiring import Expiring
from shared.adapters.versioned_documents import VersionedDocuments
from shared.campaigns.book import CampaignBook
from shared.campaigns.model import LIVE, Campaign, CampaignState, StoredCampaign, stored_campaign
from shared.campaigns.ports import LiveCampaign
from shared.tracking.timestamps import format_time, parse_time

STATES, LIVE_PARTITION = "CAMPAIGN_STATES", "CAMPAIGNS_LIVE"
STATE_STORE = "the campaign states"


class DynamoCampaignStore(VersionedDocuments[StoredCampaign, CampaignBook]):
    """``DynamoCampaignStore(client, table=..., cache_seconds=30, monotonic=time.monotonic)``."""

    kind, model = "campaign", StoredCampaign
    current_partition, history_prefix = "CAMPAIGNS", "CAMPAIGN#"

    def compile(self, documents: list[StoredCampaign]) -> CampaignBook:
        return CampaignBook(documents)

    def save(self, campaign: Campaign, at: datetime, expected_version: int | None) -> StoredCampaign:
        """Store the next version; ``expected_version`` 0 means none may be stored yet."""
        return self.save_version(campaign.id, at, expected_version, partial(stored_campaign, campaign, at=at))

    def campaign(self, campaign_id: str) -> StoredCampaign | None:
        return self.current(campaign_id)

    def version(self, campaign_id: str, version: int) -> StoredCampaign | None:
        key = {"pk": s(self.history_prefix + campaign_id), "sk": s(f"v{version:08d}")}
        try:
            item = retried(lambda: self._db.get_item(TableName=self._table, Key=key), self._what).get("Item")
        except Exception as exc:
            raise failure(exc, self._what) from exc
        return self._document(item) if item else None


class DynamoCampaignStates:
    """``CampaignStates`` on the config table."""

    def __init__(self, client: Any, *, table: str) -> None:
        self._db = client
        self._table = table

    def state(self, campaign_id: str) -> CampaignState | None:
        try:
            item = retried(
                lambda: self._db.get_item(
                    TableName=self._table, Key=_key(STATES, campaign_id), ConsistentRead=True
                ),
                STATE_STORE,
            ).get("Item")
        except Exception as exc:
            raise failure(exc, STATE_STORE) from exc
        if not item:
            return None
        data = plain_item(item)
        return CampaignState.model_validate_json(data["state"]).model_copy(
            update={"revision": int(data["revision"])}
        )

    def live(self) -> list[LiveCampaign]:
        request = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": s(LIVE_PARTITION)},
        }
        return [
            LiveCampaign(campaign_id=item["sk"]["S"], due_at=parse_time(item["dueAt"]["S"]))
            for item in query_all(self._db, request, STATE_STORE)
        ]

    def create(self, state: CampaignState) -> bool:
        if state.status not in LIVE:
            raise ValueError("a campaign's first state is scheduled or sending")
        return transact_if(
            self._db,
            [
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": _state_item(state, 0),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {"Put": {"TableName": self._table, "Item": _live_item(state)}},
            ],
            STATE_STORE,
        )

    def write(self, state: CampaignState, expected_revision: int) -> bool:
        put = {
            "TableName": self._table,
            "Item": _state_item(state, expected_revision + 1),
            "ConditionExpression": "revision = :r",
            "ExpressionAttributeValues": {":r": n(expected_revision)},
        }
        if state.status in LIVE:
            try:
                retried(lambda: self._db.put_item(**put), STATE_STORE)
            except Exception as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    return False
                raise failure(exc, STATE_STORE) from exc
            return True
        leave = {"Delete": {"TableName": self._table, "Key": _key(LIVE_PARTITION, state.campaign_id)}}
        return transact_if(self._db, [{"Put": put}, leave], STATE_STORE)


class DynamoCampaignStatus:
    """``shared.delivery.ports.CampaignStatus``: whether a campaign was cancelled, read at most every
    ``cache_seconds`` per campaign (a cancellation reaches delivery within that time)."""

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
        self._seconds, self._monotonic = cache_seconds, monotonic
        self._by_id: dict[str, Expiring[bool]] = {}

    def cancelled(self, campaign_id: str) -> bool:
        found = self._by_id.get(campaign_id)
        if found is None:
            if len(self._by_id) > 1000:  # a warm instance does not keep every campaign ever sent
                self._by_id.clear()
            found = self._by_id[campaign_id] = Expiring(self._seconds, self._monotonic)
        return found.get(lambda: self._read(campaign_id))

    def _read(self, campaign_id: str) -> bool:
        try:
            item = retried(
                lambda: self._db.get_item(
                    TableName=self._table,
                    Key=_key(STATES, campaign_id),
                    ProjectionExpression="#s",
                    ExpressionAttributeNames={"#s": "status"},
                ),
                STATE_STORE,
            ).get("Item")
        except Exception as exc:
            raise failure(exc, STATE_STORE) from exc
        return bool(item) and item.get("status", {}).get("S") == "cancelled"


def _key(pk: str, campaign_id: str) -> dict[str, Any]:
    return {"pk": s(pk), "sk": s(campaign_id)}


def _state_item(state: CampaignState, revision: int) -> dict[str, Any]:
    return {
        **_key(STATES, state.campaign_id),
        "state": s(state.model_dump_json(exclude={"revision"})),
        "status": s(state.status),
        "revision": n(revision),
    }


def _live_item(state: CampaignState) -> dict[str, Any]:
    return {**_key(LIVE_PARTITION, state.campaign_id), "dueAt": s(format_time(state.send_at))}


__all__ = ["DynamoCampaignStates", "DynamoCampaignStatus", "DynamoCampaignStore"]

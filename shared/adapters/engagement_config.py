"""Engagement configuration in the config table: the funnel, the salespeople and the routing turn."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.adapters.dynamodb import error_code, failure, n, query_all, s
from shared.adapters.expiring import Expiring
from shared.engagement.funnel import Funnel, default_funnel
from shared.engagement.index import Thresholds
from shared.engagement.routing import Salesperson, pick
from shared.errors import Conflict, NotFound
from shared.tracking.timestamps import format_time

FUNNEL_KEY = {"pk": s("FUNNEL"), "sk": s("CURRENT")}
SALESPEOPLE = "SALESPEOPLE"
TURN_KEY = {"pk": s("ROUTING"), "sk": s("TURN")}


class DynamoEngagementConfig:
    """The funnel (shipped default until an administrator stores one) and the sales team."""

    def __init__(
        self,
        client: Any,
        *,
        table: str,
        thresholds: Thresholds = Thresholds(),
        cache_seconds: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = client
        self._table = table
        self._default = default_funnel(thresholds)
        self._funnel = Expiring(cache_seconds, monotonic)
        self._team = Expiring(cache_seconds, monotonic)

    # --- funnel -----------------------------------------------------------------------------

    def funnel(self) -> Funnel:
        return self._funnel.get(self._load_funnel)

    def _load_funnel(self) -> Funnel:
        item = self._get(FUNNEL_KEY)
        return Funnel.model_validate_json(item["body"]["S"]) if item else self._default

    def stored_funnel(self) -> tuple[Funnel, int]:
        item = self._get(FUNNEL_KEY)
        if not item:
            return self._default, 0
        return Funnel.model_validate_json(item["body"]["S"]), int(item["version"]["N"])

    def save_funnel(self, funnel: Funnel, version: int, at: datetime) -> None:
        condition = (
            {"ConditionExpression": "version = :v", "ExpressionAttributeValues": {":v": n(version - 1)}}
            if version > 1
            else {"ConditionExpression": "attribute_not_exists(pk)"}
        )
        item = {
            **FUNNEL_KEY,
            "body": s(funnel.model_dump_json()),
            "version": n(version),
            "updatedAt": s(format_time(at)),
        }
        self._put(item, condition)
        self._funnel.clear()

    # --- salespeople and routing -----------------------------------------------------------------

    def salespeople(self) -> list[Salesperson]:
        return self._team.get(self._load_team)

    def _load_team(self) -> list[Salesperson]:
        page = self._query(SALESPEOPLE)
        return [Salesperson.model_validate_json(item["body"]["S"]) for item in page]

    def save_salesperson(self, person: Salesperson, at: datetime) -> None:
        item = {
            "pk": s(SALESPEOPLE),
            "sk": s(person.id),
            "body": s(person.model_dump_json()),
            "updatedAt": s(format_time(at)),
        }
        self._put(item, {})
        self._team.clear()

    def remove_salesperson(self, person_id: str) -> None:
        try:
            self._db.delete_item(
                TableName=self._table,
                Key={"pk": s(SALESPEOPLE), "sk": s(person_id)},
                ConditionExpression="attribute_exists(pk)",
            )
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise NotFound(f"no salesperson {person_id}") from exc
            raise self._failure(exc) from exc
        self._team.clear()

    def assign(self, keep: str | None = None) -> Salesperson | None:
        """The lead's current owner while available; else the next in the weighted rotation.

        The turn counter moves only when the rotation is used and someone is available.
        """
        team = [p for p in self.salespeople() if p.available]
        if not team:
            return None
        current = next((p for p in team if p.id == keep), None)
        if current is not None:
            return current
        try:
            turn = self._db.update_item(
                TableName=self._table,
                Key=TURN_KEY,
                UpdateExpression="ADD turn :one",
                ExpressionAttributeValues={":one": n(1)},
                ReturnValues="UPDATED_NEW",
            )["Attributes"]["turn"]["N"]
        except Exception as exc:
            raise self._failure(exc) from exc
        return pick(team, int(turn) - 1)

    # --- plumbing ---------------------------------------------------------------------------------

    def _get(self, key: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return self._db.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item")
        except Exception as exc:
            raise self._failure(exc) from exc

    def _query(self, pk: str) -> list[dict[str, Any]]:
        request = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": s(pk)},
        }
        return query_all(self._db, request, "the configuration store")

    def _put(self, item: dict[str, Any], condition: dict[str, Any]) -> None:
        try:
            self._db.put_item(TableName=self._table, Item=item, **condition)
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise Conflict("changed meanwhile; read it again and retry") from exc
            raise self._failure(exc) from exc

    @staticmethod
    def _failure(exc: Exception) -> BaseException:
        return failure(exc, "the configuration store")

"""Scoring rules in the config table: the current version of each, and every version ever stored.

Current rules share one partition (``RULES``), so the tracking function loads them all with one
Query and caches the compiled rule book briefly. History lives under ``RULE#<id>``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.adapters.dynamodb import n, plain_item, query_all, s, transact_if
from shared.adapters.expiring import Expiring
from shared.errors import Conflict, NotFound
from shared.scoring.catalogue import effective
from shared.scoring.rules import Rule, RuleBook, StoredRule
from shared.tracking.timestamps import format_time

CURRENT = "RULES"
HISTORY = "RULE#"


class DynamoRuleStore:
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
        self._book: Expiring[RuleBook] = Expiring(cache_seconds, monotonic)

    def book(self) -> RuleBook:
        """The compiled rule book, reloaded at most every ``cache_seconds``."""
        return self._book.get(lambda: RuleBook(effective(self.stored())))

    def stored(self) -> list[StoredRule]:
        request = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": s(CURRENT)},
        }
        return [_rule(item) for item in query_all(self._db, request, "the rule store")]

    def history(self, rule_id: str) -> list[StoredRule]:
        page = self._db.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": s(HISTORY + rule_id)},
            ScanIndexForward=False,
        )
        return [_rule(item) for item in page.get("Items", [])]

    def save(self, rule: Rule, at: datetime, expected_version: int | None, base_version: int) -> StoredRule:
        """Store the next version. ``base_version`` is the version it replaces (a default's, or 0)."""
        current = self._current(rule.id)
        in_force = current.version if current else base_version
        if expected_version is not None and expected_version != in_force:
            raise Conflict(f"rule {rule.id} is at version {in_force}, not {expected_version}")
        # Versions never repeat, even after a delete: the ledger names (rule, version) for ever.
        version = max(in_force, self._latest_version(rule.id)) + 1
        stored = StoredRule(**rule.model_dump(), version=version, origin="stored", updated_at=at)
        body = s(stored.model_dump_json())
        condition = (
            {"ConditionExpression": "version = :v", "ExpressionAttributeValues": {":v": n(current.version)}}
            if current
            else {"ConditionExpression": "attribute_not_exists(pk)"}
        )
        self._write(
            [
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": _item(CURRENT, rule.id, body, version, at),
                        **condition,
                    }
                },
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": _item(HISTORY + rule.id, f"v{version:08d}", body, version, at),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ],
            rule.id,
        )
        return stored

    def remove(self, rule_id: str, at: datetime, expected_version: int | None) -> StoredRule:
        current = self._current(rule_id)
        if current is None:
            raise NotFound(f"no stored rule {rule_id}")
        if expected_version is not None and expected_version != current.version:
            raise Conflict(f"rule {rule_id} is at version {current.version}, not {expected_version}")
        tombstone = _item(
            HISTORY + rule_id,
            f"v{current.version + 1:08d}",
            s(current.model_dump_json()),
            current.version + 1,
            at,
        )
        tombstone["deleted"] = {"BOOL": True}
        self._write(
            [
                {
                    "Delete": {
                        "TableName": self._table,
                        "Key": {"pk": s(CURRENT), "sk": s(rule_id)},
                        "ConditionExpression": "version = :v",
                        "ExpressionAttributeValues": {":v": n(current.version)},
                    }
                },
                {"Put": {"TableName": self._table, "Item": tombstone}},
            ],
            rule_id,
        )
        self._book.clear()
        return current

    def _latest_version(self, rule_id: str) -> int:
        page = self._db.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": s(HISTORY + rule_id)},
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        return max((int(item["version"]["N"]) for item in page.get("Items", [])), default=0)

    def _current(self, rule_id: str) -> StoredRule | None:
        item = self._db.get_item(
            TableName=self._table, Key={"pk": s(CURRENT), "sk": s(rule_id)}, ConsistentRead=True
        ).get("Item")
        return _rule(item) if item else None

    def _write(self, items: list[dict[str, Any]], rule_id: str) -> None:
        if not transact_if(self._db, items, "the rule store"):
            raise Conflict(f"rule {rule_id} changed meanwhile; read it again and retry")
        self._book.clear()


def _item(pk: str, sk: str, body: dict[str, str], version: int, at: datetime) -> dict[str, Any]:
    return {"pk": s(pk), "sk": s(sk), "body": body, "version": n(version), "updatedAt": s(format_time(at))}


def _rule(item: dict[str, Any]) -> StoredRule:
    data = plain_item(item)
    return StoredRule.model_validate({**json.loads(data["body"]), "version": int(data["version"])})

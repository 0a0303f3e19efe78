"""Documents an administrator edits in versions (scoring rules, automations), in the config table.

The current version of every document shares one partition (``RULES``, ``AUTOMATIONS``): a function
loads them all with one Query and keeps what it compiles from them (a rule book, an automation book)
for ``cache_seconds``. Every version ever stored lives under the document's own history partition
(``RULE#<id>``, ``AUTOMATION#<id>``, sort key ``v%08d``); a delete removes the current version and
leaves a tombstone there (the last version again, one version higher, marked ``deleted``), so versions
never repeat: what was decided under (document, version) keeps naming one thing for ever.

A change is one conditional transaction over both partitions: it applies only if the current version is
still the one it read, and ``If-Match: <version>`` makes it conditional on the one the caller read.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar, cast

from shared.adapters.dynamodb import failure, n, plain_item, query_all, retried, s, transact_if
from shared.adapters.expiring import Expiring
from shared.errors import Conflict, NotFound
from shared.tracking.timestamps import format_time
from shared.versioning import expect_version, next_version


class Versioned(Protocol):
    @property
    def version(self) -> int: ...

    def model_dump_json(self) -> str: ...

    @classmethod
    def model_validate(cls, obj: Any) -> Self: ...


Document = TypeVar("Document", bound=Versioned)
Compiled = TypeVar("Compiled")


class VersionedDocuments(Generic[Document, Compiled]):
    """The versioning of one kind of document: a store names its kind, its model and its partitions,
    and compiles the current documents into what the functions use (``book``)."""

    #: what a document is called in messages ("rule")
    kind: ClassVar[str]
    #: the stored version's model (``StoredRule``): a stored body with its version validates into it
    model: ClassVar[type[Versioned]]
    #: the partition of the current versions ("RULES") and the prefix of each history ("RULE#")
    current_partition: ClassVar[str]
    history_prefix: ClassVar[str]

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
        self._what = f"the {self.kind} store"
        self._compiled: Expiring[Compiled] = Expiring(cache_seconds, monotonic)

    def compile(self, documents: list[Document]) -> Compiled:
        raise NotImplementedError

    def book(self) -> Compiled:
        """What the current documents compile to, loaded again at most every ``cache_seconds``."""
        return self._compiled.get(lambda: self.compile(self.stored()))

    def stored(self) -> list[Document]:
        """The current version of every document, by id."""
        return self._documents(self.current_partition)

    def history(self, document_id: str) -> list[Document]:
        """Every version of one document, newest first (tombstones included)."""
        return self._documents(self.history_prefix + document_id, newest_first=True)

    def current(self, document_id: str) -> Document | None:
        key = {"pk": s(self.current_partition), "sk": s(document_id)}
        try:
            item = retried(
                lambda: self._db.get_item(TableName=self._table, Key=key, ConsistentRead=True), self._what
            ).get("Item")
        except Exception as exc:
            raise failure(exc, self._what) from exc
        return self._document(item) if item else None

    def save_version(
        self,
        document_id: str,
        at: datetime,
        expected_version: int | None,
        build: Callable[[int], Document],
        base_version: int = 0,
    ) -> Document:
        """Store ``build(next version)`` as the current version of ``document_id``. ``base_version`` is
        the version in force when none is stored (a shipped default's, else 0)."""
        current = self.current(document_id)
        in_force = current.version if current else base_version
        expect_version(self.kind, document_id, in_force, expected_version)
        stored = build(next_version(in_force, self._latest_version(document_id)))
        body = s(stored.model_dump_json())
        condition = (
            self._at_version(current.version)
            if current
            else {"ConditionExpression": "attribute_not_exists(pk)"}
        )
        self._write(
            document_id,
            {
                "Put": {
                    "Item": self._item(self.current_partition, document_id, body, stored.version, at),
                    **condition,
                }
            },
            {
                "Put": {
                    "Item": self._versioned_item(document_id, body, stored.version, at),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        )
        return stored

    def remove(self, document_id: str, at: datetime, expected_version: int | None) -> Document:
        """Delete the current version, leaving a tombstone; returns the version deleted."""
        current = self.current(document_id)
        if current is None:
            raise NotFound(f"no stored {self.kind} {document_id}")
        expect_version(self.kind, document_id, current.version, expected_version)
        tombstone = self._versioned_item(document_id, s(current.model_dump_json()), current.version + 1, at)
        tombstone["deleted"] = {"BOOL": True}
        self._write(
            document_id,
            {
                "Delete": {
                    "Key": {"pk": s(self.current_partition), "sk": s(document_id)},
                    **self._at_version(current.version),
                }
            },
            {"Put": {"Item": tombstone}},
        )
        return current

    def _documents(self, pk: str, *, newest_first: bool = False) -> list[Document]:
        request = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": s(pk)},
            "ScanIndexForward": not newest_first,
        }
        return [self._document(item) for item in query_all(self._db, request, self._what)]

    def _latest_version(self, document_id: str) -> int:
        request = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": s(self.history_prefix + document_id)},
            "ScanIndexForward": False,
            "Limit": 1,
            "ConsistentRead": True,
        }
        try:
            page = retried(lambda: self._db.query(**request), self._what)
        except Exception as exc:
            raise failure(exc, self._what) from exc
        return max((int(item["version"]["N"]) for item in page.get("Items", [])), default=0)

    def _write(self, document_id: str, *changes: dict[str, Any]) -> None:
        items = [{kind: {"TableName": self._table, **change}} for c in changes for kind, change in c.items()]
        if not transact_if(self._db, items, self._what):
            raise Conflict(f"{self.kind} {document_id} changed meanwhile; read it again and retry")
        self._compiled.clear()

    @staticmethod
    def _at_version(version: int) -> dict[str, Any]:
        return {"ConditionExpression": "version = :v", "ExpressionAttributeValues": {":v": n(version)}}

    def _versioned_item(
        self, document_id: str, body: dict[str, str], version: int, at: datetime
    ) -> dict[str, Any]:
        return self._item(self.history_prefix + document_id, f"v{version:08d}", body, version, at)

    @staticmethod
    def _item(pk: str, sk: str, body: dict[str, str], version: int, at: datetime) -> dict[str, Any]:
        return {
            "pk": s(pk),
            "sk": s(sk),
            "body": body,
            "version": n(version),
            "updatedAt": s(format_time(at)),
        }

    def _document(self, item: dict[str, Any]) -> Document:
        data = plain_item(item)
        body = {**json.loads(data["body"]), "version": int(data["version"])}
        return cast(Document, self.model.model_validate(body))

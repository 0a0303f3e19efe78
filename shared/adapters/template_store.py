"""Email templates in the config table: the current version of each under ``TEMPLATES``, every version
under ``TEMPLATE#<id>`` (``shared.adapters.versioned_documents``).

The delivery function reads one template at a time (``template``): a consistent GetItem per id, kept for
``cache_seconds``, so a template changed in the admin API is sent within that time, and a function never
loads every template (each may weigh 64 KB) to send one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

from shared.adapters.expiring import Expiring
from shared.adapters.versioned_documents import VersionedDocuments
from shared.delivery.templates import EmailTemplate, StoredTemplate, stored_template


class DynamoTemplateStore(VersionedDocuments[StoredTemplate, list[StoredTemplate]]):
    """``DynamoTemplateStore(client, table=..., cache_seconds=30, monotonic=time.monotonic)``."""

    kind, model = "template", StoredTemplate
    current_partition, history_prefix = "TEMPLATES", "TEMPLATE#"

    def __init__(
        self,
        client: Any,
        *,
        table: str,
        cache_seconds: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(client, table=table, cache_seconds=cache_seconds, monotonic=monotonic)
        self._cache_seconds, self._monotonic = cache_seconds, monotonic
        self._by_id: dict[str, Expiring[StoredTemplate | None]] = {}

    def compile(self, documents: list[StoredTemplate]) -> list[StoredTemplate]:
        return documents

    def template(self, template_id: str) -> StoredTemplate | None:
        """The current stored version (None: none stored, or deleted), read again at most every
        ``cache_seconds``."""
        found = self._by_id.get(template_id)
        if found is None:
            found = self._by_id[template_id] = Expiring(self._cache_seconds, self._monotonic)
        return found.get(lambda: self.current(template_id))

    def save(
        self, template: EmailTemplate, at: datetime, expected_version: int | None, base_version: int = 0
    ) -> StoredTemplate:
        """Store the next version; ``expected_version`` 0 means none may be stored yet (``base_version``,
        a built-in template's, when one has this id)."""
        stored = self.save_version(
            template.id, at, expected_version, partial(stored_template, template, at=at), base_version
        )
        self._by_id.pop(template.id, None)
        return stored

    def remove(self, template_id: str, at: datetime, expected_version: int | None) -> StoredTemplate:
        removed = super().remove(template_id, at, expected_version)
        self._by_id.pop(template_id, None)
        return removed

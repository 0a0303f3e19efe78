"""Automations in the config table: the current version of each under ``AUTOMATIONS`` (one Query loads
them all), every version under ``AUTOMATION#<id>`` (``shared.adapters.versioned_documents``)."""

from __future__ import annotations

from datetime import datetime
from functools import partial

from shared.adapters.versioned_documents import VersionedDocuments
from shared.automations.book import AutomationBook
from shared.automations.catalogue import stored_automation
from shared.automations.model import Automation, StoredAutomation


class DynamoAutomationStore(VersionedDocuments[StoredAutomation, AutomationBook]):
    """``DynamoAutomationStore(client, table=..., cache_seconds=30, monotonic=time.monotonic)``."""

    kind, model = "automation", StoredAutomation
    current_partition, history_prefix = "AUTOMATIONS", "AUTOMATION#"

    def compile(self, documents: list[StoredAutomation]) -> AutomationBook:
        return AutomationBook(documents)

    def save(self, automation: Automation, at: datetime, expected_version: int | None) -> StoredAutomation:
        """Store the next version; ``expected_version`` 0 means none may be stored yet."""
        return self.save_version(
            automation.id, at, expected_version, partial(stored_automation, automation, at=at)
        )

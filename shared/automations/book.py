"""The automations in force, indexed by what triggers them, for the functions that run them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from shared.automations.model import StoredAutomation


class AutomationBook:
    def __init__(self, automations: Iterable[StoredAutomation]) -> None:
        self._by_id = {a.id: a for a in automations}

    def get(self, automation_id: str) -> StoredAutomation | None:
        return self._by_id.get(automation_id)

    def __iter__(self) -> Iterator[StoredAutomation]:
        return iter(sorted(self._by_id.values(), key=lambda a: a.id))

    def __len__(self) -> int:
        return len(self._by_id)

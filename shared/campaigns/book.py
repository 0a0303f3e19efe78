"""The stored campaigns, for the functions that read them all (conversions, the admin list)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from shared.campaigns.model import StoredCampaign
from shared.tracking.behaviours import Behaviour


class CampaignBook:
    def __init__(self, campaigns: Iterable[StoredCampaign]) -> None:
        self._by_id = {c.id: c for c in campaigns}
        self._behaviours = frozenset(c.conversion.behaviour for c in self._by_id.values())

    def get(self, campaign_id: str) -> StoredCampaign | None:
        return self._by_id.get(campaign_id)

    @property
    def behaviours(self) -> frozenset[Behaviour]:
        """Every behaviour some campaign counts as a conversion: other events need no look at exposures."""
        return self._behaviours

    def __iter__(self) -> Iterator[StoredCampaign]:
        return iter(sorted(self._by_id.values(), key=lambda c: c.id))

    def __len__(self) -> int:
        return len(self._by_id)

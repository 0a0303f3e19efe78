"""What campaigns need from the world, as ports (Protocols). Each has a fake in ``tests/fakes.py`` kept
honest by the contract tests that also run against its DynamoDB adapter."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shared.campaigns.model import Campaign, CampaignState, StoredCampaign
from shared.campaigns.results import ArmCounts, Exposure, Measure
from shared.delivery.requests import DeliveryRequest
from shared.tracking.behaviours import Behaviour


class CampaignBook(Protocol):
    """The stored campaigns, compiled for the functions that count conversions."""

    @property
    def behaviours(self) -> frozenset[Behaviour]:
        """Every behaviour some campaign counts as a conversion."""
        ...


class CampaignRepository(Protocol):
    """Campaign documents, versioned as automations are (``/admin/campaigns``)."""

    def stored(self) -> list[StoredCampaign]: ...

    def campaign(self, campaign_id: str) -> StoredCampaign | None:
        """The current version (None: none stored, or deleted)."""
        ...

    def history(self, campaign_id: str) -> list[StoredCampaign]:
        """Every version, newest first (a deletion's tombstone included)."""
        ...

    def version(self, campaign_id: str, version: int) -> StoredCampaign | None:
        """One stored version (tombstones included): what a send froze."""
        ...

    def save(self, campaign: Campaign, at: datetime, expected_version: int | None) -> StoredCampaign: ...

    def remove(self, campaign_id: str, at: datetime, expected_version: int | None) -> StoredCampaign: ...

    def book(self) -> CampaignBook: ...


@dataclass(frozen=True, slots=True)
class LiveCampaign:
    """A campaign the planner has to look at (scheduled or sending), and since when it is due."""

    campaign_id: str
    due_at: datetime


class CampaignStates(Protocol):
    """Campaign states (``shared.campaigns.model.CampaignState``), and the small set of live ones."""

    def state(self, campaign_id: str) -> CampaignState | None:
        """The campaign's state, read consistently (None: a draft)."""
        ...

    def live(self) -> list[LiveCampaign]:
        """Every scheduled or sending campaign (one Query of a partition that holds only those)."""
        ...

    def create(self, state: CampaignState) -> bool:
        """Store the first state of a campaign (scheduled or sending) and make it live, unless it has one
        (False: nothing written)."""
        ...

    def write(self, state: CampaignState, expected_revision: int) -> bool:
        """Replace the state, at ``expected_revision + 1``, on condition that it is still at
        ``expected_revision``; a state no longer live (sent, cancelled) leaves the live set in the same
        write. False: it changed meanwhile (nothing written)."""
        ...


class Exposures(Protocol):
    """Exposures (one per contact and subject, in the contact's partition) and the result counters (per
    subject, arm and shard), each count made once."""

    def expose(self, exposures: Sequence[Exposure]) -> int:
        """Record each exposure unless the contact has one for its subject already, counting it as
        ``assigned`` to its arm in the same write; returns how many were new."""
        ...

    def exposures(self, contact_id: str) -> list[Exposure]:
        """The contact's exposures, with what was counted for each."""
        ...

    def count(
        self,
        contact_id: str,
        subject: str,
        arm: str,
        measure: Measure,
        at: datetime,
        *,
        windowed: bool = False,
    ) -> bool:
        """Count ``measure`` for the contact's exposure to ``subject``: once, in the same write as the
        exposure's mark (no exposure: nothing). ``windowed``: only if ``at`` falls in the exposure's
        window (a conversion, an unsubscribe). True if it counted now."""
        ...

    def counts(self, subject: str) -> dict[str, ArmCounts]:
        """The subject's counters by arm, shards summed (one Query)."""
        ...


class DeliveryQueue(Protocol):
    def enqueue(self, requests: Sequence[DeliveryRequest]) -> None: ...


class Templates(Protocol):
    """Whether a template exists (``/admin/templates``)."""

    def template(self, template_id: str) -> object | None: ...

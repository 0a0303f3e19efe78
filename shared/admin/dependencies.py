"""What the admin API works with: ports only, so any store that keeps the contract will do."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shared.automations.catalogue import AutomationRepository
from shared.automations.views import RunView, TimerView
from shared.campaigns.ports import CampaignRepository, CampaignStates, Exposures
from shared.clock import Clock
from shared.contacts.identity import ContactId
from shared.contacts.model import ContactRecord
from shared.contacts.views import ContactLog
from shared.delivery.ledger import SendRecord
from shared.delivery.ports import DeliveryControl, Suppressions
from shared.delivery.templates import TemplateRepository
from shared.engagement.funnel import Funnel
from shared.engagement.routing import Salesperson
from shared.recommendations.model import ModelSettings
from shared.scoring.catalogue import RuleRepository
from shared.scoring.decay import Decay
from shared.segments.catalogue import SegmentRepository
from shared.segments.members import SegmentMembers
from shared.usecases.analytics import AnalyticsHistory
from shared.usecases.backfills import Backfills
from shared.usecases.engagement import Engagement, FunnelSource
from shared.usecases.erasure import Erasure
from shared.usecases.metrics import MetricStore
from shared.usecases.recommendations import DEFAULT_SETTINGS, Catalog, PurchaseHistory, ServingReads
from shared.usecases.recording import EventLog, Profiles
from shared.usecases.search import ContactFinder


class FunnelRepository(FunnelSource, Protocol):
    """The funnel in force, and the stored one an administrator edits (version 0: the shipped default)."""

    def stored_funnel(self) -> tuple[Funnel, int]: ...

    def save_funnel(self, funnel: Funnel, version: int, at: datetime) -> None:
        """Store ``version``, on condition that ``version - 1`` is the stored one (else Conflict)."""
        ...


class AutomationRuns(Protocol):
    """What automations recorded and armed for a contact (``shared.usecases.automation.RunStore``)."""

    def runs(self, contact: ContactId, limit: int = 50) -> list[RunView]: ...

    def timers(self, contact: ContactId) -> list[TimerView]: ...


class SalesTeam(Protocol):
    """The salespeople leads are routed to."""

    def salespeople(self) -> list[Salesperson]: ...

    def save_salesperson(self, person: Salesperson, at: datetime) -> None: ...

    def remove_salesperson(self, person_id: str) -> None:
        """Remove one; an unknown id is NotFound."""
        ...


class SendRecords(Protocol):
    """The send ledger's entries of a contact (``shared.delivery.ports.SendLedger.records``)."""

    def records(self, contact_id: str, limit: int = 50) -> list[SendRecord]: ...


class SalesLeads(Protocol):
    """Issue 14: the leads routed to a salesperson (``shared.adapters.sales_leads``)."""

    def leads(self, salesperson_id: str, limit: int) -> list[ContactRecord]:
        """The ``limit`` most recently routed to them, newest first: profiles they own now, not merged away."""
        ...


@dataclass(frozen=True, slots=True)
class Admin:
    contacts: Profiles
    log: ContactLog
    rules: RuleRepository
    automations: AutomationRepository
    #: the runs and timers on the contact card
    runs: AutomationRuns
    funnels: FunnelRepository
    team: SalesTeam
    clock: Clock
    decay: Decay
    #: accepting a lead runs the engagement use case, and the card shows its stage history
    engagement: Engagement
    # issue 11: email templates (``/admin/templates``), and the postal address their previews show
    templates: TemplateRepository
    postal_address: str
    # --- issue 11, the deliveries card ---
    #: the send ledger (the contact's deliveries)
    ledger: SendRecords
    #: consent sources whose grants wait for the contact's confirmation (double opt-in)
    double_opt_in: frozenset[str]
    # --- issue 11: feedback ---
    #: the sending pause (``GET /admin/delivery``, ``POST /admin/delivery/resume``)
    control: DeliveryControl
    #: the suppression list (``PUT /admin/suppressions``, ``GET /admin/suppressions/{channel}/{address}``)
    suppressions: Suppressions
    #: erasing a contact (``DELETE /admin/contacts/{contactId}``)
    erasure: Erasure
    # --- issue 11, consent ---
    #: consent an administrator sets is an event in the contact's log (``shared.admin.consent``)
    consent_log: EventLog
    # --- issue 12: the nightly analytics job ---
    #: the contact's segment and risk changes (the card's ``analytics_history``)
    analytics: AnalyticsHistory
    # --- issue 13: segments ---
    #: the stored segments (``/admin/segments``)
    segments: SegmentRepository
    #: a segment's members, read from the membership index (``/admin/segments/{segmentId}/members``)
    segment_members: SegmentMembers
    # --- issue 13: campaigns ---
    #: campaign documents (``/admin/campaigns``), their states, the segments they go to (a count at save
    #: and send), and the exposures and counters their results (and automations' holdout reports) read
    campaigns: CampaignRepository
    campaign_states: CampaignStates
    campaign_results: Exposures
    # --- issue 13: lifecycle metrics ---
    #: the lifecycle counters (``/admin/metrics/...``)
    metrics: MetricStore
    # --- issue 13: back-fills ---
    #: the back-fill workflows, started by name (a segment saved: ``seg-<id>-v<version>``), and their runs
    backfills: Backfills
    # --- issue 14: the console's sales view ---
    #: a salesperson's leads, read from the contacts table's look-up index
    leads: SalesLeads
    # --- issue 14: contact search ---
    #: the search index and the profiles it leads to (``GET /admin/contacts?q=``)
    search: ContactFinder | None = None
    # --- issue 15: recommendations ---
    #: the product catalog (``/admin/catalog``)
    catalog: Catalog | None = None
    #: the nightly model and the catalog as serving reads them (``.../recommendations``)
    recommendations: ServingReads | None = None
    #: what a contact bought (the event log's purchase index), never recommended to it
    purchases: PurchaseHistory | None = None
    #: the deployed model's settings (``RECOMMENDATIONS_*``), as the nightly fit reads them
    recommendation_settings: ModelSettings = DEFAULT_SETTINGS

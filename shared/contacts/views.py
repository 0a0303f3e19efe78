"""What the admin API shows of a contact: the card, event-log pages and ledger pages."""

from __future__ import annotations

import json
import math
from collections.abc import Collection
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.analytics.facts import SEGMENT_NAMES, Analytics, RiskLevel
from shared.contacts.identity import ContactId
from shared.contacts.model import ContactRecord
from shared.delivery.consent import CONSENT_CHANNELS, ConsentRecord, ConsentState, state
from shared.scoring.views import Scores
from shared.tracking.proofs import Provenance
from shared.tracking.stored import expanded, provenance_of

#: Ingestion refuses deeper values; older or hand-written ones are cut here, so a read never fails.
MAX_SHOWN_DEPTH = 32
NOT_SHOWN = f"(nested more than {MAX_SHOWN_DEPTH} levels deep: not shown)"
_NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def shown(value: Any, depth: int = 1) -> Any:
    """A stored JSON value as the admin API can always render it, whatever was stored.

    Containers below ``MAX_SHOWN_DEPTH`` levels become ``NOT_SHOWN``; ``NaN`` and infinities (which
    JSON cannot carry) become the text ``"NaN"``, ``"Infinity"``, ``"-Infinity"``; text that is not
    valid Unicode keeps its valid characters.
    """
    if isinstance(value, dict | list):
        if depth > MAX_SHOWN_DEPTH:
            return NOT_SHOWN
        if isinstance(value, list):
            return [shown(item, depth + 1) for item in value]
        return {shown(str(key), depth): shown(item, depth + 1) for key, item in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return _NON_FINITE.get(value, "NaN")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "replace").decode("utf-8")
    return value


def _json_object(value: Any) -> dict[str, Any]:
    """A stored event body: readable JSON objects only; anything else shows as empty."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return {}
    return value if isinstance(value, dict) else {}


class LedgerLine(BaseModel):
    rule_id: str
    rule_version: int
    points: int
    dimension: str


class StoredEvent(BaseModel):
    """One entry of a contact's event log, with the score changes it caused."""

    model_config = ConfigDict(frozen=True)

    message_id: str
    #: its key in the log (``E#<time>#<messageId>`` or ``M#<messageId>``), when read from it
    key: str | None = None
    #: the token of the put that stored it (copies keep it; a replay's put has another), when read
    put: str | None = None
    #: a re-route copied it here and counted it (``folded``), when read
    folded: bool = False
    call: str
    behaviour: str
    event: str | None = None
    timestamp: datetime
    received_at: datetime
    revenue: Decimal | None = None
    body: dict[str, Any] = Field(default_factory=dict)
    ledger: list[LedgerLine] = Field(default_factory=list)

    @field_validator("body", mode="before")
    @classmethod
    def _body(cls, value: Any) -> dict[str, Any]:
        return _json_object(value)

    @field_validator("ledger", mode="before")
    @classmethod
    def _ledger(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value


class EventView(BaseModel):
    message_id: str
    type: str
    behaviour: str
    event: str | None
    timestamp: datetime
    received_at: datetime
    properties: dict[str, Any] | None = None
    traits: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    #: how far the call's identity was trusted: server, verified, browser (not checked) or unverified
    trust: Provenance = Provenance.BROWSER
    #: the userId an unverified call claimed: recorded, not used (the call counts for the visitor)
    claimed_user_id: str | None = None

    @classmethod
    def of(cls, stored: StoredEvent) -> EventView:
        body = expanded(stored.body)  # context.page whole again, as rules read it
        trust, claimed = provenance_of(stored.body)
        return cls(
            message_id=stored.message_id,
            type=stored.call,
            behaviour=stored.behaviour,
            event=stored.event,
            timestamp=stored.timestamp,
            received_at=stored.received_at,
            properties=shown(body["properties"]) if isinstance(body.get("properties"), dict) else None,
            traits=shown(body["traits"]) if isinstance(body.get("traits"), dict) else None,
            context=shown(body["context"]) if isinstance(body.get("context"), dict) else None,
            trust=trust,
            claimed_user_id=claimed,
        )


class EventPage(BaseModel):
    events: list[EventView]
    #: pass as ``?before=`` to get the next (older) page; absent on the last page
    next_cursor: str | None = None


class LedgerEntry(BaseModel):
    """Why the scores moved: one scored event and the rule lines it produced."""

    message_id: str
    behaviour: str
    event: str | None
    timestamp: datetime
    changes: list[LedgerLine]

    @classmethod
    def of(cls, stored: StoredEvent) -> LedgerEntry:
        return cls(
            message_id=stored.message_id,
            behaviour=stored.behaviour,
            event=stored.event,
            timestamp=stored.timestamp,
            changes=stored.ledger,
        )


class LedgerPage(BaseModel):
    entries: list[LedgerEntry]
    next_cursor: str | None = None


class EngagementView(BaseModel):
    """Where the contact stands now: quarter, gauge index (0-4), direction, current engagement."""

    quarter: str
    index: float
    direction: str
    current: float


class ConsentFactView(BaseModel):
    source: str
    at: datetime


class ConsentView(BaseModel):
    """Consent to marketing on one channel: its state (``granted``, ``pending`` the contact's
    confirmation, ``revoked``, ``none``), the latest grant and revocation, the confirmation."""

    state: ConsentState
    granted: ConsentFactView | None = None
    revoked: ConsentFactView | None = None
    confirmed_at: datetime | None = None

    @classmethod
    def of(cls, record: ConsentRecord | None, double_opt_in: Collection[str]) -> ConsentView:
        found = record or ConsentRecord()
        return cls(
            state=state(record, double_opt_in),
            granted=ConsentFactView(**found.granted.model_dump()) if found.granted else None,
            revoked=ConsentFactView(**found.revoked.model_dump()) if found.revoked else None,
            confirmed_at=found.confirmed_at,
        )


class ContactCard(BaseModel):
    """``GET /admin/contacts/{contactId}``: everything known about one contact."""

    contact_id: str
    user_id: str | None
    anonymous_ids: list[str]
    traits: dict[str, Any]
    tags: list[str]
    counts: dict[str, int]
    groups: list[str]
    event_count: int
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    revenue_total: float
    last_purchase_at: datetime | None
    stage: str
    engagement: EngagementView
    #: the salesperson the lead was routed to
    owner: str | None = None
    #: stage and quarter moves and routings, newest first
    stage_history: list[dict[str, Any]]
    scores: Scores
    ledger: list[LedgerEntry]
    next_ledger_cursor: str | None = None
    recent_events: list[EventView]
    next_events_cursor: str | None = None
    #: per channel (``email``, ``sms``): may marketing go, and the facts that say so
    consent: dict[str, ConsentView] = Field(default_factory=dict)
    #: issue 12: the RFM segment and churn outlook of the last nightly pass that scored the contact
    analytics: AnalyticsView | None = None
    #: issue 12: segment and risk level changes, newest first
    analytics_history: list[dict[str, Any]] = Field(default_factory=list)
    #: issue 13: the segments (``/admin/segments``) the contact is in, by id
    segments: list[str] = Field(default_factory=list)

    @classmethod
    def of(
        cls,
        record: ContactRecord,
        events: EventPage,
        ledger: LedgerPage,
        scores: Scores,
        stage: str,
        engagement: EngagementView,
        history: list[dict[str, Any]],
        double_opt_in: Collection[str] = (),
        analytics_history: list[dict[str, Any]] | None = None,
    ) -> ContactCard:
        return cls(
            contact_id=record.contact_id,
            user_id=record.user_id,
            anonymous_ids=sorted(record.anonymous_ids),
            traits=shown(record.traits),
            tags=sorted(record.tags),
            counts=record.counts,
            groups=sorted(record.groups),
            event_count=record.event_count,
            first_seen_at=record.first_seen_at,
            last_seen_at=record.last_seen_at,
            revenue_total=float(record.revenue_total),
            last_purchase_at=record.last_purchase_at,
            stage=stage,
            engagement=engagement,
            owner=record.owner,
            stage_history=history,
            scores=scores,
            ledger=ledger.entries,
            next_ledger_cursor=ledger.next_cursor,
            recent_events=events.events,
            next_events_cursor=events.next_cursor,
            consent={c: ConsentView.of(record.consent.get(c), double_opt_in) for c in CONSENT_CHANNELS},
            analytics=AnalyticsView.of(record.analytics) if record.analytics is not None else None,
            analytics_history=analytics_history or [],
            segments=sorted(record.segments),
        )


class ContactLog(Protocol):
    """Pages of a contact's event log and score ledger, newest first."""

    def events(self, contact: ContactId, limit: int, before: str | None = None) -> EventPage: ...

    def ledger(self, contact: ContactId, limit: int, before: str | None = None) -> LedgerPage: ...

    def ledger_since(self, contact: ContactId, since: datetime, limit: int) -> tuple[list[LedgerEntry], bool]:
        """Issue 14: the scored events whose time is ``since`` or later, newest first, at most ``limit``,
        and whether that is all of them (a bounded read of the window: the scores-over-time chart)."""
        ...


# --- issue 12: the nightly analytics job -------------------------------------------------------------------


class AnalyticsView(BaseModel):
    """The card's analytics: the RFM cell and segment (its id, as triggers and coupon tables name it, and
    its name), and the churn outlook, as the nightly pass scored them at the end of ``day``."""

    day: date
    segment: str | None = None
    segment_name: str | None = None
    r: int | None = None
    f: int | None = None
    m: int | None = None
    premium: bool = False
    #: the probability of no purchase within ``horizon_days``
    p_no_purchase: float | None = None
    #: how unusual the current silence is for this customer, and its level
    churn_risk: float | None = None
    risk_level: RiskLevel | None = None
    expected_next_purchase: date | None = None
    typical_gap_days: float | None = None
    horizon_days: int | None = None

    @classmethod
    def of(cls, analytics: Analytics) -> AnalyticsView:
        rfm, churn = analytics.rfm, analytics.churn
        return cls(
            day=analytics.day,
            **(
                {
                    "segment": rfm.segment,
                    "segment_name": SEGMENT_NAMES[rfm.segment],
                    "r": rfm.r,
                    "f": rfm.f,
                    "m": rfm.m,
                    "premium": rfm.premium,
                }
                if rfm is not None
                else {}
            ),
            **(
                {
                    "p_no_purchase": churn.p_no_purchase,
                    "churn_risk": churn.churn_risk,
                    "risk_level": churn.level,
                    "expected_next_purchase": churn.expected_next_purchase,
                    "typical_gap_days": churn.typical_gap_days,
                    "horizon_days": churn.horizon_days,
                }
                if churn is not None
                else {}
            ),
        )

"""A contact as read back from storage."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.analytics.facts import Analytics
from shared.delivery.consent import ConsentRecord
from shared.recommendations.model import RecentProduct
from shared.scoring.model import DimensionScore


class ContactRecord(BaseModel):
    """A contact's profile. Storage adapters fold their item layout into these fields."""

    # Built when first used: the tracking hot path reads a profile only to merge identities.
    model_config = ConfigDict(frozen=True, defer_build=True)

    contact_id: str
    user_id: str | None = None
    anonymous_ids: frozenset[str] = frozenset()
    traits: dict[str, Any] = Field(default_factory=dict)
    #: tag -> when it was added
    tags: dict[str, datetime] = Field(default_factory=dict)
    #: behaviour -> how many times
    counts: dict[str, int] = Field(default_factory=dict)
    groups: frozenset[str] = frozenset()
    event_count: int = 0
    first_seen_at: datetime | None = None
    last_seen_at: datetime | None = None
    revenue_total: Decimal = Decimal(0)
    last_purchase_at: datetime | None = None
    merged_into: str | None = None
    #: when it was merged away (with ``merged_into``)
    merged_at: datetime | None = None
    #: dimension ("global", "tag:<name>") -> stored score
    scores: dict[str, DimensionScore] = Field(default_factory=dict)
    #: limited rule id -> (times used, last day used)
    rule_uses: dict[str, tuple[int, str | None]] = Field(default_factory=dict)
    #: the lifecycle stage, when it was entered, and the global score at that moment
    stage: str | None = None
    stage_entered_at: datetime | None = None
    stage_baseline: DimensionScore | None = None
    #: when a contact merged away was counted out of its stage (``ContactRemoved``): it keeps ``stage``,
    #: which an erasure reads to announce the same removal again while it may be unpublished
    stage_removed_at: datetime | None = None
    #: the engagement quarter last recorded, and whether the contact is in a sales-ready episode
    quarter: str | None = None
    sales_ready: bool = False
    #: the salesperson the lead was routed to
    owner: str | None = None
    #: when it was last routed to them (issue 14: a salesperson's leads)
    routed_at: datetime | None = None
    #: bumped by every stage write: the optimistic-concurrency guard of the stage function
    stage_seq: int = 0
    #: when decay alone could next move the contact (the due-time index)
    due_at: datetime | None = None
    #: behaviour (or family, ``visit``) -> when last done, kept for the ones inactivity automations count
    last_times: dict[str, datetime] = Field(default_factory=dict)
    #: score thresholds automations watch that the contact is at or above (``<dimension>@<threshold>``)
    score_above: frozenset[str] = frozenset()
    #: automation -> until when it may not start again (a time, or ``never``): its re-entry mark
    entered: dict[str, str] = Field(default_factory=dict)
    #: the stream position of the newest tracked event folded in (text that sorts in stream order)
    aggregated_through: str | None = None
    #: consent facts by channel (``email``, ``sms``): the latest grant and revocation, the confirmation
    consent: dict[str, ConsentRecord] = Field(default_factory=dict)
    #: stage outputs written but not yet published
    pending_outputs: int = 0
    #: RFM segment and churn outlook, as of the last nightly analytics pass that scored the contact
    analytics: Analytics | None = None
    #: the segments (issue 13) the contact is in, as the stage function last evaluated them
    segments: frozenset[str] = frozenset()
    #: issue 15: the products it bought or viewed lately, one entry per product, newest first, at most
    #: 50 (``shared.recommendations.recent``): what its recommendations are made from
    recent_products: tuple[RecentProduct, ...] = ()
    #: decaying sums exactly as stored (attribute -> number text), for writes conditional on them
    stored_numbers: dict[str, str] = Field(default_factory=dict, repr=False, exclude=True)

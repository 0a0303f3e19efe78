"""What the nightly analytics pass knows of a contact: its RFM cell and segment, and its churn outlook.

Read back from the profile (``ContactRecord.analytics``) and written there by the apply step. No numpy.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RiskLevel = Literal["low", "medium", "high"]
RISK_LEVELS: tuple[RiskLevel, ...] = ("low", "medium", "high")

#: The named RFM segments, by id (what triggers and coupon tables name), with the names people read.
SEGMENT_NAMES: Mapping[str, str] = {
    "champions": "Champions",
    "loyal": "Loyal",
    "potential_loyalist": "Potential Loyalist",
    "new": "New",
    "promising": "Promising",
    "need_attention": "Need Attention",
    "about_to_sleep": "About To Sleep",
    "at_risk": "At Risk",
    "cant_lose_them": "Can't Lose Them",
    "hibernating": "Hibernating",
    "lost": "Lost",
}
#: ``SegmentChanged`` names an RFM segment ``rfm:<id>``: the segments of issue 13 have names of their own.
RFM_PREFIX = "rfm:"
Segment = Literal[
    "champions",
    "loyal",
    "potential_loyalist",
    "new",
    "promising",
    "need_attention",
    "about_to_sleep",
    "at_risk",
    "cant_lose_them",
    "hibernating",
    "lost",
]


class _Facts(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)


class RfmFacts(_Facts):
    """Quintile scores (5 best; recency reversed: 5 bought most recently) over the look-back window."""

    r: int = Field(ge=1, le=5)
    f: int = Field(ge=1, le=5)
    m: int = Field(ge=1, le=5)
    segment: Segment
    #: high-M customer (``m`` at or above the premium score): coupon tables can give more
    premium: bool = False


class ChurnFacts(_Facts):
    #: probability of no purchase within the horizon (calibrated; high for every one-off durable buyer)
    p_no_purchase: float = Field(ge=0, le=1)
    #: how unusual this customer's silence is for them: the probability that they have lapsed
    churn_risk: float = Field(ge=0, le=1)
    level: RiskLevel
    expected_next_purchase: date | None = None
    typical_gap_days: float | None = Field(None, ge=0)
    horizon_days: int = Field(90, ge=1)


class CustomerScore(_Facts):
    """One customer's row, as the ``lifecycle-analytics score`` command writes it and the nightly job
    applies it (the command's output columns, plus ``premium``)."""

    customer_id: str
    p_no_purchase: float = Field(ge=0, le=1)
    churn_risk: float = Field(ge=0, le=1)
    risk_level: RiskLevel
    expected_next_purchase: date | None = None
    typical_gap_days: float | None = None
    #: RFM quintiles; None when the customer bought nothing within the look-back window
    r: int | None = None
    f: int | None = None
    m: int | None = None
    segment: Segment | None = None
    premium: bool = False

    @property
    def rfm(self) -> RfmFacts | None:
        if self.segment is None or self.r is None or self.f is None or self.m is None:
            return None
        return RfmFacts(r=self.r, f=self.f, m=self.m, segment=self.segment, premium=self.premium)

    def churn(self, horizon_days: int) -> ChurnFacts:
        return ChurnFacts(
            p_no_purchase=self.p_no_purchase,
            churn_risk=self.churn_risk,
            level=self.risk_level,
            expected_next_purchase=self.expected_next_purchase,
            typical_gap_days=self.typical_gap_days,
            horizon_days=horizon_days,
        )


class Analytics(_Facts):
    """A contact's analytics as of the last nightly pass that scored it (``day``: its cut-off)."""

    day: date
    rfm: RfmFacts | None = None
    churn: ChurnFacts | None = None

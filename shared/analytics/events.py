"""What the nightly analytics pass announces on the bus (source ``lifecycle``), for automations.

Like the stage function's events (``shared.engagement.events``), each carries a stable ``event_id``
(the contact, the change and the day scored): a re-run of the same night, a retried step or a second
execution of a double-fired schedule announce the same ids, and consumers deduplicate on them.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.analytics.facts import RFM_PREFIX, RiskLevel, Segment


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, serialize_by_alias=True, populate_by_name=True, defer_build=True)

    event_id: str
    contact_id: str
    at: datetime
    #: the cut-off the nightly pass scored (its run)
    day: date
    #: the contact's first scoring (it was never scored before: ``from`` is null because there was no
    #: before, on the first night for everyone): what it already was, not a change. Automations ignore
    #: these unless their trigger says ``initial: true``. A contact that left every segment and came
    #: back, or any later change, is not initial.
    initial: bool = False


class SegmentChanged(_Event):
    """The contact entered (``change: entered``) or left an RFM segment, named ``rfm:<id>``: a move from
    one segment to another is announced twice, a ``left`` and an ``entered``, each with both ends."""

    detail_type: Literal["SegmentChanged"] = Field("SegmentChanged", exclude=True)
    segment: str
    change: Literal["entered", "left"]
    from_segment: str | None = Field(alias="from")
    to_segment: str | None = Field(alias="to")
    kind: Literal["rfm"] = "rfm"
    premium: bool = False
    r: int | None = None
    f: int | None = None
    m: int | None = None


class ChurnRiskChanged(_Event):
    detail_type: Literal["ChurnRiskChanged"] = Field("ChurnRiskChanged", exclude=True)
    from_level: RiskLevel | None = Field(alias="from")
    to_level: RiskLevel = Field(alias="to")
    churn_risk: float
    p_no_purchase: float
    expected_next_purchase: date | None = None
    typical_gap_days: float | None = None


AnalyticsOutput = SegmentChanged | ChurnRiskChanged


def rfm_segment(segment: Segment | None) -> str | None:
    """The name ``SegmentChanged`` gives an RFM segment (``rfm:at_risk``)."""
    return None if segment is None else RFM_PREFIX + segment

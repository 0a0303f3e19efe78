"""What the stage function announces on the EventBridge bus (source ``lifecycle``).

Every event carries a stable ``event_id``: the bus delivers at least once, so consumers deduplicate
on it. The schemas are documented in docs/engagement.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SOURCE = "lifecycle"


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, serialize_by_alias=True, populate_by_name=True)

    event_id: str
    contact_id: str
    at: datetime


class ContactStageChanged(_Event):
    detail_type: Literal["ContactStageChanged"] = Field("ContactStageChanged", exclude=True)
    from_stage: str | None = Field(alias="from")
    to_stage: str = Field(alias="to")
    phase: str
    reason: str
    engagement: float
    index: float
    direction: str
    #: when the contact entered the stage it left (``from``): time in stage for the lifecycle metrics.
    #: Absent on a first placement (no stage left) and on events published before issue 13.
    from_entered_at: datetime | None = None


class EngagementQuarterChanged(_Event):
    detail_type: Literal["EngagementQuarterChanged"] = Field("EngagementQuarterChanged", exclude=True)
    from_quarter: str | None = Field(alias="from")
    to_quarter: str = Field(alias="to")
    engagement: float
    index: float
    direction: str


class LeadRouted(_Event):
    detail_type: Literal["LeadRouted"] = Field("LeadRouted", exclude=True)
    salesperson_id: str
    salesperson_name: str
    salesperson_email: str
    stage: str
    engagement: float
    reason: str


class ScoreThresholdCrossed(_Event):
    """A score an automation watches crossed its threshold: upward by new points, downward by decay or
    by points taken away."""

    detail_type: Literal["ScoreThresholdCrossed"] = Field("ScoreThresholdCrossed", exclude=True)
    dimension: str
    threshold: float
    direction: Literal["up", "down"]
    engagement: float


class SegmentMembershipChanged(_Event):
    """The contact entered (``change: entered``) or left a segment of issue 13 (``kind: segment``).

    The detail type is ``SegmentChanged``, as the nightly pass announces RFM segments (``rfm:<id>``), so
    automations' ``segment`` trigger takes both; a contact may be in many segments at once, so ``from``
    and ``to`` are null. ``initial``: the entry or departure of a back-fill (a new or edited segment
    placing contacts that already were what it describes), which triggers ignore unless they say
    ``initial: true``."""

    detail_type: Literal["SegmentChanged"] = Field("SegmentChanged", exclude=True)
    segment: str
    change: Literal["entered", "left"]
    from_segment: None = Field(None, alias="from")
    to_segment: None = Field(None, alias="to")
    kind: Literal["segment"] = "segment"
    initial: bool = False


class ContactRemoved(_Event):
    """The contact left the funnel without moving to another stage: merged into another contact
    (``reason: merged``, ``into`` names it; that contact is placed on its own merits and announced as a
    move of its own) or erased (``reason: erased``). ``stage``: the stage it was in, entered at
    ``entered_at``. The lifecycle metrics count it out of that stage, so populations do not keep the
    contacts that are gone.

    Its id is stable per placement (``removal_id``): the stage function seeing a merge and an erasure may
    both announce one removal, which consumers count once."""

    detail_type: Literal["ContactRemoved"] = Field("ContactRemoved", exclude=True)
    stage: str
    entered_at: datetime | None = None
    reason: Literal["merged", "erased"]
    into: str | None = None


def removal_id(contact_id: str, entered_at: datetime | None) -> str:
    """The id of a contact's removal from the stage it entered at ``entered_at`` (one per placement: a
    contact id used again after an erasure is a new placement)."""
    placed = entered_at.isoformat() if entered_at is not None else "unknown"
    return f"{contact_id}#removed#{placed}"


Output = (
    ContactStageChanged
    | ContactRemoved
    | EngagementQuarterChanged
    | LeadRouted
    | ScoreThresholdCrossed
    | SegmentMembershipChanged
)

"""A net promoter score answer (issue 15): its category, and what recording it announces.

Pure. An answer is a score from 0 to 10 to "How likely are you to recommend us?": 9 and 10 make a
promoter, 7 and 8 a passive, 0 to 6 a detractor. Each contact answers each survey once (the first
answer recorded wins); recording it announces ``NpsAnswered`` on the bus (source ``lifecycle``), which
automations (service recovery for detractors, a referral ask for promoters) and the lifecycle metrics
(NPS over time, by segment and by stage) read. The bus delivers at least once: consumers deduplicate on
the stable ``event_id``.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Category = Literal["promoter", "passive", "detractor"]
Source = Literal["link", "track"]
CATEGORIES: tuple[Category, ...] = ("promoter", "passive", "detractor")
#: the event name of an answer sent as a track call from a server key
NPS_SUBMITTED = "NPS Submitted"


def category_of(score: int) -> Category:
    """Promoter (9-10), passive (7-8) or detractor (0-6)."""
    if not 0 <= score <= 10:
        raise ValueError(f"an NPS score is a whole number from 0 to 10, not {score}")
    if score >= 9:
        return "promoter"
    return "passive" if score >= 7 else "detractor"


def answer_event_id(survey_id: str, contact_id: str) -> str:
    """Stable per survey and contact: every retry or duplicate of an answer announces the same id."""
    digest = hashlib.sha256(f"{survey_id}\x1f{contact_id}".encode()).hexdigest()[:32]
    return f"nps-{digest}"


class NpsAnswered(BaseModel):
    """A contact answered a survey (recorded once per survey and contact). The comment is not on the bus
    (it is personal data, kept on the contact); ``has_comment`` says whether there is one."""

    model_config = ConfigDict(frozen=True, serialize_by_alias=True, populate_by_name=True, defer_build=True)

    detail_type: Literal["NpsAnswered"] = Field("NpsAnswered", exclude=True)
    event_id: str
    contact_id: str
    #: when it was answered
    at: datetime
    #: the survey: the id of the survey template it answers
    survey_id: str
    score: int = Field(ge=0, le=10)
    category: Category
    source: Source
    has_comment: bool = False
    #: the contact's lifecycle stage and segments (issue 13) when it answered: the reports' "by stage"
    #: and "by segment"
    stage: str | None = None
    segments: tuple[str, ...] = ()

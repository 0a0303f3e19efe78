"""An NPS answer as it arrives, and as it is recorded on the contact (issue 15). Pure.

Answers arrive as ``NPS Submitted`` track calls in the contact's event log: sent by a server key
(``properties: {survey_id, score, comment?}``), or written there by the survey's signed answer link
(``source: link``). A browser key's call is not an answer (anyone can send one). Recording keeps the
first answer per survey and contact: an answer item, the contact's ``nps_*`` traits (segments filter on
them), an ``NPS Answered`` event in the log (what scoring rules match: it is written once per answer,
whatever the path), and ``NpsAnswered`` on the bus.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.nps.answers import NPS_SUBMITTED, Category, NpsAnswered, Source, answer_event_id, category_of
from shared.tracking.behaviours import event_key
from shared.tracking.messages import TrackedEvent
from shared.tracking.proofs import Provenance

#: the log's event for a recorded answer: once per survey and contact, what scoring rules match
NPS_ANSWERED_EVENT = "NPS Answered"
#: a comment is kept up to this many characters (the answer page allows as many)
MAX_COMMENT_CHARS = 1000
#: a survey id as templates and the automations' ``nps`` trigger name them (``TemplateId``, ``RuleId``):
#: lower-case letters, digits and ``_.:-``, up to 64 characters; a track call naming another is no answer
MAX_SURVEY_CHARS = 64
SURVEY_ID = re.compile(r"[a-z0-9][a-z0-9_.:-]{0,63}")
#: the contact's traits an answer sets (the latest answer's, whichever survey)
TRAITS = ("nps_category", "nps_score", "nps_comment", "nps_answered_at")


class Submission(BaseModel):
    """An answer as sent: which survey, the score, the comment (empty: none), by link or track call."""

    model_config = ConfigDict(frozen=True)

    survey_id: str = Field(min_length=1, max_length=MAX_SURVEY_CHARS)
    score: int = Field(ge=0, le=10)
    comment: str = ""
    source: Source = "track"


class Answer(BaseModel):
    """A recorded answer: the first per survey and contact."""

    model_config = ConfigDict(frozen=True)

    survey_id: str
    contact_id: str
    score: int = Field(ge=0, le=10)
    category: Category
    comment: str = ""
    source: Source
    at: datetime

    @property
    def event_id(self) -> str:
        return answer_event_id(self.survey_id, self.contact_id)

    def traits(self) -> dict[str, Any]:
        """The contact's ``nps_category``, ``nps_score``, ``nps_comment`` (None: removed) and
        ``nps_answered_at``."""
        return {
            "nps_category": self.category,
            "nps_score": self.score,
            "nps_comment": self.comment or None,
            "nps_answered_at": self.at.isoformat(),
        }

    def announced(self, stage: str | None, segments: frozenset[str] | tuple[str, ...]) -> NpsAnswered:
        return NpsAnswered(
            event_id=self.event_id,
            contact_id=self.contact_id,
            at=self.at,
            survey_id=self.survey_id,
            score=self.score,
            category=self.category,
            source=self.source,
            has_comment=bool(self.comment),
            stage=stage,
            segments=tuple(sorted(segments)),
        )


_SUBMITTED = event_key(NPS_SUBMITTED)


def is_submission(event: TrackedEvent) -> bool:
    """An ``NPS Submitted`` track call (any key): whether to look further."""
    return event.call == "track" and event.event is not None and event_key(event.event) == _SUBMITTED


def submission_of(event: TrackedEvent) -> Submission | None:
    """The answer an ``NPS Submitted`` call from a server key (or the answer link) gives; None if the
    call is not one (another event, a browser key's) or its properties are not an answer (no survey, or
    one named otherwise than a template id, a score that is not a whole number from 0 to 10)."""
    if not is_submission(event) or event.provenance is not Provenance.SERVER:
        return None
    properties = event.properties
    survey, score = properties.get("survey_id"), _whole(properties.get("score"))
    if not isinstance(survey, str) or not SURVEY_ID.fullmatch(survey.strip()):
        return None
    if score is None or not 0 <= score <= 10:
        return None
    comment = properties.get("comment")
    source = properties.get("source")
    return Submission(
        survey_id=survey.strip(),
        score=score,
        comment=comment.strip()[:MAX_COMMENT_CHARS] if isinstance(comment, str) else "",
        source="link" if source == "link" else "track",
    )


def _whole(value: Any) -> int | None:
    """A whole number (``7``, ``7.0``), else None (``"7"``, ``true``, ``7.5``)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value.is_finite() or isinstance(value, float) and math.isfinite(value):
        return int(value) if value == int(value) else None
    return None


def answer_of(submission: Submission, contact_id: str, at: datetime) -> Answer:
    return Answer(
        survey_id=submission.survey_id,
        contact_id=contact_id,
        score=submission.score,
        category=category_of(submission.score),
        comment=submission.comment,
        source=submission.source,
        at=at,
    )


def link_message_id(survey_id: str, contact_id: str) -> str:
    """The messageId of the answer link's ``NPS Submitted`` event: one per survey and contact, so a
    second answer through the links is the same event (the first wins)."""
    digest = hashlib.sha256(f"{survey_id}\x1f{contact_id}".encode()).hexdigest()[:32]
    return f"nps-link:{digest}"


def answered_properties(answer: Answer) -> Mapping[str, Any]:
    """What the ``NPS Answered`` event of the log carries (no comment: rules need none)."""
    return {
        "survey_id": answer.survey_id,
        "score": answer.score,
        "category": answer.category,
        "source": answer.source,
        "has_comment": bool(answer.comment),
    }

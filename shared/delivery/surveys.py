"""Issue 15: what an NPS survey template sees of its survey: the question and one signed link per score.

A survey is a template with ``survey: {"question": ...}``; the survey's id is the template's id. Each
link carries a token (``shared.delivery.tokens``, purpose ``nps``) naming the survey, the contact and the
score, valid as long as the other links of the email (``linkDays``). Following one only shows the answer
form with that score checked (``GET /nps``: mail scanners follow links); the form's POST records it.
That form asks the survey template's question (``SurveyOfTemplate``: what the answer page reads of the
stored template, without the template engine). Pure: the secret and the time are passed in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints

from shared.delivery.links import NPS_PATH, TOKEN_PARAMETER
from shared.delivery.tokens import LinkClaims, link, sign

#: the scores a survey asks for, 0 to 10
SCORES = tuple(range(11))
#: an NPS survey's question, at most (``shared.delivery.templates.Survey``)
MAX_QUESTION_CHARS = 300


class SurveyQuestion(BaseModel):
    """A stored survey's question (``Survey``'s ``question``), as the answer page reads it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    question: Annotated[str, StringConstraints(min_length=1, max_length=MAX_QUESTION_CHARS)]


class SurveyOfTemplate(BaseModel):
    """What the answer page reads of a stored template's body: its survey's question, nothing else (the
    preferences function validates no subject or body, and loads no template engine to do it).
    ``survey`` None: the template is no survey."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    survey: SurveyQuestion | None = None


def answer_link(
    secret: bytes,
    base_url: str,
    *,
    survey: str,
    contact_id: str,
    channel: str,
    score: int,
    issued: datetime,
    expires: datetime,
) -> str:
    """The link answering ``survey`` with ``score`` for the contact."""
    claims = LinkClaims("nps", contact_id, channel, expires, issued=issued, survey=survey, score=score)
    return link(base_url, NPS_PATH, sign(secret, claims))


def survey_context(
    secret: bytes,
    base_url: str,
    *,
    survey: str,
    question: str,
    contact_id: str,
    channel: str,
    issued: datetime,
    expires: datetime,
) -> dict[str, Any]:
    """``survey`` in the template's context: ``id``, ``question``, ``links`` (the URL of each score, by
    score: ``{{ survey.links[10] }}``) and ``scores`` (``[{"score": 0, "url": ...}, ...]``, to loop over)."""
    links = [
        answer_link(
            secret,
            base_url,
            survey=survey,
            contact_id=contact_id,
            channel=channel,
            score=score,
            issued=issued,
            expires=expires,
        )
        for score in SCORES
    ]
    return {
        "id": survey,
        "question": question,
        "links": links,
        "scores": [{"score": score, "url": url} for score, url in zip(SCORES, links, strict=True)],
    }


def preview_context(base_url: str, *, survey: str, question: str) -> dict[str, Any]:
    """``survey`` as a preview shows it: the same shape, with links that carry no token (``preview-<n>``)."""
    links = [f"{base_url}{NPS_PATH}?{TOKEN_PARAMETER}=preview-{score}" for score in SCORES]
    return {
        "id": survey,
        "question": question,
        "links": links,
        "scores": [{"score": score, "url": url} for score, url in zip(SCORES, links, strict=True)],
    }

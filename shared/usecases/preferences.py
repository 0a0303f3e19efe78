"""The unsubscribe (RFC 8058 one-click) and consent confirmation links: the preferences function.

Each link carries a signed token (``shared.delivery.tokens``: contact, channel, purpose, expiry). A GET
only shows a page whose button POSTs to the same URL: link scanners follow GETs, and must not
unsubscribe or confirm anyone. A POST acts at once on the profile (``ConsentProfiles``: the revocation,
or the confirmation, written where the contact's profile is now) and records the fact as a
``Consent Updated`` event in the contact's log, keyed by the token, so the history shows it and a replay
is one event; the aggregation folds the event in later to the same facts. A contact that no longer exists
(erased) gets the same page and nothing written. A forged token is a 400 page, an expired one a 410;
never a stack trace.

Issue 15: an NPS survey's answer link (``/nps``) works the same way: a GET shows the answer form with
the link's score checked (asking the survey template's question, ``SurveyQuestions``) and records
nothing; the POST (the score, which the form may change, and an optional comment) records the answer as
an ``NPS Submitted`` server event in the contact's log, keyed by the survey and the contact, so a second
answer is the same event (the first wins). The events trigger records it from there
(``shared.usecases.nps``), as it records one sent by a server key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from shared.clock import Clock
from shared.contacts.consent import (
    CONFIRMATION_SOURCE,
    UNSUBSCRIBE_SOURCE,
    consent_event,
    consent_message_id,
)
from shared.contacts.identity import ContactId
from shared.contacts.model import ContactRecord
from shared.delivery import pages
from shared.delivery.consent import CONSENT_CHANNELS, ConsentChannel, ConsentFact
from shared.delivery.links import CONFIRM_PATH, NPS_PATH, UNSUBSCRIBE_PATH
from shared.delivery.pages import MAX_COMMENT_CHARS, Page
from shared.delivery.ports import Secrets
from shared.delivery.tokens import ExpiredToken, InvalidToken, LinkClaims, Purpose, verify
from shared.errors import DependencyUnavailable, InvalidRequest
from shared.usecases.nps import link_answer_event
from shared.usecases.recording import EventLog, NewEntry

PURPOSES: dict[str, Purpose] = {UNSUBSCRIBE_PATH: "unsubscribe", CONFIRM_PATH: "confirm", NPS_PATH: "nps"}
#: the answer form's score: 0 to 10, ASCII digits, no padding
_SCORE = re.compile(r"10|[0-9]")


class ConsentProfiles(Protocol):
    """Consent written at once on the profile holding the contact now (merges followed)."""

    def revoke(self, contact: ContactId, channel: str, fact: ConsentFact) -> ContactId | None:
        """Set the channel's revocation; the contact whose profile holds it, None if there is none."""
        ...

    def granted_since(self, contact: ContactId, channel: str, at: datetime) -> bool:
        """Whether the profile holding the contact has a grant on the channel at or after ``at``."""
        ...

    def confirm(self, contact: ContactId, channel: str, at: datetime) -> ContactId | None:
        """Set the channel's confirmation time (double opt-in); as ``revoke``."""
        ...


class Telemetry(Protocol):
    def count(self, name: str, value: int) -> None: ...


class ProfileReader(Protocol):
    def profile(self, contact: ContactId) -> ContactRecord | None: ...


class SurveyQuestions(Protocol):
    """Issue 15: a survey's question, from its template (the survey's id is the template's)."""

    def question(self, survey_id: str) -> str | None:
        """The survey template's question; None: no such template (never stored, or deleted), or a
        template without a survey. Raises if it cannot be read."""
        ...


@dataclass(frozen=True, slots=True)
class Preferences:
    clock: Clock
    secret: Secrets
    profiles: ConsentProfiles
    log: EventLog
    telemetry: Telemetry
    #: issue 15: the profiles, to find whom an NPS answer link's contact is now (merges followed; an
    #: erased contact's log is never written again)
    contacts: ProfileReader | None = None
    #: issue 15: the survey templates' questions, which the answer form asks (None: the standard question)
    surveys: SurveyQuestions | None = None


@dataclass(frozen=True, slots=True)
class LinkRequest:
    """What the preferences function reads of a request: the method, the route's path, the token, and
    (issue 15: the NPS answer form) the fields a POST's form sent."""

    method: str
    path: str
    token: str | None
    form: Mapping[str, str] = field(default_factory=dict)


def serve(request: LinkRequest, deps: Preferences) -> Page:
    purpose = PURPOSES.get(request.path)
    if purpose is None or request.method not in ("GET", "POST"):
        return pages.not_allowed()
    try:
        return _serve(request, purpose, request.token or "", deps)
    except ExpiredToken:
        deps.telemetry.count("LinksExpired", 1)
        return pages.expired_link()
    except InvalidToken:
        deps.telemetry.count("LinksRefused", 1)
        return pages.invalid_link()
    except DependencyUnavailable as exc:  # the secret, the profile or the log: the person tries again
        return pages.unavailable(exc.retry_after_seconds)


def _serve(request: LinkRequest, purpose: Purpose, token: str, deps: Preferences) -> Page:
    if purpose == "nps":
        return _nps(request, token, deps)
    claims = _claims(token, purpose, deps)
    channel: ConsentChannel = claims.channel  # type: ignore[assignment]  # checked in _claims
    if request.method == "GET":  # no effect: a scanner's GET must change nothing
        if purpose == "unsubscribe":
            return pages.ask_unsubscribe(token, channel)
        return pages.ask_confirmation(token, channel)
    if purpose == "unsubscribe":
        _unsubscribe(claims, channel, token, deps)
        return pages.unsubscribed(channel)
    _confirm(claims, channel, token, deps)
    return pages.confirmed(channel)


def _claims(token: str, purpose: Purpose, deps: Preferences) -> LinkClaims:
    claims = verify(deps.secret.key(), token, purpose, deps.clock.now())
    if claims.channel not in CONSENT_CHANNELS:
        raise InvalidToken("the link names no consent channel")
    try:
        ContactId.parse(claims.contact_id)
    except InvalidRequest as exc:
        raise InvalidToken("the link names no contact") from exc
    return claims


def _unsubscribe(claims: LinkClaims, channel: ConsentChannel, token: str, deps: Preferences) -> None:
    """RFC 8058: at once. The revocation on the profile, then the event (a replay is one event). A link
    replayed after the contact opted in again (a grant newer than the link) changes nothing."""
    now = deps.clock.now()
    contact = ContactId.parse(claims.contact_id)
    if claims.issued is not None and deps.profiles.granted_since(contact, channel, claims.issued):
        deps.telemetry.count("UnsubscribeOlderThanGrant", 1)
        return
    fact = ConsentFact(source=UNSUBSCRIBE_SOURCE, at=now)
    holder = deps.profiles.revoke(contact, channel, fact)
    if holder is None:
        deps.telemetry.count("LinksForUnknownContacts", 1)
        return
    event = consent_event(
        holder,
        message_id=consent_message_id("unsubscribe", token),
        at=now,
        source=UNSUBSCRIBE_SOURCE,
        granted={channel: False},
    )
    deps.log.append([NewEntry(holder, event, ())])
    deps.telemetry.count("Unsubscribed", 1)


def _confirm(claims: LinkClaims, channel: ConsentChannel, token: str, deps: Preferences) -> None:
    now = deps.clock.now()
    holder = deps.profiles.confirm(ContactId.parse(claims.contact_id), channel, now)
    if holder is None:
        deps.telemetry.count("LinksForUnknownContacts", 1)
        return
    event = consent_event(
        holder,
        message_id=consent_message_id("confirm", token),
        at=now,
        source=CONFIRMATION_SOURCE,
        confirmed=channel,
    )
    deps.log.append([NewEntry(holder, event, ())])
    deps.telemetry.count("ConsentConfirmed", 1)


# --- issue 15: an NPS survey's answer link ---------------------------------------------------------------


def _nps(request: LinkRequest, token: str, deps: Preferences) -> Page:
    """GET: the form, the link's score checked (nothing recorded). POST: the answer, once."""
    claims = verify(deps.secret.key(), token, "nps", deps.clock.now())
    if claims.survey is None or claims.score is None or not 0 <= claims.score <= 10:
        raise InvalidToken("the link names no survey or score")
    try:
        contact = ContactId.parse(claims.contact_id)
    except InvalidRequest as exc:
        raise InvalidToken("the link names no contact") from exc
    if request.method == "GET":
        return pages.ask_nps(token, claims.score, question=_question(claims.survey, deps))
    comment = request.form.get("comment", "").strip()
    score = _form_score(request.form.get("score"))
    if score is None:
        return pages.ask_nps(
            token,
            None,
            comment,
            "Choose a score from 0 to 10.",
            "score",
            question=_question(claims.survey, deps),
        )
    if len(comment) > MAX_COMMENT_CHARS:
        return pages.ask_nps(
            token,
            score,
            comment,
            f"A comment is at most {MAX_COMMENT_CHARS} characters.",
            "comment",
            question=_question(claims.survey, deps),
        )
    holder = _holder(contact, deps.contacts) if deps.contacts is not None else contact
    if holder is None:  # erased, or never known: the same page, nothing written
        deps.telemetry.count("LinksForUnknownContacts", 1)
        return pages.nps_thanks()
    event = link_answer_event(holder, survey=claims.survey, score=score, comment=comment, at=deps.clock.now())
    if deps.log.append([NewEntry(holder, event, ())]):
        deps.telemetry.count("NpsLinkAnswersRepeated", 1)  # answered before: the first answer counts
    else:
        deps.telemetry.count("NpsLinkAnswers", 1)
    return pages.nps_thanks()


def _question(survey: str, deps: Preferences) -> str:
    """The question the form asks: the survey template's, else the standard one. Only the form asks it (the
    thank-you page reads nothing), and it is wording: whatever happens to the template or to reading it,
    the form is shown and the answer can be recorded (a failed read is counted ``NpsQuestionsUnread``)."""
    if deps.surveys is None:
        return pages.NPS_QUESTION
    try:
        found = deps.surveys.question(survey)
    except Exception:  # noqa: BLE001 - a throttle, a denied read, a body that does not validate: the page
        deps.telemetry.count("NpsQuestionsUnread", 1)
        return pages.NPS_QUESTION
    return found or pages.NPS_QUESTION


def _form_score(value: str | None) -> int | None:
    """``0`` to ``10`` in ASCII digits, else None (``"²".isdigit()`` is true, ``int("²")`` raises)."""
    text = (value or "").strip()
    return int(text) if _SCORE.fullmatch(text) else None


def _holder(contact: ContactId, contacts: ProfileReader) -> ContactId | None:
    """The contact whose profile holds ``contact`` now (merges followed); None: erased, or never known."""
    for _ in range(4):
        record = contacts.profile(contact)
        if record is None:
            return None
        if not record.merged_into:
            return contact
        contact = ContactId.parse(record.merged_into)
    return None

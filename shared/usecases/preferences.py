"""The unsubscribe (RFC 8058 one-click) and consent confirmation links: the preferences function.

Each link carries a signed token (``shared.delivery.tokens``: contact, channel, purpose, expiry). A GET
only shows a page whose button POSTs to the same URL: link scanners follow GETs, and must not
unsubscribe or confirm anyone. A POST acts at once on the profile (``ConsentProfiles``: the revocation,
or the confirmation, written where the contact's profile is now) and records the fact as a
``Consent Updated`` event in the contact's log, keyed by the token, so the history shows it and a replay
is one event; the aggregation folds the event in later to the same facts. A contact that no longer exists
(erased) gets the same page and nothing written. A forged token is a 400 page, an expired one a 410;
never a stack trace.
"""

from __future__ import annotations

from dataclasses import dataclass
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
from shared.delivery import pages
from shared.delivery.consent import CONSENT_CHANNELS, ConsentChannel, ConsentFact
from shared.delivery.links import CONFIRM_PATH, UNSUBSCRIBE_PATH
from shared.delivery.pages import Page
from shared.delivery.ports import Secrets
from shared.delivery.tokens import ExpiredToken, InvalidToken, LinkClaims, Purpose, verify
from shared.errors import DependencyUnavailable, InvalidRequest
from shared.usecases.recording import EventLog, NewEntry

PURPOSES: dict[str, Purpose] = {UNSUBSCRIBE_PATH: "unsubscribe", CONFIRM_PATH: "confirm"}


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


@dataclass(frozen=True, slots=True)
class Preferences:
    clock: Clock
    secret: Secrets
    profiles: ConsentProfiles
    log: EventLog
    telemetry: Telemetry


@dataclass(frozen=True, slots=True)
class LinkRequest:
    """What the preferences function reads of a request: the method, the route's path, the token."""

    method: str
    path: str
    token: str | None


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

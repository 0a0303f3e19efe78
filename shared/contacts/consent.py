"""Consent facts carried by events, and the events that carry the facts recorded outside tracking.

The vocabulary (docs/tracking.md, "Consent"): from a server write key,

- ``identify`` traits ``email_opt_in`` and ``sms_consent``: ``true`` grants, ``false`` revokes; the
  source is the trait ``consent_source``;
- a ``Consent Updated`` track call with properties ``email_opt_in`` / ``sms_consent``, or ``channel``
  (``email``, ``sms``) and ``granted``; the source is the property ``source``;
- an ``Unsubscribed`` track call: the email channel (or the ``channel`` property's) revoked.

Only booleans count (``"yes"`` is not consent). Without a source, ``api``; each fact's time is the
event's. The aggregation folds the latest fact of each channel and kind into the profile
(``ContactChange.consent``); the admin API, the unsubscribe and confirmation links and the feedback
function record their facts as ``Consent Updated`` events built here (``consent_event``), so the
contact's history shows them and the aggregation folds them like any other. Pure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from shared.contacts.identity import ContactId
from shared.delivery.consent import CONSENT_CHANNELS, CONSENT_TRAITS, ConsentChannel, ConsentFact
from shared.tracking.behaviours import Behaviour, event_key
from shared.tracking.messages import TrackedEvent, rebuild_event
from shared.tracking.proofs import Provenance
from shared.tracking.stored import dumps, with_provenance

ConsentKind = Literal["granted", "revoked"]
#: the track call the facts recorded outside tracking are written as
CONSENT_EVENT = "Consent Updated"
#: the source of a fact that names none
DEFAULT_SOURCE = "api"
#: the identify trait that names the source of the consent traits beside it
SOURCE_TRAIT = "consent_source"
#: a source is kept to this many characters (it is stored on the profile with every fact)
MAX_SOURCE_LENGTH = 100
#: the sources of the facts recorded outside tracking
ADMIN_SOURCE = "admin"
UNSUBSCRIBE_SOURCE = "unsubscribe link"
CONFIRMATION_SOURCE = "confirmation link"


@dataclass(frozen=True, slots=True)
class ConsentChange:
    """One fact an event states: ``channel`` granted or revoked, by ``source``, at ``at``."""

    channel: ConsentChannel
    kind: ConsentKind
    source: str
    at: datetime


def consent_changes(event: TrackedEvent) -> list[ConsentChange]:
    """The consent facts the event states (none for most events)."""
    if event.call == "identify":
        found = _by_channel(event.traits)
        source = event.traits.get(SOURCE_TRAIT)
    elif event.call == "track" and event.behaviour is Behaviour.CONSENT_CHANGED:
        properties = event.properties
        if event_key(event.event or "") == "unsubscribed":
            channel = properties.get("channel")
            found = {channel if channel in CONSENT_CHANNELS else "email": False}
        else:
            found = _by_channel(properties)
            channel, granted = properties.get("channel"), properties.get("granted")
            if channel in CONSENT_CHANNELS and isinstance(granted, bool):
                found[channel] = granted
        source = properties.get("source")
    else:
        return []
    kept = (
        source.strip()[:MAX_SOURCE_LENGTH] if isinstance(source, str) and source.strip() else DEFAULT_SOURCE
    )
    return [
        ConsentChange(channel, "granted" if granted else "revoked", kept, event.timestamp)
        for channel, granted in found.items()
    ]


def _by_channel(values: Mapping[str, Any]) -> dict[ConsentChannel, bool]:
    return {
        channel: value
        for channel, name in CONSENT_TRAITS.items()
        if isinstance(value := values.get(name), bool)
    }


def latest_consent(events: Iterable[TrackedEvent]) -> dict[tuple[ConsentChannel, ConsentKind], ConsentFact]:
    """Per channel and kind, the latest fact the events state (a tie: the later event in the order given)."""
    latest: dict[tuple[ConsentChannel, ConsentKind], ConsentFact] = {}
    for event in events:
        for change in consent_changes(event):
            key = (change.channel, change.kind)
            if key not in latest or change.at >= latest[key].at:
                latest[key] = ConsentFact(source=change.source, at=change.at)
    return latest


def granted_channels(event: TrackedEvent) -> tuple[ConsentChannel, ...]:
    """The channels the event grants consent to."""
    return tuple(c.channel for c in consent_changes(event) if c.kind == "granted")


def consent_message_id(purpose: str, *parts: str) -> str:
    """A stable messageId for a fact recorded outside tracking: the same parts, the same event."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]
    return f"{purpose}:{digest}"


def consent_event(
    contact: ContactId,
    *,
    message_id: str,
    at: datetime,
    source: str,
    granted: Mapping[ConsentChannel, bool] | None = None,
    confirmed: ConsentChannel | None = None,
) -> TrackedEvent:
    """A ``Consent Updated`` call for the contact's log, as a server fact, untimed (its key is
    ``M#<message_id>``, so the same message id is one event): the channels ``granted`` (true) or revoked
    (false), or the channel the contact ``confirmed`` through the confirmation link (shown in the
    history; the profile's confirmation is written by the link itself, and no event confirms)."""
    properties: dict[str, Any] = {"source": source}
    for channel, value in (granted or {}).items():
        properties[CONSENT_TRAITS[channel]] = value
    if confirmed is not None:
        properties.update(channel=confirmed, confirmed=True)
    identity = {"userId": contact.value} if contact.kind == "user_id" else {"anonymousId": contact.value}
    body = with_provenance(
        {**identity, "event": CONSENT_EVENT, "properties": properties}, Provenance.SERVER, None
    )
    return rebuild_event(dumps(body), message_id=message_id, call="track", timestamp=at, received_at=at)

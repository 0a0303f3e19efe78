"""Write keys and what each may say.

A browser key is public (it sits in web pages), so it may report behaviour
only. Facts that move money, identity or consent need a server key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

from shared.errors import Forbidden, InvalidRequest
from shared.tracking.behaviours import SERVER_ONLY, event_key
from shared.tracking.messages import TrackedEvent
from shared.tracking.proofs import Provenance
from shared.tracking.rates import RateLimit


class Trust(StrEnum):
    BROWSER = "browser"
    SERVER = "server"


@dataclass(frozen=True, slots=True)
class Source:
    """Where calls come from: a website, an app, a back-end. Owns one or more write keys."""

    name: str
    trust: Trust
    #: the write key's own rate limit; None: the tracking function's default
    limit: RateLimit | None = None
    #: a browser key whose calls must prove their ``userId`` (``shared.tracking.proofs``)
    requires_proof: bool = False


#: Consent vocabularies (Segment, Shopify, HubSpot, Mautic, Salesforce, Braze, Intercom, Marketo,
#: Brevo...) read as words, so ``doNotContact``, ``do_not_contact`` and ``Do-Not Contact`` are alike.
#: A name is a consent trait when one of its words contains one of these...
_CONSENT_STEMS = ("consent", "gdpr", "ccpa", "lgpd", "unsubscrib", "blacklist", "blocklist", "denylist")
#: ...or is an opt-in or opt-out (``optin``, ``emailOptOut`` read as ``emailoptout``, ``optedOut``)...
_OPT_WORD = re.compile(r"opt(?:ed|ing|s)?(?:in|out)s?$|^opt(?:ed|ing)?(?:in|out)")
#: ...or has one of these word pairs (``opt in``, ``do not email``, Mautic's ``dnc``)...
_CONSENT_PAIRS = frozenset(
    {
        *((opt, way) for opt in ("opt", "opts", "opted", "opting") for way in ("in", "out")),
        ("do", "not"),
        ("legal", "basis"),  # HubSpot's hs_legal_basis
        ("category", "preferences"),  # Segment's consent object
    }
)
_CONSENT_WORDS = frozenset({"dnc", "dnt", "legalbasis", "categorypreferences"})
_CONSENT_PREFIXES = ("donot",)
#: ...or says (un)subscribed (``subscribed``, Braze's ``email_subscribe``)...
_SUBSCRIBE_SUFFIXES = ("subscribe", "subscribed", "subscribes")
#: ...or names a subscription or subscriber together with its state or a channel; billing traits
#: such as ``subscription_plan`` or ``subscription_id`` stay ordinary...
_SUBSCRIPTION_STEMS = ("subscription", "subscriber")
_STATE_STEMS = ("status", "state", "preference", "group", "list", "channel", "topic")
#: ...or accepts, allows or suspends a channel (Shopify's ``accepts_marketing``, Marketo's
#: ``marketingSuspended``, Mailchimp's ``marketing_permissions``).
_PERMISSION_STEMS = ("accept", "allow", "permission", "preference", "suppress", "suspend")
_CHANNEL_STEMS = (
    "mail",
    "newsletter",
    "sms",
    "marketing",
    "push",
    "phone",
    "whatsapp",
    "promo",
    "communication",
)

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
#: How many consent traits, and how much of each path, a refusal names.
_SHOWN, _PATH_SHOWN = 5, 100


def words(name: str) -> tuple[str, ...]:
    """A trait name as lower-case words, whatever its convention (camelCase, snake, kebab, spaces)."""
    return tuple(w for w in _NON_ALNUM.split(_CAMEL.sub(" ", name).lower()) if w)


@lru_cache(maxsize=4096)
def is_consent_trait(name: str) -> bool:
    """Whether a trait records consent or a contact permission; changing one is a server-only fact."""
    parts = words(name)
    joined = "".join(parts)
    if any(stem in word for word in parts for stem in _CONSENT_STEMS):
        return True
    if any(_OPT_WORD.search(word) for word in parts):
        return True
    if _CONSENT_PAIRS.intersection(zip(parts, parts[1:])) or _CONSENT_WORDS.intersection(parts):
        return True
    if any(word.startswith(_CONSENT_PREFIXES) or word.endswith(_SUBSCRIBE_SUFFIXES) for word in parts):
        return True
    channel = any(stem in joined for stem in _CHANNEL_STEMS)
    if any(stem in joined for stem in _SUBSCRIPTION_STEMS):
        return channel or any(stem in joined for stem in _STATE_STEMS)
    return channel and any(word.startswith(_PERMISSION_STEMS) for word in parts)


def consent_traits(traits: Mapping[str, Any]) -> list[str]:
    """Paths of the consent traits anywhere in ``traits`` (``preferences.unsubscribed``), sorted."""
    found: list[str] = []
    _find_consent(traits, "", found)
    return sorted(found)


def _find_consent(value: Any, path: str, found: list[str]) -> None:
    if isinstance(value, Mapping):
        for name, item in value.items():
            where = f"{path}.{name}" if path else str(name)
            if is_consent_trait(str(name)):
                found.append(where)
            else:
                _find_consent(item, where, found)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _find_consent(item, f"{path}[{index}]", found)


def authorise(source: Source, events: Iterable[TrackedEvent]) -> None:
    """Raise ``Forbidden`` if a browser key reports a server-only fact; nothing is written then."""
    if source.trust is Trust.SERVER:
        return
    for event in events:
        if event.behaviour in SERVER_ONLY:
            what = f"{event.call} call" if event.call == "alias" else f"{event.event!r}"
            raise Forbidden(
                f"{what} (messageId {event.message_id}) is accepted only from a server write key",
                code="server_key_required",
            )
        consent = consent_traits(event.traits) if event.call == "identify" else []
        if consent:
            shown = ", ".join(path[:_PATH_SHOWN] for path in consent[:_SHOWN])
            if len(consent) > _SHOWN:
                shown += f" and {len(consent) - _SHOWN} more"
            raise Forbidden(
                f"consent traits {shown} (messageId {event.message_id}) are accepted only from a server "
                "write key",
                code="server_key_required",
            )


#: The messageIds of the events the product writes into the contact's log itself, by their shape: the NPS
#: answer link's ``NPS Submitted`` (``nps-link:<32 hex>``) and the recorded ``NPS Answered``
#: (``nps-<32 hex>``), the unsubscribe and confirmation links' and the admin API's consent and tag events
#: (``unsubscribe:``, ``confirm:``, ``admin-consent:``, ``admin-tag:`` and 32 hex), opens and clicks
#: (``ses-<40 hex>``) and an automation's points (``automation:...``). Each is computable from its parts,
#: and the log keeps the first event under a key, so a call sent first under one of them would stand in
#: for the product's fact. No SDK makes such ids (they are UUIDs or ``ajs-...``), so a tracking call that
#: carries one is refused, whatever its key.
RESERVED_MESSAGE_ID = re.compile(
    r"nps-(?:link:)?[0-9a-f]{32}|(?:unsubscribe|confirm|admin-consent|admin-tag):[0-9a-f]{32}"
    r"|ses-[0-9a-f]{40}|automation:.*",
    re.DOTALL,
)

#: Events the product records itself (an NPS answer as the answer link or a back-end sends it, and as it
#: is recorded): they count (as an answer, for scoring rules) only with a server's provenance. A browser
#: key's is kept in the log as any custom event, and does nothing more.
SERVER_MADE_EVENTS = frozenset({"nps submitted", "nps answered"})

#: Traits the product sets itself (the latest NPS answer's): a browser key's ``identify`` cannot set
#: them (they are ignored, the rest of the call is kept).
SERVER_MADE_TRAIT_PREFIX = "nps_"


def refuse_reserved_ids(events: Iterable[TrackedEvent], *, batch: bool) -> None:
    """Raise ``InvalidRequest`` (400, ``reserved_message_id``) if a call's messageId is in a namespace of
    the product's own events (``RESERVED_MESSAGE_ID``); nothing is written then."""
    for index, event in enumerate(events):
        if RESERVED_MESSAGE_ID.fullmatch(event.message_id):
            field = f"batch[{index}].messageId" if batch else "messageId"
            raise InvalidRequest(
                f"{field}: this messageId has the shape of the ids of the events Lifecycle writes itself "
                "(nps-, ses-, unsubscribe:, confirm:, admin-consent:, admin-tag: and a digest, or "
                "automation:); send a UUID",
                code="reserved_message_id",
                field=field,
            )


def counts_as_server_fact(event: TrackedEvent) -> bool:
    """False for a product-made event (``SERVER_MADE_EVENTS``) that did not come from a server: kept, but
    neither an answer nor scored. True for every other event."""
    if event.call != "track" or event.event is None or event_key(event.event) not in SERVER_MADE_EVENTS:
        return True
    return event.provenance is Provenance.SERVER


def server_made_trait(name: str) -> bool:
    """Whether a trait is one the product sets itself (``nps_...``): a browser key's is ignored."""
    return name.startswith(SERVER_MADE_TRAIT_PREFIX)

"""Write keys and what each may say.

A browser key is public (it sits in web pages), so it may report behaviour
only. Facts that move money, identity or consent need a server key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from shared.errors import Forbidden
from shared.tracking.behaviours import SERVER_ONLY
from shared.tracking.messages import TrackedEvent


class Trust(StrEnum):
    BROWSER = "browser"
    SERVER = "server"


@dataclass(frozen=True, slots=True)
class Source:
    """Where calls come from: a website, an app, a back-end. Owns one or more write keys."""

    name: str
    trust: Trust


#: Identify traits that record consent; changing them is a server-only fact.
CONSENT_TRAITS = frozenset(
    {
        "consent",
        "emailconsent",
        "smsconsent",
        "marketingconsent",
        "gdprconsent",
        "unsubscribed",
        "optin",
        "emailoptin",
        "smsoptin",
        "optout",
        "emailoptout",
        "smsoptout",
        "donotcontact",
        "donotemail",
        "subscribed",
        "subscriptionstatus",
    }
)
_NON_ALNUM = re.compile(r"[^a-z0-9]")


def is_consent_trait(name: str) -> bool:
    return _NON_ALNUM.sub("", name.lower()) in CONSENT_TRAITS


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
        consent = (
            sorted(name for name in event.traits if is_consent_trait(name))
            if event.call == "identify"
            else []
        )
        if consent:
            raise Forbidden(
                f"consent traits {consent} (messageId {event.message_id}) are accepted only from a server write key",
                code="server_key_required",
            )

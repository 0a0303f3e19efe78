"""Which behaviour a Segment call shows: the documented mapping table.

Track event names follow the Segment spec (E-commerce, Email, Live Chat, Mobile
and B2B specs) and are matched case-insensitively, with ``_`` and ``-`` read
as spaces, so ``order_completed`` is ``Order Completed``. Unknown names are kept
as custom behaviours. ``docs/tracking.md`` shows the same table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qs, urlsplit


class Behaviour(StrEnum):
    VISIT = "visit"
    VISIT_FROM_ADS = "visit_from_ads"
    VISIT_FROM_SEARCH = "visit_from_search"
    LINK_CLICKED = "link_clicked"
    EMAIL_OPENED_MAILING = "email_opened_mailing"
    EMAIL_OPENED_PERSONAL = "email_opened_personal"
    EMAIL_CLICKED_MAILING = "email_clicked_mailing"
    EMAIL_CLICKED_PERSONAL = "email_clicked_personal"
    LIKE = "like"
    DISLIKE = "dislike"
    COMMENT_ADDED = "comment_added"
    COMMENT_REMOVED = "comment_removed"
    PRODUCT_VIEWED = "product_viewed"
    ADDED_TO_CART = "added_to_cart"
    CART_ABANDONED = "cart_abandoned"
    PURCHASE = "purchase"
    REFUND = "refund"
    ORDER_CANCELLED = "order_cancelled"
    CALL_CENTRE_CONTACT = "call_centre_contact"
    STORE_VISIT = "store_visit"
    LIVE_CHAT = "live_chat"
    APP_INSTALLED = "app_installed"
    APP_USED = "app_used"
    WEBINAR_ATTENDED = "webinar_attended"
    WEBINAR_QUESTION_ASKED = "webinar_question_asked"
    CONSENT_CHANGED = "consent_changed"
    IDENTIFIED = "identified"
    ALIASED = "aliased"
    GROUPED = "grouped"
    CUSTOM = "custom"


#: Facts that move money, identity or consent: accepted only from a server write key.
SERVER_ONLY = frozenset(
    {
        Behaviour.PURCHASE,
        Behaviour.REFUND,
        Behaviour.ORDER_CANCELLED,
        Behaviour.CONSENT_CHANGED,
        Behaviour.ALIASED,
    }
)

_EMAIL = "email"  # resolved by _email_behaviour

TRACK_EVENTS: Mapping[str, Behaviour | str] = {
    # E-commerce spec
    "product viewed": Behaviour.PRODUCT_VIEWED,
    "product added": Behaviour.ADDED_TO_CART,
    "product added to cart": Behaviour.ADDED_TO_CART,
    "cart abandoned": Behaviour.CART_ABANDONED,
    "checkout abandoned": Behaviour.CART_ABANDONED,
    "order completed": Behaviour.PURCHASE,
    "order refunded": Behaviour.REFUND,
    "order cancelled": Behaviour.ORDER_CANCELLED,
    "order canceled": Behaviour.ORDER_CANCELLED,
    # Links and email spec
    "link clicked": Behaviour.LINK_CLICKED,
    "email opened": _EMAIL,
    "email link clicked": _EMAIL,
    "unsubscribed": Behaviour.CONSENT_CHANGED,
    # Engagement
    "liked": Behaviour.LIKE,
    "content liked": Behaviour.LIKE,
    "product liked": Behaviour.LIKE,
    "disliked": Behaviour.DISLIKE,
    "content disliked": Behaviour.DISLIKE,
    "product disliked": Behaviour.DISLIKE,
    "comment added": Behaviour.COMMENT_ADDED,
    "comment posted": Behaviour.COMMENT_ADDED,
    "comment removed": Behaviour.COMMENT_REMOVED,
    "comment deleted": Behaviour.COMMENT_REMOVED,
    # Offline and other channels
    "call center contacted": Behaviour.CALL_CENTRE_CONTACT,
    "call centre contacted": Behaviour.CALL_CENTRE_CONTACT,
    "store visited": Behaviour.STORE_VISIT,
    "live chat conversation started": Behaviour.LIVE_CHAT,
    "live chat started": Behaviour.LIVE_CHAT,
    "application installed": Behaviour.APP_INSTALLED,
    "application opened": Behaviour.APP_USED,
    "webinar attended": Behaviour.WEBINAR_ATTENDED,
    "webinar question asked": Behaviour.WEBINAR_QUESTION_ASKED,
    # Consent
    "consent updated": Behaviour.CONSENT_CHANGED,
    "segment consent preference updated": Behaviour.CONSENT_CHANGED,
}

#: Not a Segment call: points an automation awarded, recorded in the contact's log with their ledger
#: (``properties.ledger``) by the automation itself. The aggregation folds them into the scores only:
#: they are not activity (no visit time, event count or behaviour count), and no rule scores them.
LEDGER_CALL = "automation"

CALL_BEHAVIOURS: Mapping[str, Behaviour] = {
    "identify": Behaviour.IDENTIFIED,
    "alias": Behaviour.ALIASED,
    "group": Behaviour.GROUPED,
    LEDGER_CALL: Behaviour.CUSTOM,
}

#: Ad-network click ids: a landing with one of these came from a paid ad.
CLICK_IDS = frozenset(
    {
        "gclid",
        "gbraid",
        "wbraid",
        "dclid",
        "fbclid",
        "msclkid",
        "ttclid",
        "twclid",
        "li_fat_id",
        "yclid",
        "epik",
        "sccid",
    }
)
#: UTM mediums that mark owned or organic traffic; any other tagged campaign is advertising.
UNPAID_MEDIUMS = frozenset(
    {"email", "e-mail", "newsletter", "sms", "push", "organic", "referral", "social", "qr"}
)
#: Referrer hosts of search engines and the query parameter that holds the phrase.
SEARCH_ENGINES: Mapping[str, tuple[str, ...]] = {
    "google": ("q",),
    "bing": ("q",),
    "duckduckgo": ("q",),
    "yahoo": ("p", "q"),
    "yandex": ("text",),
    "baidu": ("wd", "word"),
    "ecosia": ("q",),
    "qwant": ("q",),
    "startpage": ("query", "q"),
    "brave": ("q",),
    "naver": ("query",),
    "seznam": ("q",),
}
PERSONAL_MAILBOX = frozenset({"personal", "one_to_one", "1:1", "sales", "direct"})

_SEPARATORS = re.compile(r"[\s_\-]+")


def event_key(name: str) -> str:
    """``Order_Completed`` and ``order-completed`` both read as ``order completed``."""
    return _SEPARATORS.sub(" ", name).strip().lower()


@dataclass(frozen=True, slots=True)
class Classification:
    behaviour: Behaviour
    #: What rules can match on: referrer source, search phrase, campaign, email kind...
    attributes: Mapping[str, str]


def classify(
    call: str, event: str | None, properties: Mapping[str, Any], context: Mapping[str, Any]
) -> Classification:
    if call in ("page", "screen"):
        return _visit(properties, context)
    if call == "track":
        mapped = TRACK_EVENTS.get(event_key(event or ""), Behaviour.CUSTOM)
        if mapped == _EMAIL:
            return _email(event_key(event or ""), properties)
        return Classification(Behaviour(mapped), {})
    return Classification(CALL_BEHAVIOURS[call], {})


def _email(key: str, properties: Mapping[str, Any]) -> Classification:
    kind = next(
        (str(properties[k]).lower() for k in ("mailbox", "email_type", "email_kind") if properties.get(k)),
        "mailing",
    )
    personal = kind in PERSONAL_MAILBOX
    if key == "email opened":
        behaviour = Behaviour.EMAIL_OPENED_PERSONAL if personal else Behaviour.EMAIL_OPENED_MAILING
    else:
        behaviour = Behaviour.EMAIL_CLICKED_PERSONAL if personal else Behaviour.EMAIL_CLICKED_MAILING
    attributes = {"mailbox": "personal" if personal else "mailing"}
    for key_name in ("campaign_id", "email_id"):
        if properties.get(key_name) is not None:
            attributes[key_name] = str(properties[key_name])
    return Classification(behaviour, attributes)


def _visit(properties: Mapping[str, Any], context: Mapping[str, Any]) -> Classification:
    page = context.get("page") if isinstance(context.get("page"), Mapping) else {}
    url = _text(properties.get("url")) or _text(page.get("url"))
    query = _query(url) if url else {}
    attributes: dict[str, str] = {}
    if url:
        attributes["url"] = url
    campaign = context.get("campaign") if isinstance(context.get("campaign"), Mapping) else {}
    utm = {
        k: _text(campaign.get(k)) or query.get(f"utm_{k}", "")
        for k in ("source", "medium", "name", "term", "content")
    }
    utm = {k: v for k, v in utm.items() if v}
    for key, value in utm.items():
        attributes[f"utm_{key}"] = value
    click_ids = sorted(CLICK_IDS.intersection(k.lower() for k in query))
    if click_ids:
        attributes["click_id"] = click_ids[0]
        return Classification(Behaviour.VISIT_FROM_ADS, attributes)
    if utm and utm.get("medium", "").lower() not in UNPAID_MEDIUMS:
        return Classification(Behaviour.VISIT_FROM_ADS, attributes)
    referrer = _text(properties.get("referrer")) or _text(page.get("referrer"))
    if referrer:
        attributes["referrer"] = referrer
        engine, phrase = _search(referrer)
        if engine:
            attributes["search_engine"] = engine
            if phrase:
                attributes["search_phrase"] = phrase
            return Classification(Behaviour.VISIT_FROM_SEARCH, attributes)
    return Classification(Behaviour.VISIT, attributes)


def _search(referrer: str) -> tuple[str | None, str | None]:
    try:
        parts = urlsplit(referrer)
    except ValueError:
        return None, None
    labels = (parts.hostname or "").split(".")
    for engine, params in SEARCH_ENGINES.items():
        if engine in labels[:-1]:
            query = parse_qs(parts.query)
            phrase = next((query[p][0] for p in params if query.get(p)), None)
            return engine, phrase
    return None, None


def _query(url: str) -> dict[str, str]:
    try:
        return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    except ValueError:
        return {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""

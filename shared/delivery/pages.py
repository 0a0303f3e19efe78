"""The pages the unsubscribe and confirmation links show: plain HTML, no script, no PII.

A page says what happened or what its button does; a button is a form that POSTs to the same URL
(the token stays in the query). Headers keep them out of caches and referrers (the token is in the URL)
and allow nothing but the page's own style and a form posting back to the site. Pure.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from html import escape
from urllib.parse import quote

from shared.delivery.links import TOKEN_PARAMETER

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}"
    "h1{font-size:1.5rem}button{font-size:1rem;padding:.6rem 1.2rem;cursor:pointer}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
#: no script, no images, no frames; the one inline style by its hash; forms post back here only
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS: dict[str, str] = {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
}


@dataclass(frozen=True, slots=True)
class Page:
    status: int
    title: str
    message: str
    #: a form posting back to the link: its button's label, and the link's token
    button: str | None = None
    token: str | None = None
    #: seconds, for a 503
    retry_after: int | None = None
    #: the form's body is RFC 8058's ``List-Unsubscribe=One-Click``
    one_click: bool = False

    def html(self) -> str:
        form = ""
        if self.button is not None and self.token is not None:
            action = f"?{TOKEN_PARAMETER}={quote(self.token, safe='')}"
            form = (
                f'<form method="post" action="{escape(action)}">'
                + (
                    '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
                    if self.one_click
                    else ""
                )
                + f'<button type="submit">{escape(self.button)}</button></form>'
            )
        return (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<meta name="robots" content="noindex">'
            f"<title>{escape(self.title)}</title><style>{_STYLE}</style></head>"
            f"<body><h1>{escape(self.title)}</h1><p>{escape(self.message)}</p>{form}</body></html>"
        )

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return dict(PAGE_HEADERS)
        return {**PAGE_HEADERS, "retry-after": str(self.retry_after)}


CHANNEL_WORDS = {"email": "marketing emails", "sms": "marketing text messages"}


def ask_unsubscribe(token: str, channel: str) -> Page:
    return Page(
        200,
        "Unsubscribe?",
        f"Press the button to stop receiving {CHANNEL_WORDS.get(channel, 'marketing messages')} from us. "
        "Nothing changes until you press it.",
        button="Unsubscribe",
        token=token,
        one_click=True,
    )


def unsubscribed(channel: str) -> Page:
    return Page(
        200,
        "You are unsubscribed",
        f"You will no longer receive {CHANNEL_WORDS.get(channel, 'marketing messages')} from us.",
    )


def ask_confirmation(token: str, channel: str) -> Page:
    return Page(
        200,
        "Confirm your subscription",
        f"Press the button to confirm that you want to receive {CHANNEL_WORDS.get(channel, 'messages')} "
        "from us.",
        button="Confirm",
        token=token,
    )


def confirmed(channel: str) -> Page:
    return Page(
        200,
        "Thank you",
        f"Your subscription to our {CHANNEL_WORDS.get(channel, 'messages')} is confirmed.",
    )


def invalid_link() -> Page:
    return Page(
        400,
        "This link is not valid",
        "The link may have been cut short or changed. Please use the link from the email as it is.",
    )


def expired_link() -> Page:
    return Page(
        410,
        "This link has expired",
        "Please use the link in a more recent email from us.",
    )


def not_allowed() -> Page:
    return Page(405, "Not allowed", "This page only answers GET and POST.")


def unavailable(retry_after: int) -> Page:
    return Page(
        503,
        "Please try again",
        "We could not do this just now. Please try again in a moment.",
        retry_after=retry_after,
    )


def failed() -> Page:
    return Page(500, "Something went wrong", "We could not do this. Please try again later.")

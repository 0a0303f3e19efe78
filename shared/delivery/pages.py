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
    # issue 15: the NPS answer form (eleven scores that wrap on a phone, a comment box, a visible focus)
    "fieldset{border:0;padding:0;margin:0 0 1rem}legend{margin-bottom:.5rem}"
    ".scores{display:flex;flex-wrap:wrap;gap:.25rem}.scores label{display:inline-flex;align-items:center;"
    "gap:.2rem;padding:.3rem .45rem;border:1px solid #888;border-radius:.3rem;cursor:pointer}"
    "textarea{display:block;width:100%;box-sizing:border-box;font:inherit;margin:.25rem 0 1rem}"
    ".error{color:#a00}:focus-visible{outline:3px solid #1a5fb4;outline-offset:2px}"
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


# -- issue 15: the NPS answer page ----------------------------------------------------------------------

#: the standard NPS question: the page asks the survey template's own question, and this one when it has
#: none to ask (no such template, a template without a survey, or the template could not be read)
NPS_QUESTION = "How likely are you to recommend us to a friend or colleague?"
#: what a comment may hold, at most (characters)
MAX_COMMENT_CHARS = 1000


@dataclass(frozen=True, slots=True)
class SurveyPage(Page):
    """The answer form: the question (the survey template's, marketer text: escaped), the scores 0 to 10
    (the link's one checked), an optional comment, a send button; ``error`` says what to correct (shown
    next to the field it names)."""

    question: str = NPS_QUESTION
    score: int | None = None
    comment: str = ""
    error: str | None = None
    error_field: str | None = None

    def html(self) -> str:
        action = f"?{TOKEN_PARAMETER}={quote(self.token or '', safe='')}"
        score_error = self.error if self.error_field == "score" else None
        comment_error = self.error if self.error_field == "comment" else None
        scores = "".join(
            f'<label><input type="radio" name="score" value="{n}"'
            + (" checked" if n == self.score else "")
            + f"> {n}</label>"
            for n in range(11)
        )
        described = ' aria-describedby="score-error"' if score_error else ""
        form = (
            f'<form method="post" action="{escape(action)}">'
            f"<fieldset{described}><legend>{escape(self.question)} "
            "(0: not at all likely, 10: extremely likely)</legend>"
            f'<div class="scores">{scores}</div>'
            + (f'<p id="score-error" class="error">{escape(score_error)}</p>' if score_error else "")
            + "</fieldset>"
            '<label for="comment">What is the main reason for your score? (optional)</label>'
            + (f'<p id="comment-error" class="error">{escape(comment_error)}</p>' if comment_error else "")
            + f'<textarea id="comment" name="comment" rows="4" maxlength="{MAX_COMMENT_CHARS}"'
            + (' aria-describedby="comment-error"' if comment_error else "")
            + f">{escape(self.comment)}</textarea>"
            f'<button type="submit">{escape(self.button or "Send")}</button></form>'
        )
        return (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<meta name="robots" content="noindex">'
            f"<title>{escape(self.title)}</title><style>{_STYLE}</style></head>"
            f"<body><main><h1>{escape(self.title)}</h1><p>{escape(self.message)}</p>{form}</main></body></html>"
        )


def ask_nps(
    token: str,
    score: int | None,
    comment: str = "",
    error: str | None = None,
    field: str | None = None,
    *,
    question: str = NPS_QUESTION,
) -> Page:
    """The form asking ``question``, pre-filled with the link's score; a GET shows it and records nothing."""
    return SurveyPage(
        400 if error else 200,
        "Your answer",
        "Check or change your score, add a comment if you like, and press Send. Nothing is recorded "
        "until you press it."
        if not error
        else "Please correct your answer and press Send again.",
        button="Send",
        token=token,
        score=score,
        comment=comment,
        error=error,
        error_field=field,
        question=question,
    )


def nps_thanks() -> Page:
    """Recorded (or answered before: the first answer counts, and the page is the same)."""
    return Page(200, "Thank you", "Your answer is recorded. Thank you for taking the time.")


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

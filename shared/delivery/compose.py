"""An email as it goes out: the rendered parts, and for marketing the unsubscribe headers and footer.

Every marketing email carries ``List-Unsubscribe: <https://...>`` and ``List-Unsubscribe-Post:
List-Unsubscribe=One-Click`` (RFC 8058: a mailbox provider's one-click POST unsubscribes at once), and
in its text and html a footer with the unsubscribe link and the sender's postal address (CAN-SPAM, and
Gmail's and Yahoo's sender rules), each left out where the template already shows it. Transactional
emails (a consent confirmation) carry none of it. Pure.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping

from shared.delivery.feedback import CONTACT_TAG, SEND_TAG, encode_tag
from shared.delivery.ports import OutgoingEmail, RenderedEmail

LIST_UNSUBSCRIBE = "List-Unsubscribe"
LIST_UNSUBSCRIBE_POST = "List-Unsubscribe-Post"
ONE_CLICK = "List-Unsubscribe=One-Click"
UNSUBSCRIBE_LABEL = "Unsubscribe"

_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


def email_tags(contact_id: str, request_id: str) -> dict[str, str]:
    """The SES tags that tie the provider's events back to the contact and the send (each left out if
    it would not fit in a tag)."""
    tags = {CONTACT_TAG: encode_tag(contact_id), SEND_TAG: encode_tag(request_id)}
    return {name: value for name, value in tags.items() if value is not None}


def _shows(part: str, value: str) -> bool:
    return value in part or html.escape(value) in part


def _text_footer(text: str, unsubscribe_url: str, postal_address: str) -> str:
    lines = []
    if not _shows(text, unsubscribe_url):
        lines.append(f"{UNSUBSCRIBE_LABEL}: {unsubscribe_url}")
    if postal_address and postal_address not in text:
        lines.append(postal_address)
    return f"{text.rstrip()}\n\n--\n" + "\n".join(lines) + "\n" if lines else text


def _html_footer(page: str, unsubscribe_url: str, postal_address: str) -> str:
    parts = []
    if not _shows(page, unsubscribe_url):
        parts.append(f'<a href="{html.escape(unsubscribe_url)}">{UNSUBSCRIBE_LABEL}</a>')
    if postal_address and not _shows(page, postal_address):
        parts.append(html.escape(postal_address).replace("\n", "<br>"))
    if not parts:
        return page
    footer = '<p style="font-size:12px;color:#666">' + "<br>".join(parts) + "</p>"
    ends = list(_BODY_END.finditer(page))
    if not ends:
        return page + footer
    at = ends[-1].start()
    return page[:at] + footer + page[at:]


def compose_email(
    rendered: RenderedEmail,
    *,
    sender: str,
    to: str,
    unsubscribe_url: str | None,
    postal_address: str,
    tags: Mapping[str, str],
) -> OutgoingEmail:
    """The email to hand to the mailer. ``unsubscribe_url`` set: a marketing email (headers and
    footer); None: transactional (neither)."""
    if unsubscribe_url is None:
        return OutgoingEmail(
            sender=sender, to=to, subject=rendered.subject, text=rendered.text, html=rendered.html, tags=tags
        )
    address = postal_address.strip()
    return OutgoingEmail(
        sender=sender,
        to=to,
        subject=rendered.subject,
        text=None if rendered.text is None else _text_footer(rendered.text, unsubscribe_url, address),
        html=None if rendered.html is None else _html_footer(rendered.html, unsubscribe_url, address),
        headers={LIST_UNSUBSCRIBE: f"<{unsubscribe_url}>", LIST_UNSUBSCRIBE_POST: ONE_CLICK},
        tags=tags,
    )

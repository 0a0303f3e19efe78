"""An outgoing email as the MIME message SES sends (and the local stack writes as a ``.eml`` file).

Built with the standard library's ``email`` package under the SMTP policy (CRLF line ends, lines folded
at 78 characters): From, To, Subject (RFC 2047 encoded words when it is not ASCII), Date, MIME-Version,
the email's extra headers exactly as given, and the body: ``multipart/alternative`` with a text and an
HTML part when it has both, the one part alone otherwise; both quoted-printable UTF-8, so the message
is 7-bit clean.

The extra headers (``List-Unsubscribe``, ``List-Unsubscribe-Post``) are written as given, folded only at
their spaces: the ``email`` package would turn a long unbreakable URL into encoded words, which mail
clients do not decode in ``List-Unsubscribe`` (RFC 2369 wants the URLs in angle brackets, plainly).
A header that could inject another (a CR or LF), a header name that is not a field name, one that
would replace a header this module writes, or an address it cannot write (no ``@``, a non-ASCII local
part) raises ``ValueError``: such a message can never be sent as meant. Pure: the date is passed in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage, MIMEPart
from email.policy import EmailPolicy
from email.utils import format_datetime, parseaddr
from typing import Any

from shared.delivery.ports import OutgoingEmail

#: RFC 5322 field names: printable ASCII except the colon
FIELD_NAME = re.compile(r"^[!-9;-~]+$")
#: the hard limit of a header line (RFC 5322 2.1.1), CRLF excluded
MAX_LINE = 998
#: headers this module writes itself; an extra header may not replace them
RESERVED_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "sender",
        "reply-to",
        "return-path",
    }
)


class _MailPolicy(EmailPolicy):
    """The SMTP policy, except that the headers named in ``verbatim`` are written as they are (ASCII,
    folded only at spaces) instead of being re-encoded by the ``email`` package's folder."""

    verbatim: frozenset[str] = frozenset()

    def header_store_parse(self, name: str, value: Any) -> tuple[str, Any]:
        if name.lower() in self.verbatim:
            return name, value  # kept as the text given: not parsed for encoded words
        return super().header_store_parse(name, value)

    def fold(self, name: str, value: Any) -> str:
        if name.lower() in self.verbatim:
            return _fold_at_spaces(name, str(value), self.linesep)
        return super().fold(name, value)

    def fold_binary(self, name: str, value: Any) -> bytes:
        if name.lower() in self.verbatim:
            return _fold_at_spaces(name, str(value), self.linesep).encode("ascii")
        return super().fold_binary(name, value)


_SMTP = _MailPolicy(linesep="\r\n")


def mime_message(email: OutgoingEmail, date: datetime) -> bytes:
    """The email as the bytes of a MIME message (CRLF line ends), dated ``date`` (an aware time)."""
    if date.tzinfo is None or date.utcoffset() is None:
        raise ValueError("the date of an email must carry its time zone")
    if email.text is None and email.html is None:
        raise ValueError("an email needs a text or an HTML part")
    extra = _checked_headers(email.headers)
    _check_value("Subject", email.subject)
    policy = _SMTP.clone(verbatim=frozenset(name.lower() for name in extra))
    message = EmailMessage(policy=policy)
    message["From"] = _address(email.sender, "From")
    message["To"] = _address(email.to, "To")
    message["Subject"] = email.subject
    message["Date"] = format_datetime(date)
    for name, value in extra.items():
        message[name] = value
    if email.text is not None and email.html is not None:
        message["MIME-Version"] = "1.0"
        message.make_alternative()
        message.attach(_part(email.text, "plain", policy))
        message.attach(_part(email.html, "html", policy))
    else:
        body, subtype = (email.text, "plain") if email.text is not None else (email.html, "html")
        message.set_content(body, subtype=subtype, charset="utf-8", cte="quoted-printable")
    return message.as_bytes()


def _part(content: str, subtype: str, policy: EmailPolicy) -> MIMEPart:
    part = MIMEPart(policy=policy)
    part.set_content(content, subtype=subtype, charset="utf-8", cte="quoted-printable")
    return part


def _checked_headers(headers: Mapping[str, str]) -> dict[str, str]:
    checked: dict[str, str] = {}
    for name, value in headers.items():
        if not FIELD_NAME.match(name):
            raise ValueError(f"{name!r} is not a header field name")
        if name.lower() in RESERVED_HEADERS:
            raise ValueError(f"the {name} header is written from the email's own fields")
        if name.lower() in {n.lower() for n in checked}:
            raise ValueError(f"the {name} header is given twice")
        _check_value(name, value)
        if not value.isascii() or not value.isprintable():
            raise ValueError(f"the {name} header must be printable ASCII")
        checked[name] = value
    return checked


def _check_value(name: str, value: str) -> None:
    if any(c in value for c in "\r\n\x00"):
        raise ValueError(f"the {name} header may not contain a line break")


def envelope_address(value: str) -> str:
    """The bare address SES sends from or to (``local@domain``, the domain in IDNA): what ``From`` or
    ``To`` holds without the display name. ``ValueError`` for an address ``mime_message`` refuses."""
    return _address(value, "envelope").addr_spec


def _address(value: str, name: str) -> Address:
    """``Name <local@domain>`` or ``local@domain`` as a header address: an internationalised domain in
    its ASCII (IDNA) form; a non-ASCII local part refused (SES does not send SMTPUTF8 mail)."""
    _check_value(name, value)
    display, address = parseaddr(value)
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"the {name} address is not an email address")
    if not local.isascii():
        raise ValueError(f"the {name} address has a non-ASCII local part")
    try:
        ascii_domain = domain if domain.isascii() else domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError(f"the {name} address has a domain that cannot be written in ASCII") from exc
    return Address(display_name=display, username=local, domain=ascii_domain)


def _fold_at_spaces(name: str, value: str, linesep: str) -> str:
    """``Name: value`` with continuation lines starting at the value's spaces, each line at most 78
    characters where a space allows it, and never more than 998."""
    first, *words = value.split(" ")
    lines = [f"{name}: {first}"]
    for word in words:
        if word and len(lines[-1]) + 1 + len(word) > 78:
            lines.append(f" {word}")
        else:
            lines[-1] += f" {word}"
    if any(len(line) > MAX_LINE for line in lines):
        raise ValueError(f"the {name} header has a word longer than a header line may be")
    return linesep.join(lines) + linesep

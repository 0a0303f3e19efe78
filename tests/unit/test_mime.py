"""The MIME message an email becomes (``shared.delivery.mime``), read back as a mail client reads it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest

from shared.delivery.mime import envelope_address, mime_message
from shared.delivery.ports import OutgoingEmail

WHEN = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
#: a real one-click link is long and has no space to fold at
UNSUBSCRIBE = (
    "<https://api.example.com/unsubscribe?token=" + "eyJwIjoidW5zdWJzY3JpYmUi" * 8 + ".c2lnbmF0dXJl>"
)
ONE_CLICK = "List-Unsubscribe=One-Click"
EMAIL = OutgoingEmail(
    sender="Acme News <news@acme.example>",
    to="ann@example.com",
    subject="Your basket misses you",
    text="Hello Ann,\nyour basket is waiting.",
    html="<p>Hello Ann,</p><p>your basket is waiting.</p>",
    headers={"List-Unsubscribe": UNSUBSCRIBE, "List-Unsubscribe-Post": ONE_CLICK},
    tags={"lc_send": "abc"},
)


def content(part: EmailMessage) -> str:
    """A part's text as written (the wire's CRLF line ends back to LF, the final one dropped)."""
    return part.get_content().replace("\r\n", "\n").removesuffix("\n")


def parsed(email: OutgoingEmail = EMAIL, date: datetime = WHEN) -> EmailMessage:
    raw = mime_message(email, date)
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message


def test_the_headers_are_the_emails_and_the_extra_ones_exactly_as_given() -> None:
    message = parsed()
    assert message["From"] == "Acme News <news@acme.example>"
    assert message["From"].addresses[0].addr_spec == "news@acme.example"
    assert message["To"] == "ann@example.com"
    assert message["Subject"] == "Your basket misses you"
    assert message["Date"].datetime == WHEN
    assert message["MIME-Version"] == "1.0"
    assert message["List-Unsubscribe"] == UNSUBSCRIBE
    assert message["List-Unsubscribe-Post"] == ONE_CLICK
    assert message.get_all("List-Unsubscribe") == [UNSUBSCRIBE], "once"


def test_the_unsubscribe_header_is_plain_text_on_the_wire_not_encoded_words() -> None:
    """Mail clients read List-Unsubscribe as it is written: a long URL must not become =?utf-8?q?...?=."""
    raw = mime_message(EMAIL, WHEN)
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert f"List-Unsubscribe: {UNSUBSCRIBE}".encode() in head
    assert f"List-Unsubscribe-Post: {ONE_CLICK}\r\n".encode() in head
    assert b"=?" not in head, "an ASCII message needs no encoded words"
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))


def test_a_header_with_several_urls_is_folded_at_its_spaces_and_unfolds_to_the_same_value() -> None:
    both = f"{UNSUBSCRIBE}, <mailto:unsubscribe@acme.example?subject=unsubscribe>"
    email = replace(EMAIL, headers={"List-Unsubscribe": both})
    raw = mime_message(email, WHEN)
    assert b">,\r\n <mailto:" in raw
    assert parsed(email)["List-Unsubscribe"] == both


def test_a_utf8_subject_round_trips_encoded_as_the_standard_says() -> None:
    subject = "Grüße aus Köln — ваш кошик чекає 🛒, and a long tail that needs folding over the line"
    raw = mime_message(replace(EMAIL, subject=subject), WHEN)
    head = raw.split(b"\r\n\r\n", 1)[0]
    head.decode("ascii")  # 7-bit on the wire
    assert b"Subject: =?utf-8?" in head
    assert all(len(line) <= 78 for line in head.split(b"\r\n") if not line.startswith(b"List-Unsubscribe:"))
    assert parsed(replace(EMAIL, subject=subject))["Subject"] == subject


def test_text_and_html_are_the_two_parts_of_an_alternative_with_their_content_types() -> None:
    message = parsed(replace(EMAIL, text="Prix : 10 €\nMerci", html="<p>Prix : 10 €</p>"))
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert [p.get_content_charset() for p in parts] == ["utf-8", "utf-8"]
    assert [p["Content-Transfer-Encoding"] for p in parts] == ["quoted-printable"] * 2
    assert content(parts[0]) == "Prix : 10 €\nMerci"
    assert content(parts[1]) == "<p>Prix : 10 €</p>"
    assert all(p["MIME-Version"] is None for p in parts), "only the message says MIME-Version"
    mime_message(EMAIL, WHEN).decode("ascii")  # the whole message is 7-bit clean


@pytest.mark.parametrize(
    ("text", "html", "kind"), [("Just text", None, "text/plain"), (None, "<b>hi</b>", "text/html")]
)
def test_an_email_with_one_part_is_that_part_alone(text: str | None, html: str | None, kind: str) -> None:
    message = parsed(replace(EMAIL, text=text, html=html))
    assert message.get_content_type() == kind
    assert not message.is_multipart()
    assert content(message) == (text or html)


def test_an_email_with_no_body_is_refused() -> None:
    with pytest.raises(ValueError, match="text or an HTML part"):
        mime_message(replace(EMAIL, text=None, html=None), WHEN)


@pytest.mark.parametrize(
    "headers",
    [
        {"List-Unsubscribe": "<https://x.example/u>\r\nBcc: everyone@example.com"},
        {"List-Unsubscribe": "<https://x.example/u>\nBcc: everyone@example.com"},
        {"List-Unsubscribe": "<https://x.example/u>\rBcc: everyone@example.com"},
        {"X-Injected\r\nBcc": "everyone@example.com"},
        {"X Space": "value"},
        {"X-Colon:": "value"},
    ],
)
def test_a_header_that_could_inject_another_is_refused(headers: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        mime_message(replace(EMAIL, headers=headers), WHEN)


@pytest.mark.parametrize("field", ["subject", "to", "sender"])
def test_a_line_break_in_the_emails_own_fields_is_refused(field: str) -> None:
    with pytest.raises(ValueError, match="line break"):
        mime_message(replace(EMAIL, **{field: "ann@example.com\r\nBcc: everyone@example.com"}), WHEN)


@pytest.mark.parametrize("name", ["From", "to", "BCC", "Subject", "Content-Type", "MIME-Version"])
def test_an_extra_header_may_not_replace_one_the_email_writes(name: str) -> None:
    with pytest.raises(ValueError, match="own fields"):
        mime_message(replace(EMAIL, headers={name: "x@example.com"}), WHEN)


def test_an_extra_header_that_is_not_printable_ascii_is_refused() -> None:
    with pytest.raises(ValueError, match="printable ASCII"):
        mime_message(replace(EMAIL, headers={"List-Unsubscribe": "<https://bücher.example/u>"}), WHEN)


def test_an_internationalised_domain_is_written_in_its_ascii_form() -> None:
    message = parsed(replace(EMAIL, to="ann@bücher.example", sender="Äcme <news@acme.example>"))
    assert message["To"] == "ann@xn--bcher-kva.example"
    assert message["From"] == "Äcme <news@acme.example>"


@pytest.mark.parametrize("to", ["änn@example.com", "not an address", "ann@", ""])
def test_an_address_ses_cannot_take_is_refused(to: str) -> None:
    with pytest.raises(ValueError, match="address"):
        mime_message(replace(EMAIL, to=to), WHEN)


def test_the_date_is_the_one_passed_in_with_its_offset_and_must_be_aware() -> None:
    paris = datetime(2026, 7, 1, 10, 0, tzinfo=timezone(timedelta(hours=2)))
    assert parsed(date=paris)["Date"] == "Wed, 01 Jul 2026 10:00:00 +0200"
    with pytest.raises(ValueError, match="time zone"):
        mime_message(EMAIL, datetime(2026, 7, 1, 10, 0))


def test_the_envelope_address_is_the_bare_ascii_address() -> None:
    assert envelope_address("Äcme News <news@acme.example>") == "news@acme.example"
    assert envelope_address("ann@bücher.example") == "ann@xn--bcher-kva.example"
    with pytest.raises(ValueError):
        envelope_address("änn@example.com")

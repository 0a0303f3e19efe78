"""Composing an email: RFC 8058 headers and the footer on marketing emails, none on transactional ones."""

from __future__ import annotations

from shared.delivery.compose import compose_email, email_tags
from shared.delivery.feedback import CONTACT_TAG, SEND_TAG, decode_tag
from shared.delivery.ports import RenderedEmail

URL = "https://api.example.com/unsubscribe?t=eyJwIjoidW5zdWJzY3JpYmUifQ.c2ln"
POSTAL = "Shop Ltd, 1 Main St, Springfield"


def compose(rendered: RenderedEmail, unsubscribe_url: str | None = URL, postal: str = POSTAL):
    return compose_email(
        rendered,
        sender="news@shop.example",
        to="ann@example.com",
        unsubscribe_url=unsubscribe_url,
        postal_address=postal,
        tags=email_tags("user_id:ann", "user_id:ann#a#o#0"),
    )


def test_marketing_email_carries_one_click_unsubscribe_headers() -> None:
    email = compose(RenderedEmail(subject="Hi", text="Hello", html="<p>Hello</p>"))
    assert email.headers == {
        "List-Unsubscribe": f"<{URL}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert (email.sender, email.to, email.subject) == ("news@shop.example", "ann@example.com", "Hi")


def test_the_footer_has_the_link_and_postal_address_in_both_parts() -> None:
    email = compose(
        RenderedEmail(subject="Hi", text="Hello\n", html="<html><body><p>Hello</p></body></html>")
    )
    assert email.text == f"Hello\n\n--\nUnsubscribe: {URL}\n{POSTAL}\n"
    assert email.html is not None
    assert email.html.startswith("<html><body><p>Hello</p><p ")
    assert email.html.endswith("</p></body></html>")
    assert f'<a href="{URL}">Unsubscribe</a>' in email.html
    assert POSTAL in email.html


def test_the_footer_is_html_escaped() -> None:
    email = compose(
        RenderedEmail(subject="Hi", text=None, html="<p>Hi</p>"),
        unsubscribe_url='https://api.example.com/unsubscribe?t=a"b&c',
        postal="Smith & Sons <Ltd>\nLondon",
    )
    assert email.html is not None
    assert 'href="https://api.example.com/unsubscribe?t=a&quot;b&amp;c"' in email.html
    assert "Smith &amp; Sons &lt;Ltd&gt;<br>London" in email.html
    assert "<Ltd>" not in email.html
    assert email.text is None


def test_a_template_that_shows_the_link_and_address_gets_no_second_footer() -> None:
    rendered = RenderedEmail(
        subject="Hi",
        text=f"Hello. Leave: {URL}\n{POSTAL}",
        html=f'<p>Hello</p><footer><a href="{URL}">leave</a> {POSTAL}</footer>',
    )
    email = compose(rendered)
    assert (email.text, email.html) == (rendered.text, rendered.html)
    # only what is missing is added
    email = compose(RenderedEmail(subject="Hi", text=f"Leave: {URL}", html=None))
    assert email.text == f"Leave: {URL}\n\n--\n{POSTAL}\n"


def test_without_a_postal_address_the_footer_has_the_link_only() -> None:
    email = compose(RenderedEmail(subject="Hi", text="Hello", html="<p>Hello</p>"), postal="")
    assert email.text == f"Hello\n\n--\nUnsubscribe: {URL}\n"


def test_transactional_email_has_no_unsubscribe_header_or_footer() -> None:
    rendered = RenderedEmail(subject="Please confirm", text="Confirm: https://x/c", html="<p>Confirm</p>")
    email = compose(rendered, unsubscribe_url=None)
    assert email.headers == {}
    assert (email.text, email.html) == (rendered.text, rendered.html)


def test_tags_tie_ses_events_to_the_contact_and_the_send() -> None:
    tags = email_tags("user_id:ann", "user_id:ann#a#o#0")
    assert decode_tag(tags[CONTACT_TAG]) == "user_id:ann"
    assert decode_tag(tags[SEND_TAG]) == "user_id:ann#a#o#0"
    assert SEND_TAG not in email_tags("c", "x" * 500)

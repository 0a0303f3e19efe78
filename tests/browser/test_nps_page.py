"""Issue 15: the NPS answer page in Chromium, served with its own headers (so its content security policy
applies): its style loads, it reads on a 360 px phone without sideways scrolling, the scores are a
labelled radio group reached and changed with the keyboard with a visible focus, and the comment box has
its label."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from shared.delivery import pages

pytestmark = pytest.mark.browser

URL = "https://shop.test/nps?t=token"


@pytest.fixture
def phone(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 360, "height": 740}, device_scale_factor=2)
    page = context.new_page()
    blocked: list[str] = []
    page.on("console", lambda message: blocked.append(message.text) if message.type == "error" else None)
    page.blocked = blocked
    yield page
    context.close()


def serve(page: Any, answer: pages.Page) -> None:
    page.route(
        URL,
        lambda route: route.fulfill(status=answer.status, headers=answer.headers(), body=answer.html()),
    )
    page.goto(URL)


def test_the_form_reads_on_a_phone_and_works_with_the_keyboard(phone) -> None:
    serve(phone, pages.ask_nps("token", 7))
    assert phone.blocked == [], "the style passes the page's content security policy"
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"no sideways scrolling at 360 px ({width} px wide)"
    # the style applied: the scores wrap in a flex row
    assert phone.evaluate("getComputedStyle(document.querySelector('.scores')).display") == "flex"
    assert phone.get_by_role("radio", name="7").is_checked()
    group = phone.get_by_role("group", name="How likely are you to recommend us")
    assert group.count() == 1
    phone.get_by_role("radio", name="7").focus()
    phone.keyboard.press("ArrowRight")
    assert phone.get_by_role("radio", name="8").is_checked()
    outline = phone.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "a visible focus"
    phone.keyboard.press("Tab")
    assert phone.evaluate("document.activeElement.id") == "comment"
    assert phone.get_by_label("What is the main reason for your score? (optional)").count() == 1
    phone.keyboard.press("Tab")
    assert phone.evaluate("document.activeElement.textContent") == "Send"


def test_an_error_is_shown_next_to_its_field(phone) -> None:
    serve(phone, pages.ask_nps("token", None, "kept", "Choose a score from 0 to 10.", "score"))
    assert phone.get_by_text("Choose a score from 0 to 10.").is_visible()
    described = phone.evaluate("document.querySelector('fieldset').getAttribute('aria-describedby')")
    assert described == "score-error"
    assert phone.get_by_label("What is the main reason for your score? (optional)").input_value() == "kept"
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360

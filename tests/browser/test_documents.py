"""The editing screens in Chromium against the local stack: a rule edited in the console scores the next
event with its new points; a refused value is shown next to its field with the focus on it; automations
and segments paused and resumed from the keyboard; a template previewed for a contact in a sandboxed
frame (its script never runs); every screen fits a 360 px phone."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, PHONE
from tests.browser.documents_seed import (
    admin,
    lifetime_score,
    patient_page_assertions,  # noqa: F401 - autouse: waits as long
    track,
)

pytestmark = pytest.mark.browser


def suffix() -> str:
    return uuid4().hex[:8]


def described_by(page: Any, control: Any) -> str:
    """The text of the elements that describe a control (its hint and its error)."""
    ids = (control.get_attribute("aria-describedby") or "").split()
    return " ".join(page.locator(f"[id='{i}']").inner_text() for i in ids)


def tab_to(page: Any, label: str, presses: int = 80) -> None:
    """Press Tab until the control named ``label`` has the focus (it must be reachable by keyboard)."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == label:
            return
    pytest.fail(f"{label!r} is not reached by Tab")


def test_a_rule_edited_in_the_console_scores_the_next_event_with_its_new_points(
    page: Any, console_url: str
) -> None:
    key = suffix()
    rule_id, event, user = f"docs.{key}", f"Docs Journey {key}", f"docs-{key}"
    admin(
        console_url,
        "PUT",
        f"/admin/rules/{rule_id}",
        {"behaviour": "custom", "points": 1, "match": {"event": event}},
    )
    track(console_url, "identify", {"userId": user, "traits": {"name": "Docs Journey"}})
    track(console_url, "track", {"userId": user, "event": event, "messageId": f"{key}-1"})
    assert lifetime_score(console_url, f"user_id:{user}") == 1

    page.goto(f"/#/rules/{rule_id}")
    points = page.get_by_label("Points", exact=True)
    expect(points).to_have_value("1")
    points.fill("37")
    page.get_by_role("button", name="Save rule").click()
    expect(page.locator(".notice")).to_contain_text(f"Rule {rule_id} saved: version 2")
    expect(page.get_by_label("Points", exact=True)).to_have_value("37")
    stored = admin(console_url, "GET", f"/admin/rules/{rule_id}")["rule"]
    assert (stored["points"], stored["match"], stored["behaviour"]) == (
        37,
        {"event": event, **_match_defaults()},
        "custom",
    )

    track(console_url, "track", {"userId": user, "event": event, "messageId": f"{key}-2"})
    assert lifetime_score(console_url, f"user_id:{user}") == 1 + 37


def _match_defaults() -> dict[str, Any]:
    """What a stored match shows of the conditions it was not given."""
    return {
        "url": None,
        "campaign_id": None,
        "email_id": None,
        "referrer": None,
        "search_phrase": None,
        "product": None,
        "properties": [],
    }


def test_a_detailed_rule_created_in_the_console_scores_its_event(page: Any, console_url: str) -> None:
    key = suffix()
    rule_id, event, user = f"docs.{key}", f"Docs Created {key}", f"docs-{key}"
    track(console_url, "identify", {"userId": user})

    page.goto("/#/rules")
    page.get_by_role("link", name="New rule").click()
    page.get_by_label("Rule id").fill(rule_id)
    page.get_by_label("Behaviour").select_option("custom")
    page.get_by_label("Points", exact=True).fill("4")
    page.get_by_label("Match (a detailed rule)").fill(f'{{"event": "{event}"}}')
    page.get_by_role("button", name="Create rule").click()
    expect(page.locator(".notice")).to_contain_text(f"Rule {rule_id} saved: version 1")
    expect(page).to_have_url(f"{console_url}/#/rules/{rule_id}")
    stored = admin(console_url, "GET", f"/admin/rules/{rule_id}")["rule"]
    assert (stored["behaviour"], stored["points"], stored["match"]["event"]) == ("custom", 4, event)

    track(console_url, "track", {"userId": user, "event": f"Another {key}", "messageId": f"{key}-0"})
    track(console_url, "track", {"userId": user, "event": event, "messageId": f"{key}-1"})
    assert lifetime_score(console_url, f"user_id:{user}") == 4


def test_a_funnel_the_api_refuses_is_explained_and_not_stored(page: Any, console_url: str) -> None:
    before = admin(console_url, "GET", "/admin/funnel")
    page.goto("/#/funnel")
    page.get_by_label("Sales threshold").fill("5")
    page.get_by_label("Exit threshold").fill("10")
    page.get_by_role("button", name="Save funnel").click()
    expect(page.get_by_role("alert")).to_contain_text("exit must be below sales")
    assert admin(console_url, "GET", "/admin/funnel") == before


def test_disabling_a_rule_stops_its_points_and_enabling_it_brings_them_back(
    page: Any, console_url: str
) -> None:
    key = suffix()
    rule_id, event, user = f"docs.{key}", f"Docs Pause {key}", f"docs-{key}"
    admin(
        console_url,
        "PUT",
        f"/admin/rules/{rule_id}",
        {"behaviour": "custom", "points": 5, "match": {"event": event}},
    )
    track(console_url, "identify", {"userId": user})

    page.goto(f"/#/rules/{rule_id}")
    page.get_by_role("button", name="Disable rule").click()
    expect(page.locator(".notice")).to_contain_text("disabled")
    expect(page.locator(".doc-meta .badge")).to_have_text("disabled")
    track(console_url, "track", {"userId": user, "event": event, "messageId": f"{key}-1"})
    assert lifetime_score(console_url, f"user_id:{user}") == 0

    page.get_by_role("button", name="Enable rule").click()
    expect(page.locator(".doc-meta .badge")).to_have_text("enabled")
    track(console_url, "track", {"userId": user, "event": event, "messageId": f"{key}-2"})
    assert lifetime_score(console_url, f"user_id:{user}") == 5


def test_a_refused_value_is_shown_next_to_its_field_and_the_focus_moves_to_it(
    page: Any, console_url: str
) -> None:
    rule_id = f"docs.{suffix()}"
    admin(console_url, "PUT", f"/admin/rules/{rule_id}", {"behaviour": "visit", "points": 2})
    page.goto(f"/#/rules/{rule_id}")

    points = page.get_by_label("Points", exact=True)
    points.fill("20000")
    page.get_by_role("button", name="Save rule").click()
    expect(points).to_have_attribute("aria-invalid", "true")
    assert "less than or equal to 10000" in described_by(page, points)
    assert page.evaluate("document.activeElement.name") == "points"
    assert admin(console_url, "GET", f"/admin/rules/{rule_id}")["rule"]["points"] == 2, "nothing was stored"

    # a JSON part that does not parse is refused in the page, at its editor
    points.fill("3")
    match = page.get_by_label("Match (a detailed rule)")
    match.fill("{not json")
    page.get_by_role("button", name="Save rule").click()
    expect(match).to_have_attribute("aria-invalid", "true")
    expect(points).not_to_have_attribute("aria-invalid", "true")
    assert "not valid JSON" in described_by(page, match)
    assert page.evaluate("document.activeElement.name") == "match"

    # an error deep inside a JSON part lands at that part's editor
    page.goto("/#/segments/_new")
    page.get_by_label("Segment id").fill(f"docs-{suffix()}")
    page.get_by_label("Name", exact=True).fill("Colourful")
    segment_filter = page.get_by_label("Filter")
    segment_filter.fill('{"all": [{"tag": "kids", "colour": "red"}]}')
    page.get_by_role("button", name="Create segment").click()
    expect(segment_filter).to_have_attribute("aria-invalid", "true")
    assert "colour" in described_by(page, segment_filter)
    assert page.evaluate("document.activeElement.name") == "filter"


def test_an_automation_is_paused_and_resumed_from_the_keyboard(page: Any, console_url: str) -> None:
    automation_id = f"docs-{suffix()}"
    admin(
        console_url,
        "PUT",
        f"/admin/automations/{automation_id}",
        {
            "name": "Docs pause",
            "trigger": {"type": "inactivity", "days": 30},
            "steps": [{"action": "email", "subject": "Hi", "text": "Hello"}],
        },
    )
    page.goto(f"/#/automations/{automation_id}")
    expect(page.locator(".doc-meta .badge")).to_have_text("active")

    tab_to(page, "Pause automation")
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") not in ("none", "")
    page.keyboard.press("Enter")
    expect(page.locator(".doc-meta .badge")).to_have_text("paused")
    assert admin(console_url, "GET", f"/admin/automations/{automation_id}")["automation"]["paused"] is True

    tab_to(page, "Resume automation")
    page.keyboard.press("Enter")
    expect(page.locator(".doc-meta .badge")).to_have_text("active")
    found = admin(console_url, "GET", f"/admin/automations/{automation_id}")["automation"]
    assert (found["paused"], found["version"]) == (False, 3)


def test_a_segment_is_paused_and_resumed(page: Any, console_url: str) -> None:
    segment_id = f"docs-{suffix()}"
    admin(
        console_url, "PUT", f"/admin/segments/{segment_id}", {"name": "Docs", "filter": {"tag": segment_id}}
    )
    page.goto(f"/#/segments/{segment_id}")
    page.get_by_role("button", name="Pause segment").click()
    expect(page.locator(".notice")).to_contain_text("paused")
    assert admin(console_url, "GET", f"/admin/segments/{segment_id}")["segment"]["paused"] is True
    page.get_by_role("button", name="Resume segment").click()
    expect(page.locator(".doc-meta .badge")).to_have_text("active")
    assert admin(console_url, "GET", f"/admin/segments/{segment_id}")["segment"]["paused"] is False


def test_a_template_is_previewed_for_a_contact_in_a_sandboxed_frame(chromium: Any, console_url: str) -> None:
    key = suffix()
    template_id, user = f"docs-{key}", f"docs-{key}"
    admin(
        console_url,
        "PUT",
        f"/admin/templates/{template_id}",
        {
            "subject": "Hi {{ contact.traits.first_name }}",
            "text": "Hello {{ contact.traits.first_name }}",
            "html": "<p id='greeting'>Hello {{ contact.traits.first_name }}</p>"
            "<script>document.body.dataset.ran = 'yes'; parent.document.title = 'ran'</script>",
        },
    )
    track(console_url, "identify", {"userId": user, "traits": {"first_name": "Zoe"}})
    # the page fixture fails a test on any console error: here Chromium's report of the template's script
    # it refused to run is the point, so the messages are kept and read
    context = chromium.new_context(viewport=DESKTOP, base_url=console_url)
    page = context.new_page()
    messages: list[tuple[str, str]] = []
    page.on("console", lambda message: messages.append((message.type, message.text)))
    page.on("pageerror", lambda error: messages.append(("pageerror", str(error))))
    try:
        page.goto(f"/#/templates/{template_id}")
        contact = page.get_by_label("Contact id")
        contact.fill("user_id:nobody-at-all")
        page.get_by_role("button", name="Preview", exact=True).click()
        expect(contact).to_have_attribute("aria-invalid", "true")
        assert "no contact" in described_by(page, contact)

        contact.fill(f"user_id:{user}")
        page.get_by_role("button", name="Preview", exact=True).click()
        expect(page.locator(".preview-subject dd")).to_have_text("Hi Zoe")
        frame = page.locator("iframe.preview-frame")
        assert frame.get_attribute("sandbox") == "", "no script, form or navigation of a template runs"
        preview = page.frame_locator("iframe.preview-frame")
        expect(preview.locator("#greeting")).to_have_text("Hello Zoe")
        assert preview.locator("body").get_attribute("data-ran") is None
        assert page.title() != "ran"
    finally:
        context.close()
    errors = [text for kind, text in messages if kind in ("error", "pageerror")]
    blocked = [text for text in errors if text.startswith("Blocked script execution in 'about:srcdoc'")]
    assert blocked, f"Chromium says it blocked the template's script: {messages}"
    assert not [
        text for text in errors if text not in blocked and not text.startswith("Failed to load resource")
    ]


@pytest.mark.parametrize(
    "screen",
    [
        "/rules",
        "/rules/general.visit",
        "/funnel",
        "/automations/_new",
        "/templates",
        "/templates/consent-confirmation",
        "/segments/_new",
        "/campaigns",
        "/campaigns/_new",
    ],
)
def test_each_editing_screen_fits_a_phone_without_scrolling_sideways(page: Any, screen: str) -> None:
    page.set_viewport_size(PHONE)
    page.goto(f"/#{screen}")
    page.locator("#view h1").wait_for()
    page.locator("#view .loading").wait_for(state="detached")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], screen

"""The contacts screens in Chromium against the local stack: the card's engagement gauge in the right
quarter, erasure behind its confirmation, search by email and by name, a segment's members, tags, and
the card's actions from the keyboard and on a 360 px screen."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import pytest

from tests.browser.conftest import PHONE
from tests.browser.seeding import (
    Seeded,
    admin,
    card,
    eventually,
    known_contact,
    sales_ready_contact,
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def sales_ready(console_url: str) -> Seeded:
    """One contact in the sales quarter, tagged and in a segment, routed to a salesperson."""
    return sales_ready_contact(console_url)


def open_card(page: Any, contact_id: str) -> None:
    page.goto(f"/#/contacts/{quote(contact_id, safe='')}")
    page.locator(".gauge").wait_for()


def test_a_contact_card_shows_the_gauge_in_the_contacts_quarter_with_a_text_alternative(
    page: Any, console_url: str, sales_ready: Seeded
) -> None:
    open_card(page, sales_ready.contact_id)
    gauge = page.locator(".gauge")
    assert gauge.get_attribute("data-quarter") == "sales"
    index = float(gauge.get_attribute("data-index"))
    assert 1.0 <= index < 2.0, "the needle is in the second quarter"
    assert index == pytest.approx(card(console_url, sales_ready.contact_id)["engagement"]["index"], abs=0.01)
    drawing = page.get_by_role(
        "img", name=re.compile(r"^Index 1\.\d of 4: quarter 2 of 4, sales \(before purchase")
    )
    assert drawing.count() == 1, "the drawing is named by its text alternative"
    assert "engagement rising" in gauge.inner_text()
    assert page.get_by_role("heading", name=re.compile(r"^Why \d+ points\?$")).is_visible()
    assert page.get_by_text(f"by rule {sales_ready.tag}").count() >= 1, "the ledger names the rule"


def test_the_scores_over_time_are_a_chart_with_a_text_alternative(
    page: Any, console_url: str, sales_ready: Seeded
) -> None:
    open_card(page, sales_ready.contact_id)
    canvas = page.locator("figure.chart canvas")
    canvas.wait_for()
    name = canvas.get_attribute("aria-label")
    assert name.startswith("Scores over time. Over the last 90 days the global score went from 0 to "), name
    assert f"tags: {sales_ready.tag} " in name, "the tag's line is summarised too"
    assert page.evaluate("document.querySelector('figure.chart canvas')._chart.data.datasets.length") == 3, (
        "global, stage and the tag, drawn by Chart.js"
    )
    figures = page.get_by_role("region", name="Scores over time")
    page.get_by_text("Scores over time: the figures").click()
    headers = figures.get_by_role("columnheader").all_inner_texts()
    assert headers == ["When", "Global", "Stage (since entering it)", f"Tag {sales_ready.tag}"]
    assert figures.locator("tbody tr").count() >= 2, "from the window's start to now"


def test_the_nurturing_quarter_is_shown_for_a_contact_without_engagement(page: Any, console_url: str) -> None:
    seeded = known_contact(console_url)
    open_card(page, seeded.contact_id)
    gauge = page.locator(".gauge")
    assert (gauge.get_attribute("data-quarter"), float(gauge.get_attribute("data-index"))) == (
        "nurturing",
        0.0,
    )
    assert (
        page.get_by_role("img", name=re.compile(r"^Index 0\.0 of 4: quarter 1 of 4, nurturing")).count() == 1
    )


def test_erasure_asks_first_cancel_keeps_the_contact_and_confirming_erases_it(
    page: Any, console_url: str
) -> None:
    seeded = known_contact(console_url)
    open_card(page, seeded.contact_id)
    page.get_by_role("button", name="Erase contact…").click()
    dialog = page.get_by_role("dialog", name="Erase this contact?")
    assert dialog.is_visible()
    dialog.get_by_role("button", name="Cancel: keep the contact").click()
    assert not dialog.is_visible()
    assert card(console_url, seeded.contact_id) is not None, "cancel leaves the contact"
    assert page.locator(".gauge").is_visible()

    page.get_by_role("button", name="Erase contact…").click()
    dialog.get_by_role("button", name=f"Erase {seeded.contact_id} permanently").click()
    page.get_by_role("heading", name="Contact erased").wait_for()
    assert "The contact is gone." in page.locator(".erased").inner_text()
    assert page.evaluate("document.getElementById('view').contains(document.activeElement)"), (
        "the focus is on the result, not lost to the page's body"
    )
    assert page.evaluate("document.activeElement.textContent") == "Contact erased", (
        "the focus is on the result's heading, where a screen reader starts reading it"
    )
    assert card(console_url, seeded.contact_id) is None, "the admin API no longer has it"
    page.reload()  # the card's address again: the contact is not there
    page.get_by_role("heading", name="No such contact").wait_for()


def search_ready(console_url: str, seeded: Seeded) -> None:
    eventually(
        lambda: any(
            c["contact_id"] == seeded.contact_id
            for c in admin(console_url, "GET", f"/admin/contacts?q={quote(seeded.email)}")[1]["contacts"]
        ),
        "the search finds the contact by its email",
    )


@pytest.mark.parametrize("by", ["email", "name"])
def test_search_by_email_or_name_finds_the_contact_and_opens_its_card(
    page: Any, console_url: str, by: str
) -> None:
    seeded = known_contact(console_url)
    search_ready(console_url, seeded)
    page.goto("/#/contacts")
    box = page.get_by_label("Id, email or name")
    box.fill(seeded.email if by == "email" else seeded.surname.lower())
    box.press("Enter")
    result = page.locator(".results").get_by_role("link", name=seeded.name)
    result.wait_for()
    result.click()
    page.locator(".gauge").wait_for()
    assert page.get_by_role("heading", level=1).inner_text().startswith(seeded.name)


def test_a_too_short_search_shows_the_error_next_to_the_box(page: Any, console_url: str) -> None:
    page.goto("/#/contacts?q=z")
    error = page.locator(".field[data-field='q'] .field-error")
    error.wait_for()
    assert error.inner_text(), "the API's message, next to the field"
    assert page.get_by_label("Id, email or name").get_attribute("aria-invalid") == "true"


def test_a_segments_members_are_listed_and_link_to_their_cards(page: Any, sales_ready: Seeded) -> None:
    page.goto("/#/contacts")
    picker = page.get_by_label("Segment", exact=True)
    picker.locator(f"option[value='{sales_ready.segment}']").wait_for(state="attached")
    picker.select_option(sales_ready.segment)
    page.get_by_role("button", name="Show members").click()
    page.wait_for_url(re.compile(rf"#/contacts\?segment={sales_ready.segment}$"))
    member = page.get_by_role("link", name=sales_ready.contact_id, exact=True)
    member.wait_for()
    member.click()
    page.locator(".gauge").wait_for()
    assert sales_ready.contact_id in page.locator(".crumbs").inner_text()


def test_open_by_id_opens_the_card(page: Any, sales_ready: Seeded) -> None:
    page.goto("/#/contacts")
    page.get_by_label("Contact id or user id").fill(sales_ready.contact_id)
    page.get_by_role("button", name="Open", exact=True).click()
    page.locator(".gauge").wait_for()
    assert page.get_by_role("heading", level=1).inner_text().startswith(sales_ready.name)


def test_adding_a_tag_shows_it_on_the_card_and_removing_it_takes_it_off(page: Any, console_url: str) -> None:
    seeded = known_contact(console_url)
    open_card(page, seeded.contact_id)
    tags = page.get_by_role("list", name="Tags")
    page.get_by_label("New tag").fill("vip")
    page.get_by_role("button", name="Add tag").click()
    tags.get_by_text("vip", exact=True).wait_for()
    eventually(
        lambda: "vip" in (card(console_url, seeded.contact_id) or {}).get("tags", []), "the card has it"
    )
    page.reload()
    page.get_by_role("list", name="Tags").get_by_text("vip", exact=True).wait_for()
    page.get_by_role("button", name="Remove tag vip").click()
    page.get_by_role("list", name="Tags").get_by_text("vip", exact=True).wait_for(state="detached")


def test_the_cards_actions_are_reached_with_tab_and_show_their_focus(page: Any, sales_ready: Seeded) -> None:
    open_card(page, sales_ready.contact_id)
    page.locator("body").focus()
    wanted = {"New tag", "Add tag", "Salesperson", "Accept lead", "Erase contact…"}
    reached: dict[str, str] = {}
    for _ in range(200):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            """() => {
                const e = document.activeElement
                const label = e.labels && e.labels.length ? e.labels[0].textContent : e.textContent
                return [label.trim(), getComputedStyle(e).outlineStyle]
            }"""
        )
        if focused[0] in wanted:
            reached[focused[0]] = focused[1]
        if set(reached) == wanted:
            break
    assert set(reached) == wanted, f"reached by Tab: {sorted(reached)}"
    assert all(style not in ("none", "") for style in reached.values()), f"a visible focus: {reached}"
    # the confirmation opens from the keyboard too, with the focus on the safe choice; Escape keeps it
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.textContent") == "Cancel: keep the contact"
    page.keyboard.press("Escape")
    assert not page.get_by_role("dialog").is_visible()
    assert page.evaluate("document.activeElement.textContent") == "Erase contact…"


@pytest.mark.parametrize("screen", ["card", "search", "members"])
def test_the_contacts_screens_fit_a_phone_without_scrolling_sideways(
    page: Any, sales_ready: Seeded, screen: str
) -> None:
    page.set_viewport_size(PHONE)
    if screen == "card":
        open_card(page, sales_ready.contact_id)
        page.locator(".ledger").wait_for()
    elif screen == "search":
        page.goto("/#/contacts")
        page.get_by_label("Id, email or name").wait_for()
    else:
        page.goto(f"/#/contacts?segment={sales_ready.segment}")
        page.get_by_role("link", name=sales_ready.contact_id, exact=True).wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_the_navigation_marks_only_the_current_screen(page: Any, console_url: str) -> None:
    for address, current in [("/#/", "Contacts"), ("/#/contacts?q=an", "Contacts"), ("/#/sales", "Sales")]:
        page.goto(address)
        navigation = page.get_by_role("navigation", name="Main")
        navigation.get_by_role("link").first.wait_for()
        marked = navigation.locator("[aria-current='page']").all_inner_texts()
        assert marked == [current], f"{address}: {marked}"

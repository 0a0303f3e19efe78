"""The console's page itself, in Chromium: served by the stack, its scripts and chart library load, its
navigation works from the keyboard, and it fits a 360 px screen."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import PHONE

pytestmark = pytest.mark.browser


def test_the_console_loads_with_its_charting_library_and_every_screen_in_the_navigation(page: Any) -> None:
    page.goto("/")
    page.get_by_role("navigation", name="Main").wait_for()
    assert page.evaluate("typeof window.Chart") == "function", (
        "the pinned Chart.js build is served and loaded"
    )
    labels = page.get_by_role("navigation", name="Main").get_by_role("link").all_inner_texts()
    assert "Contacts" in labels and "Reports" in labels


def test_the_navigation_is_reached_by_keyboard_with_a_visible_focus(page: Any) -> None:
    page.goto("/")
    page.get_by_role("navigation", name="Main").wait_for()
    page.keyboard.press("Tab")  # the skip link comes first
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", ""), "the focused control shows its focus"


def test_the_skip_link_moves_the_focus_to_the_screen_and_keeps_it(page: Any) -> None:
    page.goto("/#/rules")
    heading = page.get_by_role("heading", level=1)
    heading.wait_for()
    shown = heading.inner_text()
    page.locator("a.brand").focus()  # the header's first link: the skip link is the stop before it
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "view", "the focus is on the screen (main)"
    assert page.evaluate("window.location.hash") == "#/rules", "the address still names the screen"
    assert page.get_by_role("heading", level=1).inner_text() == shown, "the screen is still shown"
    frame = page.evaluate(
        "(() => { const s = getComputedStyle(document.activeElement); return [s.outlineStyle, s.boxShadow] })()"
    )
    assert frame == ["none", "none"], "the focused screen draws no frame around the whole page"


def test_an_anchor_in_the_address_keeps_the_screen_shown(page: Any) -> None:
    page.goto("/#/rules")
    heading = page.get_by_role("heading", level=1)
    heading.wait_for()
    shown = heading.inner_text()
    # the address's hash becomes an anchor; the promise ends once the console's hashchange handler has run
    page.evaluate(
        """new Promise(resolve => {
          window.addEventListener('hashchange', () => setTimeout(resolve, 0), { once: true })
          window.location.hash = '#view'
        })"""
    )
    assert page.get_by_role("heading", level=1).inner_text() == shown
    assert "Not found" not in page.title()


def test_only_the_status_region_speaks_and_not_every_redraw_of_the_screen(page: Any) -> None:
    page.goto("/#/rules")
    page.get_by_role("heading", level=1).wait_for()
    live = page.evaluate("[...document.querySelectorAll('[aria-live]')].map(e => e.id || e.className)")
    assert "view" not in live, "a redrawn screen is not read out whole"
    assert page.evaluate("document.getElementById('status').getAttribute('aria-live')") == "polite"
    assert page.evaluate("document.getElementById('status').getAttribute('role')") == "status"


def test_the_page_fits_a_phone_without_scrolling_sideways(page: Any) -> None:
    page.set_viewport_size(PHONE)
    page.goto("/")
    page.get_by_role("navigation", name="Main").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

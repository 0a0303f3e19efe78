"""The demo population (tests/browser/demo.py) seeds what its docstring promises, and every page the
screenshots take (``PAGES``) renders it in Chromium without an error: ``make screenshots`` works.

A shorter demo than the screenshots' (five weeks, every story and the campaign included) keeps it quick.
"""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import DESKTOP
from tests.browser.demo import PAGES, STORIES, Demo
from tests.browser.screenshots import render, seeded_console

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo() -> Iterator[Demo]:
    with seeded_console(weeks=5) as (_console, seeded):
        yield seeded


def admin(demo: Demo, path: str) -> Any:
    with urllib.request.urlopen(f"{demo.base}/admin{path}", timeout=120) as response:
        return json.loads(response.read())


def test_the_demo_has_every_story_a_routed_lead_a_segment_and_a_sent_campaign(demo: Demo) -> None:
    assert set(demo.contacts.values()) == set(STORIES) and len(demo.contacts) == 13
    stages = Counter(admin(demo, f"/contacts/{contact}")["stage"] for contact in demo.contacts)
    assert {"lead", "mql", "customer"} <= set(stages), stages
    assert demo.routed, "a hot lead was routed to a salesperson"
    owners = {admin(demo, f"/contacts/{contact}")["owner"] for contact in demo.routed}
    assert owners <= {"ann-s", "bob-s"} and None not in owners
    assert admin(demo, f"/segments/{demo.segment}/count")["count"] > 0
    results = admin(demo, f"/campaigns/{demo.campaign}/results")
    assert results["status"] == "sent"
    assert {arm["arm"] for arm in results["results"]["arms"]} == {"A", "B"}
    featured = admin(demo, f"/contacts/{demo.featured}")
    assert featured["counts"].get("purchase", 0) >= 1 and featured["engagement"]["quarter"] == "retention"


def test_the_page_list_fills_in_the_demos_ids(demo: Demo) -> None:
    pages = demo.pages()
    assert list(pages) == list(PAGES)
    assert all("{" not in route for route in pages.values())
    assert pages["contact"] == f"#/contacts/{demo.featured}"
    assert pages["cohorts"].endswith(f"from={demo.start[:8]}01")


@pytest.mark.parametrize("name", list(PAGES))
def test_each_screenshot_page_renders_the_demo_without_errors(chromium: Any, demo: Demo, name: str) -> None:
    context = chromium.new_context(viewport=DESKTOP, base_url=demo.base)
    page = context.new_page()
    refused: list[str] = []  # the demo's pages ask only what the admin API answers
    page.on("response", lambda r: refused.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    try:
        errors = render(page, demo.pages()[name])
        assert errors == [] and refused == []
        assert not page.title().startswith("Not found"), f"the console has no screen at {demo.pages()[name]}"
        assert page.locator("#view h1").first.inner_text().strip()
    finally:
        context.close()

"""The sales view in Chromium against the local stack: a salesperson sees the leads routed to them, hottest
first, and accepts one; the card's own Accept does the same."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.browser.conftest import PHONE
from tests.browser.seeding import Seeded, admin, card, eventually, sales_ready_contact

pytestmark = pytest.mark.browser


@pytest.fixture
def lead(console_url: str) -> Seeded:
    """A sales-ready contact routed to a salesperson, not yet accepted."""
    return sales_ready_contact(console_url, in_segment=False)


def leads_route(salesperson: str) -> str:
    return f"/admin/salespeople/{quote(salesperson, safe='')}/leads"


def test_the_sales_view_lists_the_team_and_opens_a_salespersons_leads(page: Any, lead: Seeded) -> None:
    page.goto("/#/sales")
    page.get_by_label("Salesperson", exact=True).select_option(lead.owner)
    page.get_by_role("button", name="Show leads").click()
    page.wait_for_url(f"**/#/sales/{lead.owner}")
    page.get_by_role("heading", name=f"Leads of {lead.owner}").wait_for()


def test_a_salesperson_accepts_a_lead_routed_to_them(page: Any, console_url: str, lead: Seeded) -> None:
    path = leads_route(lead.owner)
    eventually(
        lambda: any(
            row["contact_id"] == lead.contact_id for row in admin(console_url, "GET", path)[1]["leads"]
        ),
        "the lead is listed for its salesperson",
    )
    page.goto(f"/#/sales/{quote(lead.owner, safe='')}")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=lead.name))
    row.wait_for()
    assert "sales" in row.inner_text(), "the row shows the lead's quarter"
    row.get_by_role("button", name=f"Accept {lead.name}").click()
    row.get_by_text("Accepted").wait_for()
    assert card(console_url, lead.contact_id)["stage"] == "opportunity", (
        "accepted: the funnel's accepted stage"
    )
    page.reload()
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=lead.name))
    row.get_by_text("Accepted").wait_for()
    assert row.get_by_role("button", name=f"Accept {lead.name}").count() == 0, "accepted leads are marked"


def test_the_leads_are_listed_hottest_first(page: Any, console_url: str, lead: Seeded) -> None:
    path = leads_route(lead.owner)
    eventually(lambda: admin(console_url, "GET", path)[1]["leads"], "the salesperson has leads")
    page.goto(f"/#/sales/{quote(lead.owner, safe='')}")
    page.get_by_role("table").wait_for()
    scores = [
        float(text.replace(",", "")) for text in page.locator("tbody tr td:nth-child(3)").all_inner_texts()
    ]
    assert scores and scores == sorted(scores, reverse=True)


def test_the_card_accepts_the_lead_for_the_salesperson_chosen(
    page: Any, console_url: str, lead: Seeded
) -> None:
    page.goto(f"/#/contacts/{quote(lead.contact_id, safe='')}")
    page.locator(".gauge").wait_for()
    chooser = page.get_by_label("Salesperson", exact=True)
    chooser.locator(f"option[value='{lead.owner}']").wait_for(state="attached")
    assert chooser.input_value() == lead.owner, "the salesperson the lead was routed to is chosen"
    page.get_by_role("button", name="Accept lead").click()
    page.locator("h1 .badge", has_text="opportunity").wait_for()
    assert card(console_url, lead.contact_id)["stage"] == "opportunity"


def test_the_sales_view_fits_a_phone(page: Any, console_url: str, lead: Seeded) -> None:
    page.set_viewport_size(PHONE)
    page.goto(f"/#/sales/{quote(lead.owner, safe='')}")
    page.get_by_role("heading", name=f"Leads of {lead.owner}").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

"""Issue 15 in Chromium against the local stack: the catalog screen (a product added through its form, a
refused price shown next to its field, the product listed and its page read back, a category excluded in
the settings, a product deleted after asking), the contact card's "Recommended products" after the nightly
pass, and the catalog's screens at 360 px without sideways scrolling."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE
from tests.browser.documents_seed import (
    admin,
    patient_page_assertions,  # noqa: F401 - autouse: waits as long
    track,
)

pytestmark = pytest.mark.browser


def test_a_product_is_added_listed_refused_next_to_its_field_and_deleted(page: Any, console_url: str) -> None:
    product_id = f"tent-{uuid4().hex[:8]}"
    page.goto("/#/catalog")
    page.get_by_role("link", name="New product").click()
    page.get_by_label("Product id").fill(product_id)
    page.get_by_label("Name").fill("Tent for two")
    page.get_by_label("Category").fill("Camping")
    price = page.get_by_label("Price")
    price.fill("-5")
    page.get_by_role("button", name="Add product").click()
    expect(price).to_have_attribute("aria-invalid", "true")
    expect(price).to_be_focused()
    expect(page.locator(".field[data-field='price'] .field-error")).to_contain_text("price:")

    price.fill("149.9")
    page.get_by_label("In stock").uncheck()
    page.get_by_role("button", name="Add product").click()
    expect(page.locator(".notice")).to_contain_text(f"Product {product_id} saved.")
    expect(page.get_by_role("heading", name=f"Product {product_id}")).to_be_visible()
    stored = admin(console_url, "GET", f"/admin/catalog/products/{product_id}")
    assert (stored["name"], stored["category"], stored["price"], stored["in_stock"]) == (
        "Tent for two",
        "Camping",
        "149.9",
        False,
    )
    expect(page.get_by_label("Price")).to_have_value("149.9")
    expect(page.get_by_role("heading", name="Bought together")).to_be_visible()

    page.goto("/#/catalog")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=product_id))
    expect(row).to_contain_text("Tent for two")
    expect(row).to_contain_text("no")  # not in stock

    page.get_by_role("link", name=product_id).click()
    page.get_by_role("button", name="Delete product").click()
    confirm = page.get_by_role("button", name="Delete", exact=True)
    expect(confirm).to_be_focused()
    confirm.click()
    expect(page.locator(".notice")).to_contain_text(f"Product {product_id} deleted.")
    assert page.evaluate("location.hash") == "#/catalog"


def test_excluded_categories_are_saved_from_the_settings(page: Any, console_url: str) -> None:
    page.goto("/#/catalog")
    categories = page.get_by_label("Excluded categories")
    categories.fill("Gift cards\nTobacco\n")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#status")).to_contain_text("2 excluded categories")
    assert admin(console_url, "GET", "/admin/catalog/settings")["excluded_categories"] == [
        "Gift cards",
        "Tobacco",
    ]
    admin(console_url, "PUT", "/admin/catalog/settings", {"excluded_categories": []})


def test_the_card_shows_the_products_recommended_after_the_nightly_pass(page: Any, console_url: str) -> None:
    """Campers buy a tent with a stove; after the nightly pass, a contact who bought only the tent sees the
    stove on its card (with the catalog's name and link, and why), never the tent it bought."""
    key = uuid4().hex[:8]
    tent, stove, buyer = f"tent-{key}", f"stove-{key}", f"reco-{key}"
    admin(
        console_url,
        "PUT",
        f"/admin/catalog/products/{stove}",
        {"name": "Camp stove", "url": "https://shop.example/stove"},
    )
    for n, user in enumerate((f"camper-{key}-a", f"camper-{key}-b", f"camper-{key}-c")):
        products = [{"product_id": tent}, {"product_id": stove}]
        track(console_url, "track", {"userId": user, "event": "Order Completed", "messageId": f"{key}-{n}",
                                     "properties": {"revenue": 10, "products": products}})  # fmt: skip
    track(console_url, "identify", {"userId": buyer, "traits": {"name": "Reco Reader"}})
    track(console_url, "track", {"userId": buyer, "event": "Order Completed", "messageId": f"{key}-buyer",
                                 "properties": {"revenue": 10, "products": [{"product_id": tent}]}})  # fmt: skip
    admin(console_url, "POST", "/_local/recommendations/run")

    page.goto(f"/#/contacts/user_id:{buyer}")
    block = page.get_by_role("region", name="Recommended products")
    first = block.get_by_role("row").nth(1)
    expect(first).to_contain_text("Camp stove")
    expect(first).to_contain_text(f"Bought with {tent}")
    expect(first.get_by_role("link", name="Camp stove")).to_have_attribute(
        "href", "https://shop.example/stove"
    )
    expect(block.get_by_role("link", name=tent, exact=True)).to_have_count(0)
    first.get_by_role("link", name=stove).click()
    expect(page.get_by_role("heading", name=f"Product {stove}")).to_be_visible()
    expect(page.get_by_label("Name")).to_have_value("Camp stove")


@pytest.mark.parametrize("screen", ["/catalog", "/catalog/_new", "/catalog/some-product"])
def test_the_catalog_screens_fit_a_phone_without_scrolling_sideways(page: Any, screen: str) -> None:
    page.set_viewport_size(PHONE)
    page.goto(f"/#{screen}")
    page.locator("#view h1").wait_for()
    page.locator("#view .loading").wait_for(state="detached")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], screen

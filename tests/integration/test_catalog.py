"""The product catalog and recommendations through the admin handler on moto (issue 15), with the admin
function's own grants: products stored, listed a page at a time, read, replaced and deleted; field-level
400s; the settings; a product's "bought together" served from the nightly model's items, without what is
out of stock or excluded."""

from __future__ import annotations

import os
from typing import Any

import pytest

from shared.recommendations.model import ItemModel, Neighbour
from tests.contract.test_catalog import store_model
from tests.integration.conftest import call_admin

PRODUCT = "/admin/catalog/products/{productId}"
TENT = {
    "name": "Tent 2P",
    "category": "Camping",
    "price": 149.9,
    "url": "https://shop.example/tent",
    "image_url": "https://shop.example/tent.jpg",
    "in_stock": True,
}


def get(path: str, parameters: dict[str, str] | None = None, **query: str) -> tuple[int, Any]:
    from functions.admin.handler import handler
    from tests.conftest import http_event, invoke

    event = http_event(
        "GET",
        path.format(**(parameters or {})),
        route=f"GET {path}",
        key=None,
        path_parameters=parameters or None,
        query=query or None,
    )
    status, body, _ = invoke(handler, event)
    return status, body


def put_product(product_id: str, body: Any) -> tuple[int, Any]:
    status, answer, _ = call_admin("PUT", PRODUCT, {"productId": product_id}, body)
    return status, answer


def test_products_are_stored_listed_replaced_and_deleted(aws) -> None:
    status, stored = put_product("tent-2p", TENT)
    assert status == 200, stored
    assert {k: stored[k] for k in TENT} == {**TENT, "price": "149.9"}
    assert stored["id"] == "tent-2p" and stored["updated_at"]
    for product_id in ("lamp", "stove", "mat"):
        assert put_product(product_id, {"name": product_id.title()})[0] == 200
    assert get(PRODUCT, {"productId": "tent-2p"}) == (200, stored)

    status, first = get("/admin/catalog/products", limit="3")
    assert status == 200, first
    assert [p["id"] for p in first["products"]] == ["lamp", "mat", "stove"]
    status, rest = get("/admin/catalog/products", limit="3", cursor=first["next_cursor"])
    assert ([p["id"] for p in rest["products"]], rest["next_cursor"]) == (["tent-2p"], None)

    assert put_product("tent-2p", {**stored, "in_stock": False})[0] == 200, "what a GET shows can be PUT back"
    assert get(PRODUCT, {"productId": "tent-2p"})[1]["in_stock"] is False
    status, deleted, _ = call_admin("DELETE", PRODUCT, {"productId": "tent-2p"})
    assert (status, deleted) == (200, {"deleted": "tent-2p"})
    assert get(PRODUCT, {"productId": "tent-2p"})[0] == 404
    assert call_admin("DELETE", PRODUCT, {"productId": "tent-2p"})[0] == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"category": "Camping"}, "name"),
        ({**TENT, "price": -1}, "price"),
        ({**TENT, "url": "not a link"}, "url"),
        ({**TENT, "colour": "green"}, "colour"),
        ({**TENT, "in_stock": "maybe"}, "in_stock"),
    ],
)
def test_a_bad_product_is_a_400_naming_the_field(aws, body: dict[str, Any], field: str) -> None:
    status, answer = put_product("tent", body)
    assert status == 400
    assert (answer["code"], answer["field"]) == ("invalid_product", field), answer
    assert answer["message"].startswith(f"{field}:")


def test_a_bad_product_id_or_cursor_is_a_400(aws) -> None:
    status, answer = put_product("a#b", TENT)
    assert (status, answer["field"]) == (400, "productId")
    # tracking cuts a product's code to 100 characters: a longer id could never be recommended
    assert put_product("p" * 100, TENT)[0] == 200
    status, answer = put_product("p" * 101, TENT)
    assert (status, answer["field"]) == (400, "productId")
    status, answer = get("/admin/catalog/products", cursor="!!")
    assert (status, answer["field"]) == (400, "cursor")
    for bad in ("0", "²", "٣", "1.5"):  # "²".isdigit() is true, yet no whole number: a 400, not a 500
        status, answer = get("/admin/catalog/products", limit=bad)
        assert (status, answer["field"]) == (400, "limit"), bad
    status, answer = get("/admin/products/{productId}/recommendations", {"productId": "tent"}, n="²")
    assert (status, answer["field"]) == (400, "n")


def test_the_settings_exclude_categories(aws) -> None:
    assert get("/admin/catalog/settings") == (200, {"excluded_categories": [], "catalog_only": False})
    status, saved, _ = call_admin(
        "PUT", "/admin/catalog/settings", None, {"excluded_categories": ["Gift cards"]}
    )
    assert (status, saved) == (200, {"excluded_categories": ["Gift cards"], "catalog_only": False})
    assert get("/admin/catalog/settings")[1] == saved
    status, answer, _ = call_admin(
        "PUT", "/admin/catalog/settings", None, {"excluded_categories": "Gift cards"}
    )
    assert (status, answer["field"]) == (400, "excluded_categories")


def test_bought_together_is_served_from_the_nightly_model_without_barred_products(aws) -> None:
    store_model(
        aws,
        os.environ["CONFIG_TABLE_NAME"],
        ItemModel(
            neighbours={"tent": (Neighbour("stove", 0.9), Neighbour("lamp", 0.7), Neighbour("card", 0.5))},
            popular=(Neighbour("tent", 9.0),),
        ),
    )
    put_product("tent", TENT)
    put_product("stove", {"name": "Stove", "in_stock": False})
    put_product("lamp", {"name": "Lamp", "url": "https://shop.example/lamp"})
    put_product("card", {"name": "Gift card", "category": "Gift cards"})
    call_admin("PUT", "/admin/catalog/settings", None, {"excluded_categories": ["gift cards"]})
    status, answer = get("/admin/products/{productId}/recommendations", {"productId": "tent"}, n="5")
    assert status == 200, answer
    assert answer["product"]["name"] == "Tent 2P"
    assert [(r["product_id"], r["name"], r["reason"]) for r in answer["recommendations"]] == [
        ("lamp", "Lamp", "similar")
    ]
    status, answer = get("/admin/products/{productId}/recommendations", {"productId": "tent"}, n="99")
    assert (status, answer["field"]) == (400, "n")

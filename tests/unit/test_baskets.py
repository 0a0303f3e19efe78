"""What a purchase bought (its basket) and the purchase attributes of its event item, which put it in the
sparse purchase index: purchases only, never refunds or cancellations."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from shared.adapters.contact_items import BASKET, PURCHASED_AT, Retention, event_item
from shared.contacts.identity import ContactId
from shared.tracking.baskets import MAX_BASKET, MAX_CODE_LENGTH, basket
from tests.contract.helpers import calls


def test_products_give_their_id_sku_or_id_and_category_in_order_without_repeats():
    properties = {
        "product_id": "ignored: the products are given",
        "products": [
            {"product_id": "p1", "sku": "s1", "category": "filters"},
            {"sku": "s2"},
            {"id": 3, "category": "kitchen"},
            {"product_id": "p1", "category": "filters"},
            {"name": "no code, no category"},
            "not an object",
            {"product_id": True, "category": ["x"]},
        ],
    }
    assert basket(properties) == (("p1", "filters"), ("s2", None), ("3", "kitchen"))


def test_the_top_level_product_and_category_when_no_products_say_anything():
    assert basket({"product_id": " oven-9 ", "category": "kitchen"}) == (("oven-9", "kitchen"),)
    assert basket({"sku": "s", "products": [{}]}) == (("s", None),)
    assert basket({"id": "order-1", "category": ""}) == (), "a top-level id names the order"
    assert basket({"revenue": 5}) == ()


def test_baskets_and_codes_are_capped():
    many = {"products": [{"product_id": f"p{n}"} for n in range(50)]}
    assert len(basket(many)) == MAX_BASKET and basket(many)[-1] == (f"p{MAX_BASKET - 1}", None)
    (long,) = basket({"product_id": "x" * 500})
    assert long == ("x" * MAX_CODE_LENGTH, None)


@pytest.mark.parametrize(
    ("event", "indexed"),
    [
        ("Order Completed", True),
        ("Order Refunded", False),
        ("Order Cancelled", False),
        ("Product Viewed", False),
    ],
)
def test_only_purchases_carry_the_purchase_index_attributes(event, indexed):
    at = datetime(2026, 11, 22, 10, 43, 57, 8000, tzinfo=UTC)
    (tracked,) = calls(
        {
            "type": "track",
            "userId": "ann",
            "event": event,
            "messageId": "m1",
            "timestamp": at.isoformat(),
            "properties": {"revenue": 5, "products": [{"sku": "s1", "category": "c1"}]},
        },
        at=at,
    )
    item = event_item(ContactId.user("ann"), tracked, "2026-11-22T10:43:57.008Z", (), Retention(), put="t")
    if indexed:
        assert item[PURCHASED_AT] == {"S": "2026-11-22T10:43:57.008Z"}
        assert json.loads(item[BASKET]["S"]) == [["s1", "c1"]]
    else:
        assert PURCHASED_AT not in item and BASKET not in item

"""Issue 15: the products a contact's calls bought or viewed, and how lists of them fold into one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.contacts.changes import plan_change
from shared.contacts.identity import ContactId
from shared.recommendations.model import RecentProduct
from shared.recommendations.recent import MAX_RECENT, merged, products_of, recent_products
from shared.tracking.messages import parse_calls
from shared.tracking.wire import Limits

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def calls(*batch: dict):
    return parse_calls("/v1/batch", {"batch": list(batch)}, received_at=NOW, limits=Limits())


def track(event: str, properties: dict, message_id: str = "m1", hours_ago: float = 0) -> dict:
    at = (NOW - timedelta(hours=hours_ago)).isoformat()
    return {"type": "track", "userId": "ann", "event": event, "messageId": message_id, "timestamp": at,
            "properties": properties}  # fmt: skip


def entry(product: str, kind: str = "view", hours_ago: float = 0) -> RecentProduct:
    return RecentProduct(product_id=product, kind=kind, at=NOW - timedelta(hours=hours_ago))


def test_an_orders_basket_is_bought_and_a_product_viewed_is_viewed():
    (bought,) = calls(
        track("Order Completed", {"products": [{"product_id": "a"}, {"sku": "b"}, {"id": "a"}]})
    )
    assert [(p.product_id, p.kind, p.at) for p in products_of(bought)] == [
        ("a", "purchase", NOW),
        ("b", "purchase", NOW),
    ]
    (seen,) = calls(track("product_viewed", {"sku": "c", "category": "hats"}))
    assert [(p.product_id, p.kind) for p in products_of(seen)] == [("c", "view")]


def test_other_calls_and_calls_without_a_product_give_none():
    others = calls(
        track("Product Added", {"product_id": "a"}, "m1"),
        track("Order Completed", {"category": "hats"}, "m2"),
        track("Product Viewed", {}, "m3"),
        {"type": "page", "userId": "ann", "messageId": "m4", "properties": {"product_id": "a"}},
    )
    assert [products_of(e) for e in others] == [(), (), (), ()]


def test_merged_keeps_one_entry_per_product_a_purchase_if_any_bought_it_at_its_latest_time():
    stored = [entry("a", "purchase", hours_ago=5), entry("b", hours_ago=4)]
    new = [entry("a", "view", hours_ago=1), entry("c", hours_ago=2), entry("b", hours_ago=6)]
    assert merged(new, stored) == (
        entry("a", "purchase", hours_ago=1),
        entry("c", hours_ago=2),
        entry("b", hours_ago=4),
    )


def test_merged_is_a_union_whatever_the_order_and_however_often_an_entry_comes():
    lists = [[entry("a", hours_ago=1), entry("b", "purchase", hours_ago=1)], [entry("c", hours_ago=3)]]
    once = merged(*lists)
    assert merged(*reversed(lists)) == once
    assert merged(*lists, *lists, once) == once
    assert [p.product_id for p in once] == ["a", "b", "c"], "ties by product id"


def test_merged_keeps_the_newest_products_only():
    many = [entry(f"p{i:03d}", hours_ago=i) for i in range(MAX_RECENT + 10)]
    assert merged(many) == tuple(many[:MAX_RECENT])
    assert merged(many, limit=3) == tuple(many[:3])


def test_a_change_carries_its_calls_products_newest_first():
    events = calls(
        track("Product Viewed", {"product_id": "a"}, "m1", hours_ago=3),
        track("Order Completed", {"products": [{"product_id": "a"}, {"product_id": "b"}]}, "m2", hours_ago=2),
        track("Product Viewed", {"product_id": "c"}, "m3", hours_ago=1),
    )
    change = plan_change(ContactId.user("ann"), events)
    assert change.recent_products == recent_products(events)
    assert [(p.product_id, p.kind) for p in change.recent_products] == [
        ("c", "view"),
        ("a", "purchase"),
        ("b", "purchase"),
    ]


def test_the_stored_list_reads_back_as_merged_folds_it():
    """The adapter folds the stored text (``recent_products_of``) as the domain folds entries (``merged``),
    whatever the repeats, ties and order."""
    import random

    from shared.adapters.contact_items import recent_products_of, recent_products_value
    from shared.adapters.dynamodb import plain

    rng = random.Random(15)
    for _ in range(50):
        entries = [
            entry(f"p{rng.randrange(80)}", rng.choice(("purchase", "view")), hours_ago=rng.randrange(40) / 2)
            for _ in range(rng.randrange(1, 200))
        ]
        assert recent_products_of(plain(recent_products_value(entries))) == merged(entries)
    assert recent_products_of([]) == ()

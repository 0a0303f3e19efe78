"""The nightly bench's purchase index (``bench.nightly.PurchaseIndex``): DynamoDB's Scan of ``byPurchase``
over a generated population, read by the real adapter. The scale figures rest on it reading every purchase
once, as tracking stored it, in pages DynamoDB would return."""

from __future__ import annotations

import math
from collections import Counter

from bench.capacity import item_size
from bench.nightly import EVENT_KEY_LENGTH, PurchaseIndex
from bench.purchases import generate
from shared.adapters.purchase_index import DynamoPurchaseScan
from shared.analytics.history import Purchase, Purchases, day_number

CUTOFF = 20_000


def test_the_segments_read_every_purchase_once_with_its_day_amount_and_basket() -> None:
    synthetic = generate(300, CUTOFF, seed=3)
    index = PurchaseIndex(synthetic.purchases, page_bytes=4096)
    scan = DynamoPurchaseScan(index, events_table="events")

    read = [p for segment in range(4) for page in scan.scan(segment, 4) for p in page.purchases]

    expected: dict[tuple[str, int], list[tuple[str | None, str | None]]] = {}
    amounts: dict[tuple[str, int], float] = {}
    for row in synthetic.rows():
        key = (f"user_id:{row.customer_id}", row.day)
        expected.setdefault(key, []).append((row.product, row.category))
        amounts[key] = amounts.get(key, 0.0) + row.amount
    got = Counter((p.contact_id, day_number(p.purchased_at.date())) for p in read)
    assert got == Counter(expected.keys()), "each purchase day once, in one segment"
    for p in read:
        key = (p.contact_id, day_number(p.purchased_at.date()))
        assert sorted(p.basket) == sorted(expected[key])
        assert math.isclose(p.amount, amounts[key], abs_tol=0.005)
    assert index.read == len(synthetic.purchases)
    assert index.requests > 4, "pages of 4 KB: several a segment"


def test_a_page_stops_before_the_page_size_and_is_billed_by_its_entries() -> None:
    synthetic = generate(200, CUTOFF, seed=4)
    index = PurchaseIndex(synthetic.purchases, page_bytes=2000)
    segments: dict[str, int] = {}
    request: dict = {"Segment": 0, "TotalSegments": 2}
    pages = 0
    for segment in range(2):
        request = {"Segment": segment, "TotalSegments": 2}
        while True:
            bytes_before, units_before = index.bytes, index.read_units
            page = index.scan(**request)
            pages += 1
            read = index.bytes - bytes_before
            entries = sum(item_size(i) + len("sk") + EVENT_KEY_LENGTH for i in page["Items"])
            assert read == entries <= 2000
            assert index.read_units - units_before == math.ceil(read / 4096) * 0.5
            for item in page["Items"]:
                assert segments.setdefault(item["pk"]["S"], segment) == segment, "a contact in one segment"
            if "LastEvaluatedKey" not in page:
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    assert index.requests == pages > 2


def test_purchases_without_a_product_or_a_category_keep_what_they_have() -> None:
    purchases = Purchases.from_rows(
        [
            Purchase("a", CUTOFF, 10.0, None, "filters"),
            Purchase("a", CUTOFF, 0.0, "filter-3", None),
            Purchase("b", CUTOFF - 1, 5.5),
        ]
    )
    scan = DynamoPurchaseScan(PurchaseIndex(purchases), events_table="events")
    found = [p for page in scan.scan(0, 1) for p in page.purchases]
    assert {p.contact_id: (p.amount, set(p.basket)) for p in found} == {
        "user_id:a": (10.0, {(None, "filters"), ("filter-3", None)}),
        "user_id:b": (5.5, set()),
    }

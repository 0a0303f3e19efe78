"""Issue 15: the bench of the nightly recommendations pass measures what it reports, on a small population:
one Scan page per segment, one BatchWriteItem per 25 items, the same items on a second run of the night,
and the aggregation's extra writes only when the stored list passes its bound."""

from __future__ import annotations

import pytest

from bench import recommendations_nightly as bench
from shared.adapters.contact_items import COMPACT_AT
from shared.recommendations.recent import MAX_RECENT


@pytest.fixture
def small(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench, "CONTACTS", 60)
    monkeypatch.setattr(bench, "PRODUCTS", 30)
    monkeypatch.setattr(bench, "VIEWS", 130)


def test_the_pass_is_counted_per_step_and_writes_the_same_items_twice(small) -> None:
    measured = bench.the_pass()
    first = measured["first"]
    requests = first["requests"]
    assert requests["recommendations_extract Scan"] == bench.SEGMENTS, "one page per small segment"
    assert requests["recommendations_extract PutObject"] == bench.SEGMENTS
    assert requests["recommendations_fit GetObject"] == bench.SEGMENTS
    items = measured["items"]
    assert items == measured["products"] + 1, "each product's neighbours and the popularity item"
    assert requests["recommendations_write BatchWriteItem"] == -(-items // 25)
    assert not any(key.startswith("recommendations_fit") and "Item" in key for key in requests)
    assert measured["same_items"] and measured["second"]["requests"] == requests
    assert first["write"][("recommendations_write",)] >= items, "at least a unit an item"


def test_the_aggregation_writes_the_list_back_once_it_passes_its_bound(small) -> None:
    share = bench.aggregation_share()
    # one entry a change (100 distinct products in turn): folded back to 50 once past COMPACT_AT
    after = bench.VIEWS - (COMPACT_AT + 1)
    assert share["updates"] == bench.VIEWS + 1
    assert share["stored"] == MAX_RECENT + after and share["kept"] == MAX_RECENT
    assert share["other"] == {}

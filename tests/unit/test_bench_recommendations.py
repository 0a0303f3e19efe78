"""The recommendations bench's yardsticks on tiny hand cases: HitRate@10, NDCG@10, catalogue coverage, and
the temporal split's households (their profile at the cut-off, what they bought new after it)."""

from __future__ import annotations

from datetime import UTC, datetime
from math import log2

import numpy as np
import pytest

from bench.recommendations import Customer, Log, coverage, customers, hit, ndcg, score
from shared.recommendations.model import RecentProduct, Recommendation

CUT = datetime(2017, 11, 1, tzinfo=UTC)


def test_a_hit_is_a_relevant_product_among_the_first_ten() -> None:
    ranked = [f"p{i}" for i in range(12)]
    assert hit(ranked, {"p0"}) == 1.0
    assert hit(ranked, {"p9"}) == 1.0
    assert hit(ranked, {"p10"}) == 0.0  # eleventh: outside the ten
    assert hit(ranked, {"x", "p10", "p11"}) == 0.0
    assert hit([], {"p0"}) == 0.0
    assert hit(ranked, {"p3"}, k=3) == 0.0


def test_ndcg_discounts_by_rank_and_normalises_by_the_best_possible() -> None:
    assert ndcg(["a", "b", "c"], {"a"}) == 1.0
    assert ndcg(["x", "a"], {"a"}) == pytest.approx(1 / log2(3))
    assert ndcg(["x", "y", "a"], {"a"}) == pytest.approx(0.5)  # 1/log2(4)
    # two relevant at ranks 1 and 3, of two: (1 + 1/2) / (1 + 1/log2(3))
    assert ndcg(["a", "x", "b"], {"a", "b"}) == pytest.approx(1.5 / (1 + 1 / log2(3)))
    # twelve relevant: the best possible fills the ten places, so ten hits make 1
    many = {f"p{i}" for i in range(12)}
    assert ndcg([f"p{i}" for i in range(10)], many) == pytest.approx(1.0)
    assert ndcg(["x"] * 9 + ["p0"], many) == pytest.approx(
        (1 / log2(11)) / sum(1 / log2(r + 2) for r in range(10))
    )
    assert ndcg(["x", "y"], {"a"}) == 0.0
    assert ndcg(["a"], set()) == 0.0
    assert ndcg([f"x{i}" for i in range(10)] + ["a"], {"a"}) == 0.0  # eleventh: not counted


def test_coverage_is_the_share_of_the_catalogue_recommended_to_anyone() -> None:
    assert coverage([["a", "b"], ["b", "c"]], 10) == pytest.approx(0.3)
    assert coverage([], 10) == 0.0
    assert coverage([["a"]], 0) == 0.0


def test_the_scores_average_over_the_households() -> None:
    def served(*products: str) -> tuple[Recommendation, ...]:
        return tuple(Recommendation(p, 1.0, "similar" if p.startswith("s") else "popular") for p in products)

    people = {
        "h1": Customer(recent=(), bought=frozenset(), relevant=frozenset({"s1"})),
        "h2": Customer(recent=(), bought=frozenset(), relevant=frozenset({"q2"})),
    }
    result = score({"h1": served("s1", "p1"), "h2": served("p1", "s2")}, people, catalogue=8)
    assert result.hit_rate == 0.5
    assert result.ndcg == pytest.approx(0.5)
    assert result.coverage == pytest.approx(3 / 8)
    assert result.similar == 0.5


def test_the_split_keeps_households_seen_before_with_something_new_after() -> None:
    def at(day: int) -> np.datetime64:
        return np.datetime64(datetime(2017, 10, day) if day < 32 else datetime(2017, 11, day - 31), "s")

    rows = [
        ("h1", "milk", 1),
        ("h1", "bread", 2),
        ("h1", "milk", 3),  # bought again: its latest time counts
        ("h2", "tea", 4),
        ("h1", "milk", 33),  # after the cut-off, not new to h1
        ("h1", "jam", 34),
        ("h2", "tea", 35),  # h2 buys nothing new: left out
        ("h3", "jam", 36),  # h3 was not seen before: left out
    ]
    log = Log(
        household=np.array([h for h, _, _ in rows]),
        product=np.array([p for _, p, _ in rows]),
        at=np.array([at(d) for _, _, d in rows]),
        baskets=len(rows),
    )
    people = customers(log.before(CUT), log.between(CUT, datetime(2018, 1, 1, tzinfo=UTC)))
    assert list(people) == ["h1"]
    h1 = people["h1"]
    assert h1.relevant == {"jam"}
    assert h1.bought == {"milk", "bread"}
    assert h1.recent == (
        RecentProduct(product_id="milk", kind="purchase", at=datetime(2017, 10, 3, tzinfo=UTC)),
        RecentProduct(product_id="bread", kind="purchase", at=datetime(2017, 10, 2, tzinfo=UTC)),
    )

"""Purchase histories as arrays: one row per customer and day, whatever the input's order."""

from __future__ import annotations

import random

import numpy as np

from shared.analytics.history import Purchase, Purchases, summarise

ROWS = [
    Purchase("b", 10, 5.0, "p1", "c1"),
    Purchase("a", 3, 1.0),
    Purchase("a", 3, 2.0, "p2", "c1"),
    Purchase("a", 9, 4.0),
    Purchase("a", 20, 1.0),
    Purchase("b", 30, 1.0),
    Purchase("b", 10, 1.0, "p1", "c1"),
    Purchase("b", 10, 1.0, None, "c2"),
]


def test_rows_of_a_customer_and_day_are_one_purchase_day_with_the_days_basket() -> None:
    p = Purchases.from_rows(ROWS)
    assert p.customers == ("a", "b")
    assert p.customer.tolist() == [0, 0, 0, 1, 1]
    assert p.day.tolist() == [3, 9, 20, 10, 30]
    assert p.amount.tolist() == [3.0, 4.0, 1.0, 7.0, 1.0]
    basket = {
        (int(r), p.products[pr] if pr >= 0 else None, p.categories[c] if c >= 0 else None)
        for r, pr, c in zip(p.basket_row, p.basket_product, p.basket_category, strict=True)
    }
    # a's first day bought p2 (c1); b's day 10 bought p1 (c1) twice, and something of c2
    assert basket == {(0, "p2", "c1"), (3, "p1", "c1"), (3, None, "c2")}


def test_the_order_of_the_rows_changes_nothing() -> None:
    first = Purchases.from_rows(ROWS)
    shuffled = ROWS[:]
    random.Random(3).shuffle(shuffled)
    again = Purchases.from_rows(shuffled)
    for name in ("customer", "day", "amount", "basket_row", "basket_product", "basket_category"):
        assert np.array_equal(getattr(first, name), getattr(again, name)), name


def test_until_keeps_the_days_up_to_the_cutoff_and_renumbers_customers() -> None:
    p = Purchases.from_rows(ROWS).until(9)
    assert p.customers == ("a",)
    assert p.day.tolist() == [3, 9]
    assert p.basket_row.tolist() == [0]
    assert Purchases.from_rows([]).until(5).customers == ()


def test_summary_at_a_cutoff() -> None:
    s = summarise(Purchases.from_rows(ROWS), 25)
    assert s.n.tolist() == [3, 1]
    assert s.x.tolist() == [2, 0]
    assert s.t_x.tolist() == [17.0, 0.0]
    assert s.T.tolist() == [22.0, 15.0]
    assert s.recency.tolist() == [5.0, 15.0]
    assert s.monetary.tolist() == [8.0, 7.0]
    assert s.customer_gaps(0).tolist() == [6.0, 11.0]
    assert s.customer_gaps(1).tolist() == []

"""RFM: quintile scores on hand-built populations, ties, the look-back window, and the segment table."""

from __future__ import annotations

import random
import re
from datetime import date

import numpy as np
import pytest

from shared.analytics.facts import SEGMENT_NAMES
from shared.analytics.history import Purchase, Purchases, day_number
from shared.analytics.rfm import (
    SEGMENT_RULES,
    RfmSettings,
    SegmentRule,
    parse_edges,
    quintiles,
    score_rfm,
    segment_of,
)
from shared.analytics.scoring import ScoringSettings, score
from tests.conftest import ROOT

CUTOFF = day_number(date(2024, 6, 30))
SETTINGS = RfmSettings()


def rfm_by_customer(rows: list[Purchase], settings: RfmSettings = SETTINGS, cutoff: int = CUTOFF) -> dict:
    purchases = Purchases.from_rows(rows)
    found = score_rfm(purchases, cutoff, settings)
    return {
        customer: (
            int(found.r[c]),
            int(found.f[c]),
            int(found.m[c]),
            found.segment[c],
            bool(found.premium[c]),
        )
        for c, customer in enumerate(purchases.customers)
    }


def buy(customer: str, days_ago: int, amount: float = 10.0, product: str | None = None) -> Purchase:
    return Purchase(customer_id=customer, day=CUTOFF - days_ago, amount=amount, product=product)


# quintiles --------------------------------------------------------------------------------------------


def test_distinct_values_fill_each_quintile_equally() -> None:
    assert quintiles(np.array([50, 10, 30, 20, 40])).tolist() == [5, 1, 3, 2, 4]
    assert quintiles(np.arange(10)).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    counts = np.bincount(quintiles(np.arange(1000) * 1.5), minlength=6)
    assert counts.tolist() == [0, 200, 200, 200, 200, 200]


def test_a_tie_group_takes_the_score_of_its_lowest_member() -> None:
    # six of ten bought once: none beats another, so all six score 1; the two with 2 purchases beat 60%
    assert quintiles(np.array([1, 1, 1, 1, 1, 1, 2, 2, 3, 4])).tolist() == [1] * 6 + [4, 4, 5, 5]
    assert quintiles(np.array([7, 7, 7])).tolist() == [1, 1, 1]


def test_with_ties_at_the_highest_a_tie_group_takes_the_score_of_its_highest_member() -> None:
    # four of ten bought on the latest day: each has none of the others after them, so all four score 5
    values = np.array([1, 2, 3, 4, 5, 6, 10, 10, 10, 10])
    assert quintiles(values, ties="highest").tolist() == [1, 1, 2, 2, 3, 3, 5, 5, 5, 5]
    assert quintiles(values).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 4, 4]
    assert quintiles(np.array([7, 7, 7]), ties="highest").tolist() == [5, 5, 5]
    # distinct values: the same either way
    distinct = np.array([50, 10, 30, 20, 40, 60, 0])
    assert quintiles(distinct, ties="highest").tolist() == quintiles(distinct).tolist()


def test_a_lone_value_scores_as_if_everyone_were_tied() -> None:
    assert quintiles(np.array([123.0])).tolist() == [1]
    assert quintiles(np.array([123.0, 123.0])).tolist() == [1, 1]
    assert quintiles(np.array([123.0]), ties="highest").tolist() == [5]
    assert quintiles(np.array([123.0, 123.0]), ties="highest").tolist() == [5, 5]
    assert quintiles(np.array([], dtype=np.float64)).tolist() == []


def test_edges_decide_where_the_scores_change() -> None:
    values = np.arange(10)
    assert quintiles(values, (0.5, 0.6, 0.7, 0.8)).tolist() == [1, 1, 1, 1, 1, 2, 3, 4, 5, 5]
    # an edge exactly on a percentile counts as reached: 2 of the 5 others is 0.4
    assert quintiles(np.arange(6), (0.2, 0.4, 0.6, 0.8)).tolist() == [1, 2, 3, 4, 5, 5]
    assert quintiles(np.arange(6), (0.21, 0.41, 0.61, 0.81)).tolist() == [1, 1, 2, 3, 4, 5]


# score_rfm ---------------------------------------------------------------------------------------------


def test_hand_built_population_scores_by_recency_frequency_and_money() -> None:
    # five customers, each a step apart in every measure: e is the most recent, most frequent, biggest
    rows = []
    for rank, customer in enumerate("abcde"):
        for purchase in range(rank + 1):
            rows.append(buy(customer, days_ago=100 - 20 * rank + 5 * purchase, amount=10.0 * (rank + 1)))
    found = rfm_by_customer(rows)
    assert {c: found[c][:3] for c in found} == {
        "a": (1, 1, 1),
        "b": (2, 2, 2),
        "c": (3, 3, 3),
        "d": (4, 4, 4),
        "e": (5, 5, 5),
    }
    assert [found[c][3] for c in "abcde"] == [
        "lost",
        "about_to_sleep",
        "need_attention",
        "champions",
        "champions",
    ]
    assert [found[c][4] for c in "abcde"] == [False, False, False, False, True]


def test_recency_is_reversed_and_counts_from_the_last_purchase() -> None:
    rows = [
        buy("old", 300),
        buy("old", 200),
        buy("mid", 250),
        buy("mid", 100),
        buy("new", 400),
        buy("new", 1),
    ]
    found = rfm_by_customer(rows)
    assert (found["new"][0], found["mid"][0], found["old"][0]) == (5, 3, 1)


def test_frequency_counts_purchase_days_not_rows() -> None:
    rows = [buy("lines", 10), buy("lines", 10), buy("lines", 10), buy("days", 10), buy("days", 11)]
    found = rfm_by_customer(rows)
    assert found["days"][1] > found["lines"][1]


def test_equal_spend_and_equal_recency_score_equal_whatever_the_order_and_the_ids() -> None:
    rows = [
        buy("a", 5, 30.0),
        buy("b", 5, 30.0),  # a and b: same day, same spend
        buy("c", 40, 0.1),
        buy("c", 40, 0.2),  # c and d: same spend, added up in another order
        buy("d", 40, 0.3),
        buy("e", 90, 99.0),
        buy("f", 1, 5.0),
    ]
    first = rfm_by_customer(rows)
    assert first["a"] == first["b"]
    assert first["c"][:3] == first["d"][:3]
    renamed = {"a": "z", "b": "y", "c": "x", "d": "w", "e": "v", "f": "u"}
    for seed in range(5):
        shuffled = rows[:]
        random.Random(seed).shuffle(shuffled)
        again = rfm_by_customer(
            [Purchase(renamed[p.customer_id], p.day, p.amount) for p in reversed(shuffled)]
        )
        assert {c: again[renamed[c]] for c in first} == first


def test_a_single_customer_is_scored_like_customers_tied_on_everything() -> None:
    alone = rfm_by_customer([buy("solo", 3, 120.0), buy("solo", 30, 80.0)])
    assert alone == {"solo": (5, 1, 1, "new", False)}
    twins = rfm_by_customer(
        [buy(c, days_ago, amount) for c in "ab" for days_ago, amount in ((3, 120.0), (30, 80.0))]
    )
    assert twins == {"a": alone["solo"], "b": alone["solo"]}


def test_customers_who_all_bought_on_the_cutoff_day_are_new_not_lost() -> None:
    rows = [buy(f"c{i:02d}", 0, 10.0) for i in range(50)]
    assert set(rfm_by_customer(rows).values()) == {(5, 1, 1, "new", False)}
    # one of them had bought before: the most frequent and the biggest spender, still as recent
    found = rfm_by_customer([*rows, buy("c00", 40, 10.0)])
    assert found.pop("c00") == (5, 5, 5, "champions", True)
    assert set(found.values()) == {(5, 1, 1, "new", False)}


def test_customers_tied_on_a_recent_day_share_the_best_recency_among_them() -> None:
    # twelve customers: three bought yesterday, the others each on a day of their own before that
    rows = [buy(f"yesterday-{i}", 1) for i in range(3)] + [
        buy(f"earlier-{i}", 10 * (i + 1)) for i in range(9)
    ]
    found = rfm_by_customer(rows)
    assert {found[f"yesterday-{i}"][0] for i in range(3)} == {5}
    assert [found[f"earlier-{i}"][0] for i in range(9)] == [4, 4, 3, 3, 2, 2, 1, 1, 1]


def test_one_time_buyers_keep_f_1_however_many_they_are() -> None:
    rows = [buy(f"once-{i}", days_ago=i + 1) for i in range(7)]
    rows += [buy("twice", 3), buy("twice", 50), buy("thrice", 2), buy("thrice", 20), buy("thrice", 40)]
    rows += [buy("often", d) for d in (4, 8, 16, 32)]
    found = rfm_by_customer(rows)
    assert {found[f"once-{i}"][1] for i in range(7)} == {1}
    assert found["once-0"][3] == "new"  # the most recent one-time buyer
    # "twice" beats 7 of the 9 others (78%), "thrice" 8 of 9
    assert (found["twice"][1], found["thrice"][1], found["often"][1]) == (4, 5, 5)


def test_customers_without_purchases_in_the_window_are_not_scored() -> None:
    lookback = SETTINGS.lookback_days
    rows = [
        buy("inside", lookback - 1),  # the window's first day: cutoff - lookback + 1
        buy("outside", lookback),  # the day before it
        buy("outside", lookback + 400, 1000.0),
        buy("both", lookback + 10, 5000.0),  # only the purchase inside counts
        buy("both", 10, 1.0),
    ]
    found = rfm_by_customer(rows)
    assert found["outside"] == (0, 0, 0, None, False)
    assert found["inside"][3] is not None and found["both"][3] is not None
    assert found["both"][2] == 1  # 1.0 in the window, less than "inside"'s 10.0
    rows_out = score(Purchases.from_rows(rows), CUTOFF, ScoringSettings())
    outside = next(row for row in rows_out if row.customer_id == "outside")
    assert (outside.r, outside.f, outside.m, outside.segment, outside.premium) == (
        None,
        None,
        None,
        None,
        False,
    )
    assert outside.rfm is None
    assert len(rows_out) == 3


def test_purchases_after_the_cutoff_change_nothing() -> None:
    rows = [buy("a", 30, 10.0), buy("b", 20, 20.0), buy("c", 10, 30.0)]
    later = [buy("a", -1, 900.0), buy("a", -5, 900.0), buy("d", -2, 5.0)]
    before = rfm_by_customer(rows)
    after = rfm_by_customer(rows + later)
    assert after.pop("d") == (0, 0, 0, None, False)
    assert after == before


def test_the_look_back_and_the_edges_are_settings() -> None:
    rows = [buy("a", 100, 10.0), buy("a", 400, 10.0), buy("b", 50, 30.0), buy("c", 10, 25.0)]
    short = rfm_by_customer(rows, RfmSettings(lookback_days=200))
    assert short["a"][1:3] == (1, 1)  # one purchase day and 10.0 within 200 days
    assert rfm_by_customer(rows)["a"][1] == 5  # two purchase days within 1095
    moved = rfm_by_customer(rows, RfmSettings(edges=(0.1, 0.2, 0.3, 0.4)))
    assert moved["b"][2] == 5 and rfm_by_customer(rows)["b"][2] == 5
    assert moved["c"][2] == 5 and rfm_by_customer(rows)["c"][2] == 3


def test_premium_is_m_at_or_above_the_premium_score() -> None:
    rows = [buy(c, 10, amount) for c, amount in zip("abcde", (1.0, 2.0, 3.0, 4.0, 5.0), strict=True)]
    assert [v[4] for v in rfm_by_customer(rows).values()] == [False, False, False, False, True]
    assert [v[4] for v in rfm_by_customer(rows, RfmSettings(premium_m=4)).values()] == [
        False,
        False,
        False,
        True,
        True,
    ]


def test_an_empty_population_scores_nothing() -> None:
    found = score_rfm(Purchases.from_rows([]), CUTOFF, SETTINGS)
    assert len(found.r) == 0 and found.segment == []


@pytest.mark.parametrize(
    "settings",
    [
        {"edges": (0.2, 0.4, 0.4, 0.8)},
        {"edges": (0.0, 0.4, 0.6, 0.8)},
        {"edges": (0.2, 0.4, 0.6, 1.0)},
        {"edges": (0.2, 0.4, 0.6)},
        {"lookback_days": 0},
        {"premium_m": 6},
    ],
)
def test_bad_settings_are_refused(settings: dict) -> None:
    with pytest.raises(ValueError):
        RfmSettings(**settings)


def test_edges_are_parsed_from_text() -> None:
    assert parse_edges(" 0.1, 0.3,0.5 ,0.9") == (0.1, 0.3, 0.5, 0.9)
    with pytest.raises(ValueError, match="not numbers"):
        parse_edges("0.2,0.4,x,0.8")
    with pytest.raises(ValueError, match="4 increasing shares"):
        parse_edges("0.2,0.4,0.8")
    with pytest.raises(ValueError, match="4 increasing shares"):
        parse_edges("0.8,0.6,0.4,0.2")


# the segment table ----------------------------------------------------------------------------------


def documented_rfm_section() -> str:
    text = (ROOT / "docs" / "analytics.md").read_text()
    return text.split("## RFM segments", 1)[1].split("\n## ", 1)[0]


def documented_cells() -> dict[tuple[int, int, int], str]:
    section = documented_rfm_section()
    cells = {}
    for r, table in re.findall(
        r"^\| \*\*R (\d)\*\* \| M 1 \| M 2 \| M 3 \| M 4 \| M 5 \|\n\|[-|]+\|\n((?:\|.*\n)+)",
        section,
        re.MULTILINE,
    ):
        for line in table.strip().splitlines():
            f, *names = (part.strip() for part in line.strip("|").split("|"))
            for m, name in enumerate(names, start=1):
                cells[(int(r), int(f.removeprefix("F ")), m)] = name
    return cells


def test_every_cell_has_the_documented_segment() -> None:
    documented = documented_cells()
    assert len(documented) == 125
    for (r, f, m), name in documented.items():
        assert SEGMENT_NAMES[segment_of(r, f, m)] == name, (r, f, m)


def test_every_segment_is_reachable() -> None:
    reached = {segment_of(r, f, m) for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)}
    assert reached == set(SEGMENT_NAMES)


def rule_text(rule: SegmentRule) -> str:
    parts = [f"R {rule.r_low}" if rule.r_low == rule.r_high else f"R {rule.r_low}-{rule.r_high}"]
    if rule.fm_at_least is not None:
        parts.append(f"FM >= {rule.fm_at_least:g}")
    if rule.f_is is not None:
        parts.append(f"F {rule.f_is}")
    if rule.f_at_least is not None:
        parts.append(f"F >= {rule.f_at_least}")
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def test_the_documented_rules_are_the_rules_in_their_order() -> None:
    documented = re.findall(
        r"^\| (\d+) \| ([^|]+) \| `(\w+)` \| ([^|]+) \|$", documented_rfm_section(), re.MULTILINE
    )
    assert [(int(n), name.strip(), sid, text.strip()) for n, name, sid, text in documented] == [
        (n, SEGMENT_NAMES[rule.segment], rule.segment, rule_text(rule))
        for n, rule in enumerate(SEGMENT_RULES, start=1)
    ]


def test_precedence_decides_overlapping_rules() -> None:
    # R5 F1 M5 matches "Loyal" (FM 3) too, but "New" comes first; R1 F5 M5 matches "At Risk" after
    # "Can't Lose Them"; a one-time buyer long ago is not "At Risk" however much they spent
    assert segment_of(5, 1, 5) == "new"
    assert segment_of(1, 5, 5) == "cant_lose_them"
    assert segment_of(1, 1, 5) == "hibernating"
    assert segment_of(2, 2, 4) == "at_risk"

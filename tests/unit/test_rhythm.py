"""Churn risk from each customer's own rhythm: the issue's two customers, the population-level ranking
against BG/NBD, the cycles borrowed from products and categories, and inputs with nothing to learn from."""

from __future__ import annotations

import csv
from datetime import date, datetime
from functools import cache

import numpy as np
import pytest
from scipy import special

from bench.purchases import (
    APPLIANCE_CATEGORY,
    Mix,
    appliance_customer,
    generate,
    irregular_customer,
    water_filter_customer,
)
from bench.rhythm import within_cells
from shared.analytics.btyd import fit_bgnbd
from shared.analytics.history import Purchase, Purchases, day_number, summarise
from shared.analytics.rhythm import Dropout, Rhythm, assess, fit_dropout, silence_risk
from shared.analytics.scoring import RiskLevels, score
from tests.conftest import ROOT

CUTOFF = 20_000
LAST_FILTER = CUTOFF - 90


@cache
def population() -> tuple[Purchase, ...]:
    """2,000 generated customers: regular consumable buyers (water filters among them), Poisson buyers,
    kitchen-appliance buyers."""
    return tuple(generate(2000, CUTOFF, seed=12).rows())


def water_filters(customer: str = "water-filter") -> list[Purchase]:
    """Water filters every 30 days for a year, the last 90 days before the cut-off."""
    return water_filter_customer(LAST_FILTER, customer)


def irregular_filters(customer: str = "irregular") -> list[Purchase]:
    return irregular_customer(LAST_FILTER, customer)


def appliance(
    customer: str = "appliance", day: int = CUTOFF - 30, product: str | None = "espresso machine"
) -> Purchase:
    return appliance_customer(day, customer, product)


def assessed(rows: list[Purchase], cutoff: int) -> tuple[Rhythm, tuple[str, ...]]:
    purchases = Purchases.from_rows(rows)
    return assess(purchases, cutoff), purchases.until(cutoff).customers


def of(rhythm: Rhythm, customers: tuple[str, ...], customer: str) -> tuple[float, float, float]:
    c = customers.index(customer)
    return float(rhythm.churn_risk[c]), float(rhythm.expected_next[c]), float(rhythm.typical_gap[c])


def test_the_water_filter_customer_goes_from_low_to_high_risk() -> None:
    rows = [*population(), *water_filters()]
    levels = RiskLevels()

    # scored 25 days after the last filter: the next one is due in about 5 days
    before, customers = assessed(rows, LAST_FILTER + 25)
    risk, expected, gap = of(before, customers, "water-filter")
    assert levels.level(risk) == "low"
    assert risk < 0.2
    assert gap == pytest.approx(30, abs=1.5)
    assert LAST_FILTER + 28 <= expected <= LAST_FILTER + 35

    # 90 days without a filter: three cycles missed
    after, customers = assessed(rows, CUTOFF)
    risk, expected, gap = of(after, customers, "water-filter")
    assert levels.level(risk) == "high"
    assert risk > 0.95
    assert np.isnan(expected)  # probably lapsed: no next purchase expected
    assert gap == pytest.approx(30, abs=1.5)


def test_the_water_filter_customer_scores_clearly_above_an_irregular_buyer_with_the_same_history_span() -> (
    None
):
    filters, irregular = water_filters(), irregular_filters()
    assert len(filters) == len(irregular)
    assert min(p.day for p in filters) == min(p.day for p in irregular)
    assert max(p.day for p in filters) == max(p.day for p in irregular)
    rhythm, customers = assessed([*population(), *filters, *irregular], CUTOFF)
    regular_risk, _, regular_gap = of(rhythm, customers, "water-filter")
    irregular_risk, _, irregular_gap = of(rhythm, customers, "irregular")
    assert regular_gap == pytest.approx(irregular_gap, rel=0.1)  # the same mean gap...
    assert regular_risk - irregular_risk > 0.3  # ...but 90 days is unusual only for the regular one
    assert RiskLevels().level(irregular_risk) != "high"


def test_the_appliance_buyer_a_month_later_is_at_low_risk_with_a_long_gap_borrowed_from_the_category() -> (
    None
):
    rows = [*population(), *water_filters(), appliance(), appliance("no-basket", product=None)]
    rhythm, customers = assessed(rows, CUTOFF)
    risk, expected, gap = of(rhythm, customers, "appliance")
    assert RiskLevels().level(risk) == "low"
    assert risk < 0.2
    assert gap > 365  # kitchen appliances are hardly ever bought again
    assert expected > CUTOFF + 365
    _, _, filter_gap = of(rhythm, customers, "water-filter")
    assert gap > 10 * filter_gap
    # the same purchase without a product or category borrows the population's (much shorter) cycle
    _, _, anonymous_gap = of(rhythm, customers, "no-basket")
    assert anonymous_gap < gap / 3


def test_a_product_keeps_its_own_cycle_within_its_category() -> None:
    # descaler every ~60 days and espresso machines bought once, both in kitchen appliances
    rng = np.random.default_rng(3)
    rows = [appliance(f"machine-{i}", day=int(CUTOFF - rng.integers(1, 700))) for i in range(300)]
    for i in range(100):
        day = int(CUTOFF - rng.integers(300, 700))
        while day <= CUTOFF - 60:
            rows.append(Purchase(f"descaler-{i}", day, 9.0, "descaler", APPLIANCE_CATEGORY))
            day += int(rng.normal(60, 6))
    rows += [appliance("new-machine", day=CUTOFF - 10)]
    rows += [Purchase("new-descaler", CUTOFF - 10, 9.0, "descaler", APPLIANCE_CATEGORY)]
    rhythm, customers = assessed(rows, CUTOFF)
    _, _, descaler_gap = of(rhythm, customers, "new-descaler")
    _, _, machine_gap = of(rhythm, customers, "new-machine")
    assert descaler_gap == pytest.approx(60, rel=0.15)
    assert machine_gap > 365


def test_a_first_time_buyer_borrows_the_cycle_undistorted_by_those_who_dropped_out() -> None:
    # many water-filter buyers of the generated population have dropped out; their silence must not
    # count as a long wait for the next filter (the cycle would be ~47 days instead of ~31)
    rows = [*population(), Purchase("first-filter", CUTOFF - 5, 25.0, "water filter", "water filters")]
    rhythm, customers = assessed(rows, CUTOFF)
    _, expected, gap = of(rhythm, customers, "first-filter")
    assert gap == pytest.approx(31, abs=4)
    assert expected == pytest.approx(CUTOFF - 5 + gap, abs=2)


def test_churn_risk_ranks_the_lapsed_above_the_active_within_recency_and_frequency_cells_better_than_bgnbd() -> (
    None
):
    synthetic = generate(3000, CUTOFF, seed=4)
    lapsed = synthetic.truth.lapsed(CUTOFF)
    s = summarise(synthetic.purchases, CUTOFF)
    rhythm = assess(synthetic.purchases, CUTOFF)
    bgnbd = fit_bgnbd(s.x, s.t_x, s.T)
    cells = within_cells(
        {"rhythm": rhythm.churn_risk, "bgnbd": 1 - bgnbd.p_alive(s.x, s.t_x, s.T)}, lapsed, s.recency, s.n
    )
    assert cells.cells >= 20
    assert cells.aucs["rhythm"] > 0.75
    assert cells.aucs["rhythm"] > cells.aucs["bgnbd"] + 0.05


def test_the_probability_of_having_lapsed_is_calibrated_on_the_generated_population() -> None:
    # the generator tells the model's own story (gamma gaps, dropout after a purchase), so p_lapsed is
    # a probability there: of those scored about 0.4, about 40% had lapsed
    synthetic = generate(10_000, CUTOFF, seed=4)
    lapsed = synthetic.truth.lapsed(CUTOFF)
    rhythm = assess(synthetic.purchases, CUTOFF)
    for low, high in ((0.0, 0.2), (0.2, 0.8), (0.8, 1.0)):
        inside = (rhythm.p_lapsed >= low) & (rhythm.p_lapsed <= high)
        assert inside.sum() > 500
        assert lapsed[inside].mean() == pytest.approx(rhythm.p_lapsed[inside].mean(), abs=0.06)
    # churn_risk is the part of it the silence accounts for: never more, and close to it when high
    assert (rhythm.churn_risk <= rhythm.p_lapsed + 1e-12).all()
    high = rhythm.churn_risk >= RiskLevels().high
    assert high.sum() > 500
    assert lapsed[high].mean() > 0.95


def test_churn_risk_is_the_share_of_the_belief_in_being_alive_that_the_silence_took() -> None:
    dropout = Dropout(a=0.8, b=0.7)
    x = np.array([0.0, 1.0, 5.0, 40.0])[:, None]
    survival = np.linspace(1.0, 0.0, 101)[None, :]  # longer and longer silences
    p_lapsed = dropout.risk(x, survival)
    risk = silence_risk(p_lapsed, survival)
    at_purchase = dropout.risk(x, np.ones_like(survival))
    np.testing.assert_allclose(risk, (p_lapsed - at_purchase) / (1 - at_purchase), atol=1e-12)
    np.testing.assert_array_equal(risk[:, 0], 0.0)  # on the day of a purchase
    np.testing.assert_allclose(risk[:, -1], 1.0)  # a silence no gap of theirs would last
    assert (np.diff(risk, axis=1) > 0).all()  # rising with silence
    assert ((risk >= 0) & (risk <= 1)).all()


@cache
def cdnow_like() -> tuple[Purchase, ...]:
    """2,000 generated customers who drop out as often as CDNOW's (dropout per purchase ~ Beta(0.8, 0.7),
    mean 0.53: most first-time buyers never come back), with the issue's customers and a first-time
    buyer of today."""
    synthetic = generate(2000, CUTOFF, seed=12, mix=Mix(dropout_a=0.8, dropout_b=0.7))
    return (
        *synthetic.rows(),
        *water_filters(),
        appliance(),
        Purchase("first-today", CUTOFF, 25.0, "water filter", "water filters"),
        Purchase("first-today-no-basket", CUTOFF, 25.0),
    )


def test_in_a_shop_where_most_never_return_a_first_time_buyer_of_today_is_at_low_risk() -> None:
    purchases = Purchases.from_rows(cdnow_like())
    rhythm = assess(purchases, CUTOFF)
    s = summarise(purchases, CUTOFF)
    assert (s.x == 0).mean() > 0.5  # mostly one-time buyers
    for customer in ("first-today", "first-today-no-basket"):
        c = purchases.customers.index(customer)
        assert rhythm.p_lapsed[c] > RiskLevels().medium  # the shop's dropout rate: most never return...
        assert rhythm.churn_risk[c] == 0  # ...but nothing about this customer's silence is unusual
        assert np.isfinite(rhythm.expected_next[c])
    scored = {row.customer_id: row for row in score(purchases, CUTOFF)}
    assert scored["first-today"].risk_level == scored["first-today-no-basket"].risk_level == "low"


def test_in_a_shop_where_most_never_return_the_appliance_buyer_is_low_and_the_overdue_filter_buyer_high() -> (
    None
):
    purchases = Purchases.from_rows(cdnow_like())
    scored = {row.customer_id: row for row in score(purchases, CUTOFF)}
    assert scored["appliance"].risk_level == "low"
    assert scored["appliance"].churn_risk < 0.1
    assert scored["water-filter"].risk_level == "high"
    assert scored["water-filter"].churn_risk > 0.95
    earlier = {row.customer_id: row for row in score(purchases, LAST_FILTER + 25)}
    assert earlier["water-filter"].risk_level == "low"


def test_the_dropout_fit_recovers_the_beta_it_was_generated_with() -> None:
    synthetic = generate(20_000, CUTOFF, seed=9)
    s = summarise(synthetic.purchases, CUTOFF)
    shape, mean = synthetic.truth.shape, synthetic.truth.mean_gap
    survival = special.gammaincc(shape, s.recency * shape / mean)  # the true rhythms
    dropout = fit_dropout(s.x, survival)
    assert dropout.a / (dropout.a + dropout.b) == pytest.approx(0.6 / 8.6, rel=0.1)
    assert dropout.a == pytest.approx(0.6, rel=0.2)


def test_expected_next_purchase_is_after_the_cutoff_and_missing_only_when_probably_lapsed() -> None:
    synthetic = generate(3000, CUTOFF, seed=4)
    rhythm = assess(synthetic.purchases, CUTOFF)
    known = np.isfinite(rhythm.expected_next)
    assert (rhythm.expected_next[known] > CUTOFF).all()
    assert (known == (rhythm.churn_risk < 0.5)).all()
    last = summarise(synthetic.purchases, CUTOFF).last
    # not overdue yet: the next purchase is expected about a typical gap after the last
    fresh = known & (CUTOFF - last < 0.5 * rhythm.typical_gap)
    assert fresh.sum() > 100
    assert np.median((rhythm.expected_next - last)[fresh] / rhythm.typical_gap[fresh]) == pytest.approx(
        1, abs=0.1
    )


def test_only_purchases_up_to_the_cutoff_count() -> None:
    rows = [*population(), *water_filters()]
    later = [Purchase("water-filter", CUTOFF + 1, 25.0, "water filter", "water filters")]
    without, customers = assessed(rows, CUTOFF)
    with_later, same_customers = assessed(rows + later, CUTOFF)
    assert customers == same_customers
    np.testing.assert_array_equal(without.churn_risk, with_later.churn_risk)
    np.testing.assert_array_equal(without.typical_gap, with_later.typical_gap)


DEGENERATE = {
    "one customer, one purchase": [Purchase("a", 100, 10.0)],
    "one customer, weekly": [Purchase("a", 100 + 7 * i, 10.0) for i in range(5)],
    "no repeat purchase anywhere": [Purchase(f"c{i}", 100 + i, 10.0, "kettle", "kitchen") for i in range(50)],
    "everyone on one day": [Purchase(f"c{i}", 100, 10.0) for i in range(20)],
    "no baskets": [Purchase(f"c{i % 7}", 100 + 3 * i, 5.0) for i in range(40)],
    "categories only": [Purchase("a", 100, 1.0, None, "tea"), Purchase("a", 130, 1.0, None, "tea")],
    "products only": [Purchase("a", 100, 1.0, "tea", None), Purchase("b", 101, 1.0, "tea", None)],
    "consecutive days": [Purchase("a", 100, 1.0), Purchase("a", 101, 1.0)],
}


@pytest.mark.parametrize("case", sorted(DEGENERATE))
@pytest.mark.parametrize("silence", [0, 30, 2000])
def test_degenerate_inputs_give_a_risk_and_a_gap_never_nan(case: str, silence: int) -> None:
    rows = DEGENERATE[case]
    cutoff = max(p.day for p in rows) + silence
    rhythm, customers = assessed(rows, cutoff)
    assert len(rhythm.churn_risk) == len(customers) == len({p.customer_id for p in rows})
    assert np.isfinite(rhythm.churn_risk).all()
    assert ((rhythm.churn_risk >= 0) & (rhythm.churn_risk <= 1)).all()
    assert (np.isfinite(rhythm.typical_gap) & (rhythm.typical_gap > 0)).all()
    known = np.isfinite(rhythm.expected_next)
    assert (rhythm.expected_next[known] > cutoff).all()
    scores = score(Purchases.from_rows(rows), cutoff)  # and the rows validate
    assert [row.customer_id for row in scores] == list(customers)


def test_a_population_that_never_comes_back_is_not_all_at_risk_on_the_first_night() -> None:
    rows = DEGENERATE["no repeat purchase anywhere"]
    rhythm, _ = assessed(rows, max(p.day for p in rows))
    assert (rhythm.churn_risk < RiskLevels().medium).all()


def test_nothing_to_assess() -> None:
    rhythm = assess(Purchases.from_rows([]), CUTOFF)
    assert len(rhythm.churn_risk) == len(rhythm.expected_next) == len(rhythm.typical_gap) == 0
    later = assess(Purchases.from_rows([Purchase("a", CUTOFF + 1, 1.0)]), CUTOFF)
    assert len(later.churn_risk) == 0


def test_the_generator_is_deterministic_and_its_rows_rebuild_its_histories() -> None:
    one, two = generate(300, CUTOFF, seed=5), generate(300, CUTOFF, seed=5)
    np.testing.assert_array_equal(one.purchases.day, two.purchases.day)
    np.testing.assert_array_equal(one.truth.dropped_day, two.truth.dropped_day)
    rebuilt = Purchases.from_rows(one.rows())
    for name in ("customer", "day", "basket_row", "basket_product", "basket_category"):
        np.testing.assert_array_equal(getattr(rebuilt, name), getattr(one.purchases, name))
    np.testing.assert_allclose(rebuilt.amount, one.purchases.amount)
    assert rebuilt.customers == one.purchases.customers
    # the truth is consistent with the histories: nobody buys after dropping out
    s = summarise(one.purchases, CUTOFF)
    dropped = one.truth.dropped_day >= 0
    np.testing.assert_array_equal(s.last[dropped], one.truth.dropped_day[dropped])


def test_the_example_transactions_show_the_water_filter_customer_high_and_the_appliance_buyer_low() -> None:
    path = ROOT / "examples" / "analytics" / "transactions.csv"
    with path.open(newline="") as lines:
        rows = [
            Purchase(
                row["customer_id"],
                day_number(datetime.fromisoformat(row["timestamp"])),
                float(row["amount"]),
                row["product"] or None,
                row["category"] or None,
            )
            for row in csv.DictReader(lines)
        ]
    purchases = Purchases.from_rows(rows)
    assert len(purchases.customers) > 30
    scored = {row.customer_id: row for row in score(purchases, day_number(date(2026, 11, 30)))}
    assert scored["water-filter"].risk_level == "high"
    assert scored["water-filter"].expected_next_purchase is None
    assert scored["water-filter"].typical_gap_days == pytest.approx(30, abs=1)
    assert scored["appliance"].risk_level == "low"
    assert scored["appliance"].typical_gap_days > 365
    # 25 days after the water filter customer's last purchase, the risk was low
    earlier = {row.customer_id: row for row in score(purchases, day_number(date(2026, 9, 26)))}
    assert earlier["water-filter"].risk_level == "low"
    assert earlier["water-filter"].expected_next_purchase == date(2026, 10, 1)

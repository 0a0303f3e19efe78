"""The churn model's probability of no purchase: fitted on the past only, calibrated, sane on odd input."""

from __future__ import annotations

import numpy as np
import pytest

from shared.analytics.churn import ChurnSettings, fit_churn_model, p_no_purchase, training_window
from shared.analytics.history import Purchase, Purchases, summarise

CUTOFF = 720
HORIZON = 90


def simulate_bgnbd(seed: int, customers: int = 3000, end: int = CUTOFF + HORIZON) -> list[Purchase]:
    """A BG/NBD population in days: first purchases spread over a year, purchase rates ~ Gamma(0.8, 30),
    a drop-out after each repeat purchase with probability ~ Beta(1, 4); spend ~ lognormal."""
    rng = np.random.default_rng(seed)
    first = rng.integers(0, 360, customers)
    rate = np.maximum(rng.gamma(0.8, 1 / 30, customers), 1e-5)
    gaps = rng.exponential(1 / rate[:, None], (customers, 60))
    times = first[:, None] + np.cumsum(gaps, axis=1)
    repeats = rng.geometric(rng.beta(1.0, 4.0, customers))
    keep = (np.arange(60)[None, :] < repeats[:, None]) & (times <= end)
    spend = rng.lognormal(3.0, 0.5, customers)
    rows = [Purchase(f"c{i:05d}", int(day), float(spend[i])) for i, day in enumerate(first)]
    rows += [
        Purchase(f"c{i:05d}", int(times[i, j]), float(spend[i]))
        for i, j in zip(*np.nonzero(keep), strict=True)
    ]
    return rows


@pytest.fixture(scope="module")
def population() -> list[Purchase]:
    return simulate_bgnbd(seed=1)


def test_scores_at_a_cutoff_ignore_everything_after_it() -> None:
    population = simulate_bgnbd(seed=3, customers=1000)
    before = p_no_purchase(Purchases.from_rows(population), CUTOFF, HORIZON)
    later = [r for r in population if r.day <= CUTOFF]
    changed = [Purchase(r.customer_id, r.day, r.amount * 7 + 1) if r.day > CUTOFF else r for r in population]
    for rows in (
        later,  # nothing after the cut-off
        changed,  # what came after altered
        population + [Purchase(f"new{i}", CUTOFF + 1 + i % 30, 5.0) for i in range(500)],  # new customers
        population + [Purchase(r.customer_id, CUTOFF + 3, 99.0) for r in population],  # everyone buys
    ):
        after = p_no_purchase(Purchases.from_rows(rows), CUTOFF, HORIZON)
        np.testing.assert_array_equal(after, before)


def test_the_model_learns_at_a_past_cutoff_and_is_calibrated_on_bgnbd_data(
    population: list[Purchase],
) -> None:
    purchases = Purchases.from_rows(population)
    model = fit_churn_model(purchases, CUTOFF, HORIZON)
    assert model.training_cutoff == CUTOFF - HORIZON
    assert model.regression is not None
    seen = purchases.until(CUTOFF)
    code = {c: i for i, c in enumerate(purchases.customers)}
    silent = purchases.between(CUTOFF, CUTOFF + HORIZON)[[code[c] for c in seen.customers]] == 0
    p = model.p_no_purchase
    assert len(p) == len(seen.customers)
    assert p.mean() == pytest.approx(silent.mean(), abs=0.02)
    # and by fifths of the predicted probability
    order = np.argsort(p)
    for part in np.array_split(order, 5):
        assert p[part].mean() == pytest.approx(silent[part].mean(), abs=0.05)
    # it ranks: the silent are given higher probabilities than those who buy
    assert p[silent].mean() > p[~silent].mean() + 0.2


def test_p_no_purchase_grows_with_silence_for_a_regular_customer(population: list[Purchase]) -> None:
    model = fit_churn_model(Purchases.from_rows(population), CUTOFF, HORIZON)
    days = [400 + 30 * k for k in range(8)]  # every 30 days, eight times
    regular = Purchases.from_rows([Purchase("regular", d, 40.0) for d in days])
    found = np.array(
        [model.predict(summarise(regular, days[-1] + silence))[0] for silence in range(0, 361, 15)]
    )
    assert (np.diff(found) > 0).all()
    assert found[0] < 0.3 and found[-1] > 0.8


def test_the_entry_point_is_the_fitted_models_scores_by_customer_code(population: list[Purchase]) -> None:
    purchases = Purchases.from_rows(population)
    np.testing.assert_array_equal(
        p_no_purchase(purchases, CUTOFF, HORIZON), fit_churn_model(purchases, CUTOFF, HORIZON).p_no_purchase
    )


def test_the_training_window_is_the_horizon_or_half_a_short_history() -> None:
    assert training_window(history_days=720, horizon_days=90) == 90
    assert training_window(history_days=100, horizon_days=90) == 50
    assert training_window(history_days=20, horizon_days=90) is None  # under two weeks: no training
    assert (
        training_window(history_days=20, horizon_days=90, settings=ChurnSettings(shortest_window_days=7))
        == 10
    )


def test_a_short_history_learns_over_half_of_it() -> None:
    rows = [r for r in simulate_bgnbd(seed=2) if r.day <= 500]
    model = fit_churn_model(Purchases.from_rows(rows), 500, 365)
    assert model.training_cutoff == 500 - 250
    assert model.regression is not None
    assert np.isfinite(model.p_no_purchase).all()


def _rows(*rows: tuple[str, int, float]) -> list[Purchase]:
    return [Purchase(customer, day, amount) for customer, day, amount in rows]


DEGENERATE = {
    "no purchases": [],
    "one customer, one purchase": _rows(("a", 100, 10.0)),
    "one customer, regular": _rows(*[("a", d, 10.0) for d in range(0, 100, 10)]),
    "two customers": _rows(("a", 0, 1.0), ("a", 30, 1.0), ("b", 10, 1.0)),
    "nobody repeats": _rows(*[(f"c{i}", i % 50, 5.0) for i in range(300)]),
    "everyone on one day": _rows(*[(f"c{i}", 100, 5.0) for i in range(300)]),
    "zero amounts": _rows(*[(f"c{i}", (i * 7) % 200, 0.0) for i in range(500)]),
    "everyone buys every week": _rows(*[(f"c{i}", d, 5.0) for i in range(100) for d in range(0, 100, 7)]),
}


@pytest.mark.parametrize("rows", DEGENERATE.values(), ids=DEGENERATE.keys())
@pytest.mark.parametrize("cutoff", [100, 130, 400])
def test_degenerate_inputs_give_probabilities(rows: list[Purchase], cutoff: int) -> None:
    purchases = Purchases.from_rows(rows)
    with np.errstate(all="raise"):
        p = p_no_purchase(purchases, cutoff, HORIZON)
    assert len(p) == len(purchases.until(cutoff).customers)
    assert np.isfinite(p).all() and ((p > 0) & (p < 1)).all()


def test_a_lone_customer_is_less_likely_to_buy_the_longer_they_are_silent() -> None:
    one = Purchases.from_rows(_rows(("a", 100, 10.0)))
    found = [p_no_purchase(one, cutoff, HORIZON)[0] for cutoff in (100, 130, 400)]
    assert found[0] < found[1] < found[2]


def test_the_horizon_must_be_positive() -> None:
    with pytest.raises(ValueError, match="horizon"):
        p_no_purchase(Purchases.from_rows(_rows(("a", 1, 1.0))), 10, 0)

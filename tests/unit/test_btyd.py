"""The BTYD formulas against the values their authors published."""

from __future__ import annotations

import numpy as np
import pytest

from shared.analytics.btyd import BgNbd, fit_bgnbd

#: Fader, Hardie and Lee (2005), "Counting your customers the easy way": the CDNOW sample's parameters.
CDNOW_BGNBD = BgNbd(r=0.243, alpha=4.414, a=0.793, b=2.426)


def test_bgnbd_conditional_expectation_matches_the_paper() -> None:
    # the paper's customer: 2 repeat purchases, the last at week 30.43, observed for 38.86 weeks; 1.226
    # purchases are expected in the next 39 weeks
    found = CDNOW_BGNBD.expected_purchases(np.array([2.0]), np.array([30.43]), np.array([38.86]), 39.0)
    assert found[0] == pytest.approx(1.226, abs=5e-4)


def test_bgnbd_p_alive_is_one_without_repeat_purchases_and_falls_with_silence() -> None:
    x, t_x = np.array([0.0, 4.0, 4.0]), np.array([0.0, 10.0, 10.0])
    alive = CDNOW_BGNBD.p_alive(x, t_x, np.array([30.0, 12.0, 40.0]))
    assert alive[0] == 1.0
    assert 0 < alive[2] < alive[1] < 1


def test_bgnbd_no_purchase_probability_grows_with_silence_and_shrinks_with_the_horizon() -> None:
    x, t_x = np.array([3.0, 3.0]), np.array([20.0, 20.0])
    quiet = CDNOW_BGNBD.p_no_purchase(x, t_x, np.array([22.0, 38.0]), 26.0)
    assert quiet[0] < quiet[1] < 1
    longer = CDNOW_BGNBD.p_no_purchase(x, t_x, np.array([22.0, 38.0]), 52.0)
    assert (longer < quiet).all()


def test_bgnbd_fit_recovers_the_parameters_it_simulated() -> None:
    rng = np.random.default_rng(7)
    truth = BgNbd(r=0.5, alpha=8.0, a=0.8, b=3.0)
    n, horizon = 20_000, 52.0
    lam = rng.gamma(truth.r, 1 / truth.alpha, n)
    p = rng.beta(truth.a, truth.b, n)
    T = rng.uniform(26, horizon, n)
    x, t_x = np.zeros(n), np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / lam[i])
            if t > T[i]:
                break
            x[i] += 1
            t_x[i] = t
            if rng.random() < p[i]:
                break
    fitted = fit_bgnbd(x, t_x, T)
    assert fitted.r == pytest.approx(truth.r, rel=0.15)
    assert fitted.alpha == pytest.approx(truth.alpha, rel=0.25)
    assert fitted.a / (fitted.a + fitted.b) == pytest.approx(truth.a / (truth.a + truth.b), rel=0.2)

"""The BTYD formulas against the values their authors published."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, special

from shared.analytics.btyd import BgNbd, ParetoNbd, fit_bgnbd, fit_pareto_nbd

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


# --- Pareto/NBD, and the fits on the CDNOW sample ------------------------------------------------------

#: the CDNOW sample's 39-week calibration (weeks), as the papers used it: the distinct (x, t_x, T)
#: histories of ``cdnow_customers_summary.csv`` (Lifetimes 0.11.3) with how many customers have each
CDNOW_SAMPLE = Path(__file__).parent / "data" / "cdnow_sample_summary.csv"
#: Fader, Hardie and Lee (2005), "A note on implementing the Pareto/NBD model in MATLAB": LL -9595.0
CDNOW_PARETO_NBD = ParetoNbd(r=0.55, alpha=10.58, s=0.61, beta=11.67)


def cdnow_sample() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    table = np.loadtxt(CDNOW_SAMPLE, delimiter=",", skiprows=1)
    return table[:, 0], table[:, 1], table[:, 2], table[:, 3]


def test_the_cdnow_sample_is_the_papers() -> None:
    x, _, T, customers = cdnow_sample()
    assert customers.sum() == 2357  # the cohort of the papers
    # the file read whole: its repeat purchases, and every customer observed 27 to 39 weeks
    assert np.sum(customers * x) == 2457
    assert T.min() == 27 and T.max() == 38.86


def test_pareto_nbd_log_likelihood_at_the_published_parameters_is_the_published_value() -> None:
    x, t_x, T, customers = cdnow_sample()
    assert np.sum(customers * CDNOW_PARETO_NBD.log_likelihood(x, t_x, T)) == pytest.approx(-9595.0, abs=0.05)


def test_pareto_nbd_fit_reproduces_the_published_parameters() -> None:
    x, t_x, T, customers = cdnow_sample()
    fitted = fit_pareto_nbd(x, t_x, T, customers)
    assert (fitted.r, fitted.alpha, fitted.s, fitted.beta) == pytest.approx(
        (0.553, 10.578, 0.606, 11.669), abs=2e-3
    )
    assert np.sum(customers * fitted.log_likelihood(x, t_x, T)) == pytest.approx(-9594.97, abs=0.01)


def test_bgnbd_fit_reproduces_the_published_parameters() -> None:
    x, t_x, T, customers = cdnow_sample()
    fitted = fit_bgnbd(x, t_x, T, customers)
    assert (fitted.r, fitted.alpha, fitted.a, fitted.b) == pytest.approx(
        (0.243, 4.414, 0.793, 2.426), abs=1e-3
    )


def test_fits_group_identical_histories() -> None:
    x, t_x, T, customers = cdnow_sample()
    one_row_each = [np.repeat(v, customers.astype(int)) for v in (x, t_x, T)]
    grouped, expanded = fit_pareto_nbd(x, t_x, T, customers), fit_pareto_nbd(*one_row_each)
    assert (expanded.r, expanded.alpha, expanded.s, expanded.beta) == pytest.approx(
        (grouped.r, grouped.alpha, grouped.s, grouped.beta), rel=1e-4
    )


def test_pareto_nbd_p_alive_and_conditional_expectation_match_the_btyd_walkthrough() -> None:
    # BTYD's walkthrough (McCarthy and Wadsworth), customer 1516: 26 repeat purchases, the last at week
    # 30.86, observed for 31 weeks: P(alive) 0.9979; 25.46 purchases expected in the next 52 weeks
    model = ParetoNbd(r=0.5534, alpha=10.5802, s=0.6061, beta=11.6562)
    x, t_x, T = np.array([26.0]), np.array([30.86]), np.array([31.0])
    assert model.p_alive(x, t_x, T)[0] == pytest.approx(0.9979, abs=5e-4)
    assert model.expected_purchases(x, t_x, T, 52.0)[0] == pytest.approx(25.46, abs=0.01)


def test_pareto_nbd_expectation_for_a_new_customer_matches_btyd() -> None:
    # BTYD's pnbd.Expectation(c(0.55, 10.56, 0.61, 11.64), t = 0:9)
    published = [0.0, 0.05077821, 0.09916088, 0.14542507, 0.18979930, 0.23247466, 0.27361274, 0.31335159]
    found = ParetoNbd(0.55, 10.56, 0.61, 11.64).expected_purchases_new(np.arange(8.0))
    assert found == pytest.approx(published, abs=1e-7)


@pytest.mark.parametrize("alpha", [10.58, 3.0], ids=["alpha>=beta", "alpha<beta"])
def test_pareto_nbd_likelihood_is_the_integral_it_stands_for(alpha: float) -> None:
    # L = Gamma(r+x)/Gamma(r) alpha^r [beta^s (alpha+T)^-(r+x) (beta+T)^-s
    #     + integral over t_x < tau < T of s beta^s (beta+tau)^-(s+1) (alpha+tau)^-(r+x)]
    model = ParetoNbd(r=0.55, alpha=alpha, s=0.61, beta=11.67)
    r, s, beta = model.r, model.s, model.beta
    for x, t_x, T in [
        (0, 0.0, 38.86),
        (2, 30.43, 38.86),
        (7, 29.43, 38.86),
        (50, 10.0, 40.0),
        (3, 20.0, 20.0),
    ]:
        died, _ = integrate.quad(
            lambda tau, x=x: s * beta**s * (beta + tau) ** (-s - 1) * (alpha + tau) ** (-(r + x)), t_x, T
        )
        silent = beta**s * (beta + T) ** (-s) * (alpha + T) ** (-(r + x))
        head = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
        found = model.log_likelihood(np.array([x]), np.array([t_x]), np.array([T]))[0]
        assert found == pytest.approx(head + np.log(silent + died), abs=1e-7)


def test_pareto_nbd_no_purchase_probability_integrates_over_the_posterior() -> None:
    # directly: dead at T, or alive with (lambda, mu) from the posterior Gamma(r+x, alpha+T) x Gamma(s,
    # beta+T), and then no purchase before dying or the window's end: (mu + lambda e^-(lambda+mu)h) / (lambda+mu)
    model = ParetoNbd(r=0.55, alpha=10.58, s=0.61, beta=11.67)
    for x, t_x, T, h in [
        (2, 30.43, 38.86, 39.0),
        (0, 0.0, 38.86, 10.0),
        (10, 38.0, 38.86, 26.0),
        (1, 5.0, 38.86, 52.0),
    ]:
        shape_l, rate_l, shape_m, rate_m = model.r + x, model.alpha + T, model.s, model.beta + T
        nodes_l, weights_l = special.roots_genlaguerre(80, shape_l - 1)
        nodes_m, weights_m = special.roots_genlaguerre(80, shape_m - 1)
        lam = nodes_l[:, None] / rate_l
        mu = nodes_m[None, :] / rate_m
        silent = (mu + lam * np.exp(-(lam + mu) * h)) / (lam + mu)
        weights = weights_l[:, None] * weights_m[None, :] / (special.gamma(shape_l) * special.gamma(shape_m))
        alive = model.p_alive(np.array([x]), np.array([t_x]), np.array([T]))[0]
        expected = 1 - alive + alive * float(np.sum(weights * silent))
        found = model.p_no_purchase(np.array([x]), np.array([t_x]), np.array([T]), h)[0]
        assert found == pytest.approx(expected, abs=1e-4)


def test_pareto_nbd_stays_finite_at_extremes() -> None:
    # Lifetimes' overflow cases: hundreds of purchases, tiny alpha
    model = ParetoNbd(r=10.465, alpha=7.98565181e-03, s=3.0516, beta=2.820)
    x, t_x, T = (
        np.array([400.0, 500.0, 500.0, 0.0]),
        np.array([5.0, 1.0, 4.0, 0.0]),
        np.array([6.0, 37.0, 37.0, 37.0]),
    )
    assert np.isfinite(model.log_likelihood(x, t_x, T)).all()
    for p in (model.p_alive(x, t_x, T), model.p_no_purchase(x, t_x, T, 10.0)):
        assert np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()
    # alpha < beta with a large x: the branch whose 2F1 would overflow without Euler's transformation
    other = ParetoNbd(r=0.5, alpha=0.01, s=0.6, beta=50.0)
    assert np.isfinite(other.log_likelihood(np.array([800.0]), np.array([30.0]), np.array([40.0]))).all()


def test_pareto_nbd_no_purchase_probability_grows_with_silence_and_shrinks_with_the_horizon() -> None:
    x, t_x = np.array([3.0, 3.0, 3.0]), np.array([20.0, 20.0, 20.0])
    T = np.array([21.0, 30.0, 45.0])
    quiet = CDNOW_PARETO_NBD.p_no_purchase(x, t_x, T, 26.0)
    assert quiet[0] < quiet[1] < quiet[2] < 1
    assert (CDNOW_PARETO_NBD.p_no_purchase(x, t_x, T, 52.0) < quiet).all()


def test_pareto_nbd_fit_recovers_the_parameters_it_simulated() -> None:
    rng = np.random.default_rng(11)
    truth = ParetoNbd(r=0.6, alpha=20.0, s=0.8, beta=60.0)  # days
    n = 20_000
    lam = rng.gamma(truth.r, 1 / truth.alpha, n)
    mu = rng.gamma(truth.s, 1 / truth.beta, n)
    T = rng.uniform(180, 540, n).round()
    alive_for = np.minimum(rng.exponential(1 / mu), T)
    x = rng.poisson(lam * alive_for).astype(np.float64)
    # the last of x uniform arrival times in (0, alive_for)
    t_x = np.where(x > 0, alive_for * rng.beta(np.maximum(x, 1), 1.0), 0.0)
    fitted = fit_pareto_nbd(x, t_x, T)
    assert fitted.r / fitted.alpha == pytest.approx(truth.r / truth.alpha, rel=0.1)
    assert fitted.r == pytest.approx(truth.r, rel=0.15)
    assert fitted.s / fitted.beta == pytest.approx(truth.s / truth.beta, rel=0.25)


def test_a_prior_keeps_a_population_without_repeat_purchases_finite() -> None:
    x, t_x, T = np.zeros(200), np.zeros(200), np.linspace(10, 100, 200)
    for model in (fit_pareto_nbd(x, t_x, T, prior_weight=1.0), fit_bgnbd(x, t_x, T, prior_weight=1.0)):
        p = model.p_no_purchase(x, t_x, T, 90.0)
        assert np.isfinite(p).all() and ((p > 0.5) & (p < 1)).all()

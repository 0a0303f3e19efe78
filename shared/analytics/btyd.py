"""Buy-'til-you-die models: BG/NBD (Fader, Hardie and Lee 2005), fitted by maximum likelihood.

Inputs are each customer's ``x`` (repeat purchases), ``t_x`` (first to last purchase) and ``T`` (first
purchase to the cut-off), in any one time unit; the fitted ``alpha`` is in that unit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special


@dataclass(frozen=True, slots=True)
class BgNbd:
    """BG/NBD: purchase rates ~ Gamma(r, alpha) while alive; after each repeat purchase a customer drops
    out with probability p ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float

    def log_likelihood(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        x = np.asarray(x, dtype=np.float64)
        a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
        a2 = special.betaln(a, b + x) - special.betaln(a, b)
        a3 = -(r + x) * np.log(alpha + T)
        repeat = x > 0
        a4 = np.full_like(a3, -np.inf)
        a4[repeat] = (
            np.log(a) - np.log(b + x[repeat] - 1) - (r + x[repeat]) * np.log(alpha + np.asarray(t_x)[repeat])
        )
        return a1 + a2 + np.logaddexp(a3, a4)

    def p_alive(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """P(still active at the cut-off | history); 1 for a customer with no repeat purchase."""
        x = np.asarray(x, dtype=np.float64)
        odds = np.zeros_like(x)
        repeat = x > 0
        xr = x[repeat]
        odds[repeat] = np.exp(
            np.log(self.a)
            - np.log(self.b + xr - 1)
            + (self.r + xr)
            * (np.log(self.alpha + np.asarray(T)[repeat]) - np.log(self.alpha + np.asarray(t_x)[repeat]))
        )
        return 1.0 / (1.0 + odds)

    def p_no_purchase(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, horizon: float) -> np.ndarray:
        """P(no purchase in (T, T + horizon] | history): dropped out, or alive and silent. A customer drops
        out only right after a purchase, so an alive one stays alive through a silent window."""
        x = np.asarray(x, dtype=np.float64)
        silent = np.exp((self.r + x) * (np.log(self.alpha + T) - np.log(self.alpha + T + horizon)))
        alive = self.p_alive(x, t_x, T)
        return 1.0 - alive + alive * silent

    def expected_purchases(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, t: float) -> np.ndarray:
        """E[purchases in (T, T + t] | history] (equation 10 of the paper)."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        x = np.asarray(x, dtype=np.float64)
        z = t / (alpha + T + t)
        hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, z)
        body = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp)
        return body * self.p_alive(x, t_x, T)


def fit_bgnbd(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, weights: np.ndarray | None = None) -> BgNbd:
    """Maximum likelihood over the customers (each ``weights`` times: counts of identical histories)."""
    x = np.asarray(x, dtype=np.float64)
    t_x = np.asarray(t_x, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    scale = float(np.mean(T)) or 1.0

    def loss(theta: np.ndarray) -> float:
        r, alpha, a, b = np.exp(theta)
        ll = BgNbd(r, alpha * scale, a, b).log_likelihood(x, t_x, T)
        return -float(np.sum(w * ll)) / float(np.sum(w))

    best = optimize.minimize(
        loss,
        np.log([1.0, 1.0, 1.0, 1.0]),
        method="Nelder-Mead",
        options={"xatol": 1e-7, "fatol": 1e-10, "maxiter": 4000, "maxfev": 8000},
    )
    best = optimize.minimize(loss, best.x, method="L-BFGS-B")
    r, alpha, a, b = np.exp(best.x)
    return BgNbd(float(r), float(alpha * scale), float(a), float(b))

"""Buy-'til-you-die models: BG/NBD (Fader, Hardie and Lee 2005) and Pareto/NBD (Schmittlein, Morrison
and Colombo 1987, in the form of Fader, Hardie and Lee's 2005 MATLAB note), fitted by maximum likelihood.

Inputs are each customer's ``x`` (repeat purchases), ``t_x`` (first to last purchase) and ``T`` (first
purchase to the cut-off), in any one time unit; the fitted ``alpha`` is in that unit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

#: The most customers a fit reads (when given one row per customer): above it, a fixed random sample of
#: this many: 200,000 histories pin four parameters down far more finely than the models fit any real
#: population, and the nightly fit's time stays bounded.
FIT_SAMPLE = 200_000
# The fits' optional prior (``prior_weight``): a standard normal on the log-parameters, time measured in
# the population's mean age (all four parameters 1: about one purchase, and one lifetime, per mean age),
# weighing as much as ``prior_weight`` customers. Negligible for a real population, it keeps a handful of
# customers, or a population where nobody has bought twice yet, from a degenerate fit (zero rates and
# certainties). Log-parameters stay within +-_BOUND whatever happens.
_BOUND = 20.0
_LBFGS = {"maxiter": 500, "ftol": 1e-12, "gtol": 1e-8}


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


def fit_bgnbd(
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    max_customers: int | None = None,
    prior_weight: float = 0.0,
) -> BgNbd:
    """Maximum likelihood over the customers (each ``weights`` times: counts of identical histories),
    by L-BFGS on the log-parameters with the analytic gradient. Identical histories are grouped here;
    above ``max_customers`` (default ``FIT_SAMPLE``) the fit uses a fixed random sample of that many.
    ``prior_weight`` > 0 makes it a posterior mode (the prior is described at ``FIT_SAMPLE``)."""
    x, t_x, T, w = _prepared(x, t_x, T, weights, max_customers)
    scale = float(np.average(T, weights=w)) if len(T) and np.sum(w) > 0 and np.any(T > 0) else 1.0
    ts, tts = t_x / scale, T / scale
    total = float(np.sum(w)) or 1.0
    repeat = x > 0
    xm1 = np.where(repeat, x - 1, 0.0)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        r, alpha, a, b = np.exp(np.clip(theta, -_BOUND, _BOUND))
        rx = r + x
        a3 = -rx * np.log(alpha + tts)
        a4 = np.where(repeat, np.log(a) - np.log(b + xm1) - rx * np.log(alpha + ts), -np.inf)
        tail = np.logaddexp(a3, a4)
        w4 = np.exp(a4 - tail)
        w3 = 1.0 - w4
        ll = (
            special.gammaln(rx)
            - special.gammaln(r)
            + r * np.log(alpha)
            + special.betaln(a, b + x)
            - special.betaln(a, b)
            + tail
        )
        d_r = special.digamma(rx) - special.digamma(r) + np.log(alpha)
        d_r -= w3 * np.log(alpha + tts) + w4 * np.log(alpha + ts)
        d_alpha = r / alpha - w3 * rx / (alpha + tts) - w4 * rx / (alpha + ts)
        d_a = special.digamma(a + b) - special.digamma(a + b + x) + w4 / a
        d_b = (
            special.digamma(b + x) - special.digamma(a + b + x) - special.digamma(b) + special.digamma(a + b)
        )
        d_b -= w4 / (b + xm1)
        grads = np.array([np.sum(w * d) for d in (d_r, d_alpha, d_a, d_b)]) * np.array([r, alpha, a, b])
        value = -float(np.sum(w * ll)) / total + prior_weight / total * 0.5 * float(theta @ theta)
        if not np.isfinite(value):
            return 1e10, np.zeros(4)
        return value, -grads / total + prior_weight / total * theta

    theta = optimize.minimize(loss, np.zeros(4), jac=True, method="L-BFGS-B", options=_LBFGS).x
    r, alpha, a, b = np.exp(np.clip(theta, -_BOUND, _BOUND))
    return BgNbd(float(r), float(alpha * scale), float(a), float(b))


@dataclass(frozen=True, slots=True)
class ParetoNbd:
    """Pareto/NBD: purchase rates lambda ~ Gamma(r, alpha) while alive; lifetimes exponential with rates
    mu ~ Gamma(s, beta), so a customer can drop out at any moment, silent or not."""

    r: float
    alpha: float
    s: float
    beta: float

    def log_likelihood(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        r, alpha, s, beta = self.r, self.alpha, self.s, self.beta
        head = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        return head + self._log_bracket(x, np.asarray(t_x, dtype=np.float64), np.asarray(T, dtype=np.float64))

    def p_alive(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """P(still alive at the cut-off | history)."""
        x = np.asarray(x, dtype=np.float64)
        T = np.asarray(T, dtype=np.float64)
        alive = -(self.r + x) * np.log(self.alpha + T) - self.s * np.log(self.beta + T)
        return np.exp(np.minimum(alive - self._log_bracket(x, np.asarray(t_x, dtype=np.float64), T), 0.0))

    def p_no_purchase(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, horizon: float) -> np.ndarray:
        """P(no purchase in (T, T + horizon] | history), integrated over the posterior of (lambda, mu): a
        customer alive at T may also die inside the window. Exactly the likelihood of the same history
        observed ``horizon`` longer and silent, over the likelihood of the history: L(x, t_x, T + h) / L(x,
        t_x, T) (the parameter terms cancel)."""
        x = np.asarray(x, dtype=np.float64)
        t_x = np.asarray(t_x, dtype=np.float64)
        T = np.asarray(T, dtype=np.float64)
        ratio = self._log_bracket(x, t_x, T + horizon) - self._log_bracket(x, t_x, T)
        return np.exp(np.minimum(ratio, 0.0))

    def expected_purchases(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, t: float) -> np.ndarray:
        """E[purchases in (T, T + t] | history]."""
        x = np.asarray(x, dtype=np.float64)
        T = np.asarray(T, dtype=np.float64)
        span = np.log(self.beta + T + t) - np.log(self.beta + T)
        # E[time alive in (T, T + t] | alive at T] times E[lambda | history, alive]
        alive_for = (self.beta + T) * _one_minus_power(span, self.s - 1)
        return (self.r + x) / (self.alpha + T) * alive_for * self.p_alive(x, t_x, T)

    def expected_purchases_new(self, t: np.ndarray) -> np.ndarray:
        """E[repeat purchases in (0, t]] for a customer just acquired."""
        t = np.asarray(t, dtype=np.float64)
        span = np.log(self.beta + t) - np.log(self.beta)
        return self.r * self.beta / self.alpha * _one_minus_power(span, self.s - 1)

    def _log_bracket(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """log[(alpha+T)^-(r+x) (beta+T)^-s + s/(r+s+x) A0]: the likelihood without its parameter terms.

        A0 is the 2F1 difference of the MATLAB note, evaluated at t_x and at T. 2F1(a, b; a+1; z) is
        rewritten by Euler's transformation as (1-z)^(1-b) 2F1(1, a+1-b; a+1; z), whose series has
        positive terms and stays between 1 and 1/(1-z): no overflow for large x, and the z-argument
        branch (alpha >= beta or alpha < beta) keeps 0 <= z < 1.
        """
        r, alpha, s, beta = self.r, self.alpha, self.s, self.beta
        rx = r + x
        silent = -rx * np.log(alpha + T) - s * np.log(beta + T)
        died = _log_a0_term(rx, alpha, s, beta, t_x)
        later = _log_a0_term(rx, alpha, s, beta, T)
        gap = np.minimum(later - died, 0.0)
        with np.errstate(divide="ignore"):
            log_a0 = died + np.log(-np.expm1(gap))  # -inf where t_x == T
        return np.logaddexp(silent, np.log(s) - np.log(rx + s) + log_a0)


def _log_a0_term(rx: np.ndarray, alpha: float, s: float, beta: float, t: np.ndarray) -> np.ndarray:
    """log of one term of A0, 2F1(r+s+x, b; r+s+x+1; z(t)) / (max(alpha, beta) + t)^(r+s+x), in Euler's
    form (``rx`` is r + x)."""
    c = rx + s + 1
    if alpha >= beta:
        z = (alpha - beta) / (alpha + t)
        series = special.hyp2f1(1.0, rx, c, z)
        return -rx * np.log(alpha + t) - s * np.log(beta + t) + np.log(series)
    z = (beta - alpha) / (beta + t)
    series = special.hyp2f1(1.0, s + 1, c, z)
    return -(rx - 1) * np.log(alpha + t) - (s + 1) * np.log(beta + t) + np.log(series)


def _one_minus_power(span: np.ndarray, k: float) -> np.ndarray:
    """(1 - exp(-k span)) / k, with its limit ``span`` at k = 0."""
    if abs(k) < 1e-12:
        return np.asarray(span, dtype=np.float64)
    return -np.expm1(-k * span) / k


def fit_pareto_nbd(
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    max_customers: int | None = None,
    prior_weight: float = 0.0,
) -> ParetoNbd:
    """Maximum likelihood over the distinct (x, t_x, T) histories with their counts (identical histories
    are grouped here, so callers may pass one row per customer), by L-BFGS on the log-parameters. Above
    ``max_customers`` (default ``FIT_SAMPLE``) the fit uses a fixed random sample of that many.
    ``prior_weight`` > 0 makes it a posterior mode (the prior is described at ``FIT_SAMPLE``)."""
    x, t_x, T, w = _prepared(x, t_x, T, weights, max_customers)
    scale = float(np.average(T, weights=w)) if len(T) and np.sum(w) > 0 and np.any(T > 0) else 1.0
    ts, tts = t_x / scale, T / scale
    total = float(np.sum(w)) or 1.0

    def loss(theta: np.ndarray) -> float:
        r, alpha, s, beta = np.exp(np.clip(theta, -_BOUND, _BOUND))
        ll = ParetoNbd(r, alpha, s, beta).log_likelihood(x, ts, tts)
        value = -float(np.sum(w * ll)) / total + prior_weight / total * 0.5 * float(theta @ theta)
        return value if np.isfinite(value) else 1e10

    theta = optimize.minimize(loss, np.zeros(4), method="L-BFGS-B", options=_LBFGS).x
    r, alpha, s, beta = np.exp(np.clip(theta, -_BOUND, _BOUND))
    return ParetoNbd(float(r), float(alpha * scale), float(s), float(beta * scale))


def _prepared(
    x: np.ndarray, t_x: np.ndarray, T: np.ndarray, weights: np.ndarray | None, max_customers: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    t_x = np.asarray(t_x, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    limit = FIT_SAMPLE if max_customers is None else max_customers
    if weights is None and len(x) > limit:
        keep = np.sort(np.random.default_rng(0).choice(len(x), size=limit, replace=False))
        x, t_x, T = x[keep], t_x[keep], T[keep]
    return _grouped(x, t_x, T, weights)


def _grouped(
    x: np.ndarray, t_x: np.ndarray, T: np.ndarray, weights: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The distinct (x, t_x, T) rows and their total weights."""
    x = np.asarray(x, dtype=np.float64)
    t_x = np.asarray(t_x, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    if len(x) == 0:
        return x, t_x, T, w
    rows, inverse = np.unique(np.column_stack([x, t_x, T]), axis=0, return_inverse=True)
    return rows[:, 0], rows[:, 1], rows[:, 2], np.bincount(inverse.ravel(), weights=w)

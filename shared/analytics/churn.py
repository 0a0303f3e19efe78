"""The probability of no purchase within a horizon: a BTYD model, corrected by what a past cut-off taught.

The model, fitted on the purchases up to the cut-off and nothing after it:

1. **Training cut-off.** ``past = cutoff - h`` with ``h`` the horizon, or half the history when the
   history is shorter than two horizons (never under ``ChurnSettings.shortest_window_days``).
2. **Past features and labels.** A Pareto/NBD is fitted on the purchases up to ``past``; each customer
   seen by then gets the features below, with the Pareto/NBD's probability of no purchase in ``h`` days,
   and the label "no purchase in (past, cutoff]": the labels come from before the cut-off, never from the
   period being predicted.
3. **Correction.** An L2 logistic regression learns the label from the features: how cadence, spend and
   silence shift the odds the BTYD model gives.
4. **Present.** The Pareto/NBD is refitted on everything up to ``cutoff``; the features are computed
   there, with its probability for the target horizon (its logit carries the horizon, so a training
   window shorter than the horizon still transfers), and go through the regression.
5. **Level.** Past and present windows differ in season and in how old the customer base is, so the
   regression's intercept (the past window's base rate) is shifted until the population's mean
   probability equals the present BG/NBD's mean: the regression ranks, the BTYD model fitted today sets
   the overall level.

Too little history or too few customers for step 3 (or a training window where everyone, or nobody,
bought): the present Pareto/NBD's probability alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from shared.analytics.btyd import BgNbd, ParetoNbd, fit_bgnbd, fit_pareto_nbd
from shared.analytics.history import Purchases, Summary, summarise

FEATURES = (
    "btyd_logit",  # logit of the Pareto/NBD probability of no purchase in the horizon
    "log_repeats",  # log(1 + x)
    "log_recency",  # log(1 + days since the last purchase)
    "log_age",  # log(1 + days since the first purchase)
    "log_overdue",  # log(1 + recency / own mean gap); 0 without a repeat purchase
    "one_time",  # 1 without a repeat purchase
    "gap_variation",  # coefficient of variation of the own gaps; 0 with fewer than two
    "log_spend",  # log(1 + mean spend per purchase day)
)


@dataclass(frozen=True, slots=True)
class ChurnSettings:
    #: the training window is never shorter than this; a shorter history gets the BTYD probability alone
    shortest_window_days: int = 14
    #: fewer customers than this at the training cut-off (or fewer of either label): no regression
    least_training_customers: int = 50
    least_of_each_label: int = 10
    #: L2 penalty on the standardised coefficients (the intercept is free)
    l2: float = 1.0
    #: the BTYD fits' prior, in customers (``btyd.fit_pareto_nbd``): keeps tiny populations finite
    prior_weight: float = 1.0


@dataclass(frozen=True, slots=True, eq=False)
class Regression:
    """A logistic regression on standardised features: ``expit(intercept + ((X - mean) / scale) @ coef)``."""

    intercept: float
    coef: np.ndarray
    mean: np.ndarray
    scale: np.ndarray

    def logit(self, features: np.ndarray) -> np.ndarray:
        return self.intercept + ((features - self.mean) / self.scale) @ self.coef


@dataclass(frozen=True, slots=True, eq=False)
class ChurnModel:
    """A fitted model and its scores at the cut-off, by customer code of ``purchases.until(cutoff)``.

    ``baseline``: the present Pareto/NBD's probability (what the model starts from); ``p_no_purchase``:
    the model's. ``regression`` is None when there was too little to learn from (then both are equal).
    """

    cutoff: int
    horizon_days: int
    training_cutoff: int | None
    present: ParetoNbd
    level: BgNbd | None
    past: ParetoNbd | None
    regression: Regression | None
    level_shift: float
    baseline: np.ndarray
    p_no_purchase: np.ndarray

    def predict(self, summary: Summary) -> np.ndarray:
        """The fitted model's probability, over its horizon, for other histories (``summary`` at any
        cut-off: what a customer's score would be after more silence, say)."""
        baseline = _probability(
            self.present.p_no_purchase(summary.x, summary.t_x, summary.T, self.horizon_days)
        )
        if self.regression is None:
            return baseline
        logits = self.regression.logit(features(summary, baseline))
        return _probability(special.expit(logits + self.level_shift))


def p_no_purchase(purchases: Purchases, cutoff: int, horizon_days: int) -> np.ndarray:
    """By customer code of ``purchases.until(cutoff)``: P(no purchase in days cutoff+1 .. cutoff+horizon)."""
    return fit_churn_model(purchases, cutoff, horizon_days).p_no_purchase


def fit_churn_model(
    purchases: Purchases, cutoff: int, horizon_days: int, settings: ChurnSettings = ChurnSettings()
) -> ChurnModel:
    """The model fitted on the purchases up to day ``cutoff`` (rows after it are never read), with its
    scores for every customer seen by then (see the module's description)."""
    if horizon_days <= 0:
        raise ValueError("the horizon must be at least one day")
    seen = purchases.until(cutoff)
    now = summarise(seen, cutoff)
    present = fit_pareto_nbd(now.x, now.t_x, now.T, prior_weight=settings.prior_weight)
    baseline = _probability(present.p_no_purchase(now.x, now.t_x, now.T, horizon_days))
    plain = ChurnModel(
        cutoff=cutoff,
        horizon_days=horizon_days,
        training_cutoff=None,
        present=present,
        level=None,
        past=None,
        regression=None,
        level_shift=0.0,
        baseline=baseline,
        p_no_purchase=baseline,
    )
    if not len(now.n):
        return plain
    window = training_window(int(cutoff - now.first.min()), horizon_days, settings)
    if window is None:
        return plain
    past_cutoff = cutoff - window
    then = summarise(seen, past_cutoff)
    # the customers seen by the training cut-off are those of ``seen`` with a first purchase by then, in
    # the same order; their label: no purchase in (past_cutoff, cutoff]
    known_then = now.first <= past_cutoff
    labels = (seen.between(past_cutoff, cutoff)[known_then] == 0).astype(np.float64)
    if not _learnable(labels, settings):
        return plain
    past = fit_pareto_nbd(then.x, then.t_x, then.T, prior_weight=settings.prior_weight)
    past_p = _probability(past.p_no_purchase(then.x, then.t_x, then.T, window))
    regression = fit_regression(features(then, past_p), labels, settings.l2)
    logits = regression.logit(features(now, baseline))
    level = fit_bgnbd(now.x, now.t_x, now.T, prior_weight=settings.prior_weight)
    target = float(np.mean(level.p_no_purchase(now.x, now.t_x, now.T, horizon_days)))
    shift = _shift_to_mean(logits, target)
    return ChurnModel(
        cutoff=cutoff,
        horizon_days=horizon_days,
        training_cutoff=past_cutoff,
        present=present,
        level=level,
        past=past,
        regression=regression,
        level_shift=shift,
        baseline=baseline,
        p_no_purchase=_probability(special.expit(logits + shift)),
    )


def training_window(
    history_days: int, horizon_days: int, settings: ChurnSettings = ChurnSettings()
) -> int | None:
    """Days between the training cut-off and the cut-off: the horizon, or half the history when it is
    shorter than two horizons; None below ``shortest_window_days``."""
    window = min(horizon_days, history_days // 2)
    return window if window >= settings.shortest_window_days else None


def features(summary: Summary, btyd_p: np.ndarray) -> np.ndarray:
    """One row per customer, the columns of ``FEATURES``."""
    x = summary.x.astype(np.float64)
    repeat = x > 0
    mean_gap = np.where(repeat, summary.t_x / np.maximum(x, 1), 1.0)
    overdue = np.where(repeat, np.log1p(summary.recency / np.maximum(mean_gap, 1.0)), 0.0)
    return np.column_stack(
        [
            special.logit(btyd_p),
            np.log1p(x),
            np.log1p(summary.recency),
            np.log1p(summary.T),
            overdue,
            (~repeat).astype(np.float64),
            gap_variation(summary),
            np.log1p(np.maximum(summary.monetary / np.maximum(summary.n, 1), 0.0)),
        ]
    )


def gap_variation(summary: Summary) -> np.ndarray:
    """Each customer's standard deviation of gaps over their mean gap (0 with fewer than two gaps)."""
    count = np.diff(summary.gap_start).astype(np.float64)
    owner = np.repeat(np.arange(len(count)), count.astype(np.int64))
    total = np.bincount(owner, weights=summary.gaps, minlength=len(count))
    squares = np.bincount(owner, weights=summary.gaps**2, minlength=len(count))
    many = count >= 2
    mean = np.where(many, total / np.maximum(count, 1), 1.0)
    variance = np.where(many, squares / np.maximum(count, 1) - mean**2, 0.0)
    return np.where(many, np.sqrt(np.maximum(variance, 0.0)) / np.maximum(mean, 1.0), 0.0)


def fit_regression(features: np.ndarray, labels: np.ndarray, l2: float) -> Regression:
    """L2-penalised logistic regression (penalty on the standardised coefficients), by L-BFGS."""
    mean = features.mean(axis=0)
    scale = features.std(axis=0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    z = (features - mean) / scale

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        logit = w[0] + z @ w[1:]
        residual = labels - special.expit(logit)
        value = -np.sum(labels * logit - np.logaddexp(0.0, logit)) + 0.5 * l2 * np.sum(w[1:] ** 2)
        grad = -np.concatenate(([residual.sum()], z.T @ residual)) + l2 * np.concatenate(([0.0], w[1:]))
        return float(value), grad

    w = optimize.minimize(loss, np.zeros(z.shape[1] + 1), jac=True, method="L-BFGS-B").x
    return Regression(intercept=float(w[0]), coef=w[1:], mean=mean, scale=scale)


def _learnable(labels: np.ndarray, settings: ChurnSettings) -> bool:
    silent = int(labels.sum())
    return (
        len(labels) >= settings.least_training_customers
        and silent >= settings.least_of_each_label
        and len(labels) - silent >= settings.least_of_each_label
    )


def _shift_to_mean(logits: np.ndarray, target: float) -> float:
    """The shift d with mean(expit(logits + d)) == target (target clipped inside (0, 1))."""
    target = min(max(target, 1e-6), 1 - 1e-6)
    return float(optimize.brentq(lambda d: float(np.mean(special.expit(logits + d))) - target, -50.0, 50.0))


def _probability(p: np.ndarray) -> np.ndarray:
    """Inside [1e-6, 1 - 1e-6], so a logit exists. NaN, which a degenerate fit could give (none is known:
    the fits' prior keeps them finite), is read as "no purchase" rather than passed on."""
    return np.clip(np.nan_to_num(np.asarray(p, dtype=np.float64), nan=1.0), 1e-6, 1 - 1e-6)

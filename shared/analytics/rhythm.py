"""Each customer's own rhythm: how unusual their silence is (``churn_risk``), when their next purchase is
due and their typical gap.

The model is of the MBG/CNBD-k family (Platzer and Reutterer 2016), with each customer's own regularity:

- while a customer is alive, the gaps between their purchase days are gamma distributed with their own
  mean ``mu`` and shape ``k`` (``k = 1``: a Poisson buyer; ``k = 50``: clockwork);
- after every purchase, the first included, they drop out for good with probability ``p``, and ``p``
  varies across customers as Beta(a, b);
- so after ``x`` repeat purchases and a silence of ``s`` days, by Bayes,
  ``p_lapsed = P(dropped out after the last purchase) = a / (a + (b + x) * S(s))``, where ``S`` is the
  survival function of the customer's gap distribution. On the day of a purchase ``S = 1`` and
  ``p_lapsed`` is the shop's dropout rate ``a / (a + b + x)``, which is about the shop, not the
  customer's silence: 0.53 for a new customer in CDNOW, where most first-time buyers never return;
- ``churn_risk`` is what the silence adds: ``1 - P(alive | s) / P(alive | 0)``, the share of the belief
  that they were still buying (just after their last purchase) that the silence has taken away, which
  works out as ``p_lapsed * (1 - S(s))``. It is 0 on the day of a purchase, rises with silence, fast
  for a clockwork buyer overdue by a few gaps (to near 1), slowly for a Poisson buyer with the same
  history, hardly at all within the usual gap, and tends to ``p_lapsed`` once the silence is longer
  than nearly all of the customer's gaps.

``mu`` and ``k`` are shrunk estimates: a customer's own gaps, weighted by how many there are, pulled
toward a prior from what they bought on their last purchase day: the repurchase cycle of the product
(time from buying it to the same customer's next purchase in its category), else of the category
(to its next purchase), else the population's (to the next purchase of anything), each learned across
all customers with the cases not followed yet counted as censored, and each pulled toward the level
above when it has little data. A category hardly anyone buys again (kitchen appliances)
gets a cycle of years, so its buyers are not overdue a month later. A customer who bought several
things that day borrows the shortest cycle among them.

Censoring needs care: a customer who dropped out never buys again, and counting their silence as time
"not yet due" would stretch every consumable's cycle. So the cycles are estimated twice: first with
every silence counted, then with the silence after each customer's last purchase weighted by the
probability that they are still alive (one expectation-maximisation step). ``a`` and ``b`` are fitted
by maximum likelihood of the same model over all customers, with the survival terms held fixed.

Everything is closed form or vectorised over customers (sorts, ``bincount``, the regularised
incomplete gamma function); the only optimisation is the two-parameter Beta fit, grouped by ``x``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from shared.analytics.history import Purchases, summarise


@dataclass(frozen=True, slots=True, eq=False)
class Rhythm:
    """By customer code: ``churn_risk`` (0 to 1: how much of the belief that the customer was still
    buying their silence has taken away; 0 on the day of a purchase), ``expected_next`` (a day number,
    NaN: no expectation, the silence says they have probably lapsed), ``typical_gap`` (days; NaN:
    unknown, which ``assess`` never gives: a customer without gaps of their own borrows one) and
    ``p_lapsed`` (the model's probability that they have stopped buying for good, which includes the
    shop's dropout rate: about ``a / (a + b + x)`` on the day of a purchase)."""

    churn_risk: np.ndarray
    expected_next: np.ndarray
    typical_gap: np.ndarray
    p_lapsed: np.ndarray


@dataclass(frozen=True, slots=True)
class RhythmSettings:
    #: pseudo repurchases a product's (category's) cycle borrows from its category's (the population's)
    prior_repurchases: float = 3.0
    #: pseudo gaps a spread (coefficient of variation squared) borrows from the level above
    prior_gaps: float = 5.0
    #: the longest cycle or gap believed (days): a durable nobody buys again gets this one
    longest_cycle_days: float = 1825.0
    #: the bounds on a customer's gamma shape
    shape_bounds: tuple[float, float] = (0.3, 100.0)
    #: the cycle, gap and spreads assumed before any data (only matter for tiny populations)
    default_cycle_days: float = 90.0
    #: estimating the cycles with the silences weighted by P(alive): passes after the first
    reweighting_passes: int = 1
    #: no expected next purchase once ``churn_risk`` is at or above this (the silence has taken away at
    #: least half of the belief that the customer was still buying)
    lapsed_at: float = 0.5
    #: a weak prior on the dropout Beta(a, b): log-normal around these, with this sd (matters for small shops)
    dropout_prior: tuple[float, float] = (0.5, 4.0)
    dropout_prior_sd: float = 1.0


@dataclass(frozen=True, slots=True)
class Dropout:
    """The dropout probability per purchase ~ Beta(a, b)."""

    a: float
    b: float

    def risk(self, x: np.ndarray, survival: np.ndarray) -> np.ndarray:
        """P(dropped out after the last purchase | ``x`` repeat purchases, the silence's survival)."""
        return self.a / (self.a + (self.b + x) * survival)


@dataclass(frozen=True, slots=True, eq=False)
class Cycles:
    """Repurchase statistics by key (a product, a category, or the one population key).

    ``cycle``: mean days from a purchase of it to the same customer's next purchase of it (of its
    category, for a product), with the cases still waiting counted as censored (long for what is
    rarely bought again); ``gap``: mean of the
    repurchase intervals seen (the prior for a customer who has bought again); ``spread``: their
    coefficient of variation squared, across customers (for someone with no gap of their own);
    ``regularity``: the same within a customer.
    """

    cycle: np.ndarray
    gap: np.ndarray
    spread: np.ndarray
    regularity: np.ndarray


@dataclass(frozen=True, slots=True, eq=False)
class _Occurrences:
    """Purchases of a key, each with when the same customer next bought again, laid out for counting.

    Per repurchase interval: its ``key`` and ``length``. Per occurrence not followed yet (censored):
    ``tail_key``, ``tail_customer``, ``tail_known`` (days from it to the customer's last purchase of
    anything: surely alive) and ``tail_silence`` (from that to the cut-off: alive or not).
    Within-customer sums by (key, customer) group: ``group_key``, ``group_count``, ``group_sum``,
    ``group_squares``.
    """

    keys: int
    key: np.ndarray
    length: np.ndarray
    tail_key: np.ndarray
    tail_customer: np.ndarray
    tail_known: np.ndarray
    tail_silence: np.ndarray
    group_key: np.ndarray
    group_count: np.ndarray
    group_sum: np.ndarray
    group_squares: np.ndarray

    @classmethod
    def of(
        cls,
        keys: int,
        key: np.ndarray,
        customer: np.ndarray,
        day: np.ndarray,
        following: np.ndarray,
        last: np.ndarray,
        cutoff: int,
    ) -> _Occurrences:
        """Occurrences sorted by key, customer and day; ``following``: the day the customer next bought
        again (-1: not yet); ``last``: each customer's last purchase day."""
        followed = following >= 0
        length = (following - day)[followed].astype(np.float64)
        interval_key = key[followed]
        interval_customer = customer[followed]
        tail_customer = customer[~followed]
        # a (key, customer)'s intervals are contiguous
        starts = np.ones(len(length), dtype=bool)
        starts[1:] = (interval_key[1:] != interval_key[:-1]) | (
            interval_customer[1:] != interval_customer[:-1]
        )
        group = np.cumsum(starts) - 1
        groups = int(starts.sum())
        return cls(
            keys=keys,
            key=interval_key,
            length=length,
            tail_key=key[~followed],
            tail_customer=tail_customer,
            tail_known=(last[tail_customer] - day[~followed]).astype(np.float64),
            tail_silence=(cutoff - last[tail_customer]).astype(np.float64),
            group_key=interval_key[starts],
            group_count=np.bincount(group, minlength=groups).astype(np.float64),
            group_sum=np.bincount(group, weights=length, minlength=groups),
            group_squares=np.bincount(group, weights=length**2, minlength=groups),
        )

    def cycles(self, alive: np.ndarray, parent: Cycles, settings: RhythmSettings) -> Cycles:
        """Each key's statistics, shrunk toward ``parent`` (one entry per key, or broadcast), with each
        customer's final silence weighted by ``alive`` (by customer code)."""
        n = self.keys
        events = np.bincount(self.key, minlength=n).astype(np.float64)
        total = np.bincount(self.key, weights=self.length, minlength=n)
        squares = np.bincount(self.key, weights=self.length**2, minlength=n)
        waited = self.tail_known + alive[self.tail_customer] * self.tail_silence
        exposure = total + np.bincount(self.tail_key, weights=waited, minlength=n)
        nu = settings.prior_repurchases
        longest = settings.longest_cycle_days
        cycle = np.minimum((exposure + nu * parent.cycle) / (events + nu), longest)
        gap = np.minimum((total + nu * parent.gap) / (events + nu), longest)
        # spread across customers: the sample variance of the intervals over their mean squared
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = total / events
            spread_seen = (squares - events * mean**2) / np.maximum(events - 1, 1) / mean**2
        dof = np.maximum(events - 1, 0)
        spread_seen = np.where(dof > 0, spread_seen, 0.0)
        dof_prior = settings.prior_gaps
        spread = (dof_prior * parent.spread + dof * spread_seen) / (dof_prior + dof)
        # within a customer: each (key, customer)'s squared deviations over its own mean squared
        g = self.group_count
        with np.errstate(invalid="ignore", divide="ignore"):
            normalised = np.where(
                g > 1, (self.group_squares - self.group_sum**2 / g) / (self.group_sum / g) ** 2, 0
            )
        within = np.bincount(self.group_key, weights=np.maximum(normalised, 0.0), minlength=n)
        within_dof = np.bincount(self.group_key, weights=np.maximum(g - 1, 0), minlength=n)
        regularity = (dof_prior * parent.regularity + within) / (dof_prior + within_dof)
        return Cycles(cycle=cycle, gap=gap, spread=spread, regularity=regularity)


def assess(purchases: Purchases, cutoff: int, settings: RhythmSettings = RhythmSettings()) -> Rhythm:
    """By customer code of ``purchases.until(cutoff)``."""
    seen = purchases.until(cutoff)
    s = summarise(seen, cutoff)
    count = len(s.n)
    if not count:
        empty = np.zeros(0)
        return Rhythm(churn_risk=empty, expected_next=empty, typical_gap=empty, p_lapsed=empty)
    x = s.x.astype(np.float64)
    silence = s.recency
    own_total = np.bincount(np.repeat(np.arange(count), s.x), weights=s.gaps, minlength=count)
    own_squares = np.bincount(np.repeat(np.arange(count), s.x), weights=s.gaps**2, minlength=count)

    layout = _Layout.of(seen, s.last, cutoff)
    root = Cycles(
        cycle=np.array([settings.default_cycle_days]),
        gap=np.array([settings.default_cycle_days]),
        spread=np.ones(1),
        regularity=np.ones(1),
    )
    alive = np.ones(count)
    for _ in range(1 + max(settings.reweighting_passes, 0)):
        prior = layout.priors(alive, root, settings)
        mu, shape = _customer_rhythm(x, own_total, own_squares, prior, settings)
        survival = special.gammaincc(shape, silence * shape / mu)
        dropout = fit_dropout(x, survival, settings.dropout_prior, settings.dropout_prior_sd)
        risk = dropout.risk(x, survival)
        alive = 1.0 - risk

    # E[gap | gap > silence] = mu * Q(k + 1, z) / Q(k, z): the next purchase's day given the wait so far
    z = silence * shape / mu
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        waited = mu * special.gammaincc(shape + 1, z) / survival
    waited = np.where(survival > 1e-12, waited, silence + mu / shape)
    churn_risk = silence_risk(risk, survival)
    expected_next = np.where(churn_risk < settings.lapsed_at, s.last + np.maximum(waited, silence), np.nan)
    return Rhythm(churn_risk=churn_risk, expected_next=expected_next, typical_gap=mu, p_lapsed=risk)


def silence_risk(p_lapsed: np.ndarray, survival: np.ndarray) -> np.ndarray:
    """``churn_risk``: the share of the belief that the customer was still buying, just after their last
    purchase, that their silence has taken away: ``1 - P(alive | s) / P(alive | s = 0)``, which is
    ``(P(lapsed | s) - P(lapsed | 0)) / (1 - P(lapsed | 0))`` and, with the model's posterior, simply
    ``P(lapsed | s) * (1 - S(s))``: 0 on the day of a purchase, rising with silence against the
    customer's own gaps, near ``P(lapsed | s)`` once the silence is longer than nearly all of them."""
    return np.clip(p_lapsed * (1.0 - survival), 0.0, 1.0)


@dataclass(frozen=True, slots=True, eq=False)
class _Layout:
    """What the priors are computed from: repeat purchases of anything, of each category and after
    each product, each product's category, and the entries each customer may borrow a prior from."""

    population: _Occurrences
    #: by family: a category (codes ``0..C-1``), or a product listed without one (``C + product``)
    families: _Occurrences
    products: _Occurrences
    product_category: np.ndarray  # -1: none
    #: the basket entries of each customer's last purchase day
    entry_customer: np.ndarray
    entry_product: np.ndarray
    entry_category: np.ndarray

    @classmethod
    def of(cls, seen: Purchases, last: np.ndarray, cutoff: int) -> _Layout:
        rows = len(seen.day)
        categories = len(seen.categories)
        population = _Occurrences.of(
            1,
            np.zeros(rows, dtype=np.int64),
            seen.customer,
            seen.day,
            _following(np.zeros(rows, dtype=np.int64), seen.customer, seen.day),
            last,
            cutoff,
        )
        listed = (seen.basket_category >= 0) | (seen.basket_product >= 0)
        entry_row = seen.basket_row[listed]
        entry_product = seen.basket_product[listed]
        family = np.where(
            seen.basket_category[listed] >= 0, seen.basket_category[listed], categories + entry_product
        )
        # a category's repurchase: its next purchase by the same customer
        order, first = _sort_unique(family, entry_row, rows)
        family_key, family_row = family[order][first], entry_row[order][first]
        family_customer, family_day = seen.customer[family_row], seen.day[family_row]
        family_following = _following(family_key, family_customer, family_day)
        families = _Occurrences.of(
            categories + len(seen.products),
            family_key,
            family_customer,
            family_day,
            family_following,
            last,
            cutoff,
        )
        # a product's: the same customer's next purchase in its category (of it, without one)
        entry_following = np.empty(len(family), dtype=np.int64)
        entry_following[order] = family_following[np.cumsum(first) - 1]
        has_product = entry_product >= 0
        product_key, product_row = entry_product[has_product], entry_row[has_product]
        order, first = _sort_unique(product_key, product_row, rows)
        product_row = product_row[order][first]
        products = _Occurrences.of(
            len(seen.products),
            product_key[order][first],
            seen.customer[product_row],
            seen.day[product_row],
            entry_following[has_product][order][first],
            last,
            cutoff,
        )
        # a product's category: the one it is most often listed under (ties: the first by code)
        product_category = np.full(len(seen.products), -1, dtype=np.int64)
        both = (seen.basket_product >= 0) & (seen.basket_category >= 0)
        if both.any():
            pairs, counts = np.unique(
                seen.basket_product[both] * categories + seen.basket_category[both], return_counts=True
            )
            product = pairs // categories
            ranked = np.lexsort((-counts, product))
            firsts = np.ones(len(ranked), dtype=bool)
            firsts[1:] = product[ranked][1:] != product[ranked][:-1]
            product_category[product[ranked][firsts]] = pairs[ranked][firsts] % categories
        entry_customer = seen.customer[entry_row]
        on_last_day = seen.day[entry_row] == last[entry_customer]
        return cls(
            population=population,
            families=families,
            products=products,
            product_category=product_category,
            entry_customer=entry_customer[on_last_day],
            entry_product=entry_product[on_last_day],
            entry_category=seen.basket_category[listed][on_last_day],
        )

    def priors(self, alive: np.ndarray, root: Cycles, settings: RhythmSettings) -> Cycles:
        """Each customer's prior: the shortest cycle among the products (else categories) of their last
        purchase day, else the population's."""
        population = self.population.cycles(alive, root, settings)
        categories = self.families.cycles(alive, population, settings)
        parent_of_product = _pick(categories, population, self.product_category)
        products = self.products.cycles(alive, parent_of_product, settings)
        count = len(alive)
        entries = _pick(products, _pick(categories, population, self.entry_category), self.entry_product)
        best = np.full(count, np.inf)
        np.minimum.at(best, self.entry_customer, entries.cycle)
        chosen = np.full(count, -1, dtype=np.int64)
        winners = np.flatnonzero(entries.cycle == best[self.entry_customer])
        chosen[self.entry_customer[winners]] = winners
        borrowed = chosen >= 0
        prior = Cycles(
            cycle=np.full(count, population.cycle[0]),
            gap=np.full(count, population.gap[0]),
            spread=np.full(count, population.spread[0]),
            regularity=np.full(count, population.regularity[0]),
        )
        for name in ("cycle", "gap", "spread", "regularity"):
            getattr(prior, name)[borrowed] = getattr(entries, name)[chosen[borrowed]]
        return prior


def _sort_unique(key: np.ndarray, row: np.ndarray, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """The order sorting (key, row) pairs (rows are in customer and day order), and which of the
    sorted pairs is the first of its kind."""
    order = np.argsort(key * rows + row)
    composite = (key * rows + row)[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = composite[1:] != composite[:-1]
    return order, first


def _following(key: np.ndarray, customer: np.ndarray, day: np.ndarray) -> np.ndarray:
    """For occurrences sorted by key, customer and day: the day of the same customer's next occurrence of
    the same key, -1 for the last."""
    following = np.full(len(key), -1, dtype=np.int64)
    same = (key[1:] == key[:-1]) & (customer[1:] == customer[:-1])
    following[:-1][same] = day[1:][same]
    return following


def _pick(cycles: Cycles, fallback: Cycles, index: np.ndarray) -> Cycles:
    """``cycles[index]`` where ``index >= 0``, else ``fallback`` (one entry, or one per index)."""
    has = index >= 0
    safe = np.where(has, index, 0)

    def one(mine: np.ndarray, other: np.ndarray) -> np.ndarray:
        chosen = mine[safe] if len(mine) else np.zeros(index.shape)
        return np.where(has, chosen, np.broadcast_to(other, index.shape))

    return Cycles(
        cycle=one(cycles.cycle, fallback.cycle),
        gap=one(cycles.gap, fallback.gap),
        spread=one(cycles.spread, fallback.spread),
        regularity=one(cycles.regularity, fallback.regularity),
    )


def _customer_rhythm(
    x: np.ndarray, own_total: np.ndarray, own_squares: np.ndarray, prior: Cycles, settings: RhythmSettings
) -> tuple[np.ndarray, np.ndarray]:
    """Each customer's gap mean and gamma shape: their own gaps pooled with the prior.

    The mean's weight on the prior is the classic empirical-Bayes ratio of the variance within a
    customer to the variance of customers' means (``regularity / between``), in pseudo gaps. The shape
    comes from the predictive spread: the customer's own regularity (their sample variance pooled with
    the prior's) plus what is still unknown about their mean.
    """
    between = np.maximum(prior.spread - prior.regularity, 0.0) / (1.0 + prior.regularity)
    between = np.maximum(between, 1e-3)
    weight = np.clip(prior.regularity / between, 0.5, 20.0)
    first_time = x == 0
    mu = np.where(first_time, prior.cycle, (weight * prior.gap + own_total) / (weight + x))
    mu = np.clip(mu, 1.0, settings.longest_cycle_days)
    with np.errstate(invalid="ignore", divide="ignore"):
        own_mean = own_total / x
        own_spread = (own_squares - x * own_mean**2) / np.maximum(x - 1, 1) / own_mean**2
    dof = np.maximum(x - 1, 0)
    own_spread = np.where(dof > 0, np.maximum(own_spread, 0.0), 0.0)
    regularity = (settings.prior_gaps * prior.regularity + dof * own_spread) / (settings.prior_gaps + dof)
    spread = np.where(first_time, prior.spread, regularity + between * weight / (weight + x))
    low, high = settings.shape_bounds
    return mu, np.clip(1.0 / np.maximum(spread, 1e-9), low, high)


def fit_dropout(
    x: np.ndarray, survival: np.ndarray, prior: tuple[float, float] = (0.5, 4.0), prior_sd: float = 1.0
) -> Dropout:
    """Maximum likelihood (with a weak log-normal prior, sd 2, that matters only for tiny populations)
    of Beta(a, b) given each customer's repeat purchases ``x`` and the survival of their silence.

    A customer's likelihood: ``B(a, b + x) / B(a, b) * (a + S (b + x)) / (a + b + x)``: they did not drop
    out after their first ``x`` purchases, then either dropped out after the last or are alive and silent.
    """
    x = np.asarray(x, dtype=np.float64)
    survival = np.asarray(survival, dtype=np.float64)
    values, counts = np.unique(x, return_counts=True)
    total = float(len(x))
    centre = np.log(np.asarray(prior, dtype=np.float64))
    variance = prior_sd**2

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        a, b = np.exp(theta)
        bx = b + x
        last = a + survival * bx
        ab = a + b + values
        grouped = special.betaln(a, b + values) - special.betaln(a, b) - np.log(ab)
        ll = float(np.sum(counts * grouped) + np.sum(np.log(last))) / total
        da = (
            np.sum(counts * (special.digamma(a) - special.digamma(ab) - 1.0 / ab))
            - total * (special.digamma(a) - special.digamma(a + b))
            + np.sum(1.0 / last)
        ) / total
        db = (
            np.sum(counts * (special.digamma(b + values) - special.digamma(ab) - 1.0 / ab))
            - total * (special.digamma(b) - special.digamma(a + b))
            + np.sum(survival / last)
        ) / total
        penalty = float(np.sum((theta - centre) ** 2)) / (2 * variance) / total
        gradient = -np.array([da * a, db * b]) + (theta - centre) / variance / total
        return -ll + penalty, gradient

    best = optimize.minimize(loss, centre, jac=True, method="L-BFGS-B", bounds=[(-9.0, 9.0), (-9.0, 12.0)])
    a, b = np.exp(best.x)
    return Dropout(float(a), float(b))

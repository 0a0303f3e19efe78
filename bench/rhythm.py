"""The synthetic rhythm check (issue 12): does ``churn_risk`` tell the lapsed from the merely quiet better
than BG/NBD among customers with the same recency and frequency?

A population from ``bench.purchases`` (regular buyers of consumables, irregular Poisson buyers, one-off
buyers of kitchen appliances; who had dropped out by the cut-off is known) is scored at the cut-off by
``rhythm.assess`` and by BG/NBD's ``1 - P(alive)`` (fitted on the same data, up to the cut-off). Customers
are put in cells by days since their last purchase and by purchase days; within each cell holding both
lapsed and active customers, each score's ROC AUC; the cells' AUCs are averaged, weighted by the cells'
customers. Recency and frequency alone rank nothing within a cell: what wins there is knowing the
customer's rhythm. Also: the issue's two customers (and a first-time buyer of the cut-off day) through
``scoring.score`` (the command's and the nightly job's code path), in that population and in one where
most customers never come back (CDNOW's dropout), and the time ``assess`` takes on 100,000 and
1,000,000 customers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy import stats

from bench.purchases import Mix, appliance_customer, generate, irregular_customer, water_filter_customer
from shared.analytics.btyd import fit_bgnbd
from shared.analytics.history import Purchase, Purchases, day_date, summarise
from shared.analytics.rhythm import assess
from shared.analytics.scoring import score

#: days since the last purchase: up to 30, 60, 120, 240, more
RECENCY_EDGES = (30, 60, 120, 240)
#: purchase days: 1, 2, 3-4, 5-8, 9-16, more
COUNT_EDGES = (1, 2, 4, 8, 16)
CUTOFF = 20_000  # 2024-10-04; the generator works back from it
CHECK_CUSTOMERS = 50_000
SCALES = (100_000, 1_000_000)
#: the margin over BG/NBD within cells the check asks for
MARGIN = 0.05


def auc(score: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC (Mann-Whitney, ties count half); NaN without both classes."""
    positives = int(positive.sum())
    negatives = len(positive) - positives
    if not positives or not negatives:
        return float("nan")
    ranks = stats.rankdata(score)
    return float((ranks[positive].sum() - positives * (positives + 1) / 2) / (positives * negatives))


@dataclass(frozen=True, slots=True)
class CellAuc:
    """The cell-weighted AUC of each score, over the ``cells`` holding both classes (``customers`` in all)."""

    aucs: dict[str, float]
    cells: int
    customers: int


def within_cells(
    scores: dict[str, np.ndarray], lapsed: np.ndarray, recency: np.ndarray, count: np.ndarray
) -> CellAuc:
    """Each score's AUC within recency x purchase-count cells, weighted by the cells' customers."""
    cell = np.digitize(recency, RECENCY_EDGES, right=True) * (len(COUNT_EDGES) + 1) + np.digitize(
        count, COUNT_EDGES, right=True
    )
    totals = dict.fromkeys(scores, 0.0)
    customers = cells = 0
    for c in np.unique(cell):
        inside = cell == c
        if lapsed[inside].all() or not lapsed[inside].any():
            continue
        cells += 1
        size = int(inside.sum())
        customers += size
        for name, values in scores.items():
            totals[name] += size * auc(values[inside], lapsed[inside])
    return CellAuc({name: total / max(customers, 1) for name, total in totals.items()}, cells, customers)


@dataclass(frozen=True, slots=True)
class Check:
    customers: int
    purchase_days: int
    lapsed_share: float
    within: CellAuc
    overall: dict[str, float]


def synthetic_check(customers: int = CHECK_CUSTOMERS, seed: int = 12) -> Check:
    synthetic = generate(customers, CUTOFF, seed=seed)
    purchases, lapsed = synthetic.purchases, synthetic.truth.lapsed(CUTOFF)
    rhythm = assess(purchases, CUTOFF)
    s = summarise(purchases, CUTOFF)
    bgnbd = fit_bgnbd(s.x, s.t_x, s.T)
    scores = {"churn_risk": rhythm.churn_risk, "bgnbd": 1.0 - bgnbd.p_alive(s.x, s.t_x, s.T)}
    return Check(
        customers=customers,
        purchase_days=len(purchases),
        lapsed_share=float(lapsed.mean()),
        within=within_cells(scores, lapsed, s.recency, s.n),
        overall={name: auc(values, lapsed) for name, values in scores.items()},
    )


#: the generator's default shop: dropout per purchase ~ Beta(0.6, 8), mean 0.07
DEFAULT_SHOP = Mix()
#: a shop where most customers never come back: dropout per purchase ~ Beta(0.8, 0.7), mean 0.53, as
#: fitted on CDNOW master at 1997-12-31 (Beta(0.817, 0.719))
CDNOW_LIKE = Mix(dropout_a=0.8, dropout_b=0.7)


def seed_customers(
    population: int = 5000, seed: int = 12, mix: Mix = DEFAULT_SHOP
) -> list[dict[str, object]]:
    """The issue's customers, added to a generated population (which teaches the cycles of water
    filters and kitchen appliances) and scored by ``scoring.score``: the water-filter customer 25 days
    and 90 days after their last filter, the irregular buyer with the same count, first and last
    purchase, the appliance buyer a month after the purchase, and a first-time buyer of the cut-off
    day. ``p_lapsed``: the rhythm model's probability that they have stopped buying for good."""
    last_filter = CUTOFF - 90
    rows = [
        *generate(population, CUTOFF, seed=seed, mix=mix).rows(),
        *water_filter_customer(last_filter),
        *irregular_customer(last_filter),
        appliance_customer(CUTOFF - 30),
        Purchase("first-today", CUTOFF, 25.0, "water filter", "water filters"),
    ]
    purchases = Purchases.from_rows(rows)
    asked = (
        ("water-filter", last_filter + 25, "water filters every 30 days, 25 days after the last"),
        ("water-filter", CUTOFF, "the same, 90 days after the last"),
        ("irregular", CUTOFF, "irregular, same count, first and last purchase, 90 days after the last"),
        ("appliance", CUTOFF, "one espresso machine, 30 days ago"),
        ("first-today", CUTOFF, "a first water filter, bought on the cut-off day"),
    )
    found = []
    for customer, day, label in asked:
        c = purchases.until(day).customers.index(customer)
        p_lapsed = float(assess(purchases, day).p_lapsed[c])
        row = next(r for r in score(purchases, day) if r.customer_id == customer)
        found.append(
            {
                "label": label,
                "day": day_date(day),
                "churn_risk": row.churn_risk,
                "risk_level": row.risk_level,
                "p_lapsed": p_lapsed,
                "p_no_purchase": row.p_no_purchase,
                "expected_next_purchase": row.expected_next_purchase,
                "typical_gap_days": row.typical_gap_days,
            }
        )
    return found


def scale(customers: int, seed: int = 12) -> dict[str, float]:
    """``assess`` over a whole generated population: wall and CPU time."""
    synthetic = generate(customers, CUTOFF, seed=seed)
    wall, cpu = time.perf_counter(), time.process_time()
    assess(synthetic.purchases, CUTOFF)
    return {
        "customers": customers,
        "purchase_days": len(synthetic.purchases),
        "basket_entries": len(synthetic.purchases.basket_row),
        "seconds": time.perf_counter() - wall,
        "cpu_seconds": time.process_time() - cpu,
    }


def _seed_rows(seeds: list[dict[str, object]]) -> str:
    return "\n".join(
        f"| {s['label']} | {s['churn_risk']:.3f} | {s['risk_level']} | {s['p_lapsed']:.3f} | "
        f"{s['p_no_purchase']:.3f} | {s['expected_next_purchase'] or 'none (probably lapsed)'} | "
        f"{s['typical_gap_days']} |"
        for s in seeds
    )


def section(
    where: str,
    check: Check,
    seeds: list[dict[str, object]],
    scales: list[dict[str, float]],
    cdnow_like: list[dict[str, object]],
) -> str:
    risk, base = check.within.aucs["churn_risk"], check.within.aucs["bgnbd"]
    met = "met" if risk - base >= MARGIN else "**not met**"
    scale_rows = "\n".join(
        f"| {r['customers']:,.0f} | {r['purchase_days']:,.0f} | {r['basket_entries']:,.0f} | "
        f"{r['seconds']:.1f} s | {r['cpu_seconds']:.1f} s |"
        for r in scales
    )
    return f"""
Measured by `python -m bench rhythm` on {where}.

**Synthetic rhythm check** ({check.customers:,} generated customers, {check.purchase_days:,} purchase
days, {check.lapsed_share:.0%} lapsed at the cut-off: regular consumable buyers of gamma shape 2 to 50,
Poisson buyers, one-off kitchen-appliance buyers, each dropping out after a purchase with a probability
of their own; `bench/purchases.py`). ROC AUC for "had dropped out by the cut-off", within cells of days
since the last purchase (≤30, ≤60, ≤120, ≤240, more) × purchase days (1, 2, 3-4, 5-8, 9-16, more),
weighted by the {check.within.cells} mixed cells' {check.within.customers:,} customers; both scores from
data up to the cut-off:

| score | AUC within cells | AUC overall |
|---|---|---|
| `churn_risk` (rhythm) | **{risk:.3f}** | {check.overall["churn_risk"]:.3f} |
| BG/NBD 1 − P(alive) | {base:.3f} | {check.overall["bgnbd"]:.3f} |
| margin | **{risk - base:+.3f}** (goal ≥ +{MARGIN:.2f}: {met}) | {check.overall["churn_risk"] - check.overall["bgnbd"]:+.3f} |

**The issue's customers**, added to 5,000 generated ones and scored by `scoring.score` (the command's
and the nightly job's code path); `P(lapsed)` is the rhythm model's probability that they have stopped
buying for good, `churn_risk` the part of it their silence accounts for:

| customer | churn_risk | level | P(lapsed) | p_no_purchase (90 days) | expected next purchase | typical gap (days) |
|---|---|---|---|---|---|---|
{_seed_rows(seeds)}

The same, in a shop where most customers never come back (5,000 generated customers dropping out after
a purchase with probability ~ Beta(0.8, 0.7), mean 0.53, as fitted on CDNOW): P(lapsed) starts at the
shop's dropout rate, the churn risk at 0.

| customer | churn_risk | level | P(lapsed) | p_no_purchase (90 days) | expected next purchase | typical gap (days) |
|---|---|---|---|---|---|---|
{_seed_rows(cdnow_like)}

**`rhythm.assess` over a whole population** (one process, everything in memory; generated customers):

| customers | purchase days | basket entries | wall time | CPU time |
|---|---|---|---|---|
{scale_rows}
"""


def run(where: str) -> str:
    check = synthetic_check()
    print(
        f"rhythm: within cells churn_risk {check.within.aucs['churn_risk']:.3f}, "
        f"BG/NBD {check.within.aucs['bgnbd']:.3f}, margin "
        f"{check.within.aucs['churn_risk'] - check.within.aucs['bgnbd']:+.3f} over {check.within.cells} cells",
        flush=True,
    )
    seeds = seed_customers()
    for s in seeds:
        print(f"rhythm: {s}", flush=True)
    cdnow_like = seed_customers(mix=CDNOW_LIKE)
    for s in cdnow_like:
        print(f"rhythm: CDNOW-like shop: {s}", flush=True)
    scales = []
    for customers in SCALES:
        scales.append(scale(customers))
        print(f"rhythm: scale {scales[-1]}", flush=True)
    return section(where, check, seeds, scales, cdnow_like)

"""The synthetic rhythm check (issue 12): does ``churn_risk`` tell the lapsed from the merely quiet better
than BG/NBD among customers with the same recency and frequency?

A population from ``bench.purchases`` (regular buyers of consumables, irregular Poisson buyers, one-off
buyers of kitchen appliances; who had dropped out by the cut-off is known) is scored at the cut-off by
``rhythm.assess`` and by BG/NBD's ``1 - P(alive)`` (fitted on the same data, up to the cut-off). Customers
are put in cells by days since their last purchase and by purchase days; within each cell holding both
lapsed and active customers, each score's ROC AUC; the cells' AUCs are averaged, weighted by the cells'
customers. Recency and frequency alone rank nothing within a cell: what wins there is knowing the
customer's rhythm. Also: the two seed customers (water filters every 30 days, then 90 days silent,
against an irregular buyer with the same count, first and last purchase; a kitchen appliance bought a
month ago), and the time ``assess`` takes on 100,000 and 1,000,000 customers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy import stats

from bench.purchases import APPLIANCE_CATEGORY, generate
from shared.analytics.btyd import fit_bgnbd
from shared.analytics.history import Purchase, Purchases, summarise
from shared.analytics.rhythm import assess

#: days since the last purchase: up to 30, 60, 120, 240, more
RECENCY_EDGES = (30, 60, 120, 240)
#: purchase days: 1, 2, 3-4, 5-8, 9-16, more
COUNT_EDGES = (1, 2, 4, 8, 16)
CUTOFF = 20_000  # 2024-10-04: any day works, the generator is relative to it


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
    cell = np.digitize(recency, RECENCY_EDGES, right=True) * (len(COUNT_EDGES) + 1) + np.digitize(
        count, COUNT_EDGES, right=True
    )
    totals = {name: 0.0 for name in scores}
    weight = 0
    cells = 0
    for c in np.unique(cell):
        inside = cell == c
        if lapsed[inside].all() or not lapsed[inside].any():
            continue
        cells += 1
        size = int(inside.sum())
        weight += size
        for name, score in scores.items():
            totals[name] += size * auc(score[inside], lapsed[inside])
    return CellAuc({name: total / max(weight, 1) for name, total in totals.items()}, cells, weight)


def synthetic_check(customers: int, seed: int = 12) -> dict[str, object]:
    """Both scores on a generated population: within cells and overall."""
    synthetic = generate(customers, CUTOFF, seed=seed)
    purchases, lapsed = synthetic.purchases, synthetic.truth.lapsed(CUTOFF)
    started = time.perf_counter()
    rhythm = assess(purchases, CUTOFF)
    seconds = time.perf_counter() - started
    s = summarise(purchases, CUTOFF)
    bgnbd = fit_bgnbd(s.x, s.t_x, s.T)
    dead = 1.0 - bgnbd.p_alive(s.x, s.t_x, s.T)
    scores = {"churn_risk": rhythm.churn_risk, "bgnbd": dead}
    cells = within_cells(scores, lapsed, s.recency, s.n)
    return {
        "customers": customers,
        "purchase_days": len(purchases),
        "lapsed_share": float(lapsed.mean()),
        "within": cells,
        "overall": {name: auc(score, lapsed) for name, score in scores.items()},
        "assess_seconds": seconds,
    }


def seed_customers(seed: int = 12, population: int = 5000) -> dict[str, dict[str, float]]:
    """The issue's two customers, scored within a generated population (which gives the cycles of
    water filters and kitchen appliances)."""
    cutoff = CUTOFF
    base = generate(population, cutoff, seed=seed).rows()
    last_filter = cutoff - 90
    filters = [Purchase("filters", last_filter - 30 * i, 25.0, "water filter", "water filters") for i in range(13)]
    irregular_days = [0, 9, 47, 58, 101, 170, 190, 231, 262, 300, 318, 360]
    first = last_filter - 360
    irregular = [Purchase("irregular", first + d, 25.0, "water filter", "water filters") for d in irregular_days]
    appliance = [Purchase("appliance", cutoff - 30, 649.0, "espresso machine", APPLIANCE_CATEGORY)]
    rows = base + filters + irregular + appliance
    scored = {}
    purchases = Purchases.from_rows(rows)
    ask = {"filters": cutoff, "irregular": cutoff, "appliance": cutoff}
    for label, day in (("filters (day 25 after the last)", last_filter + 25),):
        ask[label] = day
    for label, day in ask.items():
        rhythm = assess(purchases, day)
        seen = purchases.until(day)
        customer = label.split(" ")[0]
        c = seen.customers.index(customer)
        scored[label] = {
            "churn_risk": float(rhythm.churn_risk[c]),
            "typical_gap": float(rhythm.typical_gap[c]),
            "expected_in_days": float(rhythm.expected_next[c] - day),
        }
    return scored


def scale(customers: int, seed: int = 12) -> dict[str, float]:
    synthetic = generate(customers, CUTOFF, seed=seed)
    started = time.perf_counter()
    assess(synthetic.purchases, CUTOFF)
    return {
        "customers": customers,
        "purchase_days": len(synthetic.purchases),
        "seconds": time.perf_counter() - started,
    }


def section(where: str, check: dict[str, object], seeds: dict[str, dict[str, float]], scales: list[dict]) -> str:
    within = check["within"]
    assert isinstance(within, CellAuc)
    overall = check["overall"]
    assert isinstance(overall, dict)
    risk, base = within.aucs["churn_risk"], within.aucs["bgnbd"]
    seed_rows = "\n".join(
        f"| {label} | {v['churn_risk']:.3f} | {v['typical_gap']:.0f} | "
        f"{'none (probably lapsed)' if not np.isfinite(v['expected_in_days']) else f'{v["expected_in_days"]:.0f}'} |"
        for label, v in seeds.items()
    )
    scale_rows = "\n".join(
        f"| {r['customers']:,} | {r['purchase_days']:,} | {r['seconds']:.1f} s |" for r in scales
    )
    return f"""
Measured by `python -m bench rhythm` on {where}.

**Synthetic rhythm check** ({check["customers"]:,} generated customers, {check["purchase_days"]:,} purchase
days, {check["lapsed_share"]:.0%} lapsed at the cut-off; regular consumable buyers of gamma shape 2 to 50,
Poisson buyers, one-off kitchen-appliance buyers; `bench/purchases.py`). ROC AUC of each score for
"had dropped out by the cut-off", within cells of recency (≤30, ≤60, ≤120, ≤240, more days) × purchase
days (1, 2, 3-4, 5-8, 9-16, more), weighted by the {within.cells} cells' {within.customers:,} customers:

| score | AUC within cells | AUC overall |
|---|---|---|
| `churn_risk` (rhythm) | **{risk:.3f}** | {overall["churn_risk"]:.3f} |
| BG/NBD 1 − P(alive) | {base:.3f} | {overall["bgnbd"]:.3f} |
| margin | **{risk - base:+.3f}** | {overall["churn_risk"] - overall["bgnbd"]:+.3f} |

**The seed customers** (in a generated population of 5,000; days to the expected next purchase counted
from the day scored):

| customer | churn_risk | typical gap (days) | next purchase expected in (days) |
|---|---|---|---|
{seed_rows}

**`rhythm.assess` time** (one process, the whole population in memory):

| customers | purchase days | time |
|---|---|---|
{scale_rows}
"""

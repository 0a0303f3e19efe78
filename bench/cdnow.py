"""CDNOW (issue 12): the churn model's probability of no purchase against the BTYD baselines.

The data is read from the Lifetimes wheel on PyPI (downloaded once into ``.cache/datasets``, opened as a
zip, never installed). Two settings, in one run:

- ``sample``: the 1/10 sample, 2,357 customers, calibration 1997-01-01 .. 1997-09-30 (39 weeks), holdout
  weeks 40 to 78 (to 1998-06-30);
- ``master``: 23,570 customers, calibration to 1997-12-31, holdout to 1998-06-30.

The event predicted is "no purchase in the holdout". Every score is computed from the calibration data
only: ours (``churn.fit_churn_model`` at the cut-off with the holdout's length as horizon), weeks since
the last purchase, and the BG/NBD's and Pareto/NBD's probabilities of no purchase in the holdout, each
fitted by maximum likelihood on the calibration data. Reported: ROC AUC over all customers, over repeat
buyers (a purchase day after the first in calibration), within recency bands, the Brier score and the
expected calibration error (10 equal-width bins). Also the churn risk's levels (``rhythm.assess``) on
each setting: how many customers are low, medium and high, and how many of each made no purchase in the
holdout.
"""

from __future__ import annotations

import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
from scipy import stats

from bench.harness import ROOT
from shared.analytics.btyd import BgNbd, ParetoNbd, fit_bgnbd, fit_pareto_nbd
from shared.analytics.churn import fit_churn_model
from shared.analytics.history import Purchase, Purchases, day_date, day_number, summarise
from shared.analytics.rhythm import assess
from shared.analytics.scoring import RiskLevels

WHEEL = "Lifetimes-0.11.3-py3-none-any.whl"
CACHE = ROOT / ".cache" / "datasets"
#: Fader, Hardie and Lee (2005), the CDNOW sample in weeks
PUBLISHED_BGNBD = BgNbd(r=0.243, alpha=4.414, a=0.793, b=2.426)
#: Fader, Hardie and Lee (2005), "A note on implementing the Pareto/NBD model in MATLAB"; LL -9595.0
PUBLISHED_PARETO_NBD = ParetoNbd(r=0.55, alpha=10.58, s=0.61, beta=11.67)
#: the issue's goals on the master setting: (metric, bound, higher is better)
GOALS = (
    ("auc", 0.805, True),
    ("auc_repeat", 0.746, True),
    ("brier", 0.129, False),
    ("ece", 0.02, False),
)
#: recency bands, in weeks since the last purchase at the cut-off: [low, high)
BANDS = ((0, 4), (4, 13), (13, 26), (26, 53))
METHODS = ("ours", "weeks since last purchase", "BG/NBD", "Pareto/NBD")


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    file: str
    cutoff: date
    end: date


SETTINGS = (
    Setting("sample", "CDNOW_sample.txt", date(1997, 9, 30), date(1998, 6, 30)),
    Setting("master", "CDNOW_master.txt", date(1997, 12, 31), date(1998, 6, 30)),
)


def wheel() -> Path:
    """The Lifetimes wheel, downloaded with pip into ``.cache/datasets`` when absent."""
    found = CACHE / WHEEL
    if not found.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "lifetimes==0.11.3", "-d", str(CACHE)],
            check=True,
        )
    return found


def dataset(name: str) -> str:
    with zipfile.ZipFile(wheel()) as archive:
        return archive.read(f"lifetimes/datasets/{name}").decode()


def transactions(name: str) -> Purchases:
    """A CDNOW transaction file: ``customer [sample id] yyyymmdd cds dollars`` per line."""
    rows = []
    for line in dataset(name).splitlines():
        fields = line.split()
        if len(fields) < 4 or not fields[0].isdigit():
            continue
        when, amount = fields[-3], float(fields[-1])
        day = day_number(date(int(when[:4]), int(when[4:6]), int(when[6:])))
        rows.append(Purchase(customer_id=fields[0], day=day, amount=amount))
    return Purchases.from_rows(rows)


def published_summary() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``cdnow_customers_summary.csv``: the sample's (x, t_x, T) in weeks, as the papers used it."""
    rows = [line.split(",") for line in dataset("cdnow_customers_summary.csv").splitlines()[1:] if line]
    table = np.array([[float(v) for v in row[1:4]] for row in rows])
    return table[:, 0], table[:, 1], table[:, 2]


def auc(score: np.ndarray, event: np.ndarray) -> float:
    """ROC AUC (Mann-Whitney, ties counted half); NaN when one class is absent."""
    event = np.asarray(event, dtype=bool)
    positives, negatives = int(event.sum()), int((~event).sum())
    if not positives or not negatives:
        return float("nan")
    ranks = stats.rankdata(score)
    return float((ranks[event].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def brier(p: np.ndarray, event: np.ndarray) -> float:
    return float(np.mean((p - event) ** 2))


def ece(p: np.ndarray, event: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: |mean predicted - observed rate| per equal-width bin, weighted by size."""
    which = np.minimum((p * bins).astype(np.int64), bins - 1)
    predicted = np.bincount(which, weights=p, minlength=bins)
    observed = np.bincount(which, weights=event.astype(np.float64), minlength=bins)
    return float(np.sum(np.abs(predicted - observed)) / len(p))


def evaluate(setting: Setting) -> dict:
    purchases = transactions(setting.file)
    cutoff, end = day_number(setting.cutoff), day_number(setting.end)
    horizon = end - cutoff
    seen = purchases.until(cutoff)
    code = {customer: i for i, customer in enumerate(purchases.customers)}
    in_holdout = purchases.between(cutoff, end)[[code[c] for c in seen.customers]]
    event = (in_holdout == 0).astype(np.float64)
    s = summarise(seen, cutoff)
    started = time.process_time()
    model = fit_churn_model(purchases, cutoff, horizon)
    fit_seconds = time.process_time() - started
    bgnbd = fit_bgnbd(s.x, s.t_x, s.T)
    pareto = fit_pareto_nbd(s.x, s.t_x, s.T)
    scores = {
        "ours": model.p_no_purchase,
        "weeks since last purchase": s.recency / 7,
        "BG/NBD": bgnbd.p_no_purchase(s.x, s.t_x, s.T, horizon),
        "Pareto/NBD": pareto.p_no_purchase(s.x, s.t_x, s.T, horizon),
    }
    risk = assess(purchases, cutoff).churn_risk
    level = np.array([RiskLevels().level(float(value)) for value in risk])
    levels = [
        {
            "level": name,
            "share": float((level == name).mean()),
            "rate": float(event[level == name].mean()) if (level == name).any() else float("nan"),
        }
        for name in ("low", "medium", "high")
    ]
    repeat = s.x > 0
    weeks = s.recency / 7
    bands = [(low <= weeks) & (weeks < high) for low, high in BANDS]
    rows = {}
    for method, score in scores.items():
        probability = method != "weeks since last purchase"
        rows[method] = {
            "auc": auc(score, event),
            "auc_repeat": auc(score[repeat], event[repeat]),
            "bands": [auc(score[band], event[band]) for band in bands],
            "brier": brier(score, event) if probability else None,
            "ece": ece(score, event) if probability else None,
            "mean": float(np.mean(score)) if probability else None,
        }
    return {
        "setting": setting,
        "customers": len(seen.customers),
        "repeat": int(repeat.sum()),
        "horizon": horizon,
        "rate": float(event.mean()),
        "band_sizes": [int(b.sum()) for b in bands],
        "band_rates": [float(event[b].mean()) if b.any() else float("nan") for b in bands],
        "rows": rows,
        "levels": levels,
        "fit_seconds": fit_seconds,
        "training_cutoff": model.training_cutoff,
        "bgnbd": bgnbd,
        "pareto": pareto,
    }


def reproduced() -> dict:
    """The published CDNOW sample parameters, refitted from the summary file and from the transactions."""
    x, t_x, T = published_summary()
    sample = transactions("CDNOW_sample.txt")
    s = summarise(sample, day_number(date(1997, 9, 30)))
    weeks = (s.x, s.t_x / 7, s.T / 7)
    pareto = fit_pareto_nbd(x, t_x, T)
    return {
        "bgnbd_summary": fit_bgnbd(x, t_x, T),
        "bgnbd_transactions": fit_bgnbd(*weeks),
        "pareto_summary": pareto,
        "pareto_transactions": fit_pareto_nbd(*weeks),
        "pareto_ll": float(np.sum(pareto.log_likelihood(x, t_x, T))),
        "published_pareto_ll": float(np.sum(PUBLISHED_PARETO_NBD.log_likelihood(x, t_x, T))),
    }


def goals(result: dict) -> list[tuple[str, float, float, bool, bool]]:
    """(metric, value, bound, higher is better, met) for ours on a setting."""
    ours = result["rows"]["ours"]
    return [
        (metric, ours[metric], bound, higher, ours[metric] >= bound if higher else ours[metric] <= bound)
        for metric, bound, higher in GOALS
    ]


def run() -> tuple[list[dict], dict]:
    return [evaluate(setting) for setting in SETTINGS], reproduced()


def _num(value: float | None, digits: int = 3) -> str:
    return "—" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def _band_name(low: int, high: int) -> str:
    return f"{low}–{high} wk" if high < 53 else f"{low}+ wk"


def section(where: str, results: list[dict], params: dict) -> str:
    parts = [
        f"Measured by `make bench` (`python -m bench cdnow`) on {where}.",
        "",
        (
            "**Churn probability on CDNOW** (the event: no purchase in the holdout; every score computed "
            "from the calibration data only; BG/NBD and Pareto/NBD fitted by maximum likelihood, in days, "
            "on the same data; ours: `shared.analytics.churn`, a Pareto/NBD corrected by a logistic "
            "regression learnt at a past cut-off, see docs/analytics.md):"
        ),
    ]
    for result in results:
        setting = result["setting"]
        band_heads = " | ".join(
            f"AUC {_band_name(lo, hi)} (n={n})"
            for (lo, hi), n in zip(BANDS, result["band_sizes"], strict=True)
        )
        lines = [
            "",
            (
                f"*{setting.name}*: {result['customers']:,} customers ({result['repeat']:,} repeat buyers), "
                f"cut-off {setting.cutoff}, holdout to {setting.end} ({result['horizon']} days); "
                f"{result['rate']:.1%} made no purchase in it. Ours: trained at "
                f"{_day(result['training_cutoff'])}, fitted in {result['fit_seconds']:.1f} s CPU."
            ),
            "",
            f"| method | AUC | AUC repeat buyers | {band_heads} | Brier | ECE | mean predicted |",
            "|---|---|---|" + "---|" * len(BANDS) + "---|---|---|",
        ]
        for method in METHODS:
            row = result["rows"][method]
            bands = " | ".join(_num(v) for v in row["bands"])
            name = f"**{method}**" if method == "ours" else method
            lines.append(
                f"| {name} | {_num(row['auc'])} | {_num(row['auc_repeat'])} | {bands} | "
                f"{_num(row['brier'], 4)} | {_num(row['ece'], 4)} | {_num(row['mean'])} |"
            )
        parts.extend(lines)
    master = next(r for r in results if r["setting"].name == "master")
    parts += [
        "",
        (
            f"**Churn risk levels on master** (`rhythm.assess` at {master['setting'].cutoff}, the default "
            "levels; CDNOW has no products, so every customer borrows the shop's cycle; the customers all "
            "started in the first quarter of 1997, so at the cut-off most are one-time buyers silent for "
            "9 to 12 months): the share of customers at each level, and how many of them made no purchase "
            "in the holdout:"
        ),
        "",
        "| level | customers | no purchase in the holdout |",
        "|---|---|---|",
        *(f"| {row['level']} | {row['share']:.1%} | {row['rate']:.1%} |" for row in master["levels"]),
    ]
    checks = goals(master)
    parts += [
        "",
        "**Goals on master** (from the issue): "
        + "; ".join(
            f"{metric} {value:.4f} {'≥' if higher else '≤'} {bound}: {'met' if met else '**MISSED**'}"
            for metric, value, bound, higher, met in checks
        )
        + ".",
    ]
    published = PUBLISHED_BGNBD
    b_sum, b_tx = params["bgnbd_summary"], params["bgnbd_transactions"]
    p_sum, p_tx, p_pub = params["pareto_summary"], params["pareto_transactions"], PUBLISHED_PARETO_NBD
    parts += [
        "",
        "**Published parameters reproduced** (CDNOW sample, 39-week calibration, weeks):",
        "",
        "| model | parameters | published | from `cdnow_customers_summary.csv` | from the transactions |",
        "|---|---|---|---|---|",
        f"| BG/NBD | r, α, a, b | {_params(published)} | {_params(b_sum)} | {_params(b_tx)} |",
        f"| Pareto/NBD | r, α, s, β | {_params(p_pub)} | {_params(p_sum)} | {_params(p_tx)} |",
        "",
        (
            f"Pareto/NBD log-likelihood at the published parameters: {params['published_pareto_ll']:.1f} "
            f"(published −9595.0); at ours: {params['pareto_ll']:.1f}."
        ),
    ]
    return "\n".join(parts)


def _params(model: BgNbd | ParetoNbd) -> str:
    values = (
        (model.r, model.alpha, model.a, model.b)
        if isinstance(model, BgNbd)
        else (model.r, model.alpha, model.s, model.beta)
    )
    return ", ".join(f"{v:.3f}" for v in values)


def _day(number: int | None) -> str:
    return "— (too little history: the Pareto/NBD alone)" if number is None else str(day_date(number))


def report_lines(results: list[dict]) -> list[str]:
    lines = []
    for result in results:
        for method in METHODS:
            row = result["rows"][method]
            lines.append(
                f"cdnow {result['setting'].name}: {method}: AUC {_num(row['auc'], 4)}, repeat "
                f"{_num(row['auc_repeat'], 4)}, bands {' '.join(_num(v) for v in row['bands'])}, "
                f"Brier {_num(row['brier'], 4)}, ECE {_num(row['ece'], 4)}"
            )
    master = next(r for r in results if r["setting"].name == "master")
    lines.append(
        "cdnow master: churn_risk levels "
        + ", ".join(
            f"{row['level']} {row['share']:.1%} (no purchase {row['rate']:.1%})" for row in master["levels"]
        )
    )
    for metric, value, bound, higher, met in goals(master):
        verdict = "met" if met else "MISSED (the build goes on; this goal is not reached)"
        lines.append(f"cdnow goal {metric}: {value:.4f} {'>=' if higher else '<='} {bound}: {verdict}")
    return lines

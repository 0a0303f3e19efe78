"""Uplift: how much more the treated converted than the holdout, with a 95% confidence interval.

The difference of two independent proportions, ``p1 = x1/n1`` (treated) minus ``p2 = x2/n2`` (held
out), with **Newcombe's hybrid score interval** (Newcombe 1998, method 10): each rate gets its Wilson
score interval ``[l, u]``, and the difference's interval is

    d - sqrt((p1 - l1)^2 + (u2 - p2)^2)   to   d + sqrt((u1 - p1)^2 + (p2 - l2)^2)

Unlike the textbook Wald interval (``d +/- z sqrt(p1 q1/n1 + p2 q2/n2)``) it stays inside [-1, 1], is not
degenerate when a rate is 0 (no conversions yet in a small holdout), and keeps close to its nominal 95%
for the small rates and unequal group sizes campaigns have. The uplift is *significant* when the
interval excludes 0. Pure; ``z`` is the 97.5th percentile of the normal distribution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054
METHOD = "Newcombe hybrid score interval (Wilson score for each rate), 95%"


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of ``successes / trials`` (``trials`` > 0)."""
    if trials <= 0:
        raise ValueError("a rate needs at least one trial")
    p = successes / trials
    z2 = z * z
    denominator = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True, slots=True)
class Difference:
    """``treated - baseline`` as proportions (0.012 is 1.2 points), with its interval."""

    treated: float
    baseline: float
    difference: float
    low: float
    high: float

    @property
    def significant(self) -> bool:
        return self.low > 0 or self.high < 0


def newcombe(x1: int, n1: int, x2: int, n2: int, z: float = Z95) -> Difference:
    """Newcombe's hybrid score interval for ``x1/n1 - x2/n2`` (both groups non-empty)."""
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson(x1, n1, z)
    l2, u2 = wilson(x2, n2, z)
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return Difference(treated=p1, baseline=p2, difference=d, low=low, high=high)


def percent(rate: float) -> str:
    """``0.041`` as ``4.1%``."""
    return f"{rate * 100:.1f}%"


def points(value: float) -> str:
    """``0.012`` as ``+1.2`` (points), ``-0.0`` written ``+0.0``."""
    shown = round(value * 100, 1)
    return f"{'-' if shown < 0 else '+'}{abs(shown):.1f}"


def sentence(label: str, found: Difference, baseline_label: str = "held out") -> str:
    """``Variant A converted 4.1% against 2.9% held out: +1.2 points (95% CI +0.3 to +2.1), significant.``"""
    verdict = "significant" if found.significant else "not significant"
    return (
        f"{label} converted {percent(found.treated)} against {percent(found.baseline)} {baseline_label}: "
        f"{points(found.difference)} points (95% CI {points(found.low)} to {points(found.high)}), {verdict}."
    )

"""Each customer's own rhythm: how unusual their silence is. (Placeholder: issue 12's rhythm part
replaces it.)"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared.analytics.history import Purchases, summarise


@dataclass(frozen=True, slots=True, eq=False)
class Rhythm:
    """By customer code: ``churn_risk`` (0 to 1), ``expected_next`` (a day number, NaN: no expectation)
    and ``typical_gap`` (days, NaN: unknown)."""

    churn_risk: np.ndarray
    expected_next: np.ndarray
    typical_gap: np.ndarray


def assess(purchases: Purchases, cutoff: int) -> Rhythm:
    s = summarise(purchases, cutoff)
    gap = np.where(s.x > 0, s.t_x / np.maximum(s.x, 1), np.nan)
    risk = np.where(np.isfinite(gap), 1 - np.exp(-s.recency / np.where(np.isfinite(gap), gap, 1) / 3), 0.1)
    return Rhythm(churn_risk=risk, expected_next=s.last + gap, typical_gap=gap)

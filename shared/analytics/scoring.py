"""Scoring a population at a cut-off: the one code path of the nightly job and the offline command.

``score`` takes purchase histories and a cut-off day and gives one ``CustomerScore`` per customer who
bought on or before it. It reads nothing after the cut-off: every model is fitted on the data up to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

import numpy as np

from shared.analytics.churn import p_no_purchase
from shared.analytics.facts import CustomerScore, RiskLevel
from shared.analytics.history import Purchases, day_date
from shared.analytics.rfm import RfmSettings, score_rfm
from shared.analytics.rhythm import assess

DEFAULT_HORIZON_DAYS = 90


@dataclass(frozen=True, slots=True)
class RiskLevels:
    """Churn risk at or above ``medium`` is medium, at or above ``high`` is high.

    The risk is how much of the belief that the customer was still buying their silence has taken away
    (``rhythm.assess``: 0 on the day of a purchase, whatever the shop's dropout rate), so the defaults
    read: low, the silence is within what their rhythm allows (a customer within their usual gap, a
    first-time buyer of a durable); medium, it has taken at least half of it (no next purchase is
    expected any more); high, at least four fifths: they are overdue past nearly all of their gaps, and
    the risk is then close to the probability that they have lapsed.
    """

    medium: float = 0.5
    high: float = 0.8

    def __post_init__(self) -> None:
        if not 0 < self.medium < self.high < 1:
            raise ValueError("risk levels need 0 < medium < high < 1")

    def level(self, risk: float) -> RiskLevel:
        return "high" if risk >= self.high else "medium" if risk >= self.medium else "low"


@dataclass(frozen=True, slots=True)
class ScoringSettings:
    horizon_days: int = DEFAULT_HORIZON_DAYS
    rfm: RfmSettings = field(default_factory=RfmSettings)
    risk: RiskLevels = field(default_factory=RiskLevels)


def score(
    purchases: Purchases, cutoff: int, settings: ScoringSettings = ScoringSettings()
) -> list[CustomerScore]:
    """One row per customer with a purchase on or before day ``cutoff``, in customer id order."""
    seen = purchases.until(cutoff)
    if not seen.customers:
        return []
    p = p_no_purchase(seen, cutoff, settings.horizon_days)
    rhythm = assess(seen, cutoff)
    rfm = score_rfm(seen, cutoff, settings.rfm)
    rows = []
    for c, customer_id in enumerate(seen.customers):
        risk = float(rhythm.churn_risk[c])
        scored = bool(rfm.r[c])
        rows.append(
            CustomerScore(
                customer_id=customer_id,
                p_no_purchase=_probability(p[c]),
                churn_risk=_probability(risk),
                risk_level=settings.risk.level(risk),
                expected_next_purchase=_day(rhythm.expected_next[c]),
                typical_gap_days=_days(rhythm.typical_gap[c]),
                r=int(rfm.r[c]) if scored else None,
                f=int(rfm.f[c]) if scored else None,
                m=int(rfm.m[c]) if scored else None,
                segment=rfm.segment[c] if scored else None,
                premium=bool(rfm.premium[c]),
            )
        )
    return rows


def _probability(value: float) -> float:
    return round(min(1.0, max(0.0, float(value))), 6)


def _day(value: float) -> date | None:
    return None if not np.isfinite(value) else day_date(math.floor(value))


def _days(value: float) -> float | None:
    return None if not np.isfinite(value) else round(float(value), 1)

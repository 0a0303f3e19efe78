"""The probability of no purchase within a horizon. (Placeholder: issue 12's model replaces it.)"""

from __future__ import annotations

import numpy as np

from shared.analytics.history import Purchases, summarise


def p_no_purchase(purchases: Purchases, cutoff: int, horizon_days: int) -> np.ndarray:
    """By customer code of ``purchases.until(cutoff)``: P(no purchase in days cutoff+1 .. cutoff+horizon)."""
    s = summarise(purchases, cutoff)
    rate = (s.x + 1) / (s.T + 30.0)
    return np.exp(-rate * horizon_days)

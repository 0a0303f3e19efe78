"""RFM: quintile scores over a look-back window, and the named segments. (Placeholder: issue 12's RFM
part replaces this module.)"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared.analytics.history import Purchases


@dataclass(frozen=True, slots=True)
class RfmSettings:
    lookback_days: int = 1095
    #: the quintile edges, as shares of the scored customers
    edges: tuple[float, float, float, float] = (0.2, 0.4, 0.6, 0.8)
    #: ``m`` at or above this is premium
    premium_m: int = 5


@dataclass(frozen=True, slots=True, eq=False)
class RfmScores:
    """By customer code: ``r``, ``f``, ``m`` (1 to 5; 0 for a customer with no purchase in the window),
    ``segment`` (an id of ``facts.SEGMENT_NAMES``, or None) and ``premium``."""

    r: np.ndarray
    f: np.ndarray
    m: np.ndarray
    segment: list[str | None]
    premium: np.ndarray


def score_rfm(purchases: Purchases, cutoff: int, settings: RfmSettings) -> RfmScores:
    count = len(purchases.customers)
    threes = np.full(count, 3, dtype=np.int64)
    return RfmScores(threes, threes, threes, ["need_attention"] * count, np.zeros(count, dtype=bool))

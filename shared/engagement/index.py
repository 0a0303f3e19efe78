"""The engagement index: two halves (before and after purchase) and four quarters.

1. nurturing: before purchase, engagement below the sales threshold;
2. sales: before purchase, at or above it (ready to buy);
3. retention: after purchase, engagement healthy;
4. exit: after purchase, engagement below the exit threshold.

The gauge value is the quarter (0-3) plus the position within it (0 to just under 1):

- nurturing: engagement / sales threshold (0 = no engagement, near 1 = almost sales-ready);
- sales: (engagement - sales) / sales, capped (1 = just sales-ready, near 2 = twice the threshold);
- retention: (sales - engagement) / (sales - exit), floored (2 = as engaged as a sales-ready lead,
  near 3 = about to slip into exit);
- exit: (exit - engagement) / exit (3 = just crossed, near 4 = engagement gone).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: Positions stay strictly inside their quarter.
_TOP = 0.999


class Quarter(StrEnum):
    NURTURING = "nurturing"
    SALES = "sales"
    RETENTION = "retention"
    EXIT = "exit"


ORDER = (Quarter.NURTURING, Quarter.SALES, Quarter.RETENTION, Quarter.EXIT)


class Thresholds(BaseModel):
    """Engagement thresholds, in current (decayed) global points."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sales: float = Field(50, gt=0)
    exit: float = Field(10, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.exit >= self.sales:
            raise ValueError("exit must be below sales")
        return self


def quarter(engagement: float, purchased: bool, thresholds: Thresholds) -> Quarter:
    if not purchased:
        return Quarter.SALES if engagement >= thresholds.sales else Quarter.NURTURING
    return Quarter.EXIT if engagement < thresholds.exit else Quarter.RETENTION


def index(engagement: float, purchased: bool, thresholds: Thresholds) -> float:
    """The gauge: quarter plus position, in [0, 4)."""
    q = quarter(engagement, purchased, thresholds)
    s, x = thresholds.sales, thresholds.exit
    if q is Quarter.NURTURING:
        position = engagement / s
    elif q is Quarter.SALES:
        position = (engagement - s) / s
    elif q is Quarter.RETENTION:
        position = (s - engagement) / (s - x)
    else:
        position = (x - engagement) / x if x else _TOP
    return ORDER.index(q) + min(max(position, 0.0), _TOP)


def crossing(value: float, threshold: float, half_life: timedelta, now: datetime) -> datetime | None:
    """When a decaying value (no new points) falls below ``threshold``; ``None`` if it never does."""
    if threshold <= 0 or value < threshold:
        return None
    return now + half_life * math.log2(value / threshold)

"""Scores as stored: lifetime total and decaying sums per dimension."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from shared.scoring.decay import Decay


class DimensionScore(BaseModel):
    """What is stored for one dimension (global, a tag): lifetime points and decaying sums per bucket."""

    model_config = ConfigDict(frozen=True)

    total: Decimal = Decimal(0)
    #: memory key (``h<seconds>``) -> bucket -> scaled sum
    sums: dict[str, dict[int, float]] = Field(default_factory=dict)

    def value(self, decay: Decay, now: datetime, recent: bool = False) -> float:
        memory = decay.recent if recent else decay.current
        return memory.value(self.sums.get(memory.key, {}), now)

    def minus(self, baseline: DimensionScore) -> DimensionScore:
        """Points gained since ``baseline`` was taken (a stage's score since the contact entered it)."""
        sums: dict[str, dict[int, float]] = {k: dict(v) for k, v in self.sums.items()}
        for key, buckets in baseline.sums.items():
            mine = sums.setdefault(key, {})
            for bucket, value in buckets.items():
                mine[bucket] = mine.get(bucket, 0.0) - value
        return DimensionScore(total=self.total - baseline.total, sums=sums)

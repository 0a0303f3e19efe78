"""Scores as stored and as shown: lifetime total, current (decayed) engagement and trend."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from shared.scoring.decay import Decay, Trend, trend


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


class ScoreView(BaseModel):
    lifetime: float
    current: float
    trend: Trend

    @classmethod
    def of(cls, score: DimensionScore, decay: Decay, now: datetime) -> ScoreView:
        current, recent = score.value(decay, now), score.value(decay, now, recent=True)
        return cls(lifetime=float(score.total), current=round(current, 6), trend=trend(current, recent))


class Scores(BaseModel):
    """The card's ``scores``: global, per tag, and for the current stage since it was entered."""

    model_config = ConfigDict(serialize_by_alias=True)

    global_: ScoreView = Field(serialization_alias="global")
    tags: dict[str, ScoreView]
    stages: dict[str, ScoreView]

    @classmethod
    def of(
        cls,
        dimensions: Mapping[str, DimensionScore],
        decay: Decay,
        now: datetime,
        stage: str,
        stage_baseline: DimensionScore | None,
    ) -> Scores:
        overall = dimensions.get("global", DimensionScore())
        since_stage = overall.minus(stage_baseline) if stage_baseline else overall
        return cls(
            global_=ScoreView.of(overall, decay, now),
            tags={
                name.removeprefix("tag:"): ScoreView.of(score, decay, now)
                for name, score in sorted(dimensions.items())
                if name.startswith("tag:")
            },
            stages={stage: ScoreView.of(since_stage, decay, now)},
        )

"""Scores as shown: lifetime total, current (decayed) engagement and trend."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from shared.scoring.decay import Decay, Trend, trend
from shared.scoring.model import DimensionScore


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

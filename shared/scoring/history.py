"""Scores over time (issue 14, the contact card's chart): the decayed scores as they stood after each
scored event of a window, replayed from the ledger. Pure: time is passed in.

Only the window's ledger is read, never the whole log: the scores stored now (``DimensionScore``) already
sum every event ever scored, so the value at an earlier time ``t`` is the stored value taken back to ``t``
less what the events after ``t`` added:

    V(t) = (V(now) - sum_{t < t_i <= now} p_i * 2**(-(now - t_i)/h)) * 2**((now - t)/h)

with the card's current memory (half-life ``h``), so the series ends exactly at the card's ``Scores``
(its last point is built from them). The stage's series is the score of the stage the contact is in now,
since it entered it (the card's ``stages``): the global score less the snapshot taken on entry, and 0
before the contact entered it. Taking a value back multiplies the rounding error of the subtraction by
``2**((now - t)/h)``; with the default 30-day half-life and the longest window (730 days) that is below
1e-8 of the scores, and results within 1e-9 of zero read as zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from shared.scoring.decay import Decay
from shared.scoring.model import DimensionScore
from shared.scoring.views import Scores

GLOBAL, TAG_PREFIX = "global", "tag:"
#: values this close to zero are the subtraction's rounding, not points
NOISE = 1e-9


class ScorePoint(BaseModel):
    """The scores as they stood at ``at``: global, the current stage's since it was entered, and per tag."""

    model_config = ConfigDict(serialize_by_alias=True, populate_by_name=True)

    at: datetime
    global_: float = Field(serialization_alias="global")
    stage: float
    tags: dict[str, float]


@dataclass(frozen=True, slots=True)
class ScoredAt:
    """One scored event of the ledger: when it happened and its points per dimension."""

    at: datetime
    points: Mapping[str, float] = field(default_factory=dict)


def replay(
    dimensions: Mapping[str, DimensionScore],
    current: Scores,
    stage_baseline: DimensionScore | None,
    stage_entered_at: datetime | None,
    events: Sequence[ScoredAt],
    decay: Decay,
    start: datetime,
    now: datetime,
) -> list[ScorePoint]:
    """A point at ``start``, one after each scored event (those at the same time together) after it up to
    ``now``, and the last at ``now``, equal to ``current`` (the card's scores); oldest first."""
    memory = decay.current
    tags = sorted(name.removeprefix(TAG_PREFIX) for name in dimensions if name.startswith(TAG_PREFIX))
    names = [GLOBAL, *(TAG_PREFIX + tag for tag in tags)]
    stored_now = {name: dimensions.get(name, DimensionScore()).value(decay, now) for name in names}
    window = sorted((e for e in events if start < e.at <= now), key=lambda e: e.at)
    times = [start, *dict.fromkeys(e.at for e in window)]
    # what the events after each time add at ``now``, newest time first
    after: dict[str, float] = dict.fromkeys(names, 0.0)
    remaining = list(window)
    values: dict[datetime, dict[str, float]] = {}
    for t in reversed(times):
        while remaining and remaining[-1].at > t:
            event = remaining.pop()
            weight = 2.0 ** (-((now - event.at) / memory.half_life))
            for name, points in event.points.items():
                if name in after:
                    after[name] += points * weight
        factor = 2.0 ** ((now - t) / memory.half_life)
        values[t] = {name: _clean((stored_now[name] - after[name]) * factor) for name in names}
    points = []
    for t in times:
        if t == now:
            continue
        value = values[t]
        # as the card: no stage entered yet, the stage's score is the global one
        in_stage = stage_entered_at is None or t >= stage_entered_at
        placed = in_stage and stage_baseline is not None and stage_entered_at is not None
        baseline = stage_baseline.value(decay, t) if placed and stage_baseline is not None else 0.0
        points.append(
            ScorePoint(
                at=t,
                global_=round(value[GLOBAL], 6),
                stage=round(_clean(value[GLOBAL] - baseline), 6) if in_stage else 0.0,
                tags={tag: round(value[TAG_PREFIX + tag], 6) for tag in tags},
            )
        )
    stage_now = next(iter(current.stages.values()), None)
    points.append(
        ScorePoint(
            at=now,
            global_=current.global_.current,
            stage=stage_now.current if stage_now is not None else 0.0,
            tags={tag: view.current for tag, view in current.tags.items()},
        )
    )
    return points


def _clean(value: float) -> float:
    return 0.0 if abs(value) < NOISE else value

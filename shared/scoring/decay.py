"""Exponential decay kept additive, so the hot path can score with blind ADDs.

The engagement of a dimension at time ``t`` is ``sum(p_i * 2**(-(t - t_i)/h))``. Each event adds
``p_i * 2**((t_i - E_k)/h)`` to a running sum anchored at ``E_k``, the start of the time bucket the
write happens in; reading multiplies each sum by ``2**(-(t - E_k)/h)``. Buckets are fixed by time
alone (``period`` = 8 half-lives), so every writer agrees on the anchor without reading, factors stay
below 2**8, and merged contacts add sums bucket by bucket. Old buckets are folded into a newer one
(rebase) by whoever next reads the contact; folding changes no value.

Two memories are kept per dimension: the half-life ``h`` (current engagement) and ``h/4`` (recent
activity). Comparing them says which way current engagement is moving: at a steady rate of points
the recent sum is a quarter of the current one; more means rising, less means falling.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

#: Origin of the time buckets. Any fixed instant works; it never changes.
ORIGIN = datetime(2020, 1, 1, tzinfo=UTC)
#: A bucket spans this many half-lives.
BUCKET_HALF_LIVES = 8
#: Below this a scaled sum is noise (and DynamoDB numbers stop at 1e-130).
NEGLIGIBLE = 1e-90
#: The recent memory's half-life, as a fraction of the current one.
RECENT_FRACTION = 4
#: The two-memory ratio must move this far from steady to count as rising or falling (wide enough
#: that a contact active every few days does not flip between the two).
TREND_TOLERANCE = 0.25


class Trend(StrEnum):
    RISING = "rising"
    STEADY = "steady"
    FALLING = "falling"


@dataclass(frozen=True, slots=True)
class Memory:
    """One decaying sum: its half-life and the bucket layout that follows from it."""

    half_life: timedelta

    @property
    def key(self) -> str:
        """Names the sum in storage; a new half-life starts new sums instead of misreading old ones."""
        return f"h{int(self.half_life.total_seconds())}"

    @property
    def period(self) -> timedelta:
        return self.half_life * BUCKET_HALF_LIVES

    def bucket(self, at: datetime) -> int:
        return math.floor((at - ORIGIN) / self.period)

    def anchor(self, bucket: int) -> datetime:
        return ORIGIN + self.period * bucket

    def scaled(self, points: float, happened: datetime, bucket: int) -> float:
        """What an event adds to the sum of ``bucket``."""
        return points * 2.0 ** ((happened - self.anchor(bucket)) / self.half_life)

    def value(self, sums: Mapping[int, float], now: datetime) -> float:
        """The decayed value at ``now`` of sums kept per bucket."""
        return sum(s * 2.0 ** (-(now - self.anchor(k)) / self.half_life) for k, s in sums.items())

    def fold(self, sums: Mapping[int, float], into: int) -> dict[int, float]:
        """Rebase: move every bucket older than ``into`` onto its anchor; the value is unchanged."""
        folded = {k: s for k, s in sums.items() if k >= into}
        moved = sum(
            s * 2.0 ** (-(self.anchor(into) - self.anchor(k)) / self.half_life)
            for k, s in sums.items()
            if k < into
        )
        if moved or into in folded:
            folded[into] = folded.get(into, 0.0) + moved
        return folded


@dataclass(frozen=True, slots=True)
class Decay:
    """Current engagement (half-life ``h``) and recent activity (``h/4``) for the trend."""

    half_life: timedelta = timedelta(days=30)

    @property
    def current(self) -> Memory:
        return Memory(self.half_life)

    @property
    def recent(self) -> Memory:
        return Memory(self.half_life / RECENT_FRACTION)

    @property
    def memories(self) -> tuple[Memory, Memory]:
        return self.current, self.recent


def trend(current: float, recent: float) -> Trend:
    """Which way current engagement moves: its change is proportional to ``4 * recent - current``.

    After a single event (30-day half-life) the trend reads rising for about 17 days, steady until
    about 24, then falling while nothing new comes in.
    """
    if abs(current) < NEGLIGIBLE:
        return Trend.STEADY
    ratio = RECENT_FRACTION * recent / current
    if ratio > 1 + TREND_TOLERANCE:
        return Trend.RISING
    if ratio < 1 - TREND_TOLERANCE:
        return Trend.FALLING
    return Trend.STEADY

"""Scores over time (issue 14): the replay of a window's ledger against the scores stored now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from shared.scoring.decay import Decay
from shared.scoring.history import ScoredAt, replay
from shared.scoring.model import DimensionScore
from shared.scoring.views import Scores

DECAY = Decay(half_life=timedelta(days=30))
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def stored(events: list[tuple[datetime, int]]) -> DimensionScore:
    """What the aggregation stores for these points: lifetime total and the decaying sums per bucket."""
    sums: dict[str, dict[int, float]] = {}
    for at, points in events:
        for memory in DECAY.memories:
            bucket = memory.bucket(at)
            mine = sums.setdefault(memory.key, {})
            mine[bucket] = mine.get(bucket, 0.0) + memory.scaled(points, at, bucket)
    return DimensionScore(total=Decimal(sum(p for _, p in events)), sums=sums)


def decayed(events: list[tuple[datetime, int]], t: datetime) -> float:
    """The score at ``t`` straight from its definition: every point up to ``t``, halved each half-life."""
    return sum(p * 2.0 ** (-((t - at) / DECAY.half_life)) for at, p in events if at <= t)


# a year of points: most before the 90-day window, a few in it (two at the same moment), tagged or not
GLOBAL = [
    (NOW - 300 * DAY, 20),
    (NOW - 120 * DAY, 5),
    (NOW - 60 * DAY, 10),
    (NOW - 20 * DAY, 3),
    (NOW - 20 * DAY, 2),
    (NOW - 2 * DAY, 4),
]
KITES = [(NOW - 120 * DAY, 5), (NOW - 20 * DAY, 2)]
ENTERED = NOW - 30 * DAY


def history(events=GLOBAL, kites=KITES, entered=ENTERED, days=90):
    dimensions = {"global": stored(events), "tag:kites": stored(kites)}
    baseline = stored([e for e in events if e[0] <= entered]) if entered else None
    current = Scores.of(dimensions, DECAY, NOW, "mql", baseline)
    start = NOW - days * DAY
    ledger = [
        ScoredAt(at, {"global": p, **({"tag:kites": p} if (at, p) in kites else {})}) for at, p in events
    ]
    return replay(
        dimensions, current, baseline, entered, [e for e in ledger if e.at >= start], DECAY, start, NOW
    ), current


def test_a_point_at_the_start_after_each_scored_moment_and_now_oldest_first() -> None:
    points, _ = history()
    assert [p.at for p in points] == [NOW - 90 * DAY, NOW - 60 * DAY, NOW - 20 * DAY, NOW - 2 * DAY, NOW]


def test_each_point_is_the_decayed_score_as_it_stood_then_events_before_the_window_included() -> None:
    points, _ = history()
    for point in points:
        assert point.global_ == pytest.approx(decayed(GLOBAL, point.at), abs=1e-5), point.at
        assert point.tags["kites"] == pytest.approx(decayed(KITES, point.at), abs=1e-5), point.at
    assert points[0].global_ > 0, "the year before the window still counts, decayed"


def test_the_last_point_is_the_cards_scores() -> None:
    points, current = history()
    last = points[-1]
    assert last.global_ == current.global_.current
    assert last.tags == {"kites": current.tags["kites"].current}
    assert last.stage == current.stages["mql"].current
    assert last.model_dump(mode="json")["global"] == current.model_dump(mode="json")["global"]["current"]


def test_the_stage_series_counts_from_entering_the_current_stage() -> None:
    points, _ = history()
    before = [p for p in points if p.at < ENTERED]
    assert before and all(p.stage == 0.0 for p in before)
    since = [e for e in GLOBAL if e[0] > ENTERED]
    for point in (p for p in points if p.at >= ENTERED):
        assert point.stage == pytest.approx(decayed(since, point.at), abs=1e-5), point.at


def test_a_contact_never_placed_has_its_global_score_as_its_stage_score_as_the_card_shows() -> None:
    points, current = history(entered=None)
    assert all(p.stage == p.global_ for p in points[:-1])
    assert points[-1].stage == current.stages["mql"].current == current.global_.current


def test_the_longest_window_stays_exact_enough() -> None:
    old = [(NOW - 700 * DAY, 50), (NOW - 729 * DAY, 10), (NOW - 1 * DAY, 1)]
    points, _ = history(events=old, kites=[], entered=None, days=730)
    for point in points:
        assert point.global_ == pytest.approx(decayed(old, point.at), rel=1e-6, abs=1e-5), point.at


def test_no_scored_event_in_the_window_gives_its_start_and_now() -> None:
    points, _ = history(days=1)
    assert [p.at for p in points] == [NOW - DAY, NOW]
    assert points[0].global_ == pytest.approx(decayed(GLOBAL, NOW - DAY), abs=1e-5)

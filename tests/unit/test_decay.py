import math
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.scoring.decay import ORIGIN, Decay, Memory, Trend, trend

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
H = timedelta(days=30)
MEMORY = Memory(H)


def add(sums: dict[int, float], memory: Memory, points: float, happened: datetime, written: datetime) -> None:
    bucket = memory.bucket(written)
    sums[bucket] = sums.get(bucket, 0.0) + memory.scaled(points, happened, bucket)


def test_a_value_halves_after_one_half_life() -> None:
    sums: dict[int, float] = {}
    add(sums, MEMORY, 100, T0, T0)
    assert math.isclose(MEMORY.value(sums, T0), 100, rel_tol=1e-12)
    assert math.isclose(MEMORY.value(sums, T0 + H), 50, rel_tol=1e-9)
    assert math.isclose(MEMORY.value(sums, T0 + 3 * H), 12.5, rel_tol=1e-9)


def test_the_value_does_not_depend_on_which_bucket_took_the_write() -> None:
    early, late = {}, {}
    add(early, MEMORY, 7, T0, T0)
    add(late, MEMORY, 7, T0, T0 + MEMORY.period * 3)  # the same event, written three buckets later
    assert MEMORY.bucket(T0) != MEMORY.bucket(T0 + MEMORY.period * 3)
    later = T0 + 5 * H
    assert math.isclose(MEMORY.value(early, later), MEMORY.value(late, later), rel_tol=1e-12)


@settings(max_examples=200)
@given(
    writes=st.lists(
        st.tuples(st.integers(-50, 50), st.integers(0, 3000)),  # points, days after the origin of the test
        min_size=1,
        max_size=40,
    ),
    later_days=st.integers(0, 400),
)
def test_rebase_folds_old_buckets_without_drift(writes, later_days) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    sums: dict[int, float] = {}
    for points, day in writes:
        at = start + timedelta(days=day)
        add(sums, MEMORY, points, at, at)
    newest = max(sums)
    folded = MEMORY.fold(sums, into=newest)
    assert set(folded) == {newest}
    now = start + timedelta(days=max(d for _, d in writes) + later_days)
    before, after = MEMORY.value(sums, now), MEMORY.value(folded, now)
    scale = sum(abs(p) for p, _ in writes)
    assert abs(before - after) <= 1e-9 * max(scale, 1)


def test_scaled_sums_stay_small_for_any_half_life() -> None:
    for half_life in (timedelta(hours=1), timedelta(days=1), timedelta(days=30), timedelta(days=365)):
        memory = Memory(half_life)
        bucket = memory.bucket(T0)
        assert memory.anchor(bucket) <= T0 < memory.anchor(bucket + 1)
        assert 1 <= memory.scaled(1, T0, bucket) < 2**8 + 1e-9
    assert Memory(H).anchor(0) == ORIGIN


def test_trend_from_two_memories() -> None:
    decay = Decay(H)
    steady: dict[str, dict[int, float]] = {m.key: {} for m in decay.memories}
    for day in range(0, 720, 3):  # a point every three days for two years
        at = T0 - timedelta(days=day)
        for memory in decay.memories:
            add(steady[memory.key], memory, 1, at, T0)
    current, recent = (m.value(steady[m.key], T0) for m in decay.memories)
    assert trend(current, recent) is Trend.STEADY

    burst = {m.key: dict(steady[m.key]) for m in decay.memories}
    for memory in decay.memories:
        add(burst[memory.key], memory, 40, T0, T0)
    assert trend(*(m.value(burst[m.key], T0) for m in decay.memories)) is Trend.RISING

    silence = T0 + timedelta(days=20)
    assert trend(*(m.value(steady[m.key], silence) for m in decay.memories)) is Trend.FALLING
    assert trend(0.0, 0.0) is Trend.STEADY


def test_after_a_single_event_the_trend_rises_then_falls() -> None:
    decay = Decay(H)
    sums = {m.key: {} for m in decay.memories}
    for memory in decay.memories:
        add(sums[memory.key], memory, 20, T0, T0)

    def at(days: float) -> Trend:
        return trend(*(m.value(sums[m.key], T0 + timedelta(days=days)) for m in decay.memories))

    assert at(0) is Trend.RISING
    assert at(10) is Trend.RISING  # the recent memory still outweighs the decay
    assert at(20) is Trend.STEADY
    assert at(30) is Trend.FALLING  # a month of silence

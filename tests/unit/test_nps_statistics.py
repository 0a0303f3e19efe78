"""The net promoter score's arithmetic, on hand-computed cases: the score, its adjusted Wald interval, the
response rate and its Wilson interval."""

from __future__ import annotations

import pytest

from shared.nps.statistics import (
    Interval,
    net_promoter_score,
    nps_interval,
    response_rate,
    wilson_interval,
)


def close(found: Interval | None, low: float, high: float, places: int = 2) -> bool:
    assert found is not None
    return round(found.low, places) == low and round(found.high, places) == high


@pytest.mark.parametrize(
    ("promoters", "passives", "detractors", "nps"),
    [
        (5, 3, 2, 30.0),  # 50 % - 20 %
        (10, 0, 0, 100.0),
        (0, 0, 4, -100.0),
        (0, 7, 0, 0.0),  # passives count in n, not in the score
        (1, 1, 1, 0.0),
        (2, 1, 0, 200 / 3),
    ],
)
def test_nps_is_the_share_of_promoters_minus_the_share_of_detractors(
    promoters: int, passives: int, detractors: int, nps: float
) -> None:
    assert net_promoter_score(promoters, passives, detractors) == pytest.approx(nps)


def test_no_answers_have_no_score_and_no_interval() -> None:
    assert net_promoter_score(0, 0, 0) is None
    assert nps_interval(0, 0, 0) is None


def test_the_interval_is_the_adjusted_wald_one() -> None:
    # 5 promoters, 3 passives, 2 detractors: n' = 10 + 3 = 13, p = 5.75 / 13 = 0.442308,
    # d = 2.75 / 13 = 0.211538, centre 0.230769; variance (0.653846 - 0.053254) / 13 = 0.046199,
    # half width 1.959964 * 0.214941 = 0.421277: -19.05 to 65.20 points
    assert close(nps_interval(5, 3, 2), -19.05, 65.20)
    # (the plain Wald interval, 30 +- 48.41, is centred on 30: the adjusted one is pulled towards 0 for
    # so few answers)


def test_one_category_alone_still_has_an_interval_of_some_width() -> None:
    # 10 promoters: n' = 13, p = 10.75 / 13, d = 0.75 / 13, centre 0.769231, variance 0.022531, half
    # width 0.294196: 47.50 to 106.34, clipped to 100 (the plain Wald interval would be 100 +- 0)
    assert close(nps_interval(10, 0, 0), 47.50, 100.0)
    # one detractor: n' = 4, p = 0.1875, d = 0.4375, centre -0.25; variance (0.625 - 0.0625) / 4 =
    # 0.140625, half width 0.734986: -98.50 to 48.50
    assert close(nps_interval(0, 0, 1), -98.50, 48.50)


def test_the_interval_narrows_to_the_plain_one_with_many_answers() -> None:
    # 500 / 300 / 200: the plain interval is 30 +- 1.96 * sqrt(0.61 / 1000) = 25.16 to 34.84
    found = nps_interval(500, 300, 200)
    assert close(found, 25.08, 34.74)
    assert found is not None and found.high - found.low == pytest.approx(2 * 4.84, abs=0.05)


def test_wilson_interval_of_hand_computed_proportions() -> None:
    # 5 of 10: centre 0.5, half width 1.959964 * sqrt(0.025 + 3.841459 / 400) / 1.384146 = 0.263407
    assert close(wilson_interval(5, 10), 0.2366, 0.7634, places=4)
    # none of 10: 0 to z^2 / (n + z^2) = 3.841459 / 13.841459 = 0.2775
    assert close(wilson_interval(0, 10), 0.0, 0.2775, places=4)
    # all of 10: the mirror image, with exactly 1 at the top
    assert close(wilson_interval(10, 10), 0.7225, 1.0, places=4)
    assert wilson_interval(0, 0) is None


def test_response_rate_is_answers_over_surveys_sent() -> None:
    assert response_rate(3, 12) == 0.25
    assert response_rate(0, 5) == 0.0
    assert response_rate(0, 0) is None


@pytest.mark.parametrize(
    "call",
    [
        lambda: net_promoter_score(-1, 0, 0),
        lambda: nps_interval(0, -2, 1),
        lambda: wilson_interval(3, 2),
        lambda: response_rate(-1, 4),
    ],
)
def test_impossible_counts_are_refused(call) -> None:
    with pytest.raises(ValueError):
        call()

"""The net promoter score's arithmetic (issue 15): the score, its confidence interval, the response rate's.

Pure. Of ``n`` answers, ``P`` promoters and ``D`` detractors:

- **NPS** = ``100 * (P - D) / n``: the share of promoters minus the share of detractors, from -100 (all
  detractors) to 100 (all promoters); none for no answers.
- **Its 95 % confidence interval**, by the *adjusted Wald* method (Rocks 2016, *The American
  Statistician*, "Interval estimation for the 'net promoter score'"; Sauro and Lewis found it the best
  of the methods they tried on real surveys): add 3/4 to the promoters, 3/4 to the detractors and 3 to
  ``n`` (so 3/2 to the passives), then ``p = P'/n'`` and ``d = D'/n'``, and the interval is
  ``(p - d) +- z * sqrt((p + d - (p - d)^2) / n')``, clipped to [-100, 100], in points. The plain Wald
  interval (the same without the additions: the variance of the per-answer value +1/0/-1) collapses to
  a single point when every answer is in one category (10 promoters out of 10: "100 +- 0"), and is too
  narrow for the few answers a segment or a day often has; the additions keep it honest there and
  change little once there are hundreds of answers.
- **The response rate** = answers / surveys sent, with its 95 % **Wilson** score interval (well behaved
  at 0, at 1 and for small counts, where the normal approximation is not).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: the normal quantile of a two-sided 95 % interval
Z95 = 1.959963984540054
#: what the adjusted Wald interval adds to the promoters and to the detractors (and twice that to the passives)
ADDED = 0.75


@dataclass(frozen=True, slots=True)
class Interval:
    low: float
    high: float


def net_promoter_score(promoters: int, passives: int, detractors: int) -> float | None:
    """``100 * (P - D) / n``, from -100 to 100; ``None`` for no answers."""
    _counts(promoters, passives, detractors)
    answers = promoters + passives + detractors
    if answers == 0:
        return None
    return 100 * (promoters - detractors) / answers


def nps_interval(promoters: int, passives: int, detractors: int, z: float = Z95) -> Interval | None:
    """The adjusted Wald interval of the NPS (see the module), in points from -100 to 100; ``None`` for
    no answers."""
    _counts(promoters, passives, detractors)
    answers = promoters + passives + detractors
    if answers == 0:
        return None
    n = answers + 4 * ADDED
    p = (promoters + ADDED) / n
    d = (detractors + ADDED) / n
    centre = p - d
    half = z * math.sqrt((p + d - centre**2) / n)
    return Interval(low=100 * max(-1.0, centre - half), high=100 * min(1.0, centre + half))


def response_rate(answers: int, sent: int) -> float | None:
    """``answers / sent``; ``None`` when nothing was sent."""
    _rate_counts(answers, sent)
    return answers / sent if sent else None


def wilson_interval(successes: int, trials: int, z: float = Z95) -> Interval | None:
    """The Wilson score interval of a proportion ``successes / trials`` (both ends within 0 and 1);
    ``None`` for no trials."""
    _rate_counts(successes, trials)
    if trials == 0:
        return None
    p = successes / trials
    z2 = z * z
    denominator = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / denominator
    # the ends are exactly 0 and 1 at 0 and at every trial (the float arithmetic misses them by a hair)
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return Interval(low=low, high=high)


def _counts(*counts: int) -> None:
    if any(count < 0 for count in counts):
        raise ValueError("answer counts are never negative")


def _rate_counts(successes: int, trials: int) -> None:
    if successes < 0 or trials < 0:
        raise ValueError("counts are never negative")
    if successes > trials:
        raise ValueError(f"{successes} successes out of {trials} trials")

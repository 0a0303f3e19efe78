"""RFM: quintile scores over a look-back window, and the named segments.

A customer is scored when they bought at least once in the window, days ``cutoff - lookback_days + 1`` to
``cutoff``. R is the days since their last purchase day in the window (reversed: the most recent score 5),
F the purchase days in the window, M the money spent in it. Each is scored 1 to 5 by its percentile
against the edges. Equal values get the same score, whatever the order of the rows or the customers'
ids. F and M: the share of the other scored customers with a lower value, so a tie group takes its
lowest member's score and the customers who bought once all have F 1 however many they are. R: the
share of the others who did not buy more recently, so a tie group takes its highest member's score and
the customers who bought on the cut-off day all have R 5 however many they are. A lone customer is
scored as if everyone were tied: R 5, F 1, M 1 ("New").

The segment of each (R, F, M) cell comes from ``SEGMENT_RULES``, an ordered list whose first matching
rule wins, so each of the 125 cells has exactly one segment (``SEGMENT_TABLE``; docs/analytics.md
shows it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from shared.analytics.facts import SEGMENT_NAMES
from shared.analytics.history import Purchases

DEFAULT_EDGES = (0.2, 0.4, 0.6, 0.8)
#: Spend is compared at a millionth of the currency unit, so equal spend added up in another order
#: (0.1 + 0.2 against 0.3) is equal.
MONEY_DECIMALS = 6


@dataclass(frozen=True, slots=True)
class RfmSettings:
    lookback_days: int = 1095
    #: the quintile edges, as shares: a customer scores at least ``k + 2`` when at least ``edges[k]`` of
    #: the other scored customers have a lower value (for R: did not buy more recently)
    edges: tuple[float, float, float, float] = DEFAULT_EDGES
    #: ``m`` at or above this is premium
    premium_m: int = 5

    def __post_init__(self) -> None:
        if self.lookback_days < 1:
            raise ValueError("the RFM look-back needs at least 1 day")
        if len(self.edges) != 4 or not 0 < self.edges[0] < self.edges[1] < self.edges[2] < self.edges[3] < 1:
            raise ValueError(
                "RFM edges need 4 increasing shares strictly between 0 and 1, e.g. 0.2,0.4,0.6,0.8"
            )
        if not 1 <= self.premium_m <= 5:
            raise ValueError("the premium M score is 1 to 5")


def parse_edges(text: str) -> tuple[float, float, float, float]:
    """``"0.2,0.4,0.6,0.8"`` (the command's ``--rfm-edges``, the ``RFM_EDGES`` setting) as edges; a
    ``ValueError`` naming the problem otherwise."""
    parts = [p.strip() for p in text.split(",")]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise ValueError(f"RFM edges {text!r} are not numbers: give 4 shares, e.g. 0.2,0.4,0.6,0.8") from None
    if len(values) != 4 or not 0 < values[0] < values[1] < values[2] < values[3] < 1:
        raise ValueError(
            f"RFM edges {text!r}: give 4 increasing shares strictly between 0 and 1, e.g. 0.2,0.4,0.6,0.8"
        )
    return values[0], values[1], values[2], values[3]


@dataclass(frozen=True, slots=True, eq=False)
class RfmScores:
    """By customer code: ``r``, ``f``, ``m`` (1 to 5; 0 for a customer with no purchase in the window),
    ``segment`` (an id of ``facts.SEGMENT_NAMES``, or None) and ``premium``."""

    r: np.ndarray
    f: np.ndarray
    m: np.ndarray
    segment: list[str | None]
    premium: np.ndarray


@dataclass(frozen=True, slots=True)
class SegmentRule:
    """R between ``r_low`` and ``r_high``, and (when given) the FM average ``(F + M) / 2`` at least
    ``fm_at_least``, F equal to ``f_is`` and F at least ``f_at_least``."""

    segment: str
    r_low: int
    r_high: int
    fm_at_least: float | None = None
    f_is: int | None = None
    f_at_least: int | None = None

    def matches(self, r: int, f: int, m: int) -> bool:
        return (
            self.r_low <= r <= self.r_high
            and (self.fm_at_least is None or (f + m) / 2 >= self.fm_at_least)
            and (self.f_is is None or f == self.f_is)
            and (self.f_at_least is None or f >= self.f_at_least)
        )


#: First match wins. Bought recently and often or much first, then the repeat customers who went quiet,
#: then the one-purchase customers, then the rest by recency. docs/analytics.md shows them as a table.
SEGMENT_RULES: tuple[SegmentRule, ...] = (
    SegmentRule("champions", 4, 5, fm_at_least=4),
    SegmentRule("loyal", 3, 3, fm_at_least=4),
    SegmentRule("cant_lose_them", 1, 1, fm_at_least=4),
    SegmentRule("at_risk", 1, 2, fm_at_least=3, f_at_least=2),
    SegmentRule("new", 4, 5, f_is=1),
    SegmentRule("promising", 3, 3, f_is=1),
    SegmentRule("loyal", 4, 5, fm_at_least=3),
    SegmentRule("need_attention", 3, 3, fm_at_least=3),
    SegmentRule("potential_loyalist", 4, 5),
    SegmentRule("about_to_sleep", 3, 3),
    SegmentRule("about_to_sleep", 2, 2, fm_at_least=2),
    SegmentRule("hibernating", 2, 2),
    SegmentRule("hibernating", 1, 1, fm_at_least=2),
    SegmentRule("lost", 1, 1),
)


def segment_of(r: int, f: int, m: int) -> str:
    """The segment id of a cell (each score 1 to 5)."""
    for rule in SEGMENT_RULES:
        if rule.matches(r, f, m):
            return rule.segment
    raise ValueError(
        f"no segment rule covers R{r} F{f} M{m}"
    )  # pragma: no cover - the rules end with R1 "lost"


_SEGMENT_IDS: tuple[str, ...] = tuple(SEGMENT_NAMES)
#: ``SEGMENT_TABLE[r - 1, f - 1, m - 1]``: the index in ``SEGMENT_NAMES`` of that cell's segment.
SEGMENT_TABLE = np.array(
    [
        [[_SEGMENT_IDS.index(segment_of(r, f, m)) for m in range(1, 6)] for f in range(1, 6)]
        for r in range(1, 6)
    ],
    dtype=np.int64,
)


def quintiles(
    values: np.ndarray,
    edges: tuple[float, ...] = DEFAULT_EDGES,
    ties: Literal["lowest", "highest"] = "lowest",
) -> np.ndarray:
    """Scores 1 to 5, higher for larger values: 1 plus the number of edges at or below the value's
    percentile. Equal values get equal scores, and the result does not depend on the values' order.

    With ``ties="lowest"`` a tie group takes the score of its lowest member: the percentile is the share
    of the other values that are lower (values all equal score 1). With ``"highest"``, of its highest
    member: the share of the other values that are not higher (values all equal score 5). A lone value
    is a tie group of everyone: it scores as if all values were equal (1, or 5)."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    below = np.cumsum(counts) - counts
    if ties == "highest":
        below = below + counts - 1
    others = len(values) - 1
    percentile = below / others if others else np.array([1.0 if ties == "highest" else 0.0])
    return (1 + np.searchsorted(np.asarray(edges, dtype=np.float64), percentile, side="right"))[
        inverse.reshape(-1)
    ].astype(np.int64)


def score_rfm(purchases: Purchases, cutoff: int, settings: RfmSettings) -> RfmScores:
    """By customer code of ``purchases``: the RFM cell, segment and premium flag at day ``cutoff``
    (purchase days after it are ignored)."""
    count = len(purchases.customers)
    inside = (purchases.day > cutoff - settings.lookback_days) & (purchases.day <= cutoff)
    customer = purchases.customer[inside]
    days = np.bincount(customer, minlength=count)
    last = np.full(count, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(last, customer, purchases.day[inside])
    spent = np.round(np.bincount(customer, weights=purchases.amount[inside], minlength=count), MONEY_DECIMALS)
    scored = days > 0
    r, f, m = (np.zeros(count, dtype=np.int64) for _ in range(3))
    # later last purchase: more recent, higher R; those who last bought on the same day share the best
    # score among them (everyone who bought on the cut-off day scores 5)
    r[scored] = quintiles(last[scored], settings.edges, ties="highest")
    f[scored] = quintiles(days[scored], settings.edges)
    m[scored] = quintiles(spent[scored], settings.edges)
    cells = SEGMENT_TABLE[r[scored] - 1, f[scored] - 1, m[scored] - 1]
    segment: list[str | None] = [None] * count
    for c, cell in zip(np.flatnonzero(scored).tolist(), cells.tolist(), strict=True):
        segment[c] = _SEGMENT_IDS[cell]
    return RfmScores(r=r, f=f, m=m, segment=segment, premium=scored & (m >= settings.premium_m))

"""Net promoter score reports (issue 15): what an answer and a survey sent add to the ``nps`` counter, and
the report read back from it. Pure.

The ``nps`` counter has a row per day (``D#2026-11-23``) and month (``M#2026-11``); weeks are summed from
their days, as the other additive counters are. Its values:

- ``promoter``, ``passive``, ``detractor``: the answers recorded (``NpsAnswered``), by the category;
- ``stage:<stage>:<category>``: by the lifecycle stage the contact was in when it answered;
- ``segment:<segment>:<category>``: by each segment it was a member of then;
- ``survey:<survey>:<category>``: by the survey answered (the survey template's id);
- ``sent``, ``survey:<survey>:sent``: the surveys delivery sent (a send of a template with a ``survey``).

Names are split at their last colon: a template id may hold colons, a category or ``sent`` never does.

The report gives, per period and over the whole range, the responses, the promoters, passives and
detractors, the NPS and its 95 % interval (``shared.nps.statistics``), the surveys sent and the response
rate (the answers to surveys sent / sent: an answer to a survey never sent, such as a server key's in-app
survey, counts in the NPS but not in the rate) with its Wilson interval; over the whole range also by stage, by segment and by
survey, and per period by stage or segment when asked (``by``). Answers are counted in the period they
were given, sends in the period they were sent: a period's responses may answer an earlier period's
sends, so a period's response rate is answers in it over sends in it, at most 1; the whole range's is
the fairer figure. Surveys sent are not split by stage or segment (the send does not record them): there
the response rate is not given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.metrics.counters import PREFIX, Add, CounterRow
from shared.metrics.periods import Granularity, Period, day_of, month_key
from shared.metrics.reports import rows_by_period
from shared.nps.answers import CATEGORIES, NpsAnswered
from shared.nps.statistics import net_promoter_score, nps_interval, response_rate, wilson_interval

SENT = "sent"
#: How an NPS report may break each period down (``by``).
Breakdown = Literal["stage", "segment"]
BREAKDOWNS: tuple[Breakdown, ...] = ("stage", "segment")


# --- counting -----------------------------------------------------------------------------------------------


def _in_periods(at: datetime, values: Mapping[str, int]) -> tuple[Add, ...]:
    day = day_of(at)
    return (
        Add("nps", PREFIX["day"] + day.isoformat(), values),
        Add("nps", PREFIX["month"] + month_key(day), values),
    )


def answer_counted(event: NpsAnswered) -> tuple[Add, ...]:
    """What an answer adds: its category, overall and by its stage, segments and survey, on its day and
    month."""
    category = event.category
    values = {category: 1, f"survey:{event.survey_id}:{category}": 1}
    if event.stage:
        values[f"stage:{event.stage}:{category}"] = 1
    for segment in dict.fromkeys(event.segments):
        values[f"segment:{segment}:{category}"] = 1
    return _in_periods(event.at, values)


def survey_sent(survey_id: str, at: datetime) -> tuple[Add, ...]:
    """What a survey sent adds: one sent, overall and for its survey, on its day and month."""
    return _in_periods(at, {SENT: 1, f"survey:{survey_id}:{SENT}": 1})


# --- the report ---------------------------------------------------------------------------------------------


class _Report(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)


class NpsFigures(_Report):
    #: answers recorded: promoters + passives + detractors
    responses: int
    promoters: int
    passives: int
    detractors: int
    #: % promoters - % detractors, -100 to 100 (one decimal); None without answers
    nps: float | None
    #: its 95 % confidence interval (adjusted Wald), in points
    nps_low: float | None
    nps_high: float | None
    #: surveys sent; None where sends are not counted (by stage, by segment)
    sent: int | None
    #: responses / sent, at most 1; None when nothing was sent (or sends are not counted)
    response_rate: float | None
    #: its 95 % Wilson interval
    response_rate_low: float | None
    response_rate_high: float | None


class NpsGroup(NpsFigures):
    #: the stage, segment or survey id
    key: str


class NpsPeriod(NpsFigures):
    period: str
    start: date
    end: date
    #: the period's figures by stage or segment (``by``); None when not asked for
    groups: list[NpsGroup] | None = None


class NpsReport(_Report):
    period: Granularity
    start: date = Field(alias="from")
    end: date = Field(alias="to")
    #: how each period is broken down (None: it is not)
    by: Breakdown | None = None
    #: over the whole range
    total: NpsFigures
    periods: list[NpsPeriod]
    #: over the whole range, by the stage the contacts were in when they answered (the funnel's order)
    by_stage: list[NpsGroup]
    #: over the whole range, by the segments the contacts were members of when they answered
    by_segment: list[NpsGroup]
    #: over the whole range, by survey (with its surveys sent and response rate)
    by_survey: list[NpsGroup]


def figures(counts: Mapping[str, Decimal | int], *, sends: bool = True) -> NpsFigures:
    """The figures of one set of counts (``promoter``, ``passive``, ``detractor``, ``sent``)."""
    promoters, passives, detractors = (int(counts.get(c, 0)) for c in CATEGORIES)
    responses = promoters + passives + detractors
    score = net_promoter_score(promoters, passives, detractors)
    interval = nps_interval(promoters, passives, detractors)
    sent = int(counts.get(SENT, 0)) if sends else None
    answered = min(_answers_to_sent(counts, responses), sent) if sent is not None else 0
    rate = response_rate(answered, sent) if sent is not None else None
    rate_interval = wilson_interval(answered, sent) if sent is not None else None
    return NpsFigures(
        responses=responses,
        promoters=promoters,
        passives=passives,
        detractors=detractors,
        nps=_points(score),
        nps_low=_points(interval.low if interval else None),
        nps_high=_points(interval.high if interval else None),
        sent=sent,
        response_rate=_share(rate),
        response_rate_low=_share(rate_interval.low if rate_interval else None),
        response_rate_high=_share(rate_interval.high if rate_interval else None),
    )


def _answers_to_sent(counts: Mapping[str, Decimal | int], responses: int) -> int:
    """The answers the response rate counts: those to surveys sent in the same counts
    (``survey:<id>:<category>`` where ``survey:<id>:sent`` > 0). An answer to a survey never sent (a
    server key's in-app survey) counts in the NPS, not in the rate. Counts without survey values (one
    survey's group) are all of one survey: all its answers."""
    surveys = grouped(counts, "survey")
    if not surveys:
        return responses
    return sum(
        int(sum(n for what, n in each.items() if what in CATEGORIES))
        for each in surveys.values()
        if each.get(SENT, 0) > 0
    )


def _points(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _share(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def grouped(values: Mapping[str, Decimal | int], kind: str) -> dict[str, dict[str, Decimal]]:
    """``<kind>:<key>:<category or sent>`` values, by key."""
    found: dict[str, dict[str, Decimal]] = {}
    prefix = f"{kind}:"
    for name, value in values.items():
        if not name.startswith(prefix):
            continue
        key, _, what = name.removeprefix(prefix).rpartition(":")
        if key and (what in CATEGORIES or what == SENT):
            row = found.setdefault(key, {})
            row[what] = row.get(what, Decimal(0)) + value
    return found


def _groups(
    values: Mapping[str, Decimal], kind: str, order: Sequence[str] = (), *, sends: bool = False
) -> list[NpsGroup]:
    """The groups with an answer (or, by survey, a send), in ``order`` and then by key."""
    each = grouped(values, kind)
    rank = {key: n for n, key in enumerate(order)}
    keys = sorted(
        (k for k, counts in each.items() if any(counts.values())),
        key=lambda k: (rank.get(k, len(rank)), k),
    )
    return [NpsGroup(key=key, **figures(each[key], sends=sends).model_dump()) for key in keys]


def _total(each: Mapping[str, Mapping[str, Decimal]]) -> dict[str, Decimal]:
    total: dict[str, Decimal] = {}
    for values in each.values():
        for name, value in values.items():
            total[name] = total.get(name, Decimal(0)) + value
    return total


def nps_report(
    granularity: Granularity,
    start: date,
    end: date,
    periods: Sequence[Period],
    rows: Sequence[CounterRow],
    funnel: Sequence[str],
    by: Breakdown | None = None,
) -> NpsReport:
    """``rows``: the ``nps`` rows of the range (its months, or its days for day and week periods)."""
    each = rows_by_period(periods, rows)
    total = _total(each)
    found = []
    for p in periods:
        values = each[p.key]
        groups = _groups(values, by, funnel if by == "stage" else ()) if by else None
        found.append(
            NpsPeriod(period=p.key, start=p.first, end=p.last, groups=groups, **figures(values).model_dump())
        )
    return NpsReport(
        period=granularity,
        start=start,
        end=end,
        by=by,
        total=figures(total),
        periods=found,
        by_stage=_groups(total, "stage", funnel),
        by_segment=_groups(total, "segment"),
        by_survey=_groups(total, "survey", sends=True),
    )

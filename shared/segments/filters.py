"""The filter language of segments: conditions over what is known about a contact, and groups of them.

A filter is JSON. Each condition is an object whose first key says what it tests and names the thing
(``{"trait": "plan", ...}``, ``{"score": "global", ...}``), and whose other keys compare it (``eq``,
``gt``, ``within_days``...); a condition with several comparisons needs them all. Groups combine
conditions: ``{"all": [...]}``, ``{"any": [...]}``, ``{"not": {...}}``. pydantic validates every
object with unknown keys forbidden, so a misspelt key is an error that names it (docs/segments.md).

Evaluation is pure: the contact as stored, the time, the decay settings and the consent sources that
need a confirmation are passed in. Each condition also says when time alone could next change its
answer (a decaying score crossing its bound, a last time passing its N days), so the contact's due time
brings the re-evaluation then (``Verdict.changes_at``).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SerializerFunctionWrapHandler,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
    Tag,
    model_serializer,
    model_validator,
)

from shared.analytics.facts import RISK_LEVELS, SEGMENT_NAMES
from shared.contacts.model import ContactRecord
from shared.delivery.consent import ConsentChannel, ConsentState
from shared.delivery.consent import state as consent_state
from shared.scoring.decay import NEGLIGIBLE, RECENT_FRACTION, TREND_TOLERANCE, Decay, trend
from shared.scoring.model import DimensionScore
from shared.tracking.behaviours import Behaviour
from shared.tracking.timestamps import parse_time

#: At most this many values in an ``in`` list, and characters in a compared text.
MAX_VALUES, MAX_TEXT = 100, 200
#: Re-evaluate a little after the computed moment, when the answer has surely changed.
CHANGE_MARGIN = timedelta(minutes=1)

#: What a condition names: the first key of its object, in this order.
KINDS = (
    "all",
    "any",
    "not",
    "trait",
    "tag",
    "score",
    "count",
    "last",
    "first",
    "revenue",
    "consent",
    "field",
)

Text = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT)]
#: A compared value: text, a number or true/false (never null: ``exists`` tests for a value).
Scalar = StrictBool | StrictInt | StrictFloat | Text
Number = Annotated[float, Field(allow_inf_nan=False)]
Days = Annotated[int, Field(ge=0, le=36500)]
#: ``traits.<name>``, nested with dots: ``address.city``
TraitPath = Annotated[str, StringConstraints(pattern=r"^[^.\s]{1,64}(\.[^.\s]{1,64}){0,4}$")]
#: a score dimension: ``global``, ``stage`` (since the contact entered its stage), ``tag:<name>``
Dimension = Annotated[str, StringConstraints(pattern=r"^(global|stage|tag:[^\s]{1,100})$")]


def _one_of(known: tuple[str, ...], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if value not in known:
            raise ValueError(f"{value!r} is not {what}; they are {', '.join(known)}")
        return value

    return AfterValidator(check)


BEHAVIOURS = tuple(b.value for b in Behaviour)
#: a behaviour (``visit`` is any page view, however the visitor came), or ``activity`` (any call)
LastOf = Annotated[str, _one_of(("activity", *BEHAVIOURS), "a behaviour")]
#: behaviour counts: a behaviour, or ``events`` (every call)
CountOf = Annotated[str, _one_of(("events", *BEHAVIOURS), "a behaviour")]
#: the contact's fields with a known set of values, as ``{"field": <name>, "eq": ...}`` tests them
FieldName = Literal["stage", "quarter", "direction", "owner", "rfm", "churn_risk"]
FIELD_VALUES: Mapping[str, tuple[str, ...]] = {
    "quarter": ("nurturing", "sales", "retention", "exit"),
    "direction": ("rising", "steady", "falling"),
    "rfm": tuple(SEGMENT_NAMES),
    "churn_risk": RISK_LEVELS,
}
_FIELD_NOUNS = {
    "quarter": "a quarter",
    "direction": "a direction",
    "rfm": "an RFM segment",
    "churn_risk": "a churn-risk level",
}
_TRAIT_OPERATORS = ("eq", "ne", "in_", "contains", "exists", "gt", "gte", "lt", "lte", "before", "after")
_TRAIT_NAMES = tuple("in" if n == "in_" else n for n in _TRAIT_OPERATORS)
_NUMBER_OPERATORS = ("eq", "gt", "gte", "lt", "lte")
_TIME_OPERATORS = ("within_days", "more_than_days_ago", "before", "after", "exists")
CONSENT_STATES: tuple[ConsentState, ...] = ("granted", "pending", "revoked", "none")


@dataclass(frozen=True, slots=True)
class Facts:
    """What an evaluation reads besides the filter: the contact, the time, and how scores decay."""

    record: ContactRecord
    now: datetime
    decay: Decay
    #: consent sources whose grants wait for the contact's confirmation (``pending`` until then)
    double_opt_in: Collection[str] = frozenset()
    _scores: dict[str, float] = field(default_factory=dict, compare=False)

    def score(self, dimension: str) -> float:
        """A dimension's current (decayed) value; ``stage``: points since the contact entered its stage."""
        if dimension not in self._scores:
            self._scores[dimension] = _score(self.record, dimension).value(self.decay, self.now)
        return self._scores[dimension]


def _score(record: ContactRecord, dimension: str) -> DimensionScore:
    if dimension == "stage":
        overall = record.scores.get("global", DimensionScore())
        return overall.minus(record.stage_baseline) if record.stage_baseline else overall
    return record.scores.get(dimension, DimensionScore())


@dataclass(frozen=True, slots=True)
class Verdict:
    """A condition's answer now, and the first moment time alone could change it (``None``: never)."""

    holds: bool
    changes_at: datetime | None = None


def _earliest(*times: datetime | None) -> datetime | None:
    found = [t for t in times if t is not None]
    return min(found) if found else None


class _Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, serialize_by_alias=True)

    #: the comparisons a condition may be given (its subclass's)
    _operator_names: ClassVar[tuple[str, ...]] = ()

    @cached_property
    def given(self) -> tuple[str, ...]:
        """The comparisons given, found once (every contact change evaluates every condition)."""
        return _operators(self, self._operator_names)

    @model_serializer(mode="wrap")
    def _as_written(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """What the condition tests first, and only the comparisons given (no nulls): as written."""
        dumped = {k: v for k, v in handler(self).items() if v is not None}
        kind = kind_of(self)
        return {kind: dumped.pop(kind), **dumped} if kind in dumped else dumped

    def verdict(self, facts: Facts) -> Verdict:
        raise NotImplementedError

    def conditions(self) -> int:
        """How many conditions (groups excluded) the filter holds."""
        return 1

    def depth(self) -> int:
        """How deep groups nest (a condition alone: 0)."""
        return 0

    def last_times(self) -> frozenset[str]:
        """The behaviours whose last time the filter reads (the profile keeps only those asked for)."""
        return frozenset()

    def values_of(self, field: str) -> frozenset[str]:
        """The values the filter compares the contact's ``field`` with (``{"field": ..., "eq": ...}``)."""
        return frozenset()


def _operators(model: BaseModel, names: Collection[str]) -> tuple[str, ...]:
    """The comparisons a condition was given, refusing an explicit null."""
    given = tuple(name for name in names if name in model.model_fields_set)
    for name in given:
        if getattr(model, name) is None:
            alias = type(model).model_fields[name].alias or name
            raise ValueError(f"{alias}: null is not a value to compare with (test for a value with exists)")
    return given


# --- groups -------------------------------------------------------------------------------------------


class AllOf(_Condition):
    """Every condition holds (``all``)."""

    all: tuple[Filter, ...] = Field(min_length=1, max_length=50)

    def verdict(self, facts: Facts) -> Verdict:
        return _together(self.all, facts)

    def conditions(self) -> int:
        return sum(c.conditions() for c in self.all)

    def depth(self) -> int:
        return 1 + max(c.depth() for c in self.all)

    def last_times(self) -> frozenset[str]:
        return frozenset().union(*(c.last_times() for c in self.all))

    def values_of(self, field: str) -> frozenset[str]:
        return frozenset().union(*(c.values_of(field) for c in self.all))


class AnyOf(_Condition):
    """At least one condition holds (``any``)."""

    any: tuple[Filter, ...] = Field(min_length=1, max_length=50)

    def verdict(self, facts: Facts) -> Verdict:
        holds, changes_at = False, None
        for condition in self.any:
            found = condition.verdict(facts)
            if found.holds and found.changes_at is None:
                return found  # one condition holds for good: so does the group
            holds = holds or found.holds
            if found.changes_at is not None and (changes_at is None or found.changes_at < changes_at):
                changes_at = found.changes_at
        return Verdict(holds, changes_at)

    def conditions(self) -> int:
        return sum(c.conditions() for c in self.any)

    def depth(self) -> int:
        return 1 + max(c.depth() for c in self.any)

    def last_times(self) -> frozenset[str]:
        return frozenset().union(*(c.last_times() for c in self.any))

    def values_of(self, field: str) -> frozenset[str]:
        return frozenset().union(*(c.values_of(field) for c in self.any))


class NoneOf(_Condition):
    """The condition does not hold (``not``)."""

    not_: Filter = Field(alias="not")

    def verdict(self, facts: Facts) -> Verdict:
        inner = self.not_.verdict(facts)
        return Verdict(not inner.holds, inner.changes_at)

    def conditions(self) -> int:
        return self.not_.conditions()

    def depth(self) -> int:
        return 1 + self.not_.depth()

    def last_times(self) -> frozenset[str]:
        return self.not_.last_times()

    def values_of(self, field: str) -> frozenset[str]:
        return self.not_.values_of(field)


# --- moments ------------------------------------------------------------------------------------------


class Relative(BaseModel):
    """A moment relative to now: ``{"days_ago": 30}`` or ``{"days_from_now": 7}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days_ago: Days | None = None
    days_from_now: Days | None = None

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.days_ago is None) == (self.days_from_now is None):
            raise ValueError("give days_ago or days_from_now (one of them)")
        return self

    @model_serializer(mode="wrap")
    def _as_written(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {k: v for k, v in handler(self).items() if v is not None}

    @property
    def offset(self) -> timedelta:
        return timedelta(days=self.days_from_now) if self.days_ago is None else -timedelta(days=self.days_ago)


def _absolute(value: str) -> str:
    try:
        parse_time(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a date (2026-01-31) or a time (2026-01-31T09:00:00Z)") from None
    return value


#: A bound in time: an ISO date or time (``"2026-01-31"``, UTC midnight), or relative to now.
Moment = Annotated[
    Annotated[Relative, Tag("relative")]
    | Annotated[Annotated[str, StringConstraints(max_length=40), AfterValidator(_absolute)], Tag("absolute")],
    Discriminator(
        lambda value: "absolute" if isinstance(value, str) else "relative",
    ),
]


def _compare_time(value: datetime, bound: Moment, now: datetime, *, before: bool) -> Verdict:
    """``value`` before (or after) the bound; a bound that moves with now passes ``value`` once."""
    if isinstance(bound, Relative):
        return _passing(value, bound.offset, now, before=before)
    at = parse_time(bound)
    return Verdict(value < at if before else value > at)


def _passing(value: datetime, offset: timedelta, now: datetime, *, before: bool) -> Verdict:
    """``value`` before (or after) ``now + offset``: a bound that moves with now passes ``value`` once,
    at ``value - offset``, after which the answer flips."""
    at = now + offset
    holds = value < at if before else value > at
    flips = value - offset
    return Verdict(holds, flips + CHANGE_MARGIN if flips >= now else None)


# --- conditions -------------------------------------------------------------------------------------


class TraitCondition(_Condition):
    """A trait compared: ``eq``/``ne``/``in`` (text without regard to case, numbers, true/false),
    ``contains`` (within a text, or a list's element), ``exists``, ``gt``/``gte``/``lt``/``lte`` (numbers),
    ``before``/``after`` (a date or time trait against a moment)."""

    _operator_names = _TRAIT_OPERATORS

    trait: TraitPath
    eq: Scalar | None = None
    ne: Scalar | None = None
    in_: tuple[Scalar, ...] | None = Field(None, alias="in", min_length=1, max_length=MAX_VALUES)
    contains: Scalar | None = None
    exists: bool | None = None
    gt: Number | None = None
    gte: Number | None = None
    lt: Number | None = None
    lte: Number | None = None
    before: Moment | None = None
    after: Moment | None = None

    @model_validator(mode="after")
    def _compares(self) -> Self:
        if not self.given:
            raise ValueError(f"trait {self.trait!r}: compare it with one of {', '.join(_TRAIT_NAMES)}")
        return self

    def verdict(self, facts: Facts) -> Verdict:
        value = _trait(facts.record.traits, self.trait)
        verdicts = [self._one(name, value, facts) for name in self.given]
        return _together(verdicts)

    def _one(self, name: str, value: Any, facts: Facts) -> Verdict:
        if name == "exists":
            return Verdict((value is not None) == self.exists)
        if value is None:
            return Verdict(name == "ne")  # nothing there: not equal to anything, and nothing else
        if name == "eq":
            return Verdict(_equal(value, self.eq))
        if name == "ne":
            return Verdict(not _equal(value, self.ne))
        if name == "in_":
            return Verdict(any(_equal(value, v) for v in self.in_ or ()))
        if name == "contains":
            return Verdict(_contains(value, self.contains))
        if name in ("gt", "gte", "lt", "lte"):
            number = _number(value)
            return Verdict(number is not None and _ordered(number, name, getattr(self, name)))
        moment = _time(value)
        if moment is None:
            return Verdict(False)
        return _compare_time(moment, getattr(self, name), facts.now, before=name == "before")


class TagCondition(_Condition):
    """The contact has the tag (``has``: true, the default) or has not."""

    tag: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    has: bool = True

    def verdict(self, facts: Facts) -> Verdict:
        return Verdict((self.tag in facts.record.tags) == self.has)


class _Measured(_Condition):
    """A number compared with ``eq``, ``gt``, ``gte``, ``lt``, ``lte`` (several: all of them)."""

    _operator_names = _NUMBER_OPERATORS

    eq: Number | None = None
    gt: Number | None = None
    gte: Number | None = None
    lt: Number | None = None
    lte: Number | None = None

    @model_validator(mode="after")
    def _compares(self) -> Self:
        if not self.given:
            raise ValueError(f"compare it with one of {', '.join(_NUMBER_OPERATORS)}")
        return self

    def _holds(self, value: float) -> bool:
        return all(_ordered(value, name, getattr(self, name)) for name in self.given)


class ScoreCondition(_Measured):
    """A score dimension: its current value, decaying (the default), or its ``lifetime`` points."""

    score: Dimension
    lifetime: bool = False

    def verdict(self, facts: Facts) -> Verdict:
        if self.lifetime:
            return Verdict(self._holds(float(_score(facts.record, self.score).total)))
        value = facts.score(self.score)
        holds = self._holds(value)
        # no new points: the value moves towards 0 as value * 2**(-t/h); it passes a bound b of its
        # own sign that it exceeds in size after h * log2(value / b)
        half_life = facts.decay.current.half_life
        times = []
        for name in self.given:
            bound = getattr(self, name)
            if bound != 0 and value / bound >= 1:
                times.append(facts.now + half_life * math.log2(value / bound) + CHANGE_MARGIN)
        return Verdict(holds, _earliest(*times))


class CountCondition(_Measured):
    """How many times the contact did a behaviour (``events``: calls of any kind)."""

    count: CountOf

    def verdict(self, facts: Facts) -> Verdict:
        record = facts.record
        value = record.event_count if self.count == "events" else record.counts.get(self.count, 0)
        return Verdict(self._holds(value))


class RevenueCondition(_Measured):
    """The contact's revenue: ``total`` (purchases less refunds)."""

    revenue: Literal["total"]

    def verdict(self, facts: Facts) -> Verdict:
        return Verdict(self._holds(float(facts.record.revenue_total)))


class _Timed(_Condition):
    """A moment compared: ``within_days`` (at most N days ago), ``more_than_days_ago``, ``before``/``after``
    a moment, ``exists`` (ever)."""

    _operator_names = _TIME_OPERATORS

    within_days: Days | None = None
    more_than_days_ago: Days | None = None
    before: Moment | None = None
    after: Moment | None = None
    exists: bool | None = None

    @model_validator(mode="after")
    def _compares(self) -> Self:
        if not self.given:
            raise ValueError(f"compare it with one of {', '.join(_TIME_OPERATORS)}")
        return self

    def _verdict(self, moment: datetime | None, now: datetime) -> Verdict:
        verdicts = []
        for name in self.given:
            if name == "exists":
                verdicts.append(Verdict((moment is not None) == self.exists))
            elif moment is None:
                verdicts.append(Verdict(False))  # never done: neither recently nor long ago
            elif name == "within_days":
                ago = -timedelta(days=self.within_days or 0)
                verdicts.append(_passing(moment, ago, now, before=False))
            elif name == "more_than_days_ago":
                ago = -timedelta(days=self.more_than_days_ago or 0)
                verdicts.append(_passing(moment, ago, now, before=True))
            else:
                verdicts.append(_compare_time(moment, getattr(self, name), now, before=name == "before"))
        return _together(verdicts)


class LastCondition(_Timed):
    """When the contact last did something: ``activity`` (any call), ``purchase``, ``visit`` (any page
    view) or another behaviour. The profile keeps the last time of other behaviours from the moment a
    segment (or an inactivity automation) names them."""

    last: LastOf

    def verdict(self, facts: Facts) -> Verdict:
        return self._verdict(last_time(facts.record, self.last), facts.now)

    def last_times(self) -> frozenset[str]:
        return frozenset() if self.last in ("activity", "purchase") else frozenset({self.last})


class FirstCondition(_Timed):
    """When the contact was first seen (``activity``)."""

    first: Literal["activity"]

    def verdict(self, facts: Facts) -> Verdict:
        return self._verdict(facts.record.first_seen_at, facts.now)


class ConsentCondition(_Condition):
    """Consent on a channel: ``granted`` (marketing may go), ``pending`` (waiting for the contact's
    confirmation), ``revoked``, ``none`` (never given nor refused)."""

    _operator_names = ("eq", "ne", "in_")

    consent: ConsentChannel
    eq: ConsentState | None = None
    ne: ConsentState | None = None
    in_: tuple[ConsentState, ...] | None = Field(None, alias="in", min_length=1)

    @model_validator(mode="after")
    def _compares(self) -> Self:
        if not self.given:
            raise ValueError(f"compare consent with eq, ne or in ({', '.join(CONSENT_STATES)})")
        return self

    def verdict(self, facts: Facts) -> Verdict:
        found = consent_state(facts.record.consent.get(self.consent), facts.double_opt_in)
        return _together([_enumerated(self, found)])


class FieldCondition(_Condition):
    """A field of the contact with few values: ``stage`` (a funnel stage id), ``quarter``, ``direction``,
    ``owner`` (the salesperson), ``rfm`` (the RFM segment), ``churn_risk`` (low, medium, high).
    Compared with ``eq``, ``ne``, ``in``, ``exists``."""

    _operator_names = ("eq", "ne", "in_", "exists")

    field: FieldName
    eq: Text | None = None
    ne: Text | None = None
    in_: tuple[Text, ...] | None = Field(None, alias="in", min_length=1, max_length=MAX_VALUES)
    exists: bool | None = None

    @model_validator(mode="after")
    def _compares(self) -> Self:
        if not self.given:
            raise ValueError(f"field {self.field!r}: compare it with eq, ne, in or exists")
        known = FIELD_VALUES.get(self.field)
        if known is not None:
            for value in (self.eq, self.ne, *(self.in_ or ())):
                if value is not None and value not in known:
                    what = _FIELD_NOUNS.get(self.field, self.field)
                    raise ValueError(f"{value!r} is not {what}; they are {', '.join(known)}")
        return self

    def values_of(self, field: str) -> frozenset[str]:
        if field != self.field:
            return frozenset()
        return frozenset(v for v in (self.eq, self.ne, *(self.in_ or ())) if v is not None)

    def verdict(self, facts: Facts) -> Verdict:
        record = facts.record
        if self.field == "direction":
            overall = record.scores.get("global", DimensionScore())
            value: str | None = trend(
                overall.value(facts.decay, facts.now), overall.value(facts.decay, facts.now, recent=True)
            ).value
            changes_at = _trend_changes(overall, facts)
        else:
            value, changes_at = _field(record, self.field), None
        verdicts = [_enumerated(self, value)]
        if self.exists is not None:
            verdicts.append(Verdict((value is not None) == self.exists))
        found = _together(verdicts)
        return Verdict(found.holds, changes_at)


def _enumerated(condition: Any, value: str | None) -> Verdict:
    checks = []
    if condition.eq is not None:
        checks.append(value == condition.eq)
    if condition.ne is not None:
        checks.append(value != condition.ne)
    if condition.in_ is not None:
        checks.append(value in condition.in_)
    return Verdict(all(checks))


def _field(record: ContactRecord, name: str) -> str | None:
    analytics = record.analytics
    if name == "rfm":
        return analytics.rfm.segment if analytics is not None and analytics.rfm is not None else None
    if name == "churn_risk":
        return analytics.churn.level if analytics is not None and analytics.churn is not None else None
    return {"stage": record.stage, "quarter": record.quarter, "owner": record.owner}.get(name)


def _trend_changes(overall: DimensionScore, facts: Facts) -> datetime | None:
    """When the direction could next change with no new points: the recent memory decays
    ``RECENT_FRACTION`` times faster, so the ratio ``4 * recent / current`` falls as 2**(-3t/h) and passes
    the rising and steady bounds (1.25, 0.75) at most once each."""
    current = overall.value(facts.decay, facts.now)
    if abs(current) < NEGLIGIBLE:
        return None
    ratio = RECENT_FRACTION * overall.value(facts.decay, facts.now, recent=True) / current
    speed = (RECENT_FRACTION - 1) / facts.decay.current.half_life.total_seconds()
    for bound in (1 + TREND_TOLERANCE, 1 - TREND_TOLERANCE):
        if ratio >= bound:
            return facts.now + timedelta(seconds=math.log2(ratio / bound) / speed) + CHANGE_MARGIN
    return None


Filter = Annotated[
    Annotated[AllOf, Tag("all")]
    | Annotated[AnyOf, Tag("any")]
    | Annotated[NoneOf, Tag("not")]
    | Annotated[TraitCondition, Tag("trait")]
    | Annotated[TagCondition, Tag("tag")]
    | Annotated[ScoreCondition, Tag("score")]
    | Annotated[CountCondition, Tag("count")]
    | Annotated[LastCondition, Tag("last")]
    | Annotated[FirstCondition, Tag("first")]
    | Annotated[RevenueCondition, Tag("revenue")]
    | Annotated[ConsentCondition, Tag("consent")]
    | Annotated[FieldCondition, Tag("field")],
    Discriminator(
        lambda value: kind_of(value),
        custom_error_type="unknown_condition",
        custom_error_message="not a condition",
    ),
]


def kind_of(value: Any) -> str | None:
    """What a condition tests: the first of ``KINDS`` among its keys (``None``: none of them)."""
    if isinstance(value, Mapping):
        return next((kind for kind in KINDS if kind in value), None)
    if isinstance(value, _Condition):
        fields = type(value).model_fields
        return next(kind for kind in KINDS if kind in fields or kind + "_" in fields)
    return None


for _model in (AllOf, AnyOf, NoneOf):
    _model.model_rebuild()


# --- evaluation ---------------------------------------------------------------------------------------


def matches(
    condition: Filter,
    record: ContactRecord,
    now: datetime,
    decay: Decay,
    double_opt_in: Collection[str] = frozenset(),
) -> bool:
    """Whether the contact, as stored, passes the filter at ``now``."""
    return condition.verdict(Facts(record, now, decay, double_opt_in)).holds


def last_time(record: ContactRecord, what: str) -> datetime | None:
    if what == "activity":
        return record.last_seen_at
    if what == "purchase":
        return record.last_purchase_at
    return record.last_times.get(what)


def _together(parts: Iterable[Verdict | _Condition], facts: Facts | None = None) -> Verdict:
    """Conditions (or one condition's comparisons) all needed, as ``all``: one that fails for good fails
    the whole for good (the rest are not looked at); otherwise the earliest change of any counts."""
    holds, changes_at = True, None
    for part in parts:
        found = part if isinstance(part, Verdict) else part.verdict(facts)  # type: ignore[arg-type]
        if not found.holds and found.changes_at is None:
            return found
        holds = holds and found.holds
        if found.changes_at is not None and (changes_at is None or found.changes_at < changes_at):
            changes_at = found.changes_at
    return Verdict(holds, changes_at)


def _trait(traits: Mapping[str, Any], path: str) -> Any:
    found: Any = traits
    for part in path.split("."):
        found = found.get(part) if isinstance(found, Mapping) else None
    return found


def _equal(value: Any, expected: Any) -> bool:
    """Text without regard to case, numbers by value, true/false only with true/false."""
    if isinstance(value, bool) or isinstance(expected, bool):
        return isinstance(value, bool) and isinstance(expected, bool) and value is expected
    if isinstance(value, str) and isinstance(expected, str):
        return value.casefold() == expected.casefold()
    number = _number(value)
    return number is not None and isinstance(expected, int | float) and number == expected


def _contains(value: Any, part: Any) -> bool:
    if isinstance(value, str) and isinstance(part, str):
        return part.casefold() in value.casefold()
    if isinstance(value, list):
        return any(_equal(item, part) for item in value)
    return False


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    return float(value)


def _ordered(value: float, name: str, bound: float) -> bool:
    if name == "eq":
        return value == bound
    if name == "gt":
        return value > bound
    if name == "gte":
        return value >= bound
    if name == "lt":
        return value < bound
    return value <= bound


def _time(value: Any) -> datetime | None:
    """A date or time trait (ISO 8601 text; a date alone is midnight UTC)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if not isinstance(value, str):
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None

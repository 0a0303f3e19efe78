"""Automations are data: a trigger, conditions on the contact, steps to take, and limits.

An administrator writes one as JSON (``PUT /admin/automations/{id}``, examples in
``examples/automations/``); pydantic validates it, so a bad one is a 400 naming the field. Each stored
version is kept; what already fired is keyed by occurrence, never by version, so an edit never fires
it again (``shared.automations.engine``).
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from shared.analytics.facts import RFM_PREFIX, RISK_LEVELS, SEGMENT_NAMES, RiskLevel
from shared.nps.answers import Category
from shared.scoring.rules import Match, Operator, Predicate, RuleId, TagName
from shared.segments.model import SEGMENT_ID
from shared.tracking.behaviours import Behaviour

AutomationId = RuleId
#: what the nightly analytics pass keeps on a contact (``ContactRecord.analytics``), as ``analytics.<name>``:
#: the RFM segment id, the premium flag and the R/F/M scores; the churn-risk level, the risk itself,
#: the probability of no purchase within the horizon and the typical gap between purchases (days)
ANALYTICS_FIELDS = (
    "segment",
    "premium",
    "r",
    "f",
    "m",
    "risk_level",
    "churn_risk",
    "p_no_purchase",
    "typical_gap_days",
)
#: a contact field a condition tests: ``traits.<name>``, ``tags``, ``score.<dimension>`` (current, decayed),
#: ``stage``, ``quarter``, ``direction``, ``consent.<email|sms>``, ``owner``, ``analytics.<name>``
Field_ = Annotated[
    str,
    StringConstraints(
        pattern=r"^(traits(\.[^.\s]+)+|tags|score\.(global|stage|tag:[^\s]+)|stage|quarter|direction"
        r"|consent\.(email|sms)|owner|analytics\.(" + "|".join(ANALYTICS_FIELDS) + "))$"
    ),
]
#: the values an analytics field can take, where they are few: what conditions compare with and coupon
#: tables are keyed by (``table_key``: a table names ``true``/``false`` and ``1``...``5`` as text)
ANALYTICS_VALUES: dict[str, tuple[str | int | bool, ...]] = {
    "analytics.segment": tuple(SEGMENT_NAMES),
    "analytics.risk_level": RISK_LEVELS,
    "analytics.premium": (True, False),
    **{f"analytics.{score}": (1, 2, 3, 4, 5) for score in ("r", "f", "m")},
}


def table_key(value: Any) -> str | None:
    """The key a coupon table looks a field's value up by, as JSON objects name keys: text as it is, a
    boolean as ``true`` or ``false``, a whole number by its digits (``5``, also for 5.0), another number
    as Python prints it (``0.25``). ``None`` (no value) takes the table's default."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal) and math.isfinite(value):
        return str(int(value)) if value == int(value) else str(float(value))
    return str(value)


def _fits(value: Any, known: tuple[str | int | bool, ...]) -> bool:
    """``value`` is one of ``known``, of the same kind (the boolean ``true`` is not the number 1)."""
    return any(type(value) is type(k) and table_key(value) == table_key(k) for k in known)


def _keys(known: tuple[str | int | bool, ...]) -> tuple[str, ...]:
    return tuple(str(table_key(k)) for k in known)


def _shown(known: tuple[str | int | bool, ...]) -> str:
    return ", ".join(str(table_key(k)) for k in known)


#: a score dimension: ``global``, ``stage`` (the score since the current stage began) or ``tag:<name>``
Dimension = Annotated[str, StringConstraints(pattern=r"^(global|stage|tag:[^\s]{1,100})$")]
StageId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
QuarterName = Literal["nurturing", "sales", "retention", "exit"]
Direction = Literal["rising", "steady", "falling"]
MAX_STEPS = 20


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Aliased(_Model):
    """A model with a field named by an alias (``from``, ``for``): read by either name, written by the
    alias, so what a GET shows can be PUT back as it is."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, serialize_by_alias=True)


class Delay(_Model):
    """A calendar span: months and years keep the day of the month (clamped at month ends) and the
    contact's local time of day; days and hours are exact."""

    years: int = Field(0, ge=0, le=100)
    months: int = Field(0, ge=0, le=1200)
    days: int = Field(0, ge=0, le=36500)
    hours: int = Field(0, ge=0, le=876000)

    @model_validator(mode="after")
    def _positive(self) -> Delay:
        if not (self.years or self.months or self.days or self.hours):
            raise ValueError("give a positive span in years, months, days or hours")
        return self

    def describe(self) -> str:
        parts = [(self.years, "year"), (self.months, "month"), (self.days, "day"), (self.hours, "hour")]
        return " ".join(f"{n} {unit}{'s' if n > 1 else ''}" for n, unit in parts if n)


class Counter(_Aliased):
    """A number that grows with each occurrence of a series: ``child_age`` 6 gives ``age`` 7, then 8..."""

    #: the name the content uses (``{{ age }}``)
    name: Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_]{0,39}$")]
    #: where the starting number is: a key of the item (a product), else of the event's properties
    start_from: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]{1,64}$")] = Field(alias="from")
    step: int = Field(1, ge=1, le=100)
    #: the last value the series reaches (inclusive)
    up_to: int | None = Field(None, ge=0, le=1000)


class EventTrigger(_Model):
    """A tracked event: now, or ``after`` a delay, and then every ``repeat`` span (anniversaries, programs)."""

    type: Literal["event"]
    behaviour: Behaviour
    match: Match | None = None
    #: one series per item of this list (``properties.products``) that carries the counter's key
    items: Annotated[str, StringConstraints(pattern=r"^properties(\.[^.\s]+)+$")] | None = None
    after: Delay | None = None
    repeat: Delay | None = None
    #: at most this many occurrences of a repeating series (a counter's ``up_to`` also ends it)
    times: int | None = Field(None, ge=1, le=1000)
    counter: Counter | None = None
    #: an item key that names the series (``child_id``): a later purchase for the same child joins the
    #: series it already has instead of starting another
    series_by: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]{1,64}$")] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> EventTrigger:
        if self.repeat and not self.after:
            raise ValueError("repeat needs after: the first occurrence's delay")
        if self.counter and not self.after:
            raise ValueError("a counter needs after (and usually repeat)")
        if self.items and not self.counter:
            raise ValueError("items needs a counter: it names the key each item must carry")
        if self.repeat and self.times is None and (self.counter is None or self.counter.up_to is None):
            raise ValueError("a repeating series needs an end: times, or counter.up_to")
        return self


#: what an inactivity trigger counts from: any tracked call, a page visit (however the visitor came), a
#: purchase, or any other behaviour
Since = Literal["activity", "visit", "purchase"] | Behaviour


class InactivityTrigger(_Model):
    """No ``since`` for ``days`` days, counted from the last one. Fires once per lapse: a contact who
    comes back and lapses again qualifies again."""

    type: Literal["inactivity"]
    days: int = Field(ge=1, le=3650)
    since: Since = "activity"


class ScoreTrigger(_Model):
    """A score crossing a threshold, upward or downward (by new points, or by decay over time)."""

    type: Literal["score"]
    dimension: Dimension = "global"
    threshold: float = Field(ge=-1_000_000, le=1_000_000)
    direction: Literal["up", "down"] = "up"


class StageTrigger(_Aliased):
    """A stage change, optionally to or from a given stage, with engagement rising or falling."""

    type: Literal["stage"]
    to: StageId | None = None
    source: StageId | None = Field(None, alias="from")
    direction: Direction | None = None


class QuarterTrigger(_Aliased):
    """An engagement-quarter change (``exit``, ``retention``, ``sales``...), with the direction."""

    type: Literal["quarter"]
    to: QuarterName | None = None
    source: QuarterName | None = Field(None, alias="from")
    direction: Direction | None = None


class DateTrigger(_Model):
    """The yearly anniversary of a date trait (``birthday``, ``contract_start``), at ``hour`` local time."""

    type: Literal["date"]
    trait: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]{1,64}$")]
    #: days before (negative) or after the anniversary
    offset_days: int = Field(0, ge=-60, le=60)
    hour: int = Field(9, ge=0, le=23)


def _known_segment(name: str) -> str:
    """An RFM segment is ``rfm:<id>`` with a known id; a segment of issue 13 (``/admin/segments``) is named
    by its id."""
    if name.startswith(RFM_PREFIX) and name.removeprefix(RFM_PREFIX) not in SEGMENT_NAMES:
        known = ", ".join(RFM_PREFIX + segment for segment in SEGMENT_NAMES)
        raise ValueError(f"{name!r} is not an RFM segment; they are {known}")
    if not name.startswith(RFM_PREFIX) and not re.fullmatch(SEGMENT_ID, name):
        raise ValueError(
            f"{name!r} is neither an RFM segment (rfm:<id>) nor a segment id (lower-case, - and _)"
        )
    return name


SegmentName = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_known_segment)]


#: ``initial`` on a segment or churn-risk trigger: a contact's first scoring (the event's ``initial``; on
#: the first night, everyone's) is what the contact already was, not a change, and a trigger ignores it
#: unless it says ``initial: true``; then it also enrols contacts already there (as a HubSpot workflow
#: that "enrolls contacts who currently meet the criteria"). A first scoring comes from nothing.
_FIRST_SCORING = "initial takes a contact's first scoring, which comes from nothing (from null)"


class SegmentTrigger(_Aliased):
    """Entering or leaving a segment (``SegmentChanged``); an RFM segment is ``rfm:<id>``. ``from`` narrows
    an entry to contacts coming from that segment, ``to`` a departure to contacts going to that one;
    ``initial`` also takes a contact's first scoring (entering its first segment)."""

    type: Literal["segment"]
    segment: SegmentName
    change: Literal["entered", "left"] = "entered"
    source: SegmentName | None = Field(None, alias="from")
    to: SegmentName | None = None
    initial: bool = False

    @model_validator(mode="after")
    def _other_end(self) -> SegmentTrigger:
        if self.initial and self.change == "left":
            raise ValueError(f"{_FIRST_SCORING}: it enters a segment and leaves none")
        if self.initial and self.source is not None:
            raise ValueError(f"{_FIRST_SCORING}: give initial or from, not both")
        if self.change == "entered" and self.to is not None:
            raise ValueError("an entry goes to the segment itself: narrow it with from (where it came from)")
        if self.change == "left" and self.source is not None:
            raise ValueError("a departure comes from the segment itself: narrow it with to (where it went)")
        other = self.source or self.to
        if other is not None and not self.segment.startswith(RFM_PREFIX):
            raise ValueError(
                "from and to narrow an RFM segment's changes; a contact can be in many segments of "
                f"/admin/segments at once, so {self.segment!r} has no other end"
            )
        if other == self.segment:
            raise ValueError(f"from and to name the other end of the change, not {self.segment!r} itself")
        if other is not None and other.startswith(RFM_PREFIX) != self.segment.startswith(RFM_PREFIX):
            raise ValueError("an RFM segment changes only from and to RFM segments (rfm:<id>)")
        return self


class ChurnRiskTrigger(_Aliased):
    """A churn-risk level change (``ChurnRiskChanged``), optionally only from a given level; ``initial``
    also takes a contact's first scoring (its first level)."""

    type: Literal["churn_risk"]
    to: RiskLevel
    source: RiskLevel | None = Field(None, alias="from")
    initial: bool = False

    @model_validator(mode="after")
    def _a_change(self) -> ChurnRiskTrigger:
        if self.initial and self.source is not None:
            raise ValueError(f"{_FIRST_SCORING}: give initial or from, not both")
        if self.source == self.to:
            raise ValueError(f"from and to are both {self.to!r}: a change moves between two levels")
        return self


class NpsTrigger(_Model):
    """Issue 15: an NPS answer recorded (``NpsAnswered``), optionally only of a category (``detractor``:
    service recovery; ``promoter``: a referral ask) or of one survey (the survey template's id)."""

    type: Literal["nps"]
    category: Category | None = None
    survey: RuleId | None = None


class FollowUpTrigger(_Model):
    """Started only by another automation's ``follow_up`` step."""

    type: Literal["follow_up"]


Trigger = Annotated[
    EventTrigger
    | InactivityTrigger
    | ScoreTrigger
    | StageTrigger
    | QuarterTrigger
    | DateTrigger
    | SegmentTrigger
    | ChurnRiskTrigger
    | NpsTrigger
    | FollowUpTrigger,
    Field(discriminator="type"),
]


class Condition(_Model):
    """A test on the contact when the automation runs: ``{"field": "traits.plan", "op": "eq", "value": "pro"}``.

    ``tags`` takes ``contains``/``not_in``-style tests on the tag names (``contains``: has the tag).
    """

    field: Field_
    op: Operator
    value: Any = None

    @model_validator(mode="after")
    def _value_fits(self) -> Condition:
        Predicate(path="properties.x", op=self.op, value=self.value)  # the same rules as scoring predicates
        known = ANALYTICS_VALUES.get(self.field)
        if known is not None and self.op in ("eq", "ne", "in", "not_in"):
            for value in self.value if isinstance(self.value, list) else [self.value]:
                if not _fits(value, known):
                    raise ValueError(f"{self.field} is one of {_shown(known)}; not {value!r}")
        return self


Text = Annotated[str, StringConstraints(min_length=1, max_length=20_000)]


class EmailStep(_Model):
    action: Literal["email"]
    #: a template (``/admin/templates``, from the delivery work) or the content inline
    template: RuleId | None = None
    subject: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None
    text: Text | None = None
    html: Text | None = None
    #: send at the hour this contact usually engages (learned from their events), within the allowed hours
    best_hour: bool = False

    @model_validator(mode="after")
    def _content(self) -> EmailStep:
        if self.template is None and not (self.subject and (self.text or self.html)):
            raise ValueError("an email needs a template, or a subject with text or html")
        return self


class SmsStep(_Model):
    action: Literal["sms"]
    text: Annotated[str, StringConstraints(min_length=1, max_length=1600)]
    #: send at the hour this contact usually engages (learned from their events), within the allowed hours
    best_hour: bool = False


class WebhookStep(_Model):
    action: Literal["webhook"]
    url: Annotated[str, StringConstraints(pattern=r"^https://[^\s]{1,2000}$")]
    #: sent as JSON with the contact id, the automation and the occurrence; values may use ``{{ }}``
    body: dict[str, Any] = Field(default_factory=dict)


class TagStep(_Model):
    action: Literal["tag"]
    add: TagName | None = None
    remove: TagName | None = None

    @model_validator(mode="after")
    def _one(self) -> TagStep:
        if (self.add is None) == (self.remove is None):
            raise ValueError("give add or remove (one tag)")
        return self


class PointsStep(_Model):
    """Points through the ledger, with the automation as the reason (a negative number subtracts)."""

    action: Literal["points"]
    points: int = Field(ge=-10_000, le=10_000)
    dimension: Annotated[str, StringConstraints(pattern=r"^(global|tag:[^\s]{1,100})$")] = "global"

    @model_validator(mode="after")
    def _nonzero(self) -> PointsStep:
        if self.points == 0:
            raise ValueError("points must not be 0")
        return self


class StageStep(_Model):
    action: Literal["stage"]
    to: StageId


class CouponValue(_Model):
    """A value looked up by a contact field: ``{"field": "traits.tier", "values": {"gold": 20}}``, by the
    field's ``table_key`` (``analytics.premium``: ``{"true": 20, "false": 10}``); ``default`` when the
    table has no key for it (or the contact has no value)."""

    field: Field_
    values: dict[str, Annotated[float, Field(ge=0, le=1_000_000)]]
    default: float | None = Field(None, ge=0, le=1_000_000)

    @model_validator(mode="after")
    def _known_keys(self) -> CouponValue:
        known = ANALYTICS_VALUES.get(self.field)
        unknown = [key for key in self.values if known is not None and not _fits(key, _keys(known))]
        if unknown:
            raise ValueError(f"{self.field} is one of {_shown(known or ())}; not {unknown[0]!r}")
        return self


class CouponStep(_Model):
    """A coupon code, unique per contact and occurrence, with a value: fixed, or from a table."""

    action: Literal["coupon"]
    prefix: Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{1,12}$")] = "LC"
    value: float | None = Field(None, ge=0, le=1_000_000)
    value_from: CouponValue | None = None
    unit: Literal["percent", "amount"] = "percent"

    @model_validator(mode="after")
    def _value(self) -> CouponStep:
        if (self.value is None) == (self.value_from is None):
            raise ValueError("give value or value_from")
        return self


class FollowUpStep(_Model):
    """Start another automation (one with a ``follow_up`` trigger) for this contact after a delay."""

    action: Literal["follow_up"]
    automation: AutomationId
    after: Delay


class WaitStep(_Aliased):
    """Wait, then go on with the next step."""

    action: Literal["wait"]
    wait_for: Delay = Field(alias="for")


Step = Annotated[
    EmailStep
    | SmsStep
    | WebhookStep
    | TagStep
    | PointsStep
    | StageStep
    | CouponStep
    | FollowUpStep
    | WaitStep,
    Field(discriminator="action"),
]


#: how long after an exposure (a campaign's assignment, an automation's run) a conversion counts
CONVERSION_DAYS = 7


class Conversion(_Model):
    """What counts as a conversion for uplift (issue 13): the contact's ``behaviour`` (a purchase by
    default) within ``days`` of being exposed (assigned to a campaign's variant or holdout, or entering
    an automation, acted on or held out). Counted once per exposure."""

    behaviour: Behaviour = Behaviour.PURCHASE
    days: int = Field(CONVERSION_DAYS, ge=1, le=365)


class Automation(_Model):
    """An automation as an administrator writes it (``PUT /admin/automations/{id}``)."""

    id: AutomationId
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    description: str = Field("", max_length=2000)
    trigger: Trigger
    conditions: tuple[Condition, ...] = Field((), max_length=20)
    steps: tuple[Step, ...] = Field(min_length=1, max_length=MAX_STEPS)
    #: ``once`` per contact ever; ``once_per`` a ``period``; ``always``: every occurrence
    reentry: Literal["once", "once_per", "always"] = "always"
    period: Delay | None = None
    #: this share of contacts (stable per contact and automation) is held out: recorded, never acted on
    holdout_percent: float = Field(0, ge=0, le=50)
    paused: bool = False
    #: with a holdout share: what counts as a conversion in its uplift report (default: a purchase
    #: within 7 days of the run's start); issue 13
    conversion: Conversion | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Automation:
        if (self.reentry == "once_per") != (self.period is not None):
            raise ValueError("reentry once_per needs a period (and only it takes one)")
        if self.steps[-1].action == "wait":
            raise ValueError("the last step cannot be a wait")
        if any(isinstance(s, FollowUpStep) and s.automation == self.id for s in self.steps):
            raise ValueError("a follow_up cannot start the automation itself")
        return self


class StoredAutomation(Automation):
    version: int = Field(ge=1)
    updated_at: datetime | None = None

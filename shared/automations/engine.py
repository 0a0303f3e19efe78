"""What automations do for a contact, decided without I/O: which start, when timers fall due, what a run
does. Pure: the contact, the automations and the time are passed in.

Every start has an **occurrence key**, stable for the thing that caused it (a tracked call's log key, a
lifecycle event's id, a lapse's last visit, an anniversary's year, a series' number). The store writes
one record per (contact, automation, occurrence, step) with a condition, so a replayed stream batch, a
schedule fired twice or a retried function acts once; editing an automation changes no key, so what
already fired never fires again.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from shared.analytics.facts import SEGMENT_NAMES, Analytics
from shared.automations.book import AutomationBook
from shared.automations.calendar import (
    latest_date_occurrence,
    occurrences_of_date,
    parse_date,
    plus,
    shift,
    times,
    zone_of,
)
from shared.automations.content import render, render_json
from shared.automations.model import (
    Condition,
    CouponStep,
    DateTrigger,
    Delay,
    EmailStep,
    EventTrigger,
    FollowUpStep,
    InactivityTrigger,
    PointsStep,
    SmsStep,
    StageStep,
    StoredAutomation,
    TagStep,
    WaitStep,
    WebhookStep,
    table_key,
)
from shared.contacts.model import ContactRecord
from shared.delivery.consent import state as consent_state
from shared.delivery.requests import DeliveryRequest
from shared.scoring.decay import Decay, trend
from shared.scoring.model import DimensionScore
from shared.scoring.rules import Predicate, lookup, matches
from shared.tracking.messages import TrackedEvent
from shared.tracking.timestamps import format_time
from shared.tracking.trust import counts_as_server_fact

#: a date anniversary found by a due run this long after its moment still fires (a run can be late)
DATE_GRACE = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One run of an automation for a contact, from ``step`` on."""

    automation: str
    key: str
    #: values the trigger brings to the content (the event's properties, the item, the counter...)
    values: Mapping[str, Any] = field(default_factory=dict)
    step: int = 0

    @property
    def run_key(self) -> str:
        return f"{self.automation}#{self.key}#{self.step:02d}"


@dataclass(frozen=True, slots=True)
class Timer:
    """Something to do for a contact later: a series' next occurrence, the rest of a run after a wait,
    or a follow-up automation."""

    automation: str
    #: unique per contact: re-arming the same key replaces the timer
    key: str
    due: datetime
    kind: Literal["series", "continue", "follow_up"]
    #: series: the occurrence number due (1 = the first); continue: the occurrence it continues
    n: int = 1
    occurrence: str = ""
    step: int = 0
    #: series: when it started (its occurrences are computed from it, so month ends never drift)
    origin: datetime | None = None
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Starts:
    """What a tracked event starts: runs now, and series or delays to arm."""

    now: tuple[Occurrence, ...] = ()
    timers: tuple[Timer, ...] = ()


# --- triggers -------------------------------------------------------------------------------------------


def event_starts(
    book: AutomationBook, event: TrackedEvent, log_key: str, traits: Mapping[str, Any]
) -> Starts:
    """The automations a tracked event triggers. ``log_key`` is its key in the event log (stable on
    replays); ``traits`` give the contact's time zone for calendar delays."""
    now: list[Occurrence] = []
    timers: list[Timer] = []
    for automation in book:
        trigger = automation.trigger
        if not isinstance(trigger, EventTrigger) or automation.paused:
            continue
        if trigger.behaviour != event.behaviour or (trigger.match and not matches(_probe(trigger), event)):
            continue
        if not counts_as_server_fact(event):  # a browser's "NPS Answered": kept, starts nothing
            continue
        base = {"event": {"name": event.event, "properties": dict(event.properties)}}
        for index, item in _items(trigger, event):
            values = {**base, "item": item}
            key = log_key if index is None else f"{log_key}#{index}"
            named = item.get(trigger.series_by) if trigger.series_by else None
            if isinstance(named, str | int) and not isinstance(named, bool) and str(named):
                key = f"by:{named}"  # one series per child, however many purchases name it
            if trigger.after is None:
                now.append(Occurrence(automation.id, key, values))
                continue
            start = _counter_start(trigger, item, event)
            if trigger.counter is not None and start is None:
                continue
            if start is not None:
                values[trigger.counter.name] = start + trigger.counter.step
                if trigger.counter.up_to is not None and values[trigger.counter.name] > trigger.counter.up_to:
                    continue
                values["counter_start"] = start
            due = shift(event.timestamp, trigger.after, zone_of(dict(traits)))
            timers.append(
                Timer(
                    automation.id,
                    f"{automation.id}#{key}",
                    due,
                    "series",
                    n=1,
                    occurrence=key,
                    origin=event.timestamp,
                    values=values,
                )
            )
    return Starts(tuple(now), tuple(timers))


def _probe(trigger: EventTrigger) -> Any:
    """The scoring matcher takes a rule; a trigger's behaviour and match are all it reads."""
    from shared.scoring.rules import Rule

    return Rule(id="automation", behaviour=trigger.behaviour, points=0, match=trigger.match)


def _items(trigger: EventTrigger, event: TrackedEvent) -> list[tuple[int | None, dict[str, Any]]]:
    """Each item that starts its own series (a product per child), or the call's properties as one."""
    if trigger.items is None:
        return [(None, dict(event.properties))]
    found = lookup(event, trigger.items)
    key = trigger.counter.start_from if trigger.counter else None
    items = [
        (index, dict(item))
        for index, item in enumerate(found if isinstance(found, list) else [])
        if isinstance(item, Mapping) and (key is None or _number(item.get(key)) is not None)
    ]
    if not items and key is not None and _number(event.properties.get(key)) is not None:
        return [(None, dict(event.properties))]  # the property on the call itself
    return items


def _counter_start(trigger: EventTrigger, item: Mapping[str, Any], event: TrackedEvent) -> int | None:
    if trigger.counter is None:
        return None
    key = trigger.counter.start_from
    value = _number(item.get(key))
    return value if value is not None else _number(event.properties.get(key))


def _number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal) and value == int(value):
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def next_in_series(automation: StoredAutomation, timer: Timer, traits: Mapping[str, Any]) -> Timer | None:
    """The series' occurrence after ``timer``'s, or ``None`` when it has ended (or no longer repeats)."""
    trigger = automation.trigger
    if not isinstance(trigger, EventTrigger) or trigger.repeat is None or trigger.after is None:
        return None
    n = timer.n + 1
    if trigger.times is not None and n > trigger.times:
        return None
    values = dict(timer.values)
    if trigger.counter is not None:
        start = _number(values.get("counter_start"))
        if start is None:
            return None
        values[trigger.counter.name] = start + trigger.counter.step * n
        if trigger.counter.up_to is not None and values[trigger.counter.name] > trigger.counter.up_to:
            return None
    origin = timer.origin or timer.due
    due = shift(origin, plus(trigger.after, times(trigger.repeat, n - 1)), zone_of(dict(traits)))
    return Timer(
        timer.automation,
        timer.key,
        due,
        "series",
        n=n,
        occurrence=timer.occurrence,
        origin=origin,
        values=values,
    )


def since_time(record: ContactRecord, since: str) -> datetime | None:
    """When the contact last did what an inactivity trigger counts."""
    if since == "activity":
        return record.last_seen_at
    if since == "purchase":
        return record.last_purchase_at
    return record.last_times.get(since)


def lapses(book: AutomationBook, record: ContactRecord, now: datetime) -> list[Occurrence]:
    """Inactivity triggers whose span has passed since the last time: one occurrence per lapse."""
    found = []
    for automation in book:
        trigger = automation.trigger
        if not isinstance(trigger, InactivityTrigger) or automation.paused:
            continue
        last = since_time(record, trigger.since)
        if last is not None and last + timedelta(days=trigger.days) <= now:
            found.append(Occurrence(automation.id, f"lapse@{format_time(last)}", {"last": format_time(last)}))
    return found


def anniversaries(book: AutomationBook, record: ContactRecord, now: datetime) -> list[Occurrence]:
    """Date-trait anniversaries that have come (within a day: a due run can be late)."""
    found = []
    zone = zone_of(record.traits)
    for automation in book:
        trigger = automation.trigger
        if not isinstance(trigger, DateTrigger) or automation.paused:
            continue
        origin = parse_date(record.traits.get(trigger.trait))
        if origin is None:
            continue
        year, moment = latest_date_occurrence(
            origin, zone, hour=trigger.hour, offset_days=trigger.offset_days, upto=now
        )
        if now - moment < DATE_GRACE:
            years = year - origin.year
            found.append(Occurrence(automation.id, f"{trigger.trait}@{year}", {"years": years}))
    return found


def wakeup(book: AutomationBook, record: ContactRecord, now: datetime) -> datetime | None:
    """The next moment time alone starts something for the contact: a lapse or an anniversary."""
    candidates: list[datetime] = []
    zone = None
    for automation in book:
        trigger = automation.trigger
        if automation.paused:
            continue
        if isinstance(trigger, InactivityTrigger):
            last = since_time(record, trigger.since)
            if last is not None and last + timedelta(days=trigger.days) > now:
                candidates.append(last + timedelta(days=trigger.days))
        elif isinstance(trigger, DateTrigger):
            origin = parse_date(record.traits.get(trigger.trait))
            if origin is not None:
                zone = zone or zone_of(record.traits)
                candidates.append(
                    occurrences_of_date(
                        origin, zone, hour=trigger.hour, offset_days=trigger.offset_days, after=now
                    )
                )
    return min(candidates) if candidates else None


def watched_since(book: AutomationBook) -> frozenset[str]:
    """The behaviours (and ``visit``) inactivity automations count from, beyond any activity and
    purchases: the profile keeps their last time (``last:<behaviour>``), and only theirs."""
    return frozenset(
        str(a.trigger.since)
        for a in book
        if isinstance(a.trigger, InactivityTrigger) and a.trigger.since not in ("activity", "purchase")
    )


def thresholds(book: AutomationBook) -> tuple[tuple[str, float], ...]:
    """The score thresholds automations watch: (dimension, threshold), each once."""
    from shared.automations.model import ScoreTrigger

    return tuple(
        sorted(
            {(a.trigger.dimension, a.trigger.threshold) for a in book if isinstance(a.trigger, ScoreTrigger)}
        )
    )


@dataclass(frozen=True, slots=True)
class Signal:
    """A lifecycle event from the bus: a stage or quarter change, a threshold crossed, a segment or
    churn-risk change."""

    detail_type: str
    event_id: str
    contact_id: str
    detail: Mapping[str, Any]


def signal_starts(book: AutomationBook, signal: Signal) -> list[Occurrence]:
    found = []
    detail = signal.detail
    for automation in book:
        trigger = automation.trigger
        if automation.paused or not _signal_matches(trigger, signal.detail_type, detail):
            continue
        found.append(Occurrence(automation.id, signal.event_id, {"signal": dict(detail)}))
    return found


#: trigger type -> the lifecycle signal (bus detail type) it reacts to
SIGNAL_KINDS: Mapping[str, str] = {
    "stage": "ContactStageChanged",
    "quarter": "EngagementQuarterChanged",
    "score": "ScoreThresholdCrossed",
    "segment": "SegmentChanged",
    "churn_risk": "ChurnRiskChanged",
    # issue 15: an NPS answer recorded
    "nps": "NpsAnswered",
}


def _signal_matches(trigger: Any, kind: str, detail: Mapping[str, Any]) -> bool:
    if SIGNAL_KINDS.get(trigger.type) != kind:
        return False
    if trigger.type in ("stage", "quarter"):
        return (
            (trigger.to is None or detail.get("to") == trigger.to)
            and (trigger.source is None or detail.get("from") == trigger.source)
            and (trigger.direction is None or detail.get("direction") == trigger.direction)
        )
    if trigger.type == "score":
        return (
            detail.get("dimension") == trigger.dimension
            and _same(detail.get("threshold"), trigger.threshold)
            and detail.get("direction") == trigger.direction
        )
    if trigger.type in ("segment", "churn_risk") and detail.get("initial") is True and not trigger.initial:
        return False  # a first scoring: what the contact already was, taken only when asked for
    if trigger.type == "nps":
        return (trigger.category is None or detail.get("category") == trigger.category) and (
            trigger.survey is None or detail.get("survey_id") == trigger.survey
        )
    if trigger.type == "segment":
        return (
            detail.get("segment") == trigger.segment
            and detail.get("change") == trigger.change
            and (trigger.source is None or detail.get("from") == trigger.source)
            and (trigger.to is None or detail.get("to") == trigger.to)
        )
    return detail.get("to") == trigger.to and (trigger.source is None or detail.get("from") == trigger.source)


def _same(found: Any, threshold: float) -> bool:
    return isinstance(found, int | float) and not isinstance(found, bool) and abs(found - threshold) < 1e-9


# --- conditions -----------------------------------------------------------------------------------------


def field_value(
    record: ContactRecord,
    path: str,
    decay: Decay,
    now: datetime,
    double_opt_in: Collection[str] = frozenset(),
) -> Any:
    """A contact field a condition tests (``shared.automations.model.Condition``). ``consent.<channel>``
    is whether marketing on it is allowed: the consent state is ``granted`` (a grant from a source in
    ``double_opt_in`` counts once the contact confirmed it)."""
    if path.startswith("traits."):
        found: Any = record.traits
        for part in path.split(".")[1:]:
            found = found.get(part) if isinstance(found, Mapping) else None
        return found
    if path == "tags":
        return sorted(record.tags)
    if path.startswith("score."):
        return round(score(record, path.removeprefix("score."), decay, now), 6)
    if path == "direction":
        overall = record.scores.get("global", DimensionScore())
        return trend(overall.value(decay, now), overall.value(decay, now, recent=True)).value
    if path.startswith("consent."):
        return consent_state(record.consent.get(path.removeprefix("consent.")), double_opt_in) == "granted"
    if path.startswith("analytics."):
        return analytics_values(record.analytics).get(path.removeprefix("analytics."))
    return {"stage": record.stage, "quarter": record.quarter, "owner": record.owner}.get(path)


def analytics_values(analytics: Analytics | None) -> dict[str, Any]:
    """What the last nightly analytics pass found, by the names conditions, coupon tables and content use
    (``analytics.<name>``); a contact it has not scored (or scored without purchases in the look-back
    window, for the RFM part) has no value for them."""
    rfm = analytics.rfm if analytics is not None else None
    churn = analytics.churn if analytics is not None else None
    found: dict[str, Any] = {"day": analytics.day.isoformat() if analytics is not None else None}
    if rfm is not None:
        found |= {
            "segment": rfm.segment,
            "segment_name": SEGMENT_NAMES[rfm.segment],
            "premium": rfm.premium,
            "r": rfm.r,
            "f": rfm.f,
            "m": rfm.m,
        }
    if churn is not None:
        found |= {
            "risk_level": churn.level,
            "churn_risk": churn.churn_risk,
            "p_no_purchase": churn.p_no_purchase,
            "typical_gap_days": churn.typical_gap_days,
            "expected_next_purchase": (
                churn.expected_next_purchase.isoformat() if churn.expected_next_purchase else None
            ),
        }
    return found


def score(record: ContactRecord, dimension: str, decay: Decay, now: datetime) -> float:
    overall = record.scores.get("global", DimensionScore())
    if dimension == "stage":
        if record.stage_baseline is None:
            return overall.value(decay, now)
        return overall.minus(record.stage_baseline).value(decay, now)
    return record.scores.get(dimension, DimensionScore()).value(decay, now)


def holds(
    conditions: Sequence[Condition],
    record: ContactRecord,
    decay: Decay,
    now: datetime,
    double_opt_in: Collection[str] = frozenset(),
) -> bool:
    for condition in conditions:
        found = field_value(record, condition.field, decay, now, double_opt_in)
        if condition.field == "tags":
            if not _tags_hold(condition, found):
                return False
            continue
        if not Predicate(path="properties.x", op=condition.op, value=condition.value).holds(found):
            return False
    return True


def _tags_hold(condition: Condition, tags: list[str]) -> bool:
    value = condition.value
    if condition.op in ("contains", "eq"):
        return value in tags
    if condition.op == "ne":
        return value not in tags
    if condition.op == "in":
        return any(v in tags for v in value)
    if condition.op == "not_in":
        return not any(v in tags for v in value)
    if condition.op == "exists":
        return bool(tags)
    if condition.op == "missing":
        return not tags
    return False


def held_out(contact_id: str, automation_id: str, percent: float) -> bool:
    """A stable control group: the same contacts are held out of an automation every time."""
    if percent <= 0:
        return False
    digest = hashlib.sha256(f"holdout:{automation_id}:{contact_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 10_000 < round(percent * 100)


# --- runs -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Coupon:
    code: str
    value: float
    unit: str


@dataclass(frozen=True, slots=True)
class Plan:
    """What one run does, decided before anything is done: the store records it, then it is done."""

    contact_id: str
    automation: str
    version: int
    occurrence: str
    #: the run's first step (0, or after a wait)
    step: int
    status: Literal["acted", "held_out"]
    requests: tuple[DeliveryRequest, ...] = ()
    tags_added: tuple[str, ...] = ()
    tags_removed: tuple[str, ...] = ()
    points: tuple[PointsStep, ...] = ()
    stage: str | None = None
    coupon: Coupon | None = None
    #: what comes later: the rest after a wait, follow-ups
    timers: tuple[Timer, ...] = ()
    #: what each step did, for the contact's card
    notes: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.automation}#{self.occurrence}#{self.step:02d}"


def plan(
    automation: StoredAutomation,
    record: ContactRecord,
    occurrence: Occurrence,
    decay: Decay,
    now: datetime,
) -> Plan:
    """Run the automation's steps from ``occurrence.step`` up to the first wait (pure)."""
    contact = record.contact_id
    values = content_values(record, occurrence.values, decay, now)
    status: Literal["acted", "held_out"] = (
        "held_out" if held_out(contact, automation.id, automation.holdout_percent) else "acted"
    )
    requests: list[DeliveryRequest] = []
    added: list[str] = []
    removed: list[str] = []
    points: list[PointsStep] = []
    stage = None
    coupon: Coupon | None = None
    timers: list[Timer] = []
    notes: list[str] = []
    for number in range(occurrence.step, len(automation.steps)):
        step = automation.steps[number]
        base = {
            "id": f"{contact}#{automation.id}#{occurrence.key}#{number}",
            "contact_id": contact,
            "automation": automation.id,
            "version": automation.version,
            "occurrence": occurrence.key,
            "step": number,
            "at": now,
            "status": "held_out" if status == "held_out" else "queued",
            "reason": "held out (control group)" if status == "held_out" else None,
        }
        if isinstance(step, WaitStep):
            if status == "held_out":
                break  # a held-out contact is recorded once, at the start
            due = shift(now, step.wait_for, zone_of(record.traits))
            timers.append(
                Timer(
                    automation.id,
                    f"{automation.id}#{occurrence.key}#continue",
                    due,
                    "continue",
                    occurrence=occurrence.key,
                    step=number + 1,
                    values=dict(occurrence.values),
                )
            )
            notes.append(f"wait {step.wait_for.describe()}, until {format_time(due)}")
            break
        if isinstance(step, EmailStep):
            requests.append(
                DeliveryRequest(
                    **base,
                    channel="email",
                    subject=render(step.subject, values) if step.subject else None,
                    text=render(step.text, values) if step.text else None,
                    html=render(step.html, values) if step.html else None,
                    template=step.template,
                    # a stored template renders at delivery over these; inline content is rendered here
                    values=_plain(values) if step.template else {},
                    best_hour=step.best_hour,
                )
            )
            notes.append("email")
        elif isinstance(step, SmsStep):
            requests.append(
                DeliveryRequest(
                    **base, channel="sms", text=render(step.text, values), best_hour=step.best_hour
                )
            )
            notes.append("sms")
        elif isinstance(step, WebhookStep):
            body = {
                "contact_id": contact,
                "automation": automation.id,
                "occurrence": occurrence.key,
                **render_json(step.body, values),
            }
            requests.append(DeliveryRequest(**base, channel="webhook", url=step.url, body=body))
            notes.append("webhook")
        elif status == "held_out":
            continue  # nothing but messages is even planned for a held-out contact
        elif isinstance(step, TagStep):
            if step.add:
                added.append(step.add)
                notes.append(f"tag +{step.add}")
            else:
                removed.append(step.remove or "")
                notes.append(f"tag -{step.remove}")
        elif isinstance(step, PointsStep):
            points.append(step)
            notes.append(f"{step.points:+d} points ({step.dimension})")
        elif isinstance(step, StageStep):
            stage = step.to
            notes.append(f"stage {step.to}")
        elif isinstance(step, CouponStep):
            coupon = issue_coupon(step, record, automation.id, occurrence.key, decay, now)
            if coupon is None:
                notes.append("coupon: no value for this contact")
            else:
                values["coupon"] = {"code": coupon.code, "value": _shown(coupon.value), "unit": coupon.unit}
                notes.append(f"coupon {coupon.code}")
        elif isinstance(step, FollowUpStep):
            follow = f"follow:{automation.id}:{occurrence.key}:{number}"
            timers.append(
                Timer(
                    step.automation,
                    f"{step.automation}#{follow}",
                    shift(now, step.after, zone_of(record.traits)),
                    "follow_up",
                    occurrence=follow,
                    values=dict(occurrence.values),
                )
            )
            notes.append(f"follow-up {step.automation} in {step.after.describe()}")
    return Plan(
        contact_id=contact,
        automation=automation.id,
        version=automation.version,
        occurrence=occurrence.key,
        step=occurrence.step,
        status=status,
        requests=tuple(requests),
        tags_added=tuple(added),
        tags_removed=tuple(removed),
        points=tuple(points),
        stage=stage,
        coupon=coupon,
        timers=tuple(timers),
        notes=tuple(notes),
    )


def content_values(
    record: ContactRecord, trigger_values: Mapping[str, Any], decay: Decay, now: datetime
) -> dict[str, Any]:
    """What content can name: the contact's traits, stage, quarter, scores, analytics, and the trigger's
    values."""
    return {
        "contact": {"id": record.contact_id, "user_id": record.user_id},
        "traits": dict(record.traits),
        "stage": record.stage,
        "quarter": record.quarter,
        "score": {"global": round(score(record, "global", decay, now), 1)},
        "analytics": analytics_values(record.analytics),
        **trigger_values,
    }


def issue_coupon(
    step: CouponStep, record: ContactRecord, automation: str, occurrence: str, decay: Decay, now: datetime
) -> Coupon | None:
    value = step.value
    if step.value_from is not None:
        key = table_key(field_value(record, step.value_from.field, decay, now))
        value = (
            step.value_from.default
            if key is None
            else step.value_from.values.get(key, step.value_from.default)
        )
    if value is None:
        return None
    digest = hashlib.sha256(f"coupon:{record.contact_id}:{automation}:{occurrence}".encode()).digest()
    code = base64.b32encode(digest[:5]).decode().rstrip("=")
    return Coupon(code=f"{step.prefix}-{code}", value=float(value), unit=step.unit)


def _shown(value: Any) -> Any:
    if isinstance(value, float) and value == int(value):
        return int(value)
    return value if isinstance(value, str | int | float) else str(value) if value is not None else ""


def _plain(values: Mapping[str, Any]) -> dict[str, Any]:
    """Values as JSON can carry them (times as text, decimals as numbers)."""
    import json

    return json.loads(json.dumps(values, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    return str(value)


__all__ = [
    "Delay",
    "Occurrence",
    "Plan",
    "Signal",
    "Starts",
    "Timer",
    "anniversaries",
    "event_starts",
    "holds",
    "lapses",
    "next_in_series",
    "plan",
    "signal_starts",
    "thresholds",
    "wakeup",
]

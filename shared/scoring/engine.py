"""Scoring a contact's new events: which rules apply, what each dimension gains, what the ledger says.

Pure: the rule book, the decay settings, what is known of the contact's rule limits and the time
are passed in. The result is applied by the store as blind ADDs plus conditions that enforce the
limits, so scoring adds no read and no extra write to the hot path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from shared.scoring.decay import NEGLIGIBLE, Decay
from shared.scoring.rules import RuleBook, StoredRule, lookup
from shared.tracking.messages import TrackedEvent

GLOBAL = "global"
TAG_PREFIX = "tag:"


@dataclass(frozen=True, slots=True)
class ScoreChange:
    """One line of the ledger: this rule (at this version) moved this dimension by these points."""

    rule_id: str
    rule_version: int
    points: int
    dimension: str


@dataclass(frozen=True, slots=True)
class RuleUse:
    """What the store says a contact has used of a limited rule."""

    count: int = 0
    last_day: str | None = None


@dataclass(frozen=True, slots=True)
class LimitClaim:
    """Uses of a limited rule this change takes; the store refuses the change if they are gone."""

    rule_id: str
    count: int
    per_contact: int | None
    first_day: str | None
    last_day: str | None


@dataclass(frozen=True, slots=True)
class ScoringContext:
    book: RuleBook
    decay: Decay
    #: rule id -> use, as learned from the store when it refused a change
    known: Mapping[str, RuleUse] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Scored:
    ledger: Mapping[str, tuple[ScoreChange, ...]]
    #: dimension -> lifetime points gained
    totals: Mapping[str, int]
    #: (dimension, memory key, bucket) -> scaled points gained
    sums: Mapping[tuple[str, str, int], float]
    #: tags credited, with the time of the event that credited each
    tags: Mapping[str, datetime]
    limits: tuple[LimitClaim, ...]

    @property
    def empty(self) -> bool:
        return not self.ledger


NOTHING = Scored(ledger={}, totals={}, sums={}, tags={}, limits=())


def score(events: Sequence[TrackedEvent], context: ScoringContext, at: datetime) -> Scored:
    """Score events (oldest first) for one contact, respecting per-contact and per-day limits."""
    ledger: dict[str, tuple[ScoreChange, ...]] = {}
    totals: dict[str, int] = {}
    sums: dict[tuple[str, str, int], float] = {}
    tags: dict[str, datetime] = {}
    uses: dict[str, list[str]] = {}  # rule id -> days of the applications taken here
    limited: dict[str, StoredRule] = {}
    buckets = [(memory, memory.bucket(at)) for memory in context.decay.memories]
    for event in events:
        changes: list[ScoreChange] = []
        factors: list[tuple[str, int, float]] | None = None
        for rule in context.book.matching(event):
            if not _allowed(rule, event, context.known.get(rule.id, RuleUse()), uses.get(rule.id, [])):
                continue
            if rule.limit.per_contact or rule.limit.once_per_day:
                uses.setdefault(rule.id, []).append(_day(event))
                limited[rule.id] = rule
            dimensions = [GLOBAL]
            tag = rule.tag or _tag_from(rule, event)
            if tag:
                dimensions.append(TAG_PREFIX + tag)
                tags.setdefault(tag, event.timestamp)
            if factors is None:  # what one point of this event is worth in each decaying sum
                factors = [
                    (memory.key, bucket, memory.scaled(1.0, event.timestamp, bucket))
                    for memory, bucket in buckets
                ]
            for dimension in dimensions:
                changes.append(ScoreChange(rule.id, rule.version, rule.points, dimension))
                totals[dimension] = totals.get(dimension, 0) + rule.points
                for memory_key, bucket, factor in factors:
                    key = (dimension, memory_key, bucket)
                    sums[key] = sums.get(key, 0.0) + rule.points * factor
        if changes:
            ledger[event.message_id] = tuple(changes)
    limits = tuple(
        LimitClaim(
            rule_id=rule_id,
            count=len(days),
            per_contact=limited[rule_id].limit.per_contact,
            first_day=min(days) if limited[rule_id].limit.once_per_day else None,
            last_day=max(days) if limited[rule_id].limit.once_per_day else None,
        )
        for rule_id, days in sorted(uses.items())
    )
    return Scored(
        ledger=ledger,
        totals=totals,
        sums={k: v for k, v in sums.items() if abs(v) >= NEGLIGIBLE},
        tags=tags,
        limits=limits,
    )


def awarded(events: Sequence[TrackedEvent], decay: Decay, at: datetime) -> Scored:
    """Points an automation awarded (``LEDGER_CALL``): each event's ledger as it carries it
    (``properties.ledger``), added as scoring adds a rule's points; no limits, no tags credited."""
    ledger: dict[str, tuple[ScoreChange, ...]] = {}
    totals: dict[str, int] = {}
    sums: dict[tuple[str, str, int], float] = {}
    buckets = [(memory, memory.bucket(at)) for memory in decay.memories]
    for event in events:
        lines = event.properties.get("ledger")
        changes = tuple(
            ScoreChange(
                str(line["rule_id"]), int(line["rule_version"]), int(line["points"]), str(line["dimension"])
            )
            for line in (lines if isinstance(lines, list) else [])
            if isinstance(line, Mapping)
        )
        if not changes:
            continue
        ledger[event.message_id] = changes
        for change in changes:
            totals[change.dimension] = totals.get(change.dimension, 0) + change.points
            for memory, bucket in buckets:
                key = (change.dimension, memory.key, bucket)
                sums[key] = sums.get(key, 0.0) + memory.scaled(change.points, event.timestamp, bucket)
    return Scored(ledger=ledger, totals=totals, sums=sums, tags={}, limits=())


def combined(a: Scored, b: Scored) -> Scored:
    """Two scorings of distinct events as one."""
    if b.empty:
        return a
    if a.empty:
        return b
    totals = dict(a.totals)
    for dimension, points in b.totals.items():
        totals[dimension] = totals.get(dimension, 0) + points
    sums = dict(a.sums)
    for key, value in b.sums.items():
        sums[key] = sums.get(key, 0.0) + value
    return Scored(
        ledger={**a.ledger, **b.ledger},
        totals=totals,
        sums={k: v for k, v in sums.items() if abs(v) >= NEGLIGIBLE},
        tags={**b.tags, **a.tags},
        limits=a.limits + b.limits,
    )


def _allowed(rule: StoredRule, event: TrackedEvent, known: RuleUse, taken: list[str]) -> bool:
    limit = rule.limit
    if limit.per_contact is not None and known.count + len(taken) >= limit.per_contact:
        return False
    if limit.once_per_day:
        day = _day(event)
        if day in taken or (known.last_day is not None and day <= known.last_day):
            return False
    return True


def _day(event: TrackedEvent) -> str:
    return event.timestamp.date().isoformat()


def _tag_from(rule: StoredRule, event: TrackedEvent) -> str | None:
    if not rule.tag_from:
        return None
    value = lookup(event, rule.tag_from)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    text = str(value).strip()
    return text[:100] or None

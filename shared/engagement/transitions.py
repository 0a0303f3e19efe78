"""Evaluating a contact: its stage (with chained moves), quarter, index, direction, routing and next due time.

Pure: the contact as stored, the funnel, the decay settings and the time are passed in.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from shared.contacts.model import ContactRecord
from shared.engagement.funnel import Facts, Funnel
from shared.engagement.index import Quarter, crossing, index, quarter
from shared.scoring.decay import Decay, Trend, trend
from shared.scoring.model import DimensionScore
from shared.segments.book import Membership, SegmentBook

#: At most this many stage moves in one evaluation (a purchase can take a subscriber to customer).
MAX_CHAIN = 6
#: Re-evaluate a little after the computed crossing, when the value is surely below the threshold.
DUE_MARGIN = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Move:
    #: ``threshold``: a score automations watch crossed (source/target ``below``/``above``, reason the
    #: watch ``<dimension>@<threshold>``); ``segment``: a segment entered (source ``out``, target ``in``) or
    #: left (``in`` to ``out``), the reason its id
    kind: Literal["stage", "quarter", "threshold", "segment"]
    source: str | None
    target: str
    reason: str


@dataclass(frozen=True, slots=True)
class Evaluation:
    stage: str
    quarter: Quarter
    index: float
    direction: Trend
    engagement: float
    moves: tuple[Move, ...]
    sales_ready: bool
    #: a sales-ready episode starts now: assign a salesperson
    route: bool
    due_at: datetime | None
    #: the stored due time must change (earlier, or the old one has passed)
    write_due: bool
    #: the watched thresholds the contact is at or above now
    score_above: frozenset[str] = frozenset()
    #: the segments the contact is in now (``None``: segments were not evaluated, the stored ones stand)
    segments: frozenset[str] | None = None

    @property
    def stage_changed(self) -> bool:
        return any(m.kind == "stage" for m in self.moves)

    def changes(self, record: ContactRecord) -> bool:
        return bool(self.moves) or self.write_due or self.sales_ready != record.sales_ready


@dataclass(frozen=True, slots=True)
class Watching:
    """What automations ask the evaluation to watch: score thresholds (crossings are announced), and the
    next moment time alone starts one (a lapse, an anniversary), which joins the contact's due time."""

    thresholds: tuple[tuple[str, float], ...] = ()
    wakeup: datetime | None = None
    #: the timer function's evaluation at a contact's due time: only it replaces a due time that has
    #: passed (an evaluation on the stream leaves it, so the lapse or anniversary it stands for is run)
    due_run: bool = False


@dataclass(frozen=True, slots=True)
class Segmenting:
    """The segments whose membership the evaluation keeps (issue 13): entries and departures are moves,
    and the next moment time alone could change one joins the contact's due time."""

    book: SegmentBook
    #: consent sources whose grants wait for the contact's confirmation (a segment's consent condition)
    double_opt_in: Collection[str] = frozenset()
    #: the book is the segments as stored now (a back-fill's uncached read): memberships of ids it lacks
    #: are dropped; otherwise (the stage function's cached copy) they are left as they are
    authoritative: bool = False

    def membership(
        self,
        record: ContactRecord,
        stage: str,
        quarter: Quarter,
        stage_changed: bool,
        decay: Decay,
        now: datetime,
    ) -> Membership:
        """The contact's segments as the evaluation leaves it: in ``stage`` (a new stage's score starts
        from the global score now) and ``quarter``."""
        overall = record.scores.get("global", DimensionScore())
        evaluated = record.model_copy(
            update={
                "stage": stage,
                "quarter": quarter.value,
                "stage_baseline": overall if stage_changed else record.stage_baseline,
            }
        )
        return self.book.evaluate(evaluated, now, decay, self.double_opt_in, authoritative=self.authoritative)


def segment_moves(membership: Membership) -> list[Move]:
    return [
        *(Move("segment", "out", "in", segment) for segment in membership.entered),
        *(Move("segment", "in", "out", segment) for segment in membership.left),
    ]


def moved_to(
    record: ContactRecord,
    evaluation: Evaluation,
    stage: Move,
    segmenting: Segmenting | None,
    decay: Decay,
    now: datetime,
) -> Evaluation:
    """The evaluation with the contact moved by hand (a salesperson's acceptance, an automation's step)
    instead of by its transitions: that stage move, the other moves but segments', and the segments of
    the contact in its new stage."""
    others = tuple(m for m in evaluation.moves if m.kind not in ("stage", "segment"))
    if segmenting is None:
        return replace(evaluation, stage=stage.target, moves=(stage, *others), route=False)
    membership = segmenting.membership(record, stage.target, evaluation.quarter, True, decay, now)
    return replace(
        evaluation,
        stage=stage.target,
        moves=(stage, *others, *segment_moves(membership)),
        route=False,
        segments=membership.segments,
    )


def watch_key(dimension: str, threshold: float) -> str:
    """``<dimension>@<threshold>``, the threshold exactly (``repr`` reads back as the same float)."""
    return f"{dimension}@{float(threshold)!r}"


def evaluate(
    record: ContactRecord,
    funnel: Funnel,
    decay: Decay,
    now: datetime,
    watching: Watching = Watching(),
    segmenting: Segmenting | None = None,
) -> Evaluation:
    overall = record.scores.get("global", DimensionScore())
    engagement = overall.value(decay, now)
    direction = trend(engagement, overall.value(decay, now, recent=True))
    purchases = record.counts.get("purchase", 0)
    identified = record.user_id is not None
    thresholds = funnel.thresholds

    stage = funnel.stage(record.stage).id
    moves: list[Move] = []
    if record.stage is None or record.stage != stage:
        moves.append(
            Move(
                "stage",
                record.stage,
                stage,
                "first seen" if record.stage is None else "stage no longer in the funnel",
            )
        )
    stage_score = (
        overall.minus(record.stage_baseline).value(decay, now) if record.stage_baseline else engagement
    )
    if moves:
        stage_score = engagement
    visited = {stage}
    for _ in range(MAX_CHAIN):
        purchased = purchases > 0 or funnel.post_purchase(stage)
        facts = Facts(
            identified=identified,
            purchases=purchases,
            engagement=engagement,
            stage_score=stage_score,
            quarter=quarter(engagement, purchased, thresholds),
        )
        step = next((t for t in funnel.stage(stage).transitions if t.when.holds(facts)), None)
        if step is None or step.to in visited:
            break
        moves.append(Move("stage", stage, step.to, step.reason or f"{stage} to {step.to}"))
        stage, stage_score = step.to, 0.0
        visited.add(stage)

    purchased = purchases > 0 or funnel.post_purchase(stage)
    current_quarter = quarter(engagement, purchased, thresholds)
    if record.quarter != current_quarter:
        moves.append(Move("quarter", record.quarter, current_quarter.value, f"engagement {engagement:.1f}"))
    sales_ready = identified and (current_quarter is Quarter.SALES or funnel.stage(stage).routes_lead)

    due_at = _next_due(funnel, stage, engagement, stage_score, purchased, current_quarter, decay, now)
    above: set[str] = set()
    for dimension, threshold in watching.thresholds:
        value = _dimension(record, dimension, engagement, stage_score, decay, now)
        key = watch_key(dimension, threshold)
        if value >= threshold:
            above.add(key)
            crossing_at = crossing(value, threshold, decay.current.half_life, now)
            if crossing_at is not None:
                due_at = min(due_at, crossing_at + DUE_MARGIN) if due_at else crossing_at + DUE_MARGIN
        was = key in record.score_above
        if was != (key in above):
            moves.append(Move("threshold", "above" if was else "below", "below" if was else "above", key))
    if watching.wakeup is not None and watching.wakeup > now:
        due_at = min(due_at, watching.wakeup) if due_at else watching.wakeup
    segments = None
    if segmenting is not None:
        stage_changed = any(m.kind == "stage" for m in moves)
        membership = segmenting.membership(record, stage, current_quarter, stage_changed, decay, now)
        moves += segment_moves(membership)
        if membership.changes_at is not None:
            due_at = min(due_at, membership.changes_at) if due_at else membership.changes_at
        segments = membership.segments
    passed = record.due_at is not None and record.due_at <= now
    write_due = due_at != record.due_at and (
        record.due_at is None
        or (passed and watching.due_run)
        or (not passed and due_at is not None and due_at < record.due_at)
    )
    return Evaluation(
        stage=stage,
        quarter=current_quarter,
        index=index(engagement, purchased, thresholds),
        direction=direction,
        engagement=engagement,
        moves=tuple(moves),
        sales_ready=sales_ready,
        # An accepted lead stays with its salesperson: re-crossing the threshold routes nothing.
        route=sales_ready and not record.sales_ready and stage != funnel.accepted,
        due_at=due_at,
        write_due=write_due,
        score_above=frozenset(above),
        segments=segments,
    )


def _dimension(
    record: ContactRecord,
    dimension: str,
    engagement: float,
    stage_score: float,
    decay: Decay,
    now: datetime,
) -> float:
    if dimension == "global":
        return engagement
    if dimension == "stage":
        return stage_score
    return record.scores.get(dimension, DimensionScore()).value(decay, now)


def _next_due(
    funnel: Funnel,
    stage: str,
    engagement: float,
    stage_score: float,
    purchased: bool,
    current: Quarter,
    decay: Decay,
    now: datetime,
) -> datetime | None:
    """The first moment decay alone would move the contact: a quarter boundary or a ``*_below`` rule."""
    half_life = decay.current.half_life
    thresholds = funnel.thresholds
    candidates = []
    if current is Quarter.SALES:
        candidates.append(crossing(engagement, thresholds.sales, half_life, now))
    if current is Quarter.RETENTION:
        candidates.append(crossing(engagement, thresholds.exit, half_life, now))
    for transition in funnel.stage(stage).transitions:
        if transition.when.engagement_below is not None:
            candidates.append(crossing(engagement, transition.when.engagement_below, half_life, now))
        if transition.when.stage_score_below is not None:
            candidates.append(crossing(stage_score, transition.when.stage_score_below, half_life, now))
    found = [c for c in candidates if c is not None]
    return min(found) + DUE_MARGIN if found else None

"""The stage function's work: evaluate a changed contact, record its moves once, announce them.

At-least-once in, exactly-once effects out:

- The contact's stage writes carry ``stageSeq``; a write is applied only if the sequence is the one
  the evaluation started from. A redelivered or stale stream record therefore finds the sequence
  moved on, re-reads the contact, and re-evaluates from the truth (usually: nothing left to do).
- Moves and their announcements are written together (the outbox); announcements are then
  published and marked, channel by channel (the bus, the lead topic, the salesperson's email). A
  crash or a channel that is down for now leaves the rest pending, and the next evaluation of the
  contact sends only what is left. A channel that refuses for good (an unverified email sender) is
  recorded with its error and never retried. Published events carry stable ids for consumers to
  deduplicate.
- An evaluation that changes nothing writes nothing.
- Segment memberships (issue 13) are part of the evaluation: entering or leaving a segment is a move,
  written with the others and announced (``SegmentChanged``). A write holds at most
  ``MAX_WRITE_ITEMS`` items (a DynamoDB transaction's limit), so when many segments change at once the
  evaluation is written in parts, each a whole, consistent write of its own; the contact's next
  evaluation (at once, or a redelivery after a crash) writes what is left.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal, Protocol

from shared.clock import Clock
from shared.contacts.identity import ContactId
from shared.contacts.model import ContactRecord
from shared.engagement.events import (
    ContactRemoved,
    ContactStageChanged,
    EngagementQuarterChanged,
    LeadRouted,
    Output,
    ScoreThresholdCrossed,
    SegmentMembershipChanged,
    removal_id,
)
from shared.engagement.funnel import Funnel
from shared.engagement.index import Quarter
from shared.engagement.routing import Salesperson
from shared.engagement.transitions import (
    Evaluation,
    Move,
    Segmenting,
    Watching,
    evaluate,
    moved_to,
    segment_moves,
)
from shared.errors import Conflict, DependencyUnavailable, NotFound
from shared.scoring.decay import Decay
from shared.segments.catalogue import SegmentSource

#: How often one record re-reads and re-evaluates a contact that moved under it before giving up.
MAX_ATTEMPTS = 4
#: Items one stage write may hold (a DynamoDB transaction's limit): the profile, one per announcement,
#: one per segment membership entered or left.
MAX_WRITE_ITEMS = 100


@dataclass(frozen=True, slots=True)
class Pending:
    """An announcement written with its move and not yet delivered on every channel."""

    key: str
    output: Output
    #: channels it went out on, or was refused on for good (neither is tried again)
    done: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Delivery:
    """What one attempt to publish a pending announcement achieved, channel by channel."""

    key: str
    sent: frozenset[str] = frozenset()
    #: channel -> error code: refused for good (retrying cannot fix it), recorded, never retried
    refused: Mapping[str, str] = field(default_factory=dict)
    #: channels that failed for now (throttled, unavailable): tried again on the next attempt
    retry: frozenset[str] = frozenset()

    @property
    def complete(self) -> bool:
        return not self.retry


class StageStore(Protocol):
    def profile(self, contact: ContactId) -> ContactRecord | None: ...

    def apply(
        self,
        contact: ContactId,
        record: ContactRecord,
        evaluation: Evaluation,
        outputs: Sequence[Output],
        owner: Salesperson | None,
        now: datetime,
    ) -> bool: ...

    def pending(self, contact: ContactId) -> list[Pending]: ...

    def history(self, contact: ContactId, limit: int) -> list[Output]: ...

    def mark_delivered(self, contact: ContactId, deliveries: Sequence[Delivery]) -> None:
        """Record the channels sent and refused; a complete delivery is no longer pending."""
        ...

    def remove(self, contact: ContactId, record: ContactRecord, removal: ContactRemoved) -> bool:
        """The contact leaves its stage: ``removal`` written to its history and outbox, the profile marked
        (``stage_removed_at``: ``apply`` refuses it from then on), on condition that it exists, its stage
        sequence is still ``record``'s, it is not removed already and, for a merge, it is merged away;
        ``False`` (nothing written) otherwise."""
        ...

    def leave_segments(self, contact: ContactId, segments: frozenset[str]) -> None:
        """A contact merged away leaves its segments, unannounced (its history now counts for the contact
        it joined, evaluated on its own): the memberships go, then the profile's list of them."""
        ...


class Router(Protocol):
    def assign(self, keep: str | None = None) -> Salesperson | None:
        """The next salesperson in the rotation, or ``keep`` while that one is still available."""
        ...


class Publisher(Protocol):
    def publish(self, pending: Sequence[Pending]) -> list[Delivery]:
        """Send each announcement on its channels not done yet; one delivery per announcement."""
        ...


class FunnelSource(Protocol):
    def funnel(self) -> Funnel: ...


class WatchSource(Protocol):
    """What automations ask stage evaluations to watch (``shared.usecases.automation.Watches``)."""

    def thresholds(self) -> tuple[tuple[str, float], ...]: ...

    def wakeup(self, record: ContactRecord, now: datetime) -> datetime | None: ...


class Telemetry(Protocol):
    def count(self, name: str, value: int) -> None: ...

    def failure(self, what: str) -> None:
        """Record the exception being handled (logged with its traceback, no personal data)."""
        ...


@dataclass(frozen=True, slots=True)
class Engagement:
    clock: Clock
    funnels: FunnelSource
    decay: Decay
    stages: StageStore
    router: Router
    publisher: Publisher
    telemetry: Telemetry
    #: automations' score thresholds and wake-ups; none: stages only
    automations: WatchSource | None = None
    # --- issue 13: segments ---
    #: the segments whose membership evaluations keep; none: no segments
    segments: SegmentSource | None = None
    #: consent sources whose grants wait for the contact's confirmation (segments' consent conditions)
    double_opt_in: frozenset[str] = frozenset()

    def evaluate(
        self,
        record: ContactRecord,
        funnel: Funnel,
        now: datetime,
        due_run: bool = False,
        backfill: Backfill | None = None,
    ) -> Evaluation:
        watching = (
            Watching(self.automations.thresholds(), self.automations.wakeup(record, now), due_run)
            if self.automations is not None
            else Watching(due_run=due_run)
        )
        segmenting = self.segmenting(authoritative=backfill is not None and backfill.authoritative)
        return evaluate(record, funnel, self.decay, now, watching, segmenting)

    def segmenting(self, *, authoritative: bool = False) -> Segmenting | None:
        """The segments to evaluate against; ``authoritative``: they are the store as it stands (a
        back-fill's uncached read), so a membership of a segment they lack is dropped (a deleted segment
        empties); otherwise such memberships are left as they are (a cached book may predate a save)."""
        if self.segments is None:
            return None
        return Segmenting(self.segments.book(), self.double_opt_in, authoritative)


@dataclass(frozen=True, slots=True)
class Backfill:
    """An evaluation by a back-fill's run (``shared.usecases.backfills``), not by a change on the stream.

    The engagement's segments are then the store as the run read it, uncached: the evaluation is
    authoritative (a segment no longer stored loses its members). ``segment``: the segment whose save
    started the run (its run is named ``seg-<id>-v<version>``): its entries and departures are announced
    ``initial`` (what the contacts already were when it was saved). Every other move the run finds is a
    genuine change and announced as one; a run started by hand (no segment) marks none initial."""

    segment: str | None = None
    #: the engagement's segments were read uncached for the run (``ContactsBackfilling.segments``)
    authoritative: bool = True


def on_change(
    record: ContactRecord,
    deps: Engagement,
    *,
    due_run: bool = False,
    backfill: Backfill | None = None,
) -> int:
    """Evaluate a contact as a stream record (or a back-fill's scan) shows it; returns the writes made.

    The image is enough to see that nothing changes (the common case: no read, no write). When
    something would change, the contact is read first: a redelivered or overtaken record then finds
    the move already made and writes nothing. ``backfill``: a back-fill's evaluation (``Backfill``):
    authoritative segments, and the entries and departures of the segment that started it announced as
    ``initial`` (what the contact already was when that segment was saved).
    """
    contact = ContactId.parse(record.contact_id)
    if record.merged_into or record.stage_removed_at is not None:
        return leave_funnel(contact, record, deps)
    funnel = deps.funnels.funnel()
    now = deps.clock.now()
    if not deps.evaluate(record, funnel, now, due_run, backfill).changes(record):
        return publish_pending(contact, deps) if record.pending_outputs > 0 else 0
    writes = conflicts = 0
    while True:
        fresh = deps.stages.profile(contact)
        if fresh is None or fresh.merged_into or fresh.stage_removed_at is not None:
            return writes
        record = fresh
        evaluation = deps.evaluate(record, funnel, now, due_run, backfill)
        if not evaluation.changes(record):
            break
        owner = deps.router.assign(keep=record.owner) if evaluation.route else None
        if evaluation.route and owner is None:  # nobody available: stay unrouted, retry on a later change
            evaluation = replace(evaluation, route=False, sales_ready=record.sales_ready)
            if not evaluation.changes(record):
                break
        evaluation, whole = first_part(record, evaluation, owner)
        initial = backfill.segment if backfill is not None else None
        outputs = announcements(contact, record, evaluation, funnel, owner, now, initial=initial)
        if deps.stages.apply(contact, record, evaluation, outputs, owner, now):
            writes += 1
            deps.telemetry.count("StageMoves", sum(1 for m in evaluation.moves if m.kind == "stage"))
            deps.telemetry.count("SegmentMoves", sum(1 for m in evaluation.moves if m.kind == "segment"))
            deps.telemetry.count("LeadsRouted", 1 if owner else 0)
            record = record.model_copy(update={"pending_outputs": record.pending_outputs + len(outputs)})
            if whole:
                break
            continue  # the rest of the segment moves, in a write of their own
        conflicts += 1
        if conflicts >= MAX_ATTEMPTS:
            raise RuntimeError(
                f"contact kept changing during {MAX_ATTEMPTS} evaluations; the record will be retried"
            )
    if record.pending_outputs > 0:
        writes += publish_pending(contact, deps)
    return writes


def leave_funnel(contact: ContactId, record: ContactRecord, deps: Engagement) -> int:
    """A contact merged away (or being erased: removed from its stage already) leaves the funnel; returns
    the writes made.

    Its stage: a removal (``ContactRemoved``, reason ``merged``, at the merge's time) written with a mark on
    the profile, through the outbox like a move, so the lifecycle metrics count it out of its stage once
    (the contact it joined is placed on its own evaluation and announced as a move of its own). Its
    segments: left unannounced (its history now counts for the contact it joined). A redelivered record
    finds the mark and writes nothing; a removed contact is never evaluated again (its stage writes are
    refused), only what it has pending is published.
    """
    writes = _remove(contact, record, "merged", deps) if record.merged_into else 0
    if writes:
        record = record.model_copy(update={"pending_outputs": record.pending_outputs + 1})
    if record.merged_into and record.segments:
        deps.stages.leave_segments(contact, record.segments)
        writes += 1
    if record.pending_outputs > 0:
        writes += publish_pending(contact, deps)
    return writes


def remove_from_funnel(contact: ContactId, deps: Engagement) -> int:
    """An erasure's first step for one identity: it leaves its stage (``ContactRemoved``, reason
    ``erased``), written with the mark that refuses any later stage write, then everything it has pending
    is published (moves not yet announced first). ``DependencyUnavailable`` if the bus did not take it all
    (retry: what went out is not sent again). Returns the writes made; an identity in no stage, or removed
    before (merged away), only publishes what it has pending."""
    record = deps.stages.profile(contact)
    if record is None:
        return 0
    writes = _remove(contact, record, "erased", deps)
    pending = record.pending_outputs + writes
    return writes + (publish_pending(contact, deps) if pending > 0 else 0)


def _remove(
    contact: ContactId, record: ContactRecord, reason: Literal["merged", "erased"], deps: Engagement
) -> int:
    """Write the contact's removal from its stage once (1), or nothing (0) when it is in none or removed
    already; a write refused (the contact changed) reads it again."""
    for _ in range(MAX_ATTEMPTS):
        if record.stage is None or record.stage_removed_at is not None:
            return 0
        if deps.stages.remove(contact, record, removed(record, reason, removal_time(record, reason, deps))):
            deps.telemetry.count("ContactsRemoved", 1)
            return 1
        fresh = deps.stages.profile(contact)
        if fresh is None:
            return 0
        record = fresh
    raise RuntimeError(f"the contact kept changing during {MAX_ATTEMPTS} attempts to remove it; retry")


def removal_time(record: ContactRecord, reason: str, deps: Engagement) -> datetime:
    """When the contact left: merged, at the merge; erased, now; never before it entered its stage (a
    placement may commit just after the merge's claim was timed)."""
    at = (record.merged_at if reason == "merged" else None) or deps.clock.now()
    entered = record.stage_entered_at
    return max(at, entered) if entered is not None else at


def removed(record: ContactRecord, reason: Literal["merged", "erased"], at: datetime) -> ContactRemoved:
    """The announcement that ``record`` left the funnel from its stage (one id per placement)."""
    if record.stage is None:
        raise ValueError("a contact in no stage cannot leave one")
    return ContactRemoved(
        event_id=removal_id(record.contact_id, record.stage_entered_at),
        contact_id=record.contact_id,
        at=at,
        stage=record.stage,
        entered_at=record.stage_entered_at,
        reason=reason,
        into=record.merged_into,
    )


def first_part(
    record: ContactRecord, evaluation: Evaluation, owner: Salesperson | None
) -> tuple[Evaluation, bool]:
    """The evaluation as one write can hold it, and whether that is all of it.

    A write holds the profile, an announcement per move (and one for a routed lead) and a membership
    item per segment entered or left: when that is over ``MAX_WRITE_ITEMS``, the first segment moves
    that fit are written with everything else, the profile's segments changed by those alone.
    """
    segment_moves = [m for m in evaluation.moves if m.kind == "segment"]
    others = [m for m in evaluation.moves if m.kind != "segment"]
    room = (MAX_WRITE_ITEMS - 1 - len(others) - (1 if owner else 0)) // 2
    if len(segment_moves) <= room:
        return evaluation, True
    if room < 1:
        raise RuntimeError(f"a stage write cannot hold {len(others)} announcements and a segment move")
    taken = segment_moves[:room]
    entered = {m.reason for m in taken if m.target == "in"}
    left = {m.reason for m in taken if m.target == "out"}
    part = replace(evaluation, moves=(*others, *taken), segments=(record.segments | entered) - left)
    return part, False


def publish_pending(contact: ContactId, deps: Engagement) -> int:
    """Send the contact's pending announcements and record what went; raise if a channel must retry.

    What went out is recorded before raising, so the retry (this record again, or the contact's next
    one) sends only the channels left.
    """
    pending = deps.stages.pending(contact)
    if not pending:
        return 0
    deliveries = deps.publisher.publish(pending)
    deps.stages.mark_delivered(contact, [d for d in deliveries if d.complete or d.sent or d.refused])
    deps.telemetry.count("EventsPublished", sum(1 for d in deliveries if d.complete))
    deps.telemetry.count("DeliveriesRefused", sum(len(d.refused) for d in deliveries))
    waiting = sorted({channel for d in deliveries for channel in d.retry})
    if waiting:
        raise DependencyUnavailable(f"announcements on {', '.join(waiting)} are pending; retry")
    return 1


def reevaluate(contact: ContactId, deps: Engagement) -> int:
    """Re-evaluate a contact whose due time has come (decay may have moved it, an automation's wake-up
    passed); returns the writes made."""
    record = deps.stages.profile(contact)
    return on_change(record, deps, due_run=True) if record is not None else 0


def announcements(
    contact: ContactId,
    record: ContactRecord,
    evaluation: Evaluation,
    funnel: Funnel,
    owner: Salesperson | None,
    now: datetime,
    *,
    initial: str | None = None,
) -> list[Output]:
    """The events a write announces; ids are stable per contact and stage sequence. ``initial``: the
    segment whose entries and departures are marked initial (the one whose save started a back-fill)."""
    base = f"{contact}#{record.stage_seq + 1}"
    common = {
        "contact_id": str(contact),
        "at": now,
        "engagement": round(evaluation.engagement, 6),
        "index": round(evaluation.index, 6),
    }
    outputs: list[Output] = []
    #: when the stage a move leaves was entered: the stored one's, then (chained moves) this moment
    entered = record.stage_entered_at
    for n, move in enumerate(evaluation.moves):
        if move.kind == "stage":
            outputs.append(
                ContactStageChanged(
                    event_id=f"{base}#{n}",
                    from_stage=move.source,
                    to_stage=move.target,
                    phase=funnel.stage(move.target).phase,
                    reason=move.reason,
                    direction=evaluation.direction.value,
                    from_entered_at=entered if move.source is not None else None,
                    **common,
                )
            )
            entered = now
        elif move.kind == "threshold":
            dimension, threshold = move.reason.rsplit("@", 1)
            outputs.append(
                ScoreThresholdCrossed(
                    event_id=f"{base}#{n}",
                    contact_id=str(contact),
                    at=now,
                    dimension=dimension,
                    threshold=float(threshold),
                    direction="up" if move.target == "above" else "down",
                    engagement=round(evaluation.engagement, 6),
                )
            )
        elif move.kind == "segment":
            outputs.append(
                SegmentMembershipChanged(
                    event_id=f"{base}#{n}",
                    contact_id=str(contact),
                    at=now,
                    segment=move.reason,
                    change="entered" if move.target == "in" else "left",
                    initial=initial is not None and move.reason == initial,
                )
            )
        else:
            outputs.append(
                EngagementQuarterChanged(
                    event_id=f"{base}#{n}",
                    from_quarter=move.source,
                    to_quarter=move.target,
                    direction=evaluation.direction.value,
                    **common,
                )
            )
    if owner is not None:
        outputs.append(
            LeadRouted(
                event_id=f"{base}#routed",
                contact_id=str(contact),
                at=now,
                salesperson_id=owner.id,
                salesperson_name=owner.name,
                salesperson_email=owner.email,
                stage=evaluation.stage,
                engagement=round(evaluation.engagement, 6),
                reason="sales-ready",
            )
        )
    return outputs


def accept(contact: ContactId, salesperson_id: str, deps: Engagement) -> str:
    """A salesperson accepts the lead routed to them (SAL): the contact moves to the funnel's accepted stage."""
    funnel = deps.funnels.funnel()
    for _ in range(MAX_ATTEMPTS):
        record = deps.stages.profile(contact)
        if record is None or record.stage_removed_at is not None:  # unknown, or being erased
            raise NotFound(f"no contact {contact}")
        current = funnel.stage(record.stage).id
        if current == funnel.accepted and record.owner == salesperson_id:
            return current  # accepted already: nothing to do twice
        if record.owner != salesperson_id:
            raise Conflict(f"the lead is assigned to {record.owner or 'nobody'}, not {salesperson_id}")
        if not funnel.stage(current).routes_lead:
            raise Conflict(f"the contact is in stage {current}, not awaiting acceptance")
        now = deps.clock.now()
        evaluation = deps.evaluate(record, funnel, now)
        accepted = Move("stage", current, funnel.accepted, f"accepted by {salesperson_id}")
        evaluation = moved_to(record, evaluation, accepted, deps.segmenting(), deps.decay, now)
        evaluation, whole = first_part(record, evaluation, None)
        outputs = announcements(contact, record, evaluation, funnel, None, now)
        if deps.stages.apply(contact, record, evaluation, outputs, None, now):
            publish_pending(contact, deps)
            if not whole:
                resegment(contact, funnel, deps)
            return funnel.accepted
    raise Conflict("the contact kept changing; retry")


def move_to(contact: ContactId, stage: str, reason: str, deps: Engagement) -> str | None:
    """Move a contact to a stage of the funnel (an automation's step): recorded and announced like any
    move. Already there: nothing to do. Returns the stage, ``None`` for an unknown contact."""
    funnel = deps.funnels.funnel()
    target = funnel.stage(stage).id
    if target != stage:
        raise NotFound(f"no stage {stage} in the funnel")
    for _ in range(MAX_ATTEMPTS):
        record = deps.stages.profile(contact)
        if record is None or record.merged_into or record.stage_removed_at is not None:
            return None
        current = funnel.stage(record.stage).id
        if current == target:
            return current
        now = deps.clock.now()
        evaluation = deps.evaluate(record, funnel, now)
        moved = Move("stage", current, target, reason)
        evaluation = moved_to(record, evaluation, moved, deps.segmenting(), deps.decay, now)
        evaluation, whole = first_part(record, evaluation, None)
        outputs = announcements(contact, record, evaluation, funnel, None, now)
        if deps.stages.apply(contact, record, evaluation, outputs, None, now):
            publish_pending(contact, deps)
            if not whole:
                resegment(contact, funnel, deps)
            return target
    raise Conflict("the contact kept changing; retry")


def resegment(contact: ContactId, funnel: Funnel, deps: Engagement) -> None:
    """The segment moves a stage move by hand left for writes of their own (more segments changed than
    one write holds): the contact as it stands, its segments alone written, part by part."""
    segmenting = deps.segmenting()
    for _ in range(MAX_ATTEMPTS * 4):
        record = deps.stages.profile(contact)
        if segmenting is None or record is None or record.merged_into or record.stage_removed_at is not None:
            return
        now = deps.clock.now()
        stage = funnel.stage(record.stage).id
        current = deps.evaluate(record, funnel, now)
        membership = segmenting.membership(record, stage, current.quarter, False, deps.decay, now)
        if not membership.changed:
            return
        evaluation = replace(
            current,
            stage=stage,
            quarter=Quarter(record.quarter) if record.quarter else current.quarter,
            moves=tuple(segment_moves(membership)),
            sales_ready=record.sales_ready,
            route=False,
            write_due=False,
            score_above=record.score_above,
            segments=membership.segments,
        )
        evaluation, _ = first_part(record, evaluation, None)
        outputs = announcements(contact, record, evaluation, funnel, None, now)
        if deps.stages.apply(contact, record, evaluation, outputs, None, now):
            publish_pending(contact, deps)
    raise Conflict("the contact kept changing; retry")


@dataclass(frozen=True, slots=True)
class StageMoves:
    """Stage moves for automations' ``stage`` steps, through this use case."""

    deps: Engagement

    def move(self, contact: ContactId, stage: str, reason: str) -> None:
        move_to(contact, stage, reason, self.deps)

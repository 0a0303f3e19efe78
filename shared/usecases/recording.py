"""Recording events exactly once, and merging identities.

The store applies each contact's change atomically with its events, and each
event only if its messageId is new for that contact. A replay, an SDK retry or
a concurrent copy therefore either finds every event already there (nothing
happens) or applies the rest once. When a contact has been merged into another,
the store says so and its events are re-routed.

Merges are not done while recording: the change that records an identify or
alias also asks for them (``ContactChange.merge_from``), and ``link`` runs
later, triggered by that write (``shared.usecases.merging``). A request's cost
therefore does not grow with the merges it declares.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from shared.contacts.changes import (
    MAX_PROFILE_TRAIT_BYTES,
    TAGS_TRAIT,
    ContactChange,
    plan_change,
    trait_bytes,
)
from shared.contacts.identity import ContactId
from shared.contacts.model import ContactRecord
from shared.errors import DependencyUnavailable, PayloadTooLarge
from shared.scoring.decay import NEGLIGIBLE, Decay
from shared.scoring.engine import RuleUse, ScoringContext
from shared.scoring.model import DimensionScore
from shared.tracking.behaviours import Behaviour
from shared.tracking.messages import TrackedEvent

if TYPE_CHECKING:  # admin views: the tracking path never builds them (cold start)
    from shared.contacts.views import StoredEvent

#: How many times one request re-plans after duplicates or merges before giving up (503).
MAX_ROUNDS = 8
#: The anonymous history a merge moves in one request; older events stay and expire.
MAX_MOVED_EVENTS = 2000


@dataclass(frozen=True, slots=True)
class CommitOutcome:
    committed: bool
    #: messageIds the contact already had
    duplicates: frozenset[str] = frozenset()
    #: the contact was merged into this one; re-route
    merged_into: ContactId | None = None
    #: the contact's use of limited rules, when a limit refused the change
    rule_uses: Mapping[str, RuleUse] | None = None
    #: the change does not fit one write (DynamoDB's 4 KB expressions): split its events
    oversized: bool = False
    #: the contact cannot take this change (its profile would pass this limit); nothing was written
    refused: str | None = None


@dataclass(frozen=True, slots=True)
class MergePlan:
    """What a merged-away contact adds to the contact it joins. The target's own values win."""

    source: ContactId
    traits: dict[str, Any]
    tags: dict[str, datetime]
    counts: dict[str, int]
    groups: frozenset[str]
    anonymous_ids: frozenset[str]
    event_count: int
    revenue: Decimal
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    last_purchase_at: datetime | None
    scores: Mapping[str, DimensionScore] = field(default_factory=dict)
    rule_uses: Mapping[str, tuple[int, str | None]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Claim:
    """Who a merged-away identity belongs to, and whether its merge has finished."""

    owner: ContactId
    completed: bool = False
    #: the target was itself merged away meanwhile: resolve it again and retry
    target_moved: bool = False


@dataclass(frozen=True, slots=True)
class Moved:
    """What moving a merged-away contact's event log did."""

    count: int
    #: the source's copies of events whose messageId the target already holds: left on the source,
    #: to be retracted (the target keeps its own copy, and counts it once)
    duplicates: tuple[StoredEvent, ...] = ()


@dataclass(frozen=True, slots=True)
class Retraction:
    """What one stored copy of an event added to its contact, taken back when the copy is dropped.

    All amounts are negative: the store adds them to the target, in the same write that deletes the
    source's copy, so a retraction applies once however often a merge is resumed.
    """

    message_id: str
    counts: Mapping[str, int]
    revenue: Decimal
    scores: Mapping[str, DimensionScore]
    rule_uses: Mapping[str, int]
    event_count: int = -1


class Absorbed(StrEnum):
    DONE = "done"
    #: the merge marker says it was absorbed before
    ALREADY = "already"
    #: the target was merged away meanwhile
    MOVED = "moved"


@dataclass(frozen=True, slots=True)
class ChangeCapacity:
    """How much one atomic change may carry in a store (DynamoDB: 100 items, 4 KB expressions)."""

    max_events: int
    max_keys: int


class Profiles(Protocol):
    def profile(self, contact: ContactId) -> ContactRecord | None: ...


class ContactStore(Profiles, Protocol):
    """Recording: one atomic change per contact, no reads."""

    capacity: ChangeCapacity

    def commit(self, changes: Sequence[ContactChange]) -> list[CommitOutcome]: ...


class MergeStore(Profiles, Protocol):
    """Merging one identity into another, in steps that are each safe to repeat."""

    def claim(self, source: ContactId, target: ContactId, at: datetime) -> Claim: ...

    def move_events(self, source: ContactId, target: ContactId, limit: int) -> Moved: ...

    def retract(self, source: ContactId, target: ContactId, retraction: Retraction) -> Absorbed: ...

    def absorb(self, target: ContactId, plan: MergePlan, at: datetime) -> Absorbed: ...


@dataclass(frozen=True, slots=True)
class Recorded:
    accepted: int
    duplicates: int
    #: identity merges asked for (carried out off the request path)
    merges: int


def record(
    events: Sequence[TrackedEvent], store: ContactStore, now: datetime, scoring: ScoringContext | None = None
) -> Recorded:
    """Apply every new event once (scores included); the same writes ask for the merges they declare."""
    seen: set[str] = set()
    unique = [e for e in events if not (e.message_id in seen or seen.add(e.message_id))]
    accepted, duplicates, merges, refused = _commit(unique, store, scoring)
    if refused:
        raise _refusal(refused, recorded_others=len(refused) < len(unique))
    return Recorded(accepted=accepted, duplicates=duplicates + len(events) - len(unique), merges=merges)


def _commit(
    events: list[TrackedEvent], store: ContactStore, scoring: ScoringContext | None
) -> tuple[int, int, int, list[tuple[TrackedEvent, ContactId, str]]]:
    """Commit every call once; the calls a contact could not take come back (with the limit) unwritten."""
    routes: dict[ContactId, ContactId] = {}
    known: dict[ContactId, Mapping[str, RuleUse]] = {}
    splits: dict[str, int] = {}  # messageId -> part label, for changes the store found too big
    refused: list[tuple[TrackedEvent, ContactId, str]] = []
    accepted = duplicates = merges = 0
    pending = events
    for _ in range(MAX_ROUNDS):
        if not pending:
            return accepted, duplicates, merges, refused
        changes = [
            plan_change(contact, part, replace(scoring, known=known.get(contact, {})) if scoring else None)
            for contact, group in _group(pending, routes).items()
            for part in _split(group, store.capacity, splits)
        ]
        _check_trait_bytes(changes)
        pending = []
        for change, outcome in zip(changes, store.commit(changes), strict=True):
            if outcome.committed:
                accepted += len(change.events)
                merges += len(change.merge_from)
                continue
            if outcome.refused is not None:
                # The calls that grow the profile are refused; the contact's other calls still count.
                grows = {e.message_id for e in change.events if e.call == "identify" and e.traits}
                keep = [e for e in change.events if e.message_id not in grows] if grows else []
                refused += [(e, change.contact, outcome.refused) for e in change.events if e not in keep]
                pending.extend(keep)
                continue
            if outcome.oversized:
                if len(change.events) == 1:
                    raise PayloadTooLarge(
                        f"call {change.events[0].message_id} carries more traits, tags and scores than one write holds"
                    )
                label = max(splits.values(), default=0) + 1  # the later half gets a label of its own: a cut
                splits.update({e.message_id: label for e in change.events[len(change.events) // 2 :]})
                pending.extend(change.events)
                continue
            if outcome.rule_uses is not None:
                known[change.contact] = outcome.rule_uses
            if outcome.merged_into is not None:
                routes[change.contact] = outcome.merged_into
            duplicates += len(outcome.duplicates)
            pending.extend(e for e in change.events if e.message_id not in outcome.duplicates)
    if pending:
        raise DependencyUnavailable("events could not be recorded after repeated conflicts; retry")
    return accepted, duplicates, merges, refused


def _check_trait_bytes(changes: Sequence[ContactChange]) -> None:
    """Traits a request brings for one contact over the cap: refused before anything is written."""
    sizes: dict[ContactId, int] = {}
    for change in changes:
        sizes[change.contact] = sizes.get(change.contact, 0) + change.trait_bytes
    for contact, size in sizes.items():
        if size > MAX_PROFILE_TRAIT_BYTES:
            raise PayloadTooLarge(
                f"the traits sent for contact {contact} weigh {size} bytes, over the limit of "
                f"{MAX_PROFILE_TRAIT_BYTES // 1024} KB of traits per contact"
            )


def _refusal(
    refused: Sequence[tuple[TrackedEvent, ContactId, str]], recorded_others: bool
) -> PayloadTooLarge:
    """413 naming the refused calls and the limit; a resend changes nothing (the others count once)."""
    calls = ", ".join(e.message_id for e, _, _ in refused[:5]) + (" ..." if len(refused) > 5 else "")
    _, contact, limit = refused[0]
    others = "; every other call was recorded" if recorded_others else ""
    return PayloadTooLarge(f"call {calls} refused: contact {contact} would hold more than {limit}{others}")


def _group(
    events: Iterable[TrackedEvent], routes: dict[ContactId, ContactId]
) -> dict[ContactId, list[TrackedEvent]]:
    groups: dict[ContactId, list[TrackedEvent]] = {}
    for event in events:
        contact = ContactId.of(event.user_id, event.anonymous_id)
        seen = {contact}
        while contact in routes:
            contact = routes[contact]
            if contact in seen:
                break
            seen.add(contact)
        groups.setdefault(contact, []).append(event)
    return groups


def _split(
    events: list[TrackedEvent], capacity: ChangeCapacity, splits: Mapping[str, int] = {}
) -> Iterable[list[TrackedEvent]]:
    """Cut one contact's events into changes the store can apply atomically, in time order.

    A tag costs about three traits in an update expression; ``splits`` marks where the store said a
    change was too big for one write.
    """
    part: list[TrackedEvent] = []
    keys = 0
    for event in sorted(events, key=lambda e: e.timestamp):
        size = (
            len(event.traits) + 2 * len(event.traits.get(TAGS_TRAIT) or ()) if event.call == "identify" else 0
        )
        cut = bool(part) and splits.get(event.message_id, 0) != splits.get(part[-1].message_id, 0)
        if part and (cut or len(part) >= capacity.max_events or keys + size > capacity.max_keys):
            yield part
            part, keys = [], 0
        part.append(event)
        keys += size
    if part:
        yield part


def link(source: ContactId, target: ContactId, store: MergeStore, now: datetime, decay: Decay) -> bool:
    """Merge ``source`` into ``target`` once. Safe to repeat after a crash at any step.

    1. Claim the source, on condition that the target is not merged away itself (so two aliases in
       opposite directions can never both succeed): from now on the source's writes fail and
       re-route to the target. A repeated identify stops here, after one conditional write.
    2. Move its event log (idempotent copies, keyed by messageId). An event the target already holds
       (the same messageId sent under both identities) is not copied: its copy on the source is
       deleted together with taking back what it added (``retraction``), so it counts once.
    3. Absorb its profile into the target, guarded by merge markers, and mark the merge complete.
    An anonymous id already linked to another user stays with that user.
    """
    for _ in range(MAX_ROUNDS):
        if source.kind == "user_id":  # only known contacts can be targets, so only they can close a cycle
            target = resolve(target, store)
        if source == target:
            return False
        claim = store.claim(source, target, now)
        if claim.target_moved:
            target = resolve(target, store)
            continue
        if claim.owner != target or claim.completed:
            return False
        break
    else:
        raise DependencyUnavailable("identities kept moving during a merge; retry")
    for _ in range(MAX_ROUNDS):
        final = resolve(target, store)
        record = store.profile(source) or ContactRecord(contact_id=str(source))
        moved = store.move_events(source, final, MAX_MOVED_EVENTS)
        limited = frozenset(record.rule_uses)
        if any(
            store.retract(source, final, retraction(event, decay, limited)) is Absorbed.MOVED
            for event in moved.duplicates
        ):
            continue
        outcome = store.absorb(final, merge_plan(source, record, store.profile(final)), now)
        if outcome is not Absorbed.MOVED:
            return outcome is Absorbed.DONE
    raise DependencyUnavailable("the merge target kept moving; retry")


def retraction(event: StoredEvent, decay: Decay, limited: frozenset[str] = frozenset()) -> Retraction:
    """Minus what ``event`` added when it was recorded (see ``plan_change`` and ``score``).

    Its decaying sums are recomputed as scoring computed them: the write's time (the stored
    ``receivedAt``) picks the bucket, the event's own time the factor. ``limited`` names the rules
    whose uses the contact counts.
    """
    revenue = event.revenue or Decimal(0)
    signed = {Behaviour.PURCHASE.value: revenue, Behaviour.REFUND.value: -revenue}.get(event.behaviour, 0)
    totals: dict[str, int] = {}
    sums: dict[str, dict[str, dict[int, float]]] = {}
    for line in event.ledger:
        totals[line.dimension] = totals.get(line.dimension, 0) - line.points
        for memory in decay.memories:
            bucket = memory.bucket(event.received_at)
            per_bucket = sums.setdefault(line.dimension, {}).setdefault(memory.key, {})
            per_bucket[bucket] = per_bucket.get(bucket, 0.0) - memory.scaled(
                line.points, event.timestamp, bucket
            )
    return Retraction(
        message_id=event.message_id,
        counts={event.behaviour: -1},
        revenue=-Decimal(signed),
        scores={
            dimension: DimensionScore(
                total=Decimal(totals.get(dimension, 0)),
                sums={
                    key: {bucket: v for bucket, v in buckets.items() if abs(v) >= NEGLIGIBLE}
                    for key, buckets in sums.get(dimension, {}).items()
                },
            )
            for dimension in {*totals, *sums}
        },
        rule_uses={rule: -1 for rule in {line.rule_id for line in event.ledger} & limited},
    )


def resolve(contact: ContactId, store: Profiles, max_hops: int = 8) -> ContactId:
    """Follow merges to the contact that now holds this identity."""
    for _ in range(max_hops):
        record = store.profile(contact)
        if record is None or record.merged_into is None:
            return contact
        contact = ContactId.parse(record.merged_into)
    return contact


def merge_plan(source: ContactId, record: ContactRecord, target: ContactRecord | None) -> MergePlan:
    """Counts add up; traits and tags fill gaps only, and only while the target's traits stay within
    the cap per contact (the target's own values win, then the source's in name order); times keep the
    widest span."""
    anonymous = set(record.anonymous_ids)
    if source.kind == "anonymous_id":
        anonymous.add(source.value)
    return MergePlan(
        source=source,
        traits=_fills_within_cap(record.traits, target.traits if target else {}),
        tags=dict(record.tags),
        counts=dict(record.counts),
        groups=record.groups,
        anonymous_ids=frozenset(anonymous),
        event_count=record.event_count,
        revenue=record.revenue_total,
        scores=dict(record.scores),
        rule_uses={
            rule: (count, _later_day(day, (target.rule_uses.get(rule, (0, None))[1] if target else None)))
            for rule, (count, day) in record.rule_uses.items()
        },
        first_seen_at=_earliest(record.first_seen_at, target.first_seen_at if target else None),
        last_seen_at=_latest(record.last_seen_at, target.last_seen_at if target else None),
        last_purchase_at=_latest(record.last_purchase_at, target.last_purchase_at if target else None),
    )


def _fills_within_cap(source: Mapping[str, Any], target: Mapping[str, Any]) -> dict[str, Any]:
    """The source's traits the target lacks, as many as fit the target under MAX_PROFILE_TRAIT_BYTES:
    merging many visitors into one user (a browser key can ask for that) never overfills a profile."""
    room = MAX_PROFILE_TRAIT_BYTES - trait_bytes(target)
    fills: dict[str, Any] = {}
    for name in sorted(source):
        if name in target:
            continue
        size = trait_bytes({name: source[name]})
        if size <= room:
            fills[name], room = source[name], room - size
    return fills


def _later_day(*days: str | None) -> str | None:
    return max((d for d in days if d), default=None)


def _earliest(*times: datetime | None) -> datetime | None:
    return min((t for t in times if t is not None), default=None)


def _latest(*times: datetime | None) -> datetime | None:
    return max((t for t in times if t is not None), default=None)

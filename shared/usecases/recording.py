"""Recording events exactly once, and merging identities.

Recording appends each call to its contact's event log, once: the log refuses a
key it holds (the call's own time and messageId), so a replay, an SDK retry or a
concurrent copy is a duplicate. Nothing else is written on the request path; the
aggregation folds the new events into the profiles from the log's stream
(``shared.usecases.aggregation``), and asks there for the merges identify and
alias calls declare (``ContactChange.merge_from``). ``link`` runs later,
triggered by that write (``shared.usecases.merging``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from shared.contacts.changes import (
    MAX_PROFILE_TRAIT_BYTES,
    TAGS_TRAIT,
    ContactChange,
    identity_links,
    plan_change,
    trait_bytes,
)
from shared.contacts.identity import ContactId
from shared.contacts.model import ContactRecord
from shared.errors import DependencyUnavailable, PayloadTooLarge
from shared.recommendations.model import RecentProduct
from shared.scoring.decay import NEGLIGIBLE, Decay
from shared.scoring.engine import RuleUse, ScoreChange, ScoringContext
from shared.scoring.model import DimensionScore
from shared.tracking.behaviours import LEDGER_CALL, Behaviour
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
    #: the profile has folded in the events up to this stream position already (the merged-away
    #: contact's own position, with ``merged_into``)
    applied_through: str | None = None
    #: re-routed events the contact holds already (a replay, or moved by the merge): not counted again
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
    #: issue 15: the source's recent products, added to the target's (the union, folded when read)
    recent_products: tuple[RecentProduct, ...] = ()


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
    #: the copy's key in the source's log (``StoredEvent.key``)
    key: str | None = None
    #: the token of the put that stored the copy (``StoredEvent.put``): the merge marks the source with
    #: what it took back for that put, so that the put's re-route can give it back (``give_back``)
    put: str | None = None


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
    """Aggregation: one blind, conditional change per contact, no reads."""

    capacity: ChangeCapacity

    def commit(
        self, changes: Sequence[ContactChange], copies: Mapping[str, Mapping[str, Any]] = {}
    ) -> list[CommitOutcome]:
        """Fold each change in; a change re-routed from a merged-away contact (``origin``) also copies
        its events (``copies``: the log's items by messageId, opaque here) into the contact's log."""
        ...

    def give_back(self, source: ContactId, target: ContactId, copy: Mapping[str, Any]) -> Absorbed:
        """Give ``target`` back what the merge of ``source`` took back for this very put (``copy``: the
        log's item, opaque here), once: the merge retracted the source's copy of a call the target also
        holds as if the source had counted it, and a put that is re-routed was never counted there.
        ``source`` is any merged-away contact the put passed through (its origin, or a contact a merge
        moved its copy to). ``ALREADY`` when the merge of ``source`` took nothing back for that put (or
        it was given back before)."""
        ...


@dataclass(frozen=True, slots=True)
class NewEntry:
    """An event for a contact's log, with what it is expected to score (the ledger)."""

    contact: ContactId
    event: TrackedEvent
    ledger: tuple[ScoreChange, ...]


class EventLog(Protocol):
    """Recording: each event once, by its key; the messageIds that were there already."""

    def append(self, entries: Sequence[NewEntry]) -> frozenset[str]: ...

    def fits(self, change: ContactChange) -> bool:
        """Whether one profile write can fold the change in (DynamoDB's 4 KB expressions)."""
        ...


class MergeStore(Profiles, Protocol):
    """Merging one identity into another, in steps that are each safe to repeat."""

    def claim(self, source: ContactId, target: ContactId, at: datetime) -> Claim: ...

    def move_events(self, source: ContactId, target: ContactId, limit: int) -> Moved: ...

    def count_events(self, contact: ContactId) -> int:
        """How many events the contact's log holds now."""
        ...

    def retract(self, source: ContactId, target: ContactId, retraction: Retraction) -> Absorbed:
        """Delete the source's copy and take back from the target what it added, once; the source keeps
        what was taken back for that put, for its re-route to give back (``ContactStore.give_back``)."""
        ...

    def absorb(self, target: ContactId, plan: MergePlan, at: datetime) -> Absorbed: ...


@dataclass(frozen=True, slots=True)
class Recorded:
    accepted: int
    duplicates: int
    #: identity merges asked for (carried out off the request path)
    merges: int


def record(
    events: Sequence[TrackedEvent], log: EventLog, now: datetime, scoring: ScoringContext | None = None
) -> Recorded:
    """Append every new event once, with the ledger it is expected to score; nothing else is written.

    Each contact's events are planned here as the aggregation will fold them, so a call that no
    profile write could hold, or a request with more traits than a contact may keep, is refused (413)
    before anything is written. The profiles change off the request path (``aggregation``).
    """
    seen: set[str] = set()
    unique = [e for e in events if not (e.message_id in seen or seen.add(e.message_id))]
    changes = [plan_change(contact, group, scoring) for contact, group in group_by_contact(unique).items()]
    check_trait_bytes(changes)
    entries: list[NewEntry] = []
    for change in changes:
        if not log.fits(change):
            for event in change.events:
                if not log.fits(plan_change(change.contact, [event], scoring)):
                    raise PayloadTooLarge(
                        f"call {event.message_id} carries more traits, tags and scores than one write holds"
                    )
        entries += [
            NewEntry(change.contact, e, change.scored.ledger.get(e.message_id, ())) for e in change.events
        ]
    duplicates = log.append(entries)
    merges = 0
    for change in changes:  # a call the log held already (a replay) is not folded in again: no merge
        fresh = [e for e in change.events if e.message_id not in duplicates]
        merges += len({source for source, _ in identity_links(fresh)} - {change.contact})
    return Recorded(
        accepted=len(entries) - len(duplicates),
        duplicates=len(duplicates) + len(events) - len(unique),
        merges=merges,
    )


def check_trait_bytes(changes: Sequence[ContactChange]) -> None:
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


def group_by_contact(events: Iterable[TrackedEvent]) -> dict[ContactId, list[TrackedEvent]]:
    """Each call goes to its user, else its anonymous visitor (where merged away, the aggregation
    re-routes it: the request does not read who an identity belongs to)."""
    groups: dict[ContactId, list[TrackedEvent]] = {}
    for event in events:
        groups.setdefault(ContactId.of(event.user_id, event.anonymous_id), []).append(event)
    return groups


def split_change(
    events: Sequence[TrackedEvent], capacity: ChangeCapacity, splits: Mapping[str, int] = {}
) -> Iterable[list[TrackedEvent]]:
    """Cut one contact's events, in the order given, into changes the store can apply atomically.

    A tag costs about three traits in an update expression; ``splits`` marks where the store said a
    change was too big for one write.
    """
    part: list[TrackedEvent] = []
    keys = 0
    for event in events:
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
       deleted together with taking back what it added (``retraction``), so it counts once. A copy
       still on its way had added nothing: its re-route gives the retraction back (``give_back``).
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
        if not move_log(source, final, store, decay, frozenset(record.rule_uses)):
            continue
        outcome = store.absorb(final, merge_plan(source, record, store.profile(final)), now)
        if outcome is not Absorbed.MOVED:
            return outcome is Absorbed.DONE
    raise DependencyUnavailable("the merge target kept moving; retry")


def move_log(
    source: ContactId, target: ContactId, store: MergeStore, decay: Decay, limited: frozenset[str]
) -> bool:
    """Move a merged-away contact's event log to its contact; False if the target moved meanwhile.

    An event the target already holds is not copied: the source's copy is deleted together with
    taking back what it added to the target (``retraction``), so it counts once. The merge cannot tell
    a copy the source's profile counted from one still on its way (its stream record not folded yet):
    it takes back either, and marks the source with what it took; the re-route of a copy on its way
    gives that back (``ContactStore.give_back``).
    """
    moved = store.move_events(source, target, MAX_MOVED_EVENTS)
    return not any(
        store.retract(source, target, retraction(event, decay, limited)) is Absorbed.MOVED
        for event in moved.duplicates
    )


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
        key=event.key,
        # no mark for a copy a re-route counted (``folded``): the profile it went into counted it, so
        # the put must never be given back (its record, re-routed again, may pass this contact's mark)
        put=None if event.folded else event.put,
        counts={} if event.call == LEDGER_CALL else {event.behaviour: -1},
        event_count=0 if event.call == LEDGER_CALL else -1,  # an automation's points are no activity
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
        recent_products=record.recent_products,
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

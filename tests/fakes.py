"""In-memory stand-ins for the domain's ports, with the semantics the real adapters promise."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from secrets import token_urlsafe
from typing import Any, Generic, TypeVar

from shared.automations.awards import award_event, award_ledger
from shared.automations.book import AutomationBook
from shared.automations.catalogue import stored_automation
from shared.automations.engine import Plan, Timer
from shared.automations.model import Automation, StoredAutomation
from shared.automations.views import RunView, TimerView
from shared.clock import FixedClock
from shared.contacts.changes import MAX_PROFILE_TRAIT_BYTES, TIMEZONE_TRAIT, ContactChange, trait_bytes
from shared.contacts.identity import ContactId
from shared.contacts.model import ContactRecord
from shared.contacts.views import EventPage, EventView, LedgerEntry, LedgerLine, LedgerPage, StoredEvent
from shared.delivery.addresses import address_hash
from shared.delivery.consent import ConsentRecord
from shared.delivery.ledger import CLAIM_LEASE_SECONDS, FINAL_STATUSES, SendRecord, entry_key
from shared.delivery.ports import CapWindow, Recipient, SendingPause
from shared.delivery.ports import Claim as SendClaim
from shared.delivery.requests import DeliveryRequest
from shared.delivery.templates import EmailTemplate, StoredTemplate, stored_template
from shared.engagement.events import ContactRemoved, LeadRouted, Output
from shared.engagement.funnel import Funnel, default_funnel
from shared.engagement.routing import Salesperson, pick
from shared.engagement.transitions import Evaluation
from shared.errors import Conflict, DependencyUnavailable, InvalidRequest, NotFound, PayloadTooLarge
from shared.recommendations.model import RecentProduct
from shared.recommendations.recent import merged as merged_recent
from shared.scoring.catalogue import effective, stored_rule
from shared.scoring.decay import Decay
from shared.scoring.engine import LimitClaim, RuleUse, ScoreChange
from shared.scoring.model import DimensionScore
from shared.scoring.rules import Rule, RuleBook, StoredRule
from shared.tracking.messages import TrackedEvent
from shared.tracking.proofs import SourceSecret
from shared.tracking.rates import RateLimit
from shared.tracking.trust import Source, Trust
from shared.usecases.aggregation import Aggregation, Folded, NewEvent, aggregate
from shared.usecases.automation import RESUME_AFTER, Consumed, DueItem, Entry, Started
from shared.usecases.engagement import Delivery, Pending
from shared.usecases.merging import MergeRequest, Merging, on_merge_requested
from shared.usecases.recommendation_nightly import ScannedPage as ReconScannedPage
from shared.usecases.recommendation_nightly import (
    ScannedProfile,
    StagedInteractions,
    StagedModelPart,
    StoredModelItem,
    interactions_key,
    model_key,
)
from shared.usecases.recording import (
    Absorbed,
    ChangeCapacity,
    Claim,
    CommitOutcome,
    MergePlan,
    Moved,
    NewEntry,
    Retraction,
)
from shared.versioning import expect_version, next_version

#: The profile's traits a store holds at most (the adapter's wording, for the 413 it leads to).
TRAIT_LIMIT = f"{MAX_PROFILE_TRAIT_BYTES // 1024} KB of traits (the limit per contact)"
#: About what one DynamoDB write's 4 KB update expression holds: a trait costs one unit, a tag three.
MAX_WRITE_UNITS = 400
#: Events older than this when they arrive are history being imported (moves times one way only).
IMPORT_HORIZON = timedelta(days=1)


def stored_time(value: datetime) -> datetime:
    """A time as the store keeps it: milliseconds, UTC."""
    return value.astimezone(UTC).replace(microsecond=value.microsecond // 1000 * 1000)


@dataclass
class MemoryProfile:
    """One contact's profile as the contacts table holds it (tracking, merge and stage attributes)."""

    traits: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, datetime] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    groups: set[str] = field(default_factory=set)
    anonymous_ids: set[str] = field(default_factory=set)
    event_count: int = 0
    revenue: Decimal = Decimal(0)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    last_purchase: datetime | None = None
    #: ``last:<behaviour>``: kept for the behaviours the change carries (the aggregation keeps the watched)
    last_times: dict[str, datetime] = field(default_factory=dict)
    totals: dict[str, Decimal] = field(default_factory=dict)
    #: (dimension, memory key, bucket) -> decaying sum
    sums: dict[tuple[str, str, int], float] = field(default_factory=dict)
    rule_uses: dict[str, tuple[int, str | None]] = field(default_factory=dict)
    merged_into: str | None = None
    merged_at: datetime | None = None
    merge_completed: bool = False
    #: the merges the last change asked for (the marker), until they are done or cleared
    merge_requested: str | None = None
    #: the stream position of the last own event folded in (``aggregatedThrough``)
    aggregated_through: str | None = None
    #: merged away: what the merge took back per key of its log, with the put (``retracted:<key>``)
    retracted: dict[str, Retraction] = field(default_factory=dict)
    #: stage attributes, written by the stage store only (``ContactRecord`` field names)
    stage: dict[str, Any] = field(default_factory=dict)
    #: automation -> re-entry mark (a stored time, or ``never``), written by the run store only
    entered: dict[str, str] = field(default_factory=dict)
    #: channel -> the consent facts (``ConsentRecord`` field names: granted, revoked, confirmed_at)
    consent: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: issue 15: the recent products, folded (``shared.recommendations.recent.merged``)
    recent_products: tuple[RecentProduct, ...] = ()

    def record(self, contact: ContactId) -> ContactRecord:
        scores: dict[str, dict[str, Any]] = {}
        for dimension, total in self.totals.items():
            scores.setdefault(dimension, {"total": total, "sums": {}})
        for (dimension, memory, bucket), value in self.sums.items():
            score = scores.setdefault(dimension, {"total": Decimal(0), "sums": {}})
            score["sums"].setdefault(memory, {})[bucket] = value
        return ContactRecord(
            contact_id=str(contact),
            user_id=contact.value if contact.kind == "user_id" else None,
            anonymous_ids=frozenset(self.anonymous_ids),
            traits=dict(self.traits),
            tags=dict(self.tags),
            counts=dict(self.counts),
            groups=frozenset(self.groups),
            event_count=self.event_count,
            first_seen_at=self.first_seen,
            last_seen_at=self.last_seen,
            revenue_total=self.revenue,
            last_purchase_at=self.last_purchase,
            last_times=dict(self.last_times),
            merged_into=self.merged_into,
            merged_at=self.merged_at,
            scores={d: DimensionScore(**s) for d, s in scores.items()},
            rule_uses=dict(self.rule_uses),
            entered=dict(self.entered),
            consent={channel: ConsentRecord(**parts) for channel, parts in self.consent.items()},
            recent_products=tuple(
                e.model_copy(update={"at": stored_time(e.at)}) for e in self.recent_products
            ),
            **self.stage,
        )

    def add_scores(self, totals: Mapping[str, Any], sums: Mapping[tuple[str, str, int], float]) -> None:
        for dimension, points in totals.items():
            self.totals[dimension] = self.totals.get(dimension, Decimal(0)) + Decimal(points)
        for key, value in sums.items():
            self.sums[key] = self.sums.get(key, 0.0) + value


def _flat_sums(scores: Mapping[str, DimensionScore]) -> dict[tuple[str, str, int], float]:
    return {
        (dimension, memory, bucket): value
        for dimension, score in scores.items()
        for memory, buckets in score.sums.items()
        for bucket, value in buckets.items()
    }


@dataclass(frozen=True, slots=True)
class LogItem:
    """One event of a contact's log, as the events table holds it: its key, the call (times to the
    millisecond, as stored), what it scored, and the contact a merge or a re-route copied it from."""

    key: str
    event: TrackedEvent
    ledger: tuple[ScoreChange, ...] = ()
    moved_from: ContactId | None = None
    #: a re-route copied it here and counted it (a merge's copy is counted through the profile it absorbs)
    folded: bool = False
    #: which put stored it (the adapter's ``inserted`` token): a replay is another put
    inserted: int = 0

    @property
    def message_id(self) -> str:
        return self.event.message_id

    @property
    def position(self) -> tuple[str, str]:
        """Where it sits in the log: (its time, its key); a timed call's time is its own (in the key)."""
        stated = self.event.stated_time
        return (_text_time(stated if stated is not None else self.event.timestamp), self.key)

    def stored(self) -> StoredEvent:
        e = self.event
        return StoredEvent(
            message_id=e.message_id,
            key=self.key,
            put=str(self.inserted),
            folded=self.folded,
            call=e.call,
            behaviour=e.behaviour.value,
            event=e.event,
            timestamp=e.timestamp,
            received_at=e.received_at,
            revenue=e.revenue,
            body=e.body,
            ledger=[LedgerLine(**asdict(line)) for line in self.ledger],
        )


def _text_time(value: datetime) -> str:
    return stored_time(value).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def log_key(event: TrackedEvent) -> str:
    """The key a call gets in its contact's log: the same for every copy of it (an SDK's retry keeps
    the messageId and the time it stated); a call without a time of its own by its messageId only."""
    if event.stated_time is None:
        return f"M#{event.message_id}"
    return f"E#{_text_time(event.stated_time)}#{event.message_id}"


def as_logged(event: TrackedEvent) -> TrackedEvent:
    """The call as the log gives it back: times to the millisecond."""
    stated = event.stated_time
    return replace(
        event,
        timestamp=stored_time(event.timestamp),
        received_at=stored_time(event.received_at),
        stated_time=None if stated is None else stored_time(stated),
    )


@dataclass
class MemoryContactStore:
    """The event log, the contact store and the merge store, as the DynamoDB adapters behave, with the
    events table's stream: ``append`` queues each new event (``stream``), ``deliver_events`` runs the
    aggregation on what is queued, ``deliver_merges`` the merge function on the merges asked for."""

    capacity: ChangeCapacity = ChangeCapacity(max_events=99, max_keys=300)
    profiles: dict[ContactId, MemoryProfile] = field(default_factory=dict)
    #: contact -> key -> event: the events table
    log: dict[ContactId, dict[str, LogItem]] = field(default_factory=dict)
    markers: set[tuple[ContactId, ContactId]] = field(default_factory=set)
    #: profile writes made by ``commit`` (one per committed change)
    writes: int = 0
    #: events appended by the tracking path
    appends: int = 0
    #: commits of these contacts' changes fail (throttled, unavailable) until taken out
    failing: set[ContactId] = field(default_factory=set)
    #: the events table's stream: new events appended (never copies), not yet delivered
    stream: list[NewEvent] = field(default_factory=list)
    #: the last stream position given out
    position: int = 0
    #: merges asked for by committed changes, not yet delivered (the contacts table's stream): every
    #: tracking write of a profile that still holds a request delivers it again, as the stream does
    merge_requests: list[MergeRequest] = field(default_factory=list)

    # --- the event log (tracking's port, and the aggregation's ledgers) --------------------------------

    def append(self, entries: Sequence[NewEntry]) -> frozenset[str]:
        duplicates: set[str] = set()
        for entry in entries:
            event = as_logged(entry.event)
            self.position += 1
            item = LogItem(log_key(event), event, tuple(entry.ledger), inserted=self.position)
            held = self.log.setdefault(entry.contact, {})
            if item.key in held:
                duplicates.add(event.message_id)
                continue
            held[item.key] = item
            self.appends += 1
            position = f"{self.position:040d}"
            self.stream.append(
                NewEvent(entry.contact, event, item.key, item.ledger, position, {"item": item})
            )
        return frozenset(duplicates)

    def fits(self, change: ContactChange) -> bool:
        return _write_units(change) <= MAX_WRITE_UNITS

    def rewrite_ledger(self, contact: ContactId, key: str, ledger: tuple[ScoreChange, ...]) -> None:
        held = self.log.get(contact, {})
        if key in held:  # moved by a merge meanwhile: nothing to correct here
            held[key] = replace(held[key], ledger=tuple(ledger))

    def forget(self, contact: ContactId, keys: Sequence[str]) -> None:
        held = self.log.get(contact, {})
        for key in keys:
            held.pop(key, None)

    def message_ids(self, contact: ContactId) -> set[str]:
        """The messageIds in the contact's log."""
        return {item.message_id for item in self.log.get(contact, {}).values()}

    def new_events(self) -> list[NewEvent]:
        """What the stream holds since the last call (each new event once, in stream order)."""
        found, self.stream = self.stream, []
        return found

    def deliver_events(
        self,
        rules: Sequence[StoredRule] | None = None,
        decay: Decay | None = None,
        telemetry: CountingTelemetry | None = None,
    ) -> Folded:
        """Run the aggregation on the events appended so far, as the stream would (shipped rules or these)."""
        return aggregate(self.new_events(), self.aggregation(rules, decay, telemetry))

    def aggregation(
        self,
        rules: Sequence[StoredRule] | None = None,
        decay: Decay | None = None,
        telemetry: CountingTelemetry | None = None,
    ) -> Aggregation:
        return Aggregation(
            contacts=self,
            log=self,
            rules=StaticRules() if rules is None else StaticRules(list(rules)),
            decay=Decay() if decay is None else decay,
            telemetry=CountingTelemetry() if telemetry is None else telemetry,
        )

    # --- the contact store (aggregation's port) --------------------------------------------------------

    def commit(
        self, changes: Sequence[ContactChange], copies: Mapping[str, Mapping[str, Any]] = {}
    ) -> list[CommitOutcome]:
        """Each change on its own (the adapter writes one update, or one transaction, per change)."""
        return [self._commit(change, copies) for change in changes]

    def _commit(self, change: ContactChange, copies: Mapping[str, Mapping[str, Any]]) -> CommitOutcome:
        if change.contact in self.failing:
            raise DependencyUnavailable("the contact store is throttled; retry")
        if _write_units(change) > MAX_WRITE_UNITS:
            return CommitOutcome(False, oversized=True)
        held: frozenset[str] = frozenset()
        if change.origin is not None:  # the copies go in with the change, each only if its key is free
            log = self.log.get(change.contact, {})
            held = frozenset(
                e.message_id
                for e in change.events
                if not _uncounted(log.get(_copied(copies, e).key), _copied(copies, e))
            )
        refusal = self._refusal(change)
        if refusal is not None:
            return replace(refusal, duplicates=held)
        if held:
            return CommitOutcome(False, duplicates=held)
        self.writes += 1
        if change.origin is not None:
            log = self.log.setdefault(change.contact, {})
            for e in change.events:
                item = _copied(copies, e)
                log[item.key] = replace(item, moved_from=change.origin, folded=True)
        self._apply(change)
        p = self.profiles[change.contact]
        if change.last_position and change.origin is None:
            p.aggregated_through = change.last_position
        if change.merge_from:
            p.merge_requested = json.dumps(sorted(str(source) for source in change.merge_from))
        if p.merge_requested:
            sources = tuple(ContactId.parse(source) for source in json.loads(p.merge_requested))
            self.merge_requests.append(MergeRequest(change.contact, sources, p.merge_requested))
        return CommitOutcome(True)

    def _refusal(self, change: ContactChange) -> CommitOutcome | None:
        """Why the profile refuses the change (the adapter's conditions), or None."""
        p = self.profiles.get(change.contact)
        if p is None:
            return None
        if p.merged_into:
            return CommitOutcome(
                False, merged_into=ContactId.parse(p.merged_into), applied_through=p.aggregated_through
            )
        through = p.aggregated_through
        if change.origin is None and change.first_position and through and through >= change.first_position:
            return CommitOutcome(False, applied_through=through)
        over_limit = any(
            _past_limit(claim, *p.rule_uses.get(claim.rule_id, (0, None))) for claim in change.scored.limits
        )
        too_many_traits = (
            bool(change.trait_bytes) and trait_bytes(change.traits_after(p.traits)) > MAX_PROFILE_TRAIT_BYTES
        )
        if over_limit or too_many_traits:
            return CommitOutcome(
                False,
                rule_uses={k: RuleUse(c, d) for k, (c, d) in p.rule_uses.items()},
                refused=TRAIT_LIMIT if too_many_traits else None,
            )
        return None

    def _apply(self, change: ContactChange) -> None:
        p = self.profiles.setdefault(change.contact, MemoryProfile())
        received_at = stored_time(change.last_seen)
        p.traits.update(change.traits_set)
        for k in change.traits_unset:
            p.traits.pop(k, None)
        if change.timezone_hint:
            p.traits.setdefault(TIMEZONE_TRAIT, change.timezone_hint)
        for t in change.tags_add:
            p.tags.setdefault(t, received_at)
        for t in change.tags_remove:
            p.tags.pop(t, None)
        p.groups |= change.groups
        for b, c in change.counts.items():
            p.counts[b] = p.counts.get(b, 0) + c
        p.anonymous_ids |= change.anonymous_ids
        p.event_count += len(change.activity)
        p.revenue += change.revenue
        p.add_scores(change.scored.totals, change.scored.sums)
        for claim in change.scored.limits:
            count, day = p.rule_uses.get(claim.rule_id, (0, None))
            p.rule_uses[claim.rule_id] = (count + claim.count, claim.last_day if claim.first_day else day)
        for (channel, kind), fact in change.consent.items():
            p.consent.setdefault(channel, {})[kind] = fact.model_copy(update={"at": stored_time(fact.at)})
        p.recent_products = merged_recent(change.recent_products, p.recent_products)
        if not change.activity:  # points an automation awarded alone are no activity
            return
        horizon = change.last_seen - IMPORT_HORIZON
        first_seen = stored_time(change.first_seen)
        if p.first_seen is None or (change.first_seen < horizon and first_seen < p.first_seen):
            p.first_seen = first_seen
        p.last_seen = received_at
        purchase = change.last_purchase_at
        if purchase is not None and (
            purchase >= horizon or p.last_purchase is None or purchase > p.last_purchase
        ):
            p.last_purchase = stored_time(purchase)
        for behaviour, at in change.last_times.items():
            if at >= horizon:
                p.last_times[behaviour] = stored_time(at)

    def profile(self, contact: ContactId) -> ContactRecord | None:
        p = self.profiles.get(contact)
        return None if p is None else p.record(contact)

    # --- the merge store (the merge function's port) ---------------------------------------------------

    def claim(self, source: ContactId, target: ContactId, at: datetime) -> Claim:
        p = self.profiles.setdefault(source, MemoryProfile())
        if p.merged_into:
            return Claim(ContactId.parse(p.merged_into), completed=p.merge_completed)
        if self.profiles.get(target, MemoryProfile()).merged_into:
            return Claim(target, target_moved=True)
        p.merged_into, p.merged_at = str(target), stored_time(at)
        p.stage.pop("due_at", None)  # a merged-away contact is never due again
        return Claim(target)

    def count_events(self, contact: ContactId) -> int:
        return len(self.log.get(contact, {}))

    def move_events(self, source: ContactId, target: ContactId, limit: int) -> Moved:
        """The source's events by key, the last first; a key the target holds (and not as a copy from
        this source, made by an earlier attempt) stays on the source, reported as a duplicate."""
        items = self.log.get(source, {})
        held = self.log.setdefault(target, {})
        newest = sorted(items, reverse=True)[:limit]
        duplicates = []
        for key in newest:
            if key in held and held[key].moved_from != source:
                duplicates.append(items[key].stored())
                continue
            if key in held and held[key].folded:  # a re-route copied and counted it: keep its mark
                items.pop(key)
                continue
            held[key] = replace(items.pop(key), moved_from=source)
        return Moved(count=len(newest) - len(duplicates), duplicates=tuple(duplicates))

    def retract(self, source: ContactId, target: ContactId, retraction: Retraction) -> Absorbed:
        key = retraction.key or f"M#{retraction.message_id}"
        if key not in self.log.get(source, {}):
            return Absorbed.ALREADY
        p = self.profiles.setdefault(target, MemoryProfile())
        if p.merged_into:
            return Absorbed.MOVED
        del self.log[source][key]
        _add_retraction(p, retraction)
        if retraction.put:  # for the re-route of that very put, if it was on its way (``give_back``)
            self.profiles.setdefault(source, MemoryProfile()).retracted[key] = retraction
        return Absorbed.DONE

    def give_back(self, source: ContactId, target: ContactId, copy: Mapping[str, Any]) -> Absorbed:
        item: LogItem = copy["item"]
        marks = self.profiles.setdefault(source, MemoryProfile()).retracted
        taken = marks.get(item.key)
        if taken is None or taken.put != str(item.inserted):
            return Absorbed.ALREADY
        p = self.profiles.setdefault(target, MemoryProfile())
        if p.merged_into:
            return Absorbed.MOVED
        del marks[item.key]
        _add_retraction(p, taken, sign=-1)
        return Absorbed.DONE

    def clear_merge_request(self, target: ContactId, marker: str) -> None:
        p = self.profiles.get(target)
        if p is not None and p.merge_requested == marker:
            p.merge_requested = None

    def deliver_merges(self, now: datetime, decay: Decay = Decay()) -> int:
        """Run the merge function on every request so far, as the stream would; merges completed. A
        request that fails (``DependencyUnavailable``: retry later) is delivered again next time."""
        requests, self.merge_requests = self.merge_requests, []
        deps = Merging(FixedClock(now), self, decay, CountingTelemetry())
        merged = 0
        for request in requests:
            try:
                merged += on_merge_requested(request, deps)
            except DependencyUnavailable:
                self.merge_requests.append(request)
        return merged

    def absorb(self, target: ContactId, plan: MergePlan, at: datetime) -> Absorbed:
        p = self.profiles.setdefault(target, MemoryProfile())
        if p.merged_into:
            return Absorbed.MOVED
        for k, v in plan.traits.items():
            p.traits.setdefault(k, v)
        for tag, added in plan.tags.items():
            p.tags.setdefault(tag, stored_time(added))
        p.groups |= plan.groups
        p.merge_requested = None  # this write merges: it is no longer a request
        if (target, plan.source) in self.markers:
            return Absorbed.ALREADY
        self.markers.add((target, plan.source))
        self.profiles.setdefault(plan.source, MemoryProfile()).merge_completed = True
        for b, c in plan.counts.items():
            p.counts[b] = p.counts.get(b, 0) + c
        p.anonymous_ids |= plan.anonymous_ids
        p.event_count += plan.event_count
        p.revenue += plan.revenue
        p.recent_products = merged_recent(plan.recent_products, p.recent_products)
        p.add_scores({d: s.total for d, s in plan.scores.items()}, _flat_sums(plan.scores))
        for rule, (count, day) in plan.rule_uses.items():
            used, was = p.rule_uses.get(rule, (0, None))
            p.rule_uses[rule] = (used + count, max((d for d in (was, day) if d), default=None))
        times = [(plan.first_seen_at, "first_seen", min), (plan.last_seen_at, "last_seen", max)]
        times.append((plan.last_purchase_at, "last_purchase", max))
        for value, name, pick_one in times:
            if value is not None:
                was = getattr(p, name)
                setattr(p, name, stored_time(value) if was is None else pick_one(was, stored_time(value)))
        return Absorbed.DONE


def _add_retraction(p: MemoryProfile, retraction: Retraction, sign: int = 1) -> None:
    """What a merge takes back (its amounts are negative); ``sign=-1`` gives it back."""
    for b, c in retraction.counts.items():
        p.counts[b] = p.counts.get(b, 0) + sign * c
    p.event_count += sign * retraction.event_count
    p.revenue += sign * retraction.revenue
    p.add_scores(
        {d: sign * s.total for d, s in retraction.scores.items()},
        {k: sign * v for k, v in _flat_sums(retraction.scores).items()},
    )
    for rule, count in retraction.rule_uses.items():
        used, day = p.rule_uses.get(rule, (0, None))
        p.rule_uses[rule] = (used + sign * count, day)


def _copied(copies: Mapping[str, Mapping[str, Any]], event: TrackedEvent) -> LogItem:
    """The log item a re-routed event is copied from (what the fake's stream put in ``NewEvent.item``)."""
    return copies[event.message_id]["item"]


def _uncounted(held: LogItem | None, copy: LogItem) -> bool:
    """Whether a re-routed event may be counted: its key is free, or holds a merge's copy (not the
    contact's own put) of this very put (not a replay's), not yet counted (the adapter's condition on
    the copy). Whichever merge moved it last: in a chain of merges that is not the event's origin."""
    return held is None or (
        held.moved_from is not None and held.inserted == copy.inserted and not held.folded
    )


def _past_limit(claim: LimitClaim, used: int, last_day: str | None) -> bool:
    """The store's condition on a limited rule: uses left for the claim, and no use on its days yet."""
    if claim.per_contact is not None and used + claim.count > claim.per_contact:
        return True
    return claim.first_day is not None and last_day is not None and last_day >= claim.first_day


def _write_units(change: ContactChange) -> int:
    """Roughly what a change costs in one update expression (see ``MAX_WRITE_UNITS``)."""
    return (
        len(change.traits_set)
        + len(change.traits_unset)
        + 3 * (len(change.tags_add) + len(change.tags_remove) + len(change.groups))
        + len(change.counts)
        + len(change.scored.totals)
        + len(change.scored.sums)
        + 3 * len(change.scored.limits)
        + len(change.consent)
    )


@dataclass
class MemoryContactLog:
    """Pages of a contact's event log and score ledger (scored events only), newest first: by key, a
    call without a time of its own placed by its (corrected) time."""

    store: MemoryContactStore

    def events(self, contact: ContactId, limit: int, before: str | None = None) -> EventPage:
        page, cursor = self._page(contact, limit, before, scored=False)
        return EventPage(events=[EventView.of(e.stored()) for e in page], next_cursor=cursor)

    def ledger(self, contact: ContactId, limit: int, before: str | None = None) -> LedgerPage:
        page, cursor = self._page(contact, limit, before, scored=True)
        return LedgerPage(entries=[LedgerEntry.of(e.stored()) for e in page], next_cursor=cursor)

    def ledger_since(self, contact: ContactId, since: datetime, limit: int) -> tuple[list[LedgerEntry], bool]:
        found = [e.stored() for e in self.store.log.get(contact, {}).values() if e.ledger]
        found = sorted((e for e in found if e.timestamp >= since), key=lambda e: (e.timestamp, e.message_id))
        return [LedgerEntry.of(e) for e in reversed(found)][:limit], len(found) <= limit

    def _page(
        self, contact: ContactId, limit: int, before: str | None, scored: bool
    ) -> tuple[list[LogItem], str | None]:
        items = [e for e in self.store.log.get(contact, {}).values() if e.ledger or not scored]
        items.sort(key=lambda e: e.position, reverse=True)
        if before is not None:
            after = _decode_log_cursor(before, contact)
            items = [e for e in items if e.position < after]
        page = items[:limit]
        more = len(items) > limit
        cursor = json.dumps([str(contact), *page[-1].position]) if more else None
        return page, base64.urlsafe_b64encode(cursor.encode()).decode() if cursor else None


def _decode_log_cursor(cursor: str, contact: ContactId) -> tuple[str, str]:
    try:
        owner, *key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        valid = owner == str(contact) and len(key) == 2
    except (ValueError, TypeError, binascii.Error):
        valid = False
    if not valid:
        raise InvalidRequest("cursor is not valid for this contact", code="invalid_cursor")
    return key[0], key[1]


# issue 13 (history growth): the outbox keys as the adapter lays them out (stage moves apart)
from shared.adapters.stage_store import HISTORY, history_key, write_order


@dataclass
class MemoryOutboxEntry:
    output: Output
    delivered: set[str] = field(default_factory=set)
    refused: dict[str, str] = field(default_factory=dict)
    published: bool = False


@dataclass
class MemoryStageStore:
    """Stage state on the contact store's profiles, the history with its outbox, and the due times."""

    contacts: MemoryContactStore
    #: contact -> outbox key (``STAGE#<seq>#<n>``, sorting in time order) -> entry
    outbox: dict[ContactId, dict[str, MemoryOutboxEntry]] = field(default_factory=dict)
    #: issue 13: the members of each segment, as the memberships written here make them
    members: FakeSegmentMembers = field(default_factory=lambda: FakeSegmentMembers())
    #: issue 13: the items of each write made (the profile, announcements, memberships)
    write_items: list[int] = field(default_factory=list)
    #: issue 13 (history growth): contact -> outbox keys not yet published (the profile's ``stagePending``)
    pending_keys: dict[ContactId, set[str]] = field(default_factory=dict)
    #: items ``pending`` read (the profile and each pending entry), as the adapter reads them
    items_read: int = 0

    def profile(self, contact: ContactId) -> ContactRecord | None:
        return self.contacts.profile(contact)

    def apply(
        self,
        contact: ContactId,
        record: ContactRecord,
        evaluation: Evaluation,
        outputs: Sequence[Output],
        owner: Salesperson | None,
        now: datetime,
    ) -> bool:
        """Written only if the stage sequence is still the one read, and the contact is not merged away."""
        memberships = [m for m in evaluation.moves if m.kind == "segment"]
        if 1 + len(outputs) + len(memberships) > MAX_TRANSACTION_ITEMS:  # as DynamoDB refuses it
            raise ValueError(f"a transaction of {1 + len(outputs) + len(memberships)} items")
        p = self.contacts.profiles.get(contact)
        if p is None or p.merged_into or p.stage.get("stage_seq", 0) != record.stage_seq:
            return False
        if p.stage.get("stage_removed_at") is not None:  # merged away, or being erased
            return False
        self.write_items.append(1 + len(outputs) + len(memberships))
        if evaluation.segments is not None:
            p.stage["segments"] = evaluation.segments
        for move in memberships:
            members = self.members.members.setdefault(move.reason, set())
            (members.add if move.target == "in" else members.discard)(str(contact))
        seq = record.stage_seq + 1
        stage = p.stage
        stage.update(stage_seq=seq, quarter=evaluation.quarter.value, sales_ready=evaluation.sales_ready)
        if evaluation.stage_changed:
            stage.update(
                stage=evaluation.stage,
                stage_entered_at=stored_time(now),
                stage_baseline=record.scores.get("global", DimensionScore()),
            )
        if owner is not None:
            stage["owner"] = owner.id
            stage["routed_at"] = stored_time(now)  # issue 14: among the salesperson's leads
        if evaluation.write_due:
            stage["due_at"] = None if evaluation.due_at is None else stored_time(evaluation.due_at)
        stage["pending_outputs"] = stage.get("pending_outputs", 0) + len(outputs)
        entries = self.outbox.setdefault(contact, {})
        pending = self.pending_keys.setdefault(contact, set())
        for number, output in enumerate(outputs):
            key = history_key(seq, number, output)
            entries[key] = MemoryOutboxEntry(output)
            pending.add(key)
        return True

    def pending(self, contact: ContactId) -> list[Pending]:
        """As the adapter reads it: the profile, then each listed pending entry by key."""
        entries = self.outbox.get(contact, {})
        keys = sorted(self.pending_keys.get(contact, set()), key=write_order)
        self.items_read += 1 + len(keys)
        return [
            Pending(key=key, output=e.output, done=frozenset(e.delivered | e.refused.keys()))
            for key in keys
            if not (e := entries[key]).published
        ]

    def history(self, contact: ContactId, limit: int) -> list[Output]:
        entries = self.outbox.get(contact, {})
        return [entries[key].output for key in sorted(entries, key=write_order, reverse=True)[:limit]]

    def remove(self, contact: ContactId, record: ContactRecord, removal: ContactRemoved) -> bool:
        """Written only if the contact exists, its stage sequence is still the one read, it is not removed
        already and, for a merge, it is merged away."""
        p = self.contacts.profiles.get(contact)
        if p is None or p.stage.get("stage_seq", 0) != record.stage_seq:
            return False
        if p.stage.get("stage_removed_at") is not None or (removal.reason == "merged" and not p.merged_into):
            return False
        seq = record.stage_seq + 1
        self.write_items.append(2)
        p.stage.update(
            stage_seq=seq,
            stage_removed_at=stored_time(removal.at),
            pending_outputs=p.stage.get("pending_outputs", 0) + 1,
        )
        key = history_key(seq, 0, removal)
        self.outbox.setdefault(contact, {})[key] = MemoryOutboxEntry(removal)
        self.pending_keys.setdefault(contact, set()).add(key)
        return True

    def leave_segments(self, contact: ContactId, segments: frozenset[str]) -> None:
        for segment in segments:
            self.members.members.get(segment, set()).discard(str(contact))
        p = self.contacts.profiles.get(contact)
        if p is not None and p.merged_into:
            p.stage.pop("segments", None)

    def mark_delivered(self, contact: ContactId, deliveries: Sequence[Delivery]) -> None:
        entries = self.outbox.get(contact, {})
        for delivery in deliveries:
            entry = entries.get(delivery.key)
            if entry is None:
                continue
            entry.delivered |= delivery.sent
            entry.refused.update(delivery.refused)
            if delivery.complete and not entry.published:
                entry.published = True
                self.pending_keys.get(contact, set()).discard(delivery.key)
                stage = self.contacts.profiles[contact].stage
                stage["pending_outputs"] = stage.get("pending_outputs", 0) - 1


#: Where each announcement goes: the bus always; a routed lead also the lead topic and an email.
EVENTS_CHANNEL, LEAD_TOPIC, LEAD_EMAIL = "events", "sns", "ses"


@dataclass
class MemoryPublisher:
    """Announcements delivered channel by channel; a channel may refuse for good or fail for now."""

    #: channel -> error code: every send on it is refused for good
    refuse: dict[str, str] = field(default_factory=dict)
    #: channels failing for now (throttled, unavailable)
    unavailable: set[str] = field(default_factory=set)
    #: what went out, in order: (channel, announcement)
    sent: list[tuple[str, Output]] = field(default_factory=list)

    def channels(self, output: Output) -> list[str]:
        lead = isinstance(output, LeadRouted)
        return [EVENTS_CHANNEL, LEAD_TOPIC, LEAD_EMAIL] if lead else [EVENTS_CHANNEL]

    def publish(self, pending: Sequence[Pending]) -> list[Delivery]:
        deliveries = []
        for p in pending:
            sent: set[str] = set()
            refused: dict[str, str] = {}
            retry: set[str] = set()
            for channel in self.channels(p.output):
                if channel in p.done:
                    continue
                if channel in self.refuse:
                    refused[channel] = self.refuse[channel]
                elif channel in self.unavailable:
                    retry.add(channel)
                else:
                    self.sent.append((channel, p.output))
                    sent.add(channel)
            deliveries.append(Delivery(p.key, frozenset(sent), refused, frozenset(retry)))
        return deliveries


@dataclass
class StaticRules:
    """The shipped defaults, or the rules given."""

    rules: list[StoredRule] = field(default_factory=lambda: effective([]))

    def book(self) -> RuleBook:
        return RuleBook(self.rules)


@dataclass
class StaticWriteKeys:
    keys: dict[str, Source] = field(
        default_factory=lambda: {
            "browser": Source("website", Trust.BROWSER),
            "server": Source("backend", Trust.SERVER),
        }
    )

    def lookup(self, write_key: str) -> Source | None:
        return self.keys.get(write_key)


@dataclass
class CountingTelemetry:
    counts: dict[str, int] = field(default_factory=dict)

    def count(self, name: str, value: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + value

    def failure(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1


# --- configuration ports: each kept honest by tests/contract against its DynamoDB adapter -----------


@dataclass
class MemoryWriteKeys:
    """The write-key directory: hashes are an adapter detail, the behaviour is the contract."""

    keys: dict[str, tuple[Source, bool]] = field(default_factory=dict)

    def lookup(self, write_key: str) -> Source | None:
        found = self.keys.get(write_key)
        return None if found is None or found[1] else found[0]

    def register(
        self,
        write_key: str,
        source: str,
        trust: Trust,
        at: datetime,
        limit: RateLimit | None = None,
        *,
        requires_proof: bool = False,
    ) -> None:
        found = self.keys.get(write_key)
        if found is not None and (found[0].name, found[0].trust) != (source, trust):
            raise Conflict("that write key already belongs to another source or trust level")
        # registering again puts the whole item again, as the adapter does
        proof = requires_proof and trust is Trust.BROWSER
        self.keys[write_key] = (Source(source, trust, limit, requires_proof=proof), False)

    def set_limit(self, write_key: str, limit: RateLimit | None) -> None:
        if write_key not in self.keys:
            raise NotFound("no such write key")
        source, disabled = self.keys[write_key]
        self.keys[write_key] = (replace(source, limit=limit), disabled)

    def disable(self, write_key: str) -> None:
        if write_key not in self.keys:
            raise NotFound("no such write key")
        self.keys[write_key] = (self.keys[write_key][0], True)

    def require_proof(self, write_key: str, required: bool) -> None:
        if write_key not in self.keys:
            raise NotFound("no such write key")
        source, disabled = self.keys[write_key]
        self.keys[write_key] = (
            replace(source, requires_proof=required and source.trust is Trust.BROWSER),
            disabled,
        )


@dataclass
class MemoryIdentitySecrets:
    """Sources' identity secrets: the current one, and the previous one until the overlap ends."""

    secrets: dict[str, SourceSecret] = field(default_factory=dict)

    def secret_for(self, source: str) -> SourceSecret | None:
        return self.secrets.get(source)

    def create(self, source: str) -> str | None:
        if source in self.secrets:
            return None
        secret = token_urlsafe(32)
        self.secrets[source] = SourceSecret(secret)
        return secret

    def adopt(self, source: str, secret: str) -> None:
        self.secrets[source] = SourceSecret(secret)

    def rotate(self, source: str, now: datetime, overlap: timedelta) -> str:
        if not overlap >= timedelta(0):
            raise ValueError("the overlap must be zero or more")
        old = self.secrets.get(source)
        secret = token_urlsafe(32)
        self.secrets[source] = (
            SourceSecret(secret, old.current, now + overlap) if old is not None else SourceSecret(secret)
        )
        return secret


Document = TypeVar("Document", bound=Any)  # StoredRule, StoredAutomation, StoredTemplate


@dataclass
class MemoryVersionedDocuments(Generic[Document]):
    """Current documents and every version, tombstones included, versions never repeating: what
    ``shared.adapters.versioned_documents`` promises."""

    kind: str = "document"
    current: dict[str, Document] = field(default_factory=dict)
    versions: dict[str, list[Document]] = field(default_factory=dict)

    def stored(self) -> list[Document]:
        return sorted(self.current.values(), key=lambda d: d.id)

    def history(self, document_id: str) -> list[Document]:
        return list(reversed(self.versions.get(document_id, [])))

    def save_version(
        self,
        document_id: str,
        expected_version: int | None,
        build: Callable[[int], Document],
        base_version: int = 0,
    ) -> Document:
        current = self.current.get(document_id)
        in_force = current.version if current else base_version
        expect_version(self.kind, document_id, in_force, expected_version)
        latest = max((d.version for d in self.versions.get(document_id, [])), default=0)
        stored = build(next_version(in_force, latest))
        self.current[document_id] = stored
        self.versions.setdefault(document_id, []).append(stored)
        return stored

    def remove(self, document_id: str, at: datetime, expected_version: int | None) -> Document:
        current = self.current.get(document_id)
        if current is None:
            raise NotFound(f"no stored {self.kind} {document_id}")
        expect_version(self.kind, document_id, current.version, expected_version)
        del self.current[document_id]
        self.versions[document_id].append(current.model_copy(update={"version": current.version + 1}))
        return current


@dataclass
class MemoryRuleRepository(MemoryVersionedDocuments[StoredRule]):
    """Stored rules with versions that never repeat, and their history (tombstones included)."""

    kind: str = "rule"

    def book(self) -> RuleBook:
        return RuleBook(effective(self.stored()))

    def save(self, rule: Rule, at: datetime, expected_version: int | None, base_version: int) -> StoredRule:
        return self.save_version(rule.id, expected_version, partial(stored_rule, rule, at=at), base_version)


@dataclass
class MemoryAutomationRepository(MemoryVersionedDocuments[StoredAutomation]):
    """Stored automations, as ``DynamoAutomationStore`` keeps them; ``book`` reads them without a cache."""

    kind: str = "automation"

    def book(self) -> AutomationBook:
        return AutomationBook(self.stored())

    def save(self, automation: Automation, at: datetime, expected_version: int | None) -> StoredAutomation:
        return self.save_version(
            automation.id, expected_version, partial(stored_automation, automation, at=at)
        )


@dataclass
class MemoryEngagementConfig:
    """The funnel (the default until one is stored) and the sales team with its routing turn."""

    default: Funnel = field(default_factory=default_funnel)
    saved: tuple[Funnel, int] | None = None
    team: dict[str, Salesperson] = field(default_factory=dict)
    turn: int = 0

    def funnel(self) -> Funnel:
        return self.stored_funnel()[0]

    def stored_funnel(self) -> tuple[Funnel, int]:
        return self.saved or (self.default, 0)

    def save_funnel(self, funnel: Funnel, version: int, at: datetime) -> None:
        if version != self.stored_funnel()[1] + 1:
            raise Conflict("changed meanwhile; read it again and retry")
        self.saved = (funnel, version)

    def salespeople(self) -> list[Salesperson]:
        return [self.team[k] for k in sorted(self.team)]

    def save_salesperson(self, person: Salesperson, at: datetime) -> None:
        self.team[person.id] = person

    def remove_salesperson(self, person_id: str) -> None:
        if self.team.pop(person_id, None) is None:
            raise NotFound(f"no salesperson {person_id}")

    def assign(self, keep: str | None = None) -> Salesperson | None:
        available = [p for p in self.salespeople() if p.available]
        if not available:
            return None
        current = next((p for p in available if p.id == keep), None)
        if current is not None:
            return current
        self.turn += 1
        return pick(available, self.turn - 1)


@dataclass
class MemoryRateCounters:
    """Rate-limit counters: totals per (scope, id, window), added to atomically; ``unavailable`` makes
    every write fail as the adapter's do (``DependencyUnavailable``)."""

    totals: dict[tuple[str, str, int], int] = field(default_factory=dict)
    expiries: dict[tuple[str, str, int], int] = field(default_factory=dict)
    writes: int = 0
    unavailable: bool = False

    def add(self, scope: str, id: str, window: int, n: int, expires_at: int) -> int:
        if self.unavailable:
            raise DependencyUnavailable("the rate counters are unavailable right now; retry")
        self.writes += 1
        key = (scope, id, window)
        self.totals[key] = self.totals.get(key, 0) + n
        self.expiries[key] = expires_at
        return self.totals[key]


@dataclass
class MemoryRun:
    plan: Plan
    status: str
    at: datetime
    due_at: datetime | None


@dataclass
class MemoryRunStore:
    """Runs and timers per contact, with the re-entry marks on the contact store's profiles; a run, its
    timers, its mark and the timer it consumes are written together or not at all (the transaction)."""

    contacts: MemoryContactStore
    runs_by_contact: dict[ContactId, dict[str, MemoryRun]] = field(default_factory=dict)
    timers_by_contact: dict[ContactId, dict[str, Timer]] = field(default_factory=dict)
    #: the send ledger whose deferred entries share the due index (none: no sends are ever due)
    ledger: MemorySendLedger | None = None

    def start(
        self,
        contact: ContactId,
        run: Plan,
        *,
        now: datetime,
        entry: Entry | None = None,
        consumed: Consumed | None = None,
    ) -> Started:
        if run.key in self.runs_by_contact.get(contact, {}):
            return "duplicate"
        if entry is not None:
            p = self.contacts.profiles.get(contact)
            mark = None if p is None else p.entered.get(entry.automation)
            if p is None or (mark is not None and (mark == "never" or mark > _text_time(now))):
                return "limited"
        if consumed is not None and not self._still_at(contact, consumed):
            return "duplicate"
        self.runs_by_contact.setdefault(contact, {})[run.key] = MemoryRun(
            run, "pending", stored_time(now), stored_time(now + RESUME_AFTER)
        )
        if consumed is not None:
            self._consume(contact, consumed)
        for timer in run.timers:
            self._put(contact, timer)
        if entry is not None:
            until = "never" if entry.until is None else _text_time(entry.until)
            self.contacts.profiles[contact].entered[entry.automation] = until
        return "started"

    def pending(self, contact: ContactId, run_key: str) -> Plan | None:
        found = self.runs_by_contact.get(contact, {}).get(run_key)
        return found.plan if found is not None and found.status == "pending" else None

    def done(self, contact: ContactId, run_key: str) -> None:
        found = self.runs_by_contact.get(contact, {}).get(run_key)
        if found is not None:
            found.status, found.due_at = "done", None

    def arm(self, contact: ContactId, timers: Sequence[Timer]) -> int:
        armed = 0
        for timer in timers:
            if timer.key not in self.timers_by_contact.get(contact, {}):
                self._put(contact, timer)
                armed += 1
        return armed

    def timer(self, contact: ContactId, key: str) -> Timer | None:
        return self.timers_by_contact.get(contact, {}).get(key)

    def consume(self, contact: ContactId, consumed: Consumed) -> bool:
        if not self._still_at(contact, consumed):
            return False
        self._consume(contact, consumed)
        return True

    def due(self, now: datetime) -> list[DueItem]:
        found = [
            DueItem(contact, "profile")
            for contact, p in self.contacts.profiles.items()
            if p.stage.get("due_at") is not None and p.stage["due_at"] <= now and not p.merged_into
        ]
        for contact, timers in self.timers_by_contact.items():
            found += [DueItem(contact, "timer", key) for key, t in timers.items() if t.due <= now]
        for contact, runs in self.runs_by_contact.items():
            found += [
                DueItem(contact, "run", key)
                for key, r in runs.items()
                if r.due_at is not None and r.due_at <= now
            ]
        if self.ledger is not None:
            found += [DueItem(contact, "send", key) for contact, key in self.ledger.due(now)]
        return found

    def take_deferred_send(
        self, contact: ContactId, key: str, now: datetime, retry_at: datetime
    ) -> DeliveryRequest | None:
        return None if self.ledger is None else self.ledger.take_deferred(contact, key, now, retry_at)

    def runs(self, contact: ContactId, limit: int = 50) -> list[RunView]:
        views = [RunView.of(r.plan, r.status, r.at) for r in self.runs_by_contact.get(contact, {}).values()]  # type: ignore[arg-type]
        return sorted(views, key=lambda v: v.at, reverse=True)[:limit]

    def timers(self, contact: ContactId) -> list[TimerView]:
        return sorted(
            (TimerView.of(t) for t in self.timers_by_contact.get(contact, {}).values()), key=lambda v: v.due
        )

    def _still_at(self, contact: ContactId, consumed: Consumed) -> bool:
        held = self.timers_by_contact.get(contact, {}).get(consumed.key)
        return held is not None and held.n == consumed.n

    def _consume(self, contact: ContactId, consumed: Consumed) -> None:
        timers = self.timers_by_contact.setdefault(contact, {})
        timers.pop(consumed.key, None)
        if consumed.then is not None:
            self._put(contact, consumed.then)

    def _put(self, contact: ContactId, timer: Timer) -> None:
        """As stored: times to the millisecond, values as JSON gives them back."""
        stored = replace(
            timer,
            due=stored_time(timer.due),
            origin=None if timer.origin is None else stored_time(timer.origin),
            values=json.loads(json.dumps(dict(timer.values), default=str)),
        )
        self.timers_by_contact.setdefault(contact, {})[timer.key] = stored


@dataclass
class MemoryDeliveryQueue:
    """The delivery queue: what was handed over, in order (as delivery would read it: the JSON body)."""

    sent: list[DeliveryRequest] = field(default_factory=list)
    unavailable: bool = False
    #: ``postpone`` calls: (receipt, seconds the message stays hidden)
    postponed: list[tuple[str, int]] = field(default_factory=list)

    def enqueue(self, requests: Sequence[DeliveryRequest]) -> None:
        if any(len(r.model_dump_json().encode()) > 256 * 1024 for r in requests):
            raise PayloadTooLarge("a delivery request is over the 256 KB a queued message holds")
        if self.unavailable:
            raise DependencyUnavailable("the delivery queue is unavailable right now; retry")
        self.sent += [DeliveryRequest.model_validate_json(r.model_dump_json()) for r in requests]

    def postpone(self, receipt: str, seconds: int) -> None:
        """``Redeliveries``: (receipt, seconds hidden) recorded, within SQS's limits (0 to 12 hours) as
        ``SqsDeliveryQueue`` sets them."""
        from shared.adapters.delivery_queue import MAX_VISIBILITY_SECONDS

        if self.unavailable:
            raise DependencyUnavailable("the delivery queue is unavailable right now; retry")
        self.postponed.append((receipt, max(0, min(MAX_VISIBILITY_SECONDS, int(seconds)))))


@dataclass
class MemoryContactEffects:
    """Tags on the contact store's profiles; points as one entry of the contact's log per run, folded in
    by the aggregation as the adapter's are."""

    contacts: MemoryContactStore

    def tag(self, contact: ContactId, added: Sequence[str], removed: Sequence[str], at: datetime) -> None:
        p = self.contacts.profiles.get(contact)
        if p is None:
            return
        for tag in added:
            p.tags.setdefault(tag, stored_time(at))
        for tag in removed:
            if tag not in added:
                p.tags.pop(tag, None)

    def award(self, contact: ContactId, run: Plan, at: datetime) -> None:
        ledger = award_ledger(run)
        if ledger:
            self.contacts.append([NewEntry(contact, award_event(run, at), ledger)])


class MemorySuppressions:
    """The suppression list: by address hash, the first reason kept."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[str, datetime]] = {}

    def suppressed(self, channel: str, address: str) -> str | None:
        found = self.entries.get(address_hash(channel, address))
        return found[0] if found else None

    def suppress(self, channel: str, address: str, reason: str, at: datetime) -> None:
        self.entries.setdefault(address_hash(channel, address), (reason, at))


class MemoryDeliveryControl:
    def __init__(self) -> None:
        self.paused: SendingPause | None = None

    def pause(self) -> SendingPause | None:
        return self.paused

    def set_pause(self, pause: SendingPause | None) -> None:
        self.paused = pause


class StaticSecret:
    """The delivery secret, as Secrets Manager would give it."""

    def __init__(self, key: bytes = b"test-delivery-secret") -> None:
        self._key = key

    def key(self) -> bytes:
        return self._key


# --- delivery providers: each kept honest by tests/contract/test_delivery_providers.py ----------------
import re

from shared.delivery.mime import envelope_address, mime_message
from shared.delivery.ports import OutgoingEmail, ProviderRefused

#: what SNS takes as a phone number (E.164 with its plus)
E164 = re.compile(r"^\+[1-9]\d{1,14}$")


class _FailingNext:
    """Failures to raise on the next calls, in order (``fail_next``), as a provider would."""

    def __init__(self) -> None:
        self.failures: list[Exception] = []

    def fail_next(self, error: Exception, times: int = 1) -> None:
        """The next ``times`` calls raise ``error`` (``DependencyUnavailable``, ``ProviderRefused``)."""
        self.failures += [error] * times

    def _raise_if_failing(self) -> None:
        if self.failures:
            raise self.failures.pop(0)


class MemoryMailer(_FailingNext):
    """SES as the mailer sees it: builds the MIME message as SesMailer does (so a message SES would never
    take is refused the same way), records the email and its raw bytes, answers ``mail-1``, ``mail-2``...

    ``verified``: the identities SES may send from, addresses or domains (None: any); a sender none of
    them covers is refused as SES refuses it."""

    def __init__(self, verified: set[str] | None = None, clock: FixedClock | None = None) -> None:
        super().__init__()
        self.verified = verified
        self.clock = clock or FixedClock(datetime(2026, 12, 2, 9, 0, tzinfo=UTC))
        self.sent: list[OutgoingEmail] = []
        self.raw: list[bytes] = []

    def send(self, email: OutgoingEmail) -> str:
        self._raise_if_failing()
        try:
            raw = mime_message(email, self.clock.now())
            sender = envelope_address(email.sender)
        except ValueError as exc:
            raise ProviderRefused("invalid_message") from exc
        if self.verified is not None and not {sender, sender.rpartition("@")[2]} & self.verified:
            raise ProviderRefused("ses_message_rejected")
        self.sent.append(email)
        self.raw.append(raw)
        return f"mail-{len(self.sent)}"


class MemoryTexter(_FailingNext):
    """SNS for SMS: an opt-out list, E.164 numbers only, what was sent as (phone, text); ids ``sms-1``...
    ``fail_next`` fails sends; ``check_unavailable`` makes the opt-out check fail (throttled)."""

    def __init__(self, opted_out: set[str] | None = None) -> None:
        super().__init__()
        self.opted_out_numbers: set[str] = set(opted_out or ())
        self.sent: list[tuple[str, str]] = []
        self.check_unavailable = False

    def opted_out(self, phone: str) -> bool:
        if self.check_unavailable:
            raise DependencyUnavailable("the SMS provider is unavailable right now; retry")
        return phone in self.opted_out_numbers

    def send(self, phone: str, text: str) -> str:
        self._raise_if_failing()
        if not E164.match(phone):
            raise ProviderRefused("invalid_number")
        self.sent.append((phone, text))
        return f"sms-{len(self.sent)}"


@dataclass(frozen=True)
class PostedWebhook:
    url: str
    body: bytes
    headers: dict[str, str]
    timeout: float


class MemoryWebhookPoster:
    """Webhook endpoints: each post recorded, answered from ``answers`` in order (a status, or an exception
    to raise, e.g. ``DependencyUnavailable`` for a timeout), 200 once they run out. URLs are checked as
    HttpWebhookPoster checks them (https, or http to ``plain_http_hosts``)."""

    def __init__(
        self, answers: Sequence[int | Exception] = (), *, plain_http_hosts: frozenset[str] = frozenset()
    ) -> None:
        from shared.adapters.webhook_poster import checked_url

        self._checked_url = partial(
            checked_url, plain_http_hosts=frozenset(h.lower() for h in plain_http_hosts)
        )
        self.answers: list[int | Exception] = list(answers)
        self.posted: list[PostedWebhook] = []

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
        self._checked_url(url)
        self.posted.append(PostedWebhook(url, body, dict(headers), timeout))
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, Exception):
            raise answer
        return answer


# -- issue 11: email templates ------------------------------------------------------------------------


@dataclass
class MemoryTemplateRepository(MemoryVersionedDocuments[StoredTemplate]):
    """Stored email templates, as ``DynamoTemplateStore`` keeps them (``template`` reads without a cache)."""

    kind: str = "template"

    def template(self, template_id: str) -> StoredTemplate | None:
        return self.current.get(template_id)

    def save(
        self, template: EmailTemplate, at: datetime, expected_version: int | None, base_version: int = 0
    ) -> StoredTemplate:
        return self.save_version(
            template.id, expected_version, partial(stored_template, template, at=at), base_version
        )


class MemorySurveyQuestions:
    """Issue 15: survey questions read from the stored templates, as ``DynamoSurveyQuestions`` reads them
    (without its cache; kept honest by tests/contract/test_survey_questions.py). ``failing`` makes every
    read raise it; ``reads`` lists the surveys read."""

    def __init__(self, templates: MemoryTemplateRepository | None = None) -> None:
        self.templates = templates if templates is not None else MemoryTemplateRepository()
        self.failing: Exception | None = None
        self.reads: list[str] = []

    def question(self, survey_id: str) -> str | None:
        self.reads.append(survey_id)
        if self.failing is not None:
            raise self.failing
        template = self.templates.template(survey_id)
        return template.survey.question if template is not None and template.survey is not None else None


# --- delivery stores: the send ledger, frequency caps, recipients, engagement times ----------------------
# (kept honest by tests/contract/test_send_ledger.py, test_frequency_caps.py, test_recipients.py and
# test_engagement_times.py against their DynamoDB adapters)


@dataclass
class MemorySendEntry:
    record: SendRecord
    #: while deferred: the request, to queue again
    request: DeliveryRequest | None = None
    #: while deferred: its time on the due index (moved on when the timer function takes it)
    indexed: datetime | None = None


class MemorySendLedger:
    """The send ledger by request id, times as stored (milliseconds); the due index of its deferred
    entries is read by ``MemoryRunStore(ledger=...)``."""

    def __init__(self) -> None:
        self.entries: dict[str, MemorySendEntry] = {}

    def claim(self, request: DeliveryRequest, now: datetime) -> SendClaim:
        now = stored_time(now)
        held = self.entries.get(request.id)
        before = None if held is None else held.record
        if before is not None:
            stale = stored_time(now - timedelta(seconds=CLAIM_LEASE_SECONDS))
            claimable = (
                before.status == "failed"
                or (before.status == "deferred" and before.due_at is not None and before.due_at <= now)
                or (
                    before.status == "claimed"
                    and before.claimed_at is not None
                    and before.claimed_at <= stale
                )
            )
            if not claimable:
                return SendClaim("done" if before.status in FINAL_STATUSES else "busy", before)
        record = self._described(request, now, before).model_copy(
            update={
                "status": "claimed",
                "reason": None,
                "claimed_at": now,
                "attempts": (0 if before is None else before.attempts) + 1,
                "due_at": None,
            }
        )
        self.entries[request.id] = MemorySendEntry(record)
        return SendClaim("claimed", before)

    def complete(self, request: DeliveryRequest, provider_id: str, now: datetime) -> None:
        held = self.entries.get(request.id)
        if held is None or held.record.status != "claimed":
            return
        now = stored_time(now)
        held.record = self._described(request, now, held.record).model_copy(
            update={"status": "sent", "sent_at": now, "provider_id": provider_id, "reason": None}
        )

    def release(
        self, request: DeliveryRequest, reason: str, now: datetime, *, caps_taken: bool = False
    ) -> None:
        held = self.entries.get(request.id)
        if held is None or held.record.status != "claimed":
            return
        kept = held.record.caps_taken or caps_taken
        held.record = self._described(request, stored_time(now), held.record).model_copy(
            update={"status": "failed", "reason": reason, "caps_taken": kept}
        )

    def mark_in_doubt(self, request: DeliveryRequest, now: datetime, *, caps_taken: bool = False) -> None:
        held = self.entries.get(request.id)
        if held is None or held.record.status != "claimed":
            return
        kept = held.record.caps_taken or caps_taken
        held.record = self._described(request, stored_time(now), held.record).model_copy(
            update={"reason": "provider_in_doubt", "caps_taken": kept}
        )

    def drop_claim(self, request: DeliveryRequest) -> None:
        held = self.entries.get(request.id)
        if held is not None and held.record.status == "claimed":
            del self.entries[request.id]

    def settle(self, request: DeliveryRequest, status: str, reason: str | None, now: datetime) -> None:
        held = self.entries.get(request.id)
        if held is not None and held.record.status in FINAL_STATUSES:
            return
        if status != "held_out" and (held is None or held.record.status != "claimed"):
            return  # skipped follows a claim: an entry erased meanwhile stays erased
        record = self._described(request, stored_time(now), None if held is None else held.record)
        self.entries[request.id] = MemorySendEntry(
            record.model_copy(update={"status": status, "reason": reason, "due_at": None})
        )

    def defer(self, request: DeliveryRequest, until: datetime, reason: str, now: datetime) -> None:
        held = self.entries.get(request.id)
        if held is None or held.record.status != "claimed":
            return
        record = self._described(request, stored_time(now), None if held is None else held.record)
        self.entries[request.id] = MemorySendEntry(
            record.model_copy(update={"status": "deferred", "reason": reason, "due_at": stored_time(until)}),
            request=DeliveryRequest.model_validate_json(request.model_dump_json()),
            indexed=stored_time(until),
        )

    def record(self, request_id: str) -> SendRecord | None:
        held = self.entries.get(request_id)
        return None if held is None else held.record

    def records(self, contact_id: str, limit: int = 50) -> list[SendRecord]:
        contact = ContactId.parse(contact_id)
        found = [e.record for e in self.entries.values() if ContactId.parse(e.record.contact_id) == contact]
        return sorted(found, key=lambda r: (r.at, r.id), reverse=True)[:limit]

    # --- the due index, as the run store reads it ----------------------------------------------------

    def due(self, now: datetime) -> list[tuple[ContactId, str]]:
        """(contact, entry key) of the deferred entries whose index time has come."""
        now = stored_time(now)
        return [
            (ContactId.parse(e.record.contact_id), entry_key(e.record.id, e.record.contact_id))
            for e in self.entries.values()
            if e.indexed is not None and e.indexed <= now
        ]

    def take_deferred(
        self, contact: ContactId, key: str, now: datetime, retry_at: datetime
    ) -> DeliveryRequest | None:
        held = next(
            (
                e
                for e in self.entries.values()
                if ContactId.parse(e.record.contact_id) == contact
                and entry_key(e.record.id, e.record.contact_id) == key
            ),
            None,
        )
        if (
            held is None
            or held.record.status != "deferred"
            or held.request is None
            or held.indexed is None
            or held.indexed > stored_time(now)
        ):
            return None
        held.indexed = stored_time(retry_at)
        return held.request

    @staticmethod
    def _described(request: DeliveryRequest, now: datetime, before: SendRecord | None) -> SendRecord:
        kept = (
            {}
            if before is None
            else before.model_dump(exclude={"id", "contact_id", "automation", "channel", "at"})
        )
        return SendRecord(
            **{"status": "claimed", **kept},
            id=request.id,
            contact_id=request.contact_id,
            automation=request.automation,
            channel=request.channel,
            at=now,
        )


@dataclass
class MemoryFrequencyCaps:
    """Counters per (contact, channel, window key), each with its expiry; all windows or none."""

    counts: dict[tuple[str, str, str], int] = field(default_factory=dict)
    expiries: dict[tuple[str, str, str], datetime] = field(default_factory=dict)

    def take(self, contact_id: str, channel: str, windows: Sequence[CapWindow], now: datetime) -> bool:
        keys = [(contact_id, channel, w.key) for w in windows]
        if any(self.counts.get(k, 0) >= w.limit for k, w in zip(keys, windows, strict=True)):
            return False
        for k, w in zip(keys, windows, strict=True):
            self.counts[k] = self.counts.get(k, 0) + 1
            self.expiries[k] = w.ends + timedelta(days=1)
        return True


class MemoryRecipients:
    """Recipients from profiles (``profile(ContactId)``: the contact store fake, or any reader), merges
    followed as the adapter follows them."""

    MAX_MERGE_HOPS = 4

    def __init__(self, profiles: Any) -> None:
        self.profiles = profiles

    def recipient(self, contact_id: str) -> Recipient | None:
        contact = ContactId.parse(contact_id)
        for _ in range(self.MAX_MERGE_HOPS):
            record = self.profiles.profile(contact)
            if record is None:
                return None
            if not record.merged_into:

                def text(name: str, traits: Mapping[str, Any] = record.traits) -> str | None:
                    value = traits.get(name)
                    return (value.strip() or None) if isinstance(value, str) else None

                return Recipient(
                    contact_id=record.contact_id,
                    email=text("email"),
                    phone=text("phone"),
                    timezone=text(TIMEZONE_TRAIT),
                    traits=dict(record.traits),
                    tags=tuple(sorted(record.tags)),
                    stage=record.stage,
                    consent={c: r for c, r in record.consent.items() if c in ("email", "sms")},
                )
            contact = ContactId.parse(record.merged_into)
        return None


class MemoryEngagementTimes:
    """The stated times in the keys of the contact store fake's log (``E#<time>#<id>``), newest first."""

    def __init__(self, contacts: MemoryContactStore) -> None:
        self.contacts = contacts

    def recent_times(self, contact_id: str, limit: int) -> list[datetime]:
        keys = sorted(
            (k for k in self.contacts.log.get(ContactId.parse(contact_id), {}) if k.startswith("E#")),
            reverse=True,
        )
        return [datetime.fromisoformat(k.split("#", 2)[1]) for k in keys[: max(limit, 0)]]


# --- issue 11: feedback (erasure) -------------------------------------------------------------------------


import typing

if typing.TYPE_CHECKING:
    from shared.usecases.erasure import Erased
    from shared.usecases.search import FoundPage, StoredTerms


class MemoryContactErasure:
    """Erasing a contact's partitions in ``MemoryContactStore`` (its log, merge markers and profile) and
    in ``others`` (sort keys of the other contacts-table items kept under it: runs, timers, stage history,
    the send ledger), as ``DynamoContactErasure`` does: events first, the profile last, ``limit`` items
    at most per call."""

    def __init__(self, store: MemoryContactStore, search: MemoryContactSearch | None = None) -> None:
        self.store = store
        self.others: dict[ContactId, set[str]] = {}
        #: issue 14: the search items kept under the contact's partition
        self.search = search

    def merged_identities(self, contact: ContactId) -> frozenset[ContactId]:
        found = {source for target, source in self.store.markers if target == contact}
        profile = self.store.profiles.get(contact)
        found |= {ContactId.anonymous(a) for a in (profile.anonymous_ids if profile else ())}
        found.discard(contact)
        return frozenset(found)

    def erase(self, contact: ContactId, limit: int) -> Erased:
        from shared.usecases.erasure import Erased

        log = self.store.log.get(contact, {})
        markers = sorted(m for m in self.store.markers if m[0] == contact)
        others = self.others.get(contact, set())
        deleted = 0
        searched = self.search.held if self.search is not None else {}
        while deleted < limit and (
            log or markers or others or contact in searched or contact in self.store.profiles
        ):
            if log:
                log.pop(min(log))
            elif markers:
                self.store.markers.discard(markers.pop(0))
            elif others:
                others.discard(min(others))
            elif self.search is not None and contact in searched:
                deleted += self.search.forget(contact) - 1  # issue 14: its search items, before the profile
            else:
                del self.store.profiles[contact]
            deleted += 1
        done = not (log or markers or others or contact in searched or contact in self.store.profiles)
        if done:
            self.store.log.pop(contact, None)
        return Erased(deleted=deleted, done=done)


# --- issue 11, consent --------------------------------------------------------------------------------------


@dataclass
class MemoryConsentProfiles:
    """``ConsentProfiles`` on the fake contact store: a consent fact set at once on the profile holding the
    contact (merges followed), nothing where there is none."""

    contacts: MemoryContactStore

    def revoke(self, contact: ContactId, channel: str, fact: Any) -> ContactId | None:
        return self._set(contact, channel, "revoked", fact.model_copy(update={"at": stored_time(fact.at)}))

    def confirm(self, contact: ContactId, channel: str, at: datetime) -> ContactId | None:
        return self._set(contact, channel, "confirmed_at", stored_time(at))

    def granted_since(self, contact: ContactId, channel: str, at: datetime) -> bool:
        for _ in range(4):
            p = self.contacts.profiles.get(contact)
            if p is None:
                return False
            if p.merged_into:
                contact = ContactId.parse(p.merged_into)
                continue
            granted = p.consent.get(channel, {}).get("granted")
            return granted is not None and granted.at >= at
        return False

    def _set(self, contact: ContactId, channel: str, part: str, value: Any) -> ContactId | None:
        for _ in range(4):
            p = self.contacts.profiles.get(contact)
            if p is None:
                return None
            if p.merged_into:
                contact = ContactId.parse(p.merged_into)
                continue
            p.consent.setdefault(channel, {})[part] = value
            return contact
        return None


# --- issue 12: the nightly analytics job: staging, the purchase index, analytics on the profiles ----------
import threading
import zlib
from collections.abc import Collection, Iterator

from shared.analytics.changes import Announcement
from shared.analytics.events import AnalyticsOutput
from shared.analytics.facts import Analytics
from shared.tracking.baskets import basket
from shared.tracking.behaviours import Behaviour
from shared.usecases.analytics import (
    Held,
    Outcome,
    Previous,
    Recorded,
    ScannedPage,
    ScannedPurchase,
    StagedPurchases,
    StagedScores,
    purchases_key,
    scores_key,
)


@dataclass
class MemoryStaging:
    """The staging bucket: key -> the file's JSON text (validated again when read, as the adapter does)."""

    files: dict[str, str] = field(default_factory=dict)

    def save_purchases(self, staged: StagedPurchases) -> str:
        key = purchases_key(staged.day, staged.segment, staged.segments)
        self.files[key] = staged.model_dump_json()
        return key

    def purchases(self, day: Any, segment: int, segments: int) -> StagedPurchases | None:
        text = self.files.get(purchases_key(day, segment, segments))
        return None if text is None else StagedPurchases.model_validate_json(text)

    def save_scores(self, staged: StagedScores) -> str:
        key = scores_key(staged.day, staged.part)
        self.files[key] = staged.model_dump_json()
        return key

    def scores(self, key: str) -> StagedScores | None:
        text = self.files.get(key)
        return None if text is None else StagedScores.model_validate_json(text)


@dataclass
class MemoryPurchaseScan:
    """The purchase index over ``MemoryContactStore``'s log: its purchases (not refunds or cancellations),
    each contact's in one segment (by a hash of the contact, as DynamoDB segments by partition key)."""

    contacts: MemoryContactStore

    #: purchases per page
    page_size: int = 2

    def scan(self, segment: int, segments: int) -> Iterator[ScannedPage]:
        found = [
            ScannedPurchase(
                contact_id=str(contact),
                purchased_at=item.event.timestamp,
                amount=float(item.event.revenue or 0),
                basket=basket(item.event.properties),
            )
            for contact, items in self.contacts.log.items()
            if zlib.crc32(str(contact).encode()) % segments == segment
            for item in items.values()
            if item.event.behaviour is Behaviour.PURCHASE
        ]
        for start in range(0, len(found), self.page_size):
            page = found[start : start + self.page_size]
            yield ScannedPage(purchases=page, read=len(page))


@dataclass
class MemoryHistoryEntry:
    announcement: Announcement
    published: bool = False
    refused: str | None = None


@dataclass
class MemoryAnalyticsStore:
    """Analytics on ``MemoryContactStore``'s profiles (``ContactRecord.analytics``), the history with its
    outbox and the keys of the unpublished announcements, under the adapter's conditions. A write with changes is the
    adapter's transaction: it reports no old image (``found`` None when written)."""

    contacts: MemoryContactStore
    #: contact -> history key (``<day>#<kind>``) -> entry
    entries: dict[ContactId, dict[str, MemoryHistoryEntry]] = field(default_factory=dict)
    #: contact -> the keys of its announcements not published yet (the profile's list)
    unpublished_keys: dict[ContactId, frozenset[str]] = field(default_factory=dict)
    #: writes made (accepted or refused), and reads (``unpublished``: one per key, ``history``)
    writes: int = 0
    reads: int = 0
    #: the apply step calls it from several threads: each call is atomic, as each DynamoDB call is
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def record(
        self, contact: ContactId, analytics: Analytics, changes: Sequence[Announcement], previous: Previous
    ) -> Recorded:
        with self.lock:
            return self._record(contact, analytics, changes, previous)

    def _record(
        self, contact: ContactId, analytics: Analytics, changes: Sequence[Announcement], previous: Previous
    ) -> Recorded:
        self.writes += 1
        p = self.contacts.profiles.get(contact)
        if p is None or p.merged_into:
            return Recorded(written=False, found=None)
        held: Analytics | None = p.stage.get("analytics")
        found = Held(held, self.unpublished_keys.get(contact, frozenset()))
        if not _expected(held, analytics, previous):
            return Recorded(written=False, found=found)
        p.stage["analytics"] = analytics
        entries = self.entries.setdefault(contact, {})
        for announcement in changes:
            entries[announcement.key] = MemoryHistoryEntry(announcement)
        self.unpublished_keys[contact] = found.unpublished | {a.key for a in changes}
        return Recorded(written=True, found=None if changes else found)

    def unpublished(self, contact: ContactId, keys: Collection[str]) -> list[Announcement]:
        with self.lock:
            self.reads += len(keys)
            entries = self.entries.get(contact, {})
            return [
                entries[k].announcement for k in sorted(keys) if k in entries and not entries[k].published
            ]

    def mark_published(self, contact: ContactId, published: Sequence[tuple[Announcement, Outcome]]) -> None:
        with self.lock:
            if contact not in self.contacts.profiles:  # erased: nothing to mark, nothing recreated
                return
            entries = self.entries.get(contact, {})
            for announcement, outcome in published:
                entry = entries.get(announcement.key)
                if entry is None:
                    continue
                entry.published, entry.refused = True, outcome.refused
                self.writes += 1
                left = self.unpublished_keys.get(contact, frozenset())
                self.unpublished_keys[contact] = left - {announcement.key}

    def history(self, contact: ContactId, limit: int) -> list[AnalyticsOutput]:
        with self.lock:
            self.reads += 1
            entries = self.entries.get(contact, {})
            return [entries[k].announcement.output for k in sorted(entries, reverse=True)[:limit]]


def _expected(held: Analytics | None, analytics: Analytics, previous: Previous) -> bool:
    """The adapter's condition on the profile's analytics (existence and merges checked before)."""
    if previous.unchanged:
        return held is not None and held.day < analytics.day and _standing(held) == _standing(analytics)
    if previous.analytics is None:
        return held is None
    return held is not None and held.day == previous.analytics.day


def _standing(analytics: Analytics) -> tuple[str | None, str | None]:
    """What announcements are about: the segment and the risk level."""
    return (
        analytics.rfm.segment if analytics.rfm else None,
        analytics.churn.level if analytics.churn else None,
    )


@dataclass
class MemoryAnnouncer:
    """The bus: every announcement sent, unless it is refused for good (``refuse``: the error code) or the
    bus fails for now (``unavailable``: the next ``unavailable`` calls' announcements)."""

    refuse: str | None = None
    unavailable: int = 0
    sent: list[AnalyticsOutput] = field(default_factory=list)
    #: PutEvents calls (ten announcements each at most)
    calls: int = 0
    #: the apply step calls it from several threads: each call is atomic
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def announce(self, outputs: Sequence[AnalyticsOutput]) -> list[Outcome]:
        outcomes = []
        for start in range(0, len(outputs), 10):
            chunk = outputs[start : start + 10]
            with self.lock:
                self.calls += 1
                if self.unavailable:
                    self.unavailable -= 1
                    outcomes += [Outcome()] * len(chunk)
                elif self.refuse is not None:
                    outcomes += [Outcome(refused=self.refuse)] * len(chunk)
                else:
                    self.sent += chunk
                    outcomes += [Outcome(sent=True)] * len(chunk)
        return outcomes


# --- issue 13: segments -------------------------------------------------------------------------------

from shared.segments.book import SegmentBook
from shared.segments.catalogue import SegmentRepository
from shared.segments.members import MemberPage
from shared.segments.model import Segment, StoredSegment, stored_segment

#: DynamoDB's limit on the items of one transaction
MAX_TRANSACTION_ITEMS = 100


@dataclass
class MemorySalesLeads:
    """Issue 14: a salesperson's leads (``shared.admin.dependencies.SalesLeads``), as the look-up index
    lists them: profiles routed to them, not merged away, the most recently routed first."""

    contacts: MemoryContactStore
    #: leads read (one Query and one BatchGetItem each on DynamoDB)
    reads: int = 0

    def leads(self, salesperson_id: str, limit: int) -> list[ContactRecord]:
        self.reads += 1
        records = [self.contacts.profile(contact) for contact in self.contacts.profiles]
        owned = [r for r in records if r and r.owner == salesperson_id and not r.merged_into and r.routed_at]
        owned.sort(key=lambda r: (stored_time(r.routed_at), r.contact_id), reverse=True)
        return owned[:limit]


class FakeSegmentMembers:
    """Memberships in memory (``shared.segments.members.SegmentMembers``), members in contact-id order."""

    def __init__(self, members: dict[str, set[str]] | None = None) -> None:
        self.members: dict[str, set[str]] = {k: set(v) for k, v in (members or {}).items()}
        self.requests = 0

    def page(self, segment_id: str, after: str | None, limit: int) -> MemberPage:
        self.requests += 1
        ordered = sorted(c for c in self.members.get(segment_id, set()) if after is None or c > after)
        taken = ordered[:limit]
        return MemberPage(contact_ids=taken, after=taken[-1] if len(ordered) > limit else None)

    def count(self, segment_id: str) -> int:
        self.requests += 1
        return len(self.members.get(segment_id, set()))


@dataclass
class MemorySegmentRepository(MemoryVersionedDocuments[StoredSegment]):
    """Stored segments, as ``DynamoSegmentStore`` keeps them; ``book`` reads them without a cache."""

    kind: str = "segment"
    #: how many times the book was read (a cached store reads the table once per cache period)
    books: int = 0

    def book(self) -> SegmentBook:
        self.books += 1
        return SegmentBook(self.stored())

    def save(self, segment: Segment, at: datetime, expected_version: int | None) -> StoredSegment:
        return self.save_version(segment.id, expected_version, partial(stored_segment, segment, at=at))


_: type[SegmentRepository] = MemorySegmentRepository  # the fake keeps the port's shape


# --- issue 13: campaigns ------------------------------------------------------------------------------

from shared.campaigns.book import CampaignBook
from shared.campaigns.model import LIVE, Campaign, CampaignState, StoredCampaign, stored_campaign
from shared.campaigns.ports import LiveCampaign
from shared.campaigns.results import ArmCounts, Exposure, Measure, totals


@dataclass
class MemoryCampaignRepository(MemoryVersionedDocuments[StoredCampaign]):
    """Stored campaigns, as ``DynamoCampaignStore`` keeps them (every version readable)."""

    kind: str = "campaign"

    def book(self) -> CampaignBook:
        return CampaignBook(self.stored())

    def campaign(self, campaign_id: str) -> StoredCampaign | None:
        return self.current.get(campaign_id)

    def version(self, campaign_id: str, version: int) -> StoredCampaign | None:
        return next((c for c in self.versions.get(campaign_id, []) if c.version == version), None)

    def save(self, campaign: Campaign, at: datetime, expected_version: int | None) -> StoredCampaign:
        return self.save_version(campaign.id, expected_version, partial(stored_campaign, campaign, at=at))


@dataclass
class MemoryCampaignStates:
    """Campaign states with their revisions, and the live set (``DynamoCampaignStates``)."""

    states: dict[str, CampaignState] = field(default_factory=dict)
    live_since: dict[str, datetime] = field(default_factory=dict)
    #: requests made (reads and writes), for the bench
    requests: int = 0
    #: the next write fails as a lost race would (another run wrote first)
    lose_next_write: bool = False

    def state(self, campaign_id: str) -> CampaignState | None:
        self.requests += 1
        found = self.states.get(campaign_id)
        return None if found is None else _state_roundtrip(found)

    def live(self) -> list[LiveCampaign]:
        self.requests += 1
        return [LiveCampaign(c, at) for c, at in sorted(self.live_since.items())]

    def create(self, state: CampaignState) -> bool:
        if state.status not in LIVE:
            raise ValueError("a campaign's first state is scheduled or sending")
        self.requests += 1
        if state.campaign_id in self.states:
            return False
        self.states[state.campaign_id] = _state_roundtrip(state.model_copy(update={"revision": 0}))
        self.live_since[state.campaign_id] = stored_time(state.send_at)
        return True

    def write(self, state: CampaignState, expected_revision: int) -> bool:
        self.requests += 1
        held = self.states.get(state.campaign_id)
        if self.lose_next_write:
            self.lose_next_write = False
            return False
        if held is None or held.revision != expected_revision:
            return False
        self.states[state.campaign_id] = _state_roundtrip(
            state.model_copy(update={"revision": expected_revision + 1})
        )
        if state.status not in LIVE:
            self.live_since.pop(state.campaign_id, None)
        return True


def _state_roundtrip(state: CampaignState) -> CampaignState:
    """As stored: times to the millisecond (the JSON keeps microseconds; the adapter's too)."""
    return CampaignState.model_validate_json(state.model_dump_json())


@dataclass
class MemoryCampaignStatus:
    """``CampaignStatus`` over the states (no cache: tests see a cancellation at once)."""

    states: MemoryCampaignStates
    reads: int = 0

    def cancelled(self, campaign_id: str) -> bool:
        self.reads += 1
        found = self.states.states.get(campaign_id)
        return found is not None and found.status == "cancelled"


@dataclass
class MemoryExposures:
    """Exposures in the contacts' partitions and counters per subject, arm and shard, each count made
    once (``DynamoExposures``); ``requests`` and ``items`` count what the adapter would send."""

    exposed: dict[tuple[str, str], Exposure] = field(default_factory=dict)
    counters: dict[tuple[str, str], ArmCounts] = field(default_factory=dict)
    requests: int = 0
    items: int = 0
    #: the next write fails (the table throttled): nothing of it is written
    unavailable: bool = False

    def _write(self, items: int) -> None:
        if self.unavailable:
            raise DependencyUnavailable("the campaign results are unavailable right now; retry")
        self.requests += 1
        self.items += items

    def expose(self, exposures: Sequence[Exposure]) -> int:
        from shared.adapters.campaign_results import CHUNK

        new = 0
        for start in range(0, len(exposures), CHUNK):
            chunk = exposures[start : start + CHUNK]
            arms = {(e.subject, e.arm) for e in chunk}
            if all((e.contact_id, e.subject) not in self.exposed for e in chunk):
                self._write(len(chunk) + len(arms))
                for e in chunk:
                    self._keep(e)
                new += len(chunk)
                continue
            self.requests += 1  # the chunk's transaction, refused
            for e in chunk:
                if (e.contact_id, e.subject) in self.exposed:
                    self.requests += 1
                    continue
                self._write(2)
                self._keep(e)
                new += 1
        return new

    def _keep(self, e: Exposure) -> None:
        self.exposed[(e.contact_id, e.subject)] = e.model_copy(
            update={"at": stored_time(e.at), "until": stored_time(e.until), "counted": frozenset()}
        )
        self._add(e.subject, e.arm, "assigned")

    def _add(self, subject: str, arm: str, measure: str) -> None:
        held = self.counters.get((subject, arm), ArmCounts())
        self.counters[(subject, arm)] = held.model_copy(update={measure: getattr(held, measure) + 1})

    def exposures(self, contact_id: str) -> list[Exposure]:
        self.requests += 1
        return [e for (c, _), e in sorted(self.exposed.items()) if c == contact_id]

    def count(
        self,
        contact_id: str,
        subject: str,
        arm: str,
        measure: Measure,
        at: datetime,
        *,
        windowed: bool = False,
    ) -> bool:
        self._write(2)
        held = self.exposed.get((contact_id, subject))
        at = stored_time(at)
        if held is None or held.arm != arm or measure in held.counted:
            return False
        if windowed and not held.within(at):
            return False
        self.exposed[(contact_id, subject)] = held.model_copy(update={"counted": held.counted | {measure}})
        self._add(subject, arm, measure)
        return True

    def counts(self, subject: str) -> dict[str, ArmCounts]:
        self.requests += 1
        return totals((arm, c) for (s, arm), c in self.counters.items() if s == subject)


# --- issue 13: lifecycle metrics ----------------------------------------------------------------------

from datetime import date

from shared.engagement.events import ContactStageChanged
from shared.metrics.counters import FIRST as _FIRST_PURCHASE
from shared.metrics.counters import Add, Counter, CounterRow, CustomerFacts
from shared.metrics.counters import Claim as MetricClaim
from shared.usecases.metrics import ClaimTaken


@dataclass
class MemoryMetricStore:
    """The lifecycle counters (``shared.usecases.metrics.MetricStore``) in memory: rows of numbers, the
    markers counted, the customers' claims. ``requests`` counts calls (a write, a read of facts, a read of
    rows); ``fail_next`` makes the next ``record`` raise ``DependencyUnavailable`` without writing."""

    counters: dict[tuple[str, str], dict[str, Decimal]] = field(default_factory=dict)
    markers: set[str] = field(default_factory=set)
    claims: dict[str, dict[str, MetricClaim]] = field(default_factory=dict)
    #: markers kept for good (the others would expire)
    kept: set[str] = field(default_factory=set)
    requests: int = 0
    fail_next: int = 0

    def record(
        self,
        marker: str,
        adds: Sequence[Add],
        claims: Sequence[MetricClaim] = (),
        customer: str | None = None,
        *,
        keep: bool = False,
    ) -> bool:
        self.requests += 1
        if self.fail_next:
            self.fail_next -= 1
            raise DependencyUnavailable("the metrics store is unavailable right now; retry")
        if marker in self.markers:
            return False
        held = self.claims.get(customer or "", {})
        if any(claim.key in held for claim in claims):
            raise ClaimTaken()
        if claims:
            assert customer is not None, "claims belong to a customer"
            self.claims.setdefault(customer, {}).update({claim.key: claim for claim in claims})
        self.markers.add(marker)
        if keep:
            self.kept.add(marker)
        for add in adds:
            row = self.counters.setdefault((add.counter, add.key), {})
            for name, value in add.values.items():
                row[name] = row.get(name, Decimal(0)) + Decimal(value)
        return True

    def customer(self, customer: str, keys: Sequence[str]) -> CustomerFacts:
        self.requests += 1
        held = self.claims.get(customer, {})
        first = held.get(_FIRST_PURCHASE)
        return CustomerFacts(
            first=date.fromisoformat(first.value) if first is not None else None,
            claimed=frozenset(key for key in keys if key in held),
        )

    def rows(self, counter: Counter, first: str, last: str) -> list[CounterRow]:
        self.requests += 1
        return [
            CounterRow(key=key, values=dict(values))
            for (kind, key), values in sorted(self.counters.items())
            if kind == counter and first <= key <= last
        ]


@dataclass
class MemoryStageTimeline:
    """``shared.usecases.metrics.StageTimeline`` over a stage store's history (``MemoryStageStore``)."""

    stages: MemoryStageStore
    #: history entries read, as the adapter reads them: the stage moves alone (``STAGE#``), newest first
    items_read: int = 0

    def stage_at(self, contact: ContactId, at: datetime) -> str | None:
        found: str | None = None
        entries = self.stages.outbox.get(contact, {})
        for key in sorted((k for k in entries if k.startswith(HISTORY)), key=write_order, reverse=True):
            output = entries[key].output
            self.items_read += 1
            if not isinstance(output, ContactStageChanged):
                continue
            if output.at <= at:
                return output.to_stage
            found = output.from_stage or output.to_stage
        return found


# --- issue 13: back-fills (the profile scan, the purchases the index lacks, the runs) ----------------------

from shared.tracking.baskets import Basket
from shared.tracking.timestamps import format_time
from shared.usecases.backfills import (
    BackfillRun,
    ProfilePage,
    UnindexedPage,
    UnindexedPurchase,
    check_run,
    summary,
)


@dataclass
class MemoryProfileScan:
    """``MemoryContactStore``'s profiles, a parallel-scan segment at a time (each contact in one segment,
    by a hash of it, as DynamoDB segments by partition key): ``requests`` counts the pages read."""

    contacts: MemoryContactStore
    #: profiles per page
    page_size: int = 2
    requests: int = 0
    #: issue 14: the search terms stored (a page names its contacts that have some)
    search: MemoryContactSearch | None = None

    def scan(self, segment: int, segments: int) -> Iterator[ProfilePage]:
        found = [
            contact
            for contact in sorted(self.contacts.profiles, key=str)
            if zlib.crc32(str(contact).encode()) % segments == segment
        ]
        for start in range(0, max(len(found), 1), self.page_size):
            self.requests += 1
            part = found[start : start + self.page_size]
            page = [self.contacts.profile(c) for c in part]
            held = self.search.held if self.search is not None else {}
            yield ProfilePage(
                profiles=[p for p in page if p is not None],
                read=len(page),
                indexed=frozenset(str(c) for c in part if c in held),
            )


@dataclass
class MemoryEventPurchase:
    """An event of the log, as much of it as the purchase index needs."""

    behaviour: str
    timestamp: str
    body: str
    purchased_at: str | None = None
    basket: Basket | None = None


@dataclass
class MemoryUnindexedPurchases:
    """The event log's events by (partition, key): a scan segment's purchases without ``purchased_at``,
    and the conditional update that indexes one; ``requests`` counts pages read and updates made."""

    events: dict[tuple[str, str], MemoryEventPurchase] = field(default_factory=dict)
    page_size: int = 2
    requests: int = 0

    def add(
        self, contact: ContactId, key: str, behaviour: str, timestamp: datetime, body: dict[str, Any]
    ) -> None:
        """An event as stored before the purchase index: no ``purchased_at``."""
        self.events[(f"C#{contact}", key)] = MemoryEventPurchase(
            behaviour, format_time(timestamp), json.dumps(body)
        )

    def scan(self, segment: int, segments: int) -> Iterator[UnindexedPage]:
        found = [
            (keys, event)
            for keys, event in sorted(self.events.items())
            if zlib.crc32(keys[0].encode()) % segments == segment
        ]
        for start in range(0, max(len(found), 1), self.page_size):
            self.requests += 1
            page = found[start : start + self.page_size]
            purchases = []
            unreadable = 0
            for (partition, key), event in page:
                if event.behaviour != "purchase" or event.purchased_at is not None:
                    continue
                try:
                    body = json.loads(event.body)
                    properties = body.get("properties") if isinstance(body, dict) else None
                except ValueError:
                    properties = None
                try:
                    purchases.append(
                        UnindexedPurchase(
                            partition=partition,
                            key=key,
                            timestamp=event.timestamp,
                            properties=properties if isinstance(properties, dict) else {},
                        )
                    )
                except ValueError:
                    unreadable += 1
            yield UnindexedPage(purchases=purchases, read=len(page), unreadable=unreadable)

    def index(self, purchase: UnindexedPurchase, bought: Basket) -> bool:
        self.requests += 1
        event = self.events.get((purchase.partition, purchase.key))
        if event is None or event.purchased_at is not None or event.behaviour != "purchase":
            return False
        event.purchased_at = format_time(purchase.timestamp)
        if bought:
            event.basket = bought
        return True


@dataclass
class MemoryBackfills:
    """Back-fill runs by (workflow, name), as Step Functions keeps executions: a name starts once.
    ``finish`` ends a run as its workflow would; ``on_start`` (if set) is told of each run started."""

    clock: Any = field(default_factory=lambda: FixedClock(datetime(2026, 11, 23, 12, tzinfo=UTC)))
    runs: dict[tuple[str, str], BackfillRun] = field(default_factory=dict)
    on_start: Callable[[str, str], None] | None = None
    requests: int = 0

    def start(self, workflow: str, name: str) -> bool:
        check_run(workflow, name)
        self.requests += 1
        if (workflow, name) in self.runs:
            return False
        self.runs[(workflow, name)] = BackfillRun(
            workflow=workflow, name=name, status="RUNNING", started_at=self.clock.now()
        )
        if self.on_start is not None:
            self.on_start(workflow, name)
        return True

    def run(self, workflow: str, name: str) -> BackfillRun | None:
        check_run(workflow, name)
        self.requests += 1
        return self.runs.get((workflow, name))

    def finish(
        self,
        workflow: str,
        name: str,
        output: Any = None,
        *,
        error: str | None = None,
        cause: str | None = None,
    ) -> None:
        held = self.runs[(workflow, name)]
        self.runs[(workflow, name)] = held.model_copy(
            update={
                "status": "FAILED" if error else "SUCCEEDED",
                "stopped_at": self.clock.now(),
                "result": None if error else summary(output),
                "error": error,
                "cause": cause,
            }
        )


# --- issue 13: the metrics back-fill (the stage history, a scan segment at a time) -------------------------

from shared.adapters.stage_store import KEPT as _KEPT_HISTORY
from shared.usecases.backfills import HistoryPage


@dataclass
class MemoryStageHistoryScan:
    """``shared.usecases.backfills.StageHistoryScan`` over a ``MemoryStageStore``: a segment's contacts (by a
    hash of the contact, as DynamoDB segments by partition key), their items (profile, history, other
    announcements) read ``page_size`` at a time, the stage moves and removals under ``STAGE#`` handed on.
    ``damage`` makes an entry unreadable (as an item whose ``output`` does not parse); ``requests`` counts
    the pages read."""

    stages: MemoryStageStore
    #: items read per page
    page_size: int = 3
    damaged: set[tuple[ContactId, str]] = field(default_factory=set)
    requests: int = 0

    def damage(self, contact: ContactId, key: str) -> None:
        self.damaged.add((contact, key))

    def scan(self, segment: int, segments: int) -> Iterator[HistoryPage]:
        contacts = set(self.stages.contacts.profiles) | set(self.stages.outbox)
        items: list[tuple[ContactId, str | None]] = []
        for contact in sorted(contacts, key=str):
            if zlib.crc32(str(contact).encode()) % segments != segment:
                continue
            if contact in self.stages.contacts.profiles:
                items.append((contact, None))  # the profile: read, never returned
            items += [(contact, key) for key in sorted(self.stages.outbox.get(contact, {}))]
        for start in range(0, max(len(items), 1), self.page_size):
            self.requests += 1
            page = items[start : start + self.page_size]
            entries: list[ContactStageChanged | ContactRemoved] = []
            unreadable = 0
            for contact, key in page:
                if key is None or not key.startswith(HISTORY):
                    continue
                output = self.stages.outbox[contact][key].output
                if not isinstance(output, _KEPT_HISTORY):
                    continue  # an announcement stored there before issue 13
                if (contact, key) in self.damaged:
                    unreadable += 1
                else:
                    entries.append(output)
            yield HistoryPage(entries=entries, read=len(page), unreadable=unreadable)


# --- issue 14: contact search ---------------------------------------------------------------------------------


class MemoryContactSearch:
    """The contacts' search terms and the index over them (``shared.usecases.search.SearchTerms`` and
    ``ContactFinder``), as ``DynamoContactSearch`` keeps them, over ``MemoryContactStore``'s profiles:
    a replacement is conditional on the stored terms and position, and an added term on the profile
    (exists, not merged away, not removed from its stage); ``find`` reads terms in ``<term>#<contact>``
    order. ``requests`` counts the calls (a write, a read, a Query, a batch read: one each)."""

    def __init__(self, contacts: MemoryContactStore) -> None:
        self.contacts = contacts
        #: contact -> (terms, position): the SEARCH item
        self.held: dict[ContactId, tuple[frozenset[str], str]] = {}
        self.requests = 0

    def replace(
        self, contact: ContactId, terms: frozenset[str], *, was: frozenset[str], position: str
    ) -> bool:
        self.requests += 1
        held = self.held.get(contact)
        if held is None:
            if was:
                return False
        elif not (held[1] < position and held[0] == was):
            return False
        if terms - was:
            profile = self.contacts.profiles.get(contact)
            if profile is None or profile.merged_into or profile.stage.get("stage_removed_at") is not None:
                return False
        self.held[contact] = (frozenset(terms), position)
        return True

    def stored(self, contact: ContactId) -> StoredTerms | None:
        from shared.usecases.search import StoredTerms

        self.requests += 1
        held = self.held.get(contact)
        return StoredTerms(terms=held[0], position=held[1]) if held is not None else None

    def index(self) -> list[tuple[str, ContactId]]:
        """Every term item's index key (``<term>#<contact>``) and contact, in index order."""
        return sorted(
            (f"{term}#{contact}", contact) for contact, (terms, _) in self.held.items() for term in terms
        )

    def find(self, word: str, limit: int, after: str | None = None) -> FoundPage:
        from shared.usecases.search import FoundPage

        self.requests += 1
        found = [
            (key, c) for key, c in self.index() if key.startswith(word) and (after is None or key > after)
        ]
        page = found[:limit]
        return FoundPage(contacts=[c for _, c in page], after=page[-1][0] if len(found) > limit else None)

    def profiles(self, contacts: Sequence[ContactId]) -> dict[ContactId, ContactRecord]:
        self.requests += 1
        found = {c: self.contacts.profile(c) for c in dict.fromkeys(contacts)}
        return {c: r for c, r in found.items() if r is not None}

    def forget(self, contact: ContactId) -> int:
        """Erasure: the contact's search items deleted (the SEARCH item and one per term); how many."""
        held = self.held.pop(contact, None)
        return 0 if held is None else 1 + len(held[0])


# --- issue 15: NPS answers ---------------------------------------------------------------------------------
from shared.nps.answers import NpsAnswered
from shared.nps.submissions import Answer
from shared.usecases.nps import Recorded as AnswerRecorded


@dataclass
class MemoryAnswerStore:
    """``AnswerStore`` on the fake contact store, as ``DynamoAnswerStore`` behaves: the first answer per
    survey and contact, with the profile's ``nps_*`` traits, at once; a profile that is missing or merged
    away refuses it (DependencyUnavailable: the caller follows the merge and retries)."""

    contacts: MemoryContactStore
    #: (contact, survey) -> (the answer as stored, done)
    answers: dict[tuple[ContactId, str], tuple[Answer, bool]] = field(default_factory=dict)
    #: the next ``done`` calls fail (a crash between the write and the effects)
    failing_done: int = 0
    #: the profile's ``npsAnsweredAt``: the time of the answer its traits hold
    answered_at: dict[ContactId, datetime] = field(default_factory=dict)

    def record(self, contact: ContactId, answer: Answer) -> AnswerRecorded:
        found = self.answers.get((contact, answer.survey_id))
        if found is not None:
            return AnswerRecorded(new=False, answer=found[0], done=found[1])
        profile = self.contacts.profiles.get(contact)
        if profile is None or profile.merged_into:
            raise DependencyUnavailable("the contact was merged away or erased; retry")
        stored = answer.model_copy(update={"at": stored_time(answer.at)})
        self.answers[(contact, answer.survey_id)] = (stored, False)
        latest = self.answered_at.get(contact)
        if latest is not None and latest > stored.at:
            return AnswerRecorded(new=True, answer=stored)  # a newer answer's traits stay
        self.answered_at[contact] = stored.at
        for name, value in stored.traits().items():
            if value is None:
                profile.traits.pop(name, None)
            else:
                profile.traits[name] = value
        return AnswerRecorded(new=True, answer=stored)

    def done(self, contact: ContactId, survey_id: str) -> None:
        if self.failing_done:
            self.failing_done -= 1
            raise DependencyUnavailable("the contact store is unavailable")
        found = self.answers.get((contact, survey_id))
        if found is not None:
            self.answers[(contact, survey_id)] = (found[0], True)

    def answer(self, contact: ContactId, survey_id: str) -> Answer | None:
        found = self.answers.get((contact, survey_id))
        return found[0] if found is not None else None


@dataclass
class MemoryNpsAnnouncer:
    """The bus, for ``NpsAnswered``: every announcement kept (``unavailable``: the next calls fail)."""

    sent: list[NpsAnswered] = field(default_factory=list)
    unavailable: int = 0

    def announce(self, answered: NpsAnswered) -> None:
        if self.unavailable:
            self.unavailable -= 1
            raise DependencyUnavailable("the event bus did not take the answer; retry")
        self.sent.append(answered)


# --- issue 15: the nightly recommendations pass ----------------------------------------------------------------


@dataclass
class MemoryRecentProductScan:
    """``ProfileScan`` over ``MemoryContactStore``'s profiles: those with recent products and not merged
    away, each contact in one segment (by a hash of the contact, as DynamoDB segments by partition key)."""

    contacts: MemoryContactStore
    #: profiles per page
    page_size: int = 2

    def scan(self, segment: int, segments: int) -> Iterator[ReconScannedPage]:
        """Pages of ``page_size`` profiles read, each with those the filter keeps (``read``: all)."""
        read = [c for c in self.contacts.profiles if zlib.crc32(str(c).encode()) % segments == segment]
        for start in range(0, len(read), self.page_size):
            page = read[start : start + self.page_size]
            records = [self.contacts.profile(c) for c in page]
            kept = [
                ScannedProfile(r.contact_id, r.recent_products)
                for r in records
                if r is not None and r.recent_products and r.merged_into is None
            ]
            yield ReconScannedPage(profiles=kept, read=len(page))


@dataclass
class MemoryRecommendationStaging:
    """The staging bucket's recommendation files: key -> JSON text (validated again when read)."""

    files: dict[str, str] = field(default_factory=dict)

    def save_interactions(self, staged: StagedInteractions) -> str:
        key = interactions_key(staged.day, staged.segment, staged.segments)
        self.files[key] = staged.model_dump_json()
        return key

    def interactions(self, day: Any, segment: int, segments: int) -> StagedInteractions | None:
        text = self.files.get(interactions_key(day, segment, segments))
        return None if text is None else StagedInteractions.model_validate_json(text)

    def save_model(self, staged: StagedModelPart) -> str:
        key = model_key(staged.day, staged.part)
        self.files[key] = staged.model_dump_json()
        return key

    def model(self, key: str) -> StagedModelPart | None:
        text = self.files.get(key)
        return None if text is None else StagedModelPart.model_validate_json(text)

    def model_keys(self, day: Any) -> list[str]:
        prefix = model_key(day, 0).rsplit("/", 1)[0] + "/"
        return sorted(k for k in self.files if k.startswith(prefix))


@dataclass
class MemoryModelStore:
    """``ModelStore``: the config table's model items, by key (``pk``, ``sk``), as the adapter stores them
    (``items``: plain values, the layout ``shared.recommendations.stored`` reads)."""

    items: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    requests: int = 0

    def put(self, items: Sequence[StoredModelItem], gone: Sequence[str] = ()) -> int:
        from shared.recommendations.stored import POPULAR_KEY, neighbours_key

        for product in gone:
            key = neighbours_key(product)
            self.items.pop((key["pk"], key["sk"]), None)
        for item in items:
            key = POPULAR_KEY if item.product_id is None else neighbours_key(item.product_id)
            self.items[(key["pk"], key["sk"])] = {
                "entries": [{"p": p, "s": score} for p, score in item.entries],
                "fittedOn": item.fitted_on.isoformat(),
            }
        sent = -(-(len(items) + len(gone)) // 25)
        self.requests += sent
        return sent


# --- issue 15: recommendations ------------------------------------------------------------------------

if typing.TYPE_CHECKING:
    from shared.recommendations.catalog import CatalogSettings, Product
    from shared.recommendations.model import ItemModel
    from shared.usecases.recommendations import CatalogPage, ModelLists


class MemoryCatalog:
    """The catalog (``shared.usecases.recommendations.Catalog``) and serving's reads (``ServingReads``), as
    ``DynamoCatalog`` keeps them; ``model`` is the nightly model as stored (what serving reads of it).
    ``requests`` counts the calls as the adapter makes them (a batch read of up to 100 keys: one)."""

    def __init__(self, model: ItemModel | None = None) -> None:
        from shared.recommendations.catalog import CatalogSettings
        from shared.recommendations.model import ItemModel

        self.model = model or ItemModel()
        self.held: dict[str, Product] = {}
        self.stored_settings = CatalogSettings()
        self.requests = 0

    def product(self, product_id: str) -> Product | None:
        self.requests += 1
        return self.held.get(product_id)

    def page(self, limit: int, after: str | None = None) -> CatalogPage:
        from shared.usecases.recommendations import CatalogPage

        self.requests += 1
        found = [self.held[p] for p in sorted(self.held) if after is None or p > after]
        page = found[:limit]
        return CatalogPage(products=page, after=page[-1].id if len(found) > limit else None)

    def save(self, product: Product) -> None:
        self.requests += 1
        self.held[product.id] = product.model_copy(
            update={"updated_at": stored_time(product.updated_at) if product.updated_at else None}
        )

    def remove(self, product_id: str) -> bool:
        self.requests += 1
        return self.held.pop(product_id, None) is not None

    def settings(self) -> CatalogSettings:
        self.requests += 1
        return self.stored_settings

    def save_settings(self, settings: CatalogSettings, at: datetime) -> None:
        self.requests += 1
        self.stored_settings = settings

    def lists(self, product_ids: Sequence[str]) -> ModelLists:
        from shared.usecases.recommendations import ModelLists

        keys = len(set(product_ids)) + 2
        self.requests += -(-keys // 100)
        return ModelLists(
            neighbours={
                p: tuple(self.model.neighbours[p]) for p in product_ids if p in self.model.neighbours
            },
            popular=tuple(self.model.popular),
            settings=self.stored_settings,
        )

    def products(self, product_ids: Sequence[str]) -> dict[str, Product]:
        self.requests += -(-len(set(product_ids)) // 100)
        return {p: self.held[p] for p in product_ids if p in self.held}


class MemoryPurchaseHistory:
    """What a contact bought (``shared.usecases.recommendations.PurchaseHistory``), read from the contact
    store fake's log as ``DynamoPurchaseHistory`` reads the purchase index: the baskets of the contact's
    newest ``limit`` purchases (by their time). ``requests`` counts the Queries."""

    def __init__(self, contacts: MemoryContactStore) -> None:
        self.contacts = contacts
        self.requests = 0

    def bought(self, contact: ContactId, limit: int = 500) -> frozenset[str]:
        from shared.tracking.baskets import basket
        from shared.tracking.behaviours import Behaviour
        from shared.tracking.timestamps import format_time

        if limit < 1:
            return frozenset()
        self.requests += 1
        purchases = sorted(
            (
                item.event
                for item in self.contacts.log.get(contact, {}).values()
                if item.event.behaviour is Behaviour.PURCHASE
            ),
            key=lambda e: format_time(e.timestamp),
            reverse=True,
        )[:limit]
        return frozenset(p for e in purchases for p, _ in basket(e.properties) if p)

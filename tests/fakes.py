"""In-memory stand-ins for the domain's ports, with the semantics the real adapters promise."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from shared.clock import FixedClock
from shared.contacts.changes import MAX_PROFILE_TRAIT_BYTES, TIMEZONE_TRAIT, ContactChange, trait_bytes
from shared.contacts.identity import ContactId
from shared.contacts.model import ContactRecord
from shared.contacts.views import EventPage, EventView, LedgerEntry, LedgerLine, LedgerPage, StoredEvent
from shared.engagement.events import LeadRouted, Output
from shared.engagement.funnel import Funnel, default_funnel
from shared.engagement.routing import Salesperson, pick
from shared.engagement.transitions import Evaluation
from shared.errors import Conflict, InvalidRequest, NotFound
from shared.scoring.catalogue import effective
from shared.scoring.decay import Decay
from shared.scoring.engine import LimitClaim, RuleUse
from shared.scoring.model import DimensionScore
from shared.scoring.rules import Rule, RuleBook, StoredRule
from shared.tracking.trust import Source, Trust
from shared.usecases.engagement import Delivery, Pending
from shared.usecases.merging import MergeRequest, Merging, on_merge_requested
from shared.usecases.recording import (
    Absorbed,
    ChangeCapacity,
    Claim,
    CommitOutcome,
    MergePlan,
    Moved,
    Retraction,
)


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
    totals: dict[str, Decimal] = field(default_factory=dict)
    #: (dimension, memory key, bucket) -> decaying sum
    sums: dict[tuple[str, str, int], float] = field(default_factory=dict)
    rule_uses: dict[str, tuple[int, str | None]] = field(default_factory=dict)
    merged_into: str | None = None
    merge_completed: bool = False
    #: the merges the last change asked for (the marker), until they are done or cleared
    merge_requested: str | None = None
    #: stage attributes, written by the stage store only (``ContactRecord`` field names)
    stage: dict[str, Any] = field(default_factory=dict)

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
            merged_into=self.merged_into,
            scores={d: DimensionScore(**s) for d, s in scores.items()},
            rule_uses=dict(self.rule_uses),
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


@dataclass
class MemoryContactStore:
    """The contact store and the merge store, as the DynamoDB contact store behaves."""

    capacity: ChangeCapacity = ChangeCapacity(max_events=99, max_keys=300)
    profiles: dict[ContactId, MemoryProfile] = field(default_factory=dict)
    events_by_contact: dict[ContactId, dict[str, StoredEvent]] = field(default_factory=dict)
    markers: set[tuple[ContactId, ContactId]] = field(default_factory=set)
    #: (contact, messageId) -> the contact a merge copied the event from
    moved_from: dict[tuple[ContactId, str], ContactId] = field(default_factory=dict)
    writes: int = 0
    #: make the next N commits fail as a whole (as a throttled or conflicting transaction would)
    fail_next: int = 0
    #: merges asked for by committed changes, not yet delivered (the contacts table's stream): every
    #: tracking write of a profile that still holds a request delivers it again, as the stream does
    merge_requests: list[MergeRequest] = field(default_factory=list)

    def commit(self, changes: Sequence[ContactChange]) -> list[CommitOutcome]:
        if self.fail_next:
            self.fail_next -= 1
            return [CommitOutcome(False) for _ in changes]
        if any(_write_units(change) > MAX_WRITE_UNITS for change in changes):
            # the adapter writes nothing of a commit that must split first
            return [CommitOutcome(False, oversized=_write_units(c) > MAX_WRITE_UNITS) for c in changes]
        return [self._commit(change) for change in changes]

    def _commit(self, change: ContactChange) -> CommitOutcome:
        self.writes += 1
        p = self.profiles.get(change.contact)
        known = self.events_by_contact.get(change.contact, {})
        duplicates = frozenset(e.message_id for e in change.events if e.message_id in known)
        if p is not None and p.merged_into:
            return CommitOutcome(False, duplicates, ContactId.parse(p.merged_into))
        uses = dict(p.rule_uses) if p else {}
        limits = change.scored.limits
        over_limit = any(_past_limit(claim, *uses.get(claim.rule_id, (0, None))) for claim in limits)
        too_many_traits = bool(change.trait_bytes) and trait_bytes(
            change.traits_after(p.traits if p else {})
        ) > MAX_PROFILE_TRAIT_BYTES
        if duplicates or over_limit or too_many_traits:
            limited = over_limit or too_many_traits
            return CommitOutcome(
                False,
                duplicates,
                rule_uses={k: RuleUse(c, d) for k, (c, d) in uses.items()} if limited else None,
                refused=TRAIT_LIMIT if too_many_traits else None,
            )
        self._apply(change)
        p = self.profiles[change.contact]
        if change.merge_from:
            p.merge_requested = json.dumps(sorted(str(source) for source in change.merge_from))
        if p.merge_requested:
            sources = tuple(ContactId.parse(source) for source in json.loads(p.merge_requested))
            self.merge_requests.append(MergeRequest(change.contact, sources, p.merge_requested))
        return CommitOutcome(True)

    def _apply(self, change: ContactChange) -> None:
        p = self.profiles.setdefault(change.contact, MemoryProfile())
        received_at = stored_time(change.last_seen)
        for e in change.events:
            ledger = [LedgerLine(**asdict(line)) for line in change.scored.ledger.get(e.message_id, ())]
            self.events_by_contact.setdefault(change.contact, {})[e.message_id] = StoredEvent(
                message_id=e.message_id,
                call=e.call,
                behaviour=e.behaviour.value,
                event=e.event,
                timestamp=stored_time(e.timestamp),
                received_at=received_at,
                revenue=e.revenue,
                body=e.body,
                ledger=ledger,
            )
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
        p.event_count += len(change.events)
        p.revenue += change.revenue
        p.add_scores(change.scored.totals, change.scored.sums)
        for claim in change.scored.limits:
            count, day = p.rule_uses.get(claim.rule_id, (0, None))
            p.rule_uses[claim.rule_id] = (count + claim.count, claim.last_day if claim.first_day else day)
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

    def profile(self, contact: ContactId) -> ContactRecord | None:
        p = self.profiles.get(contact)
        return None if p is None else p.record(contact)

    def claim(self, source: ContactId, target: ContactId, at: datetime) -> Claim:
        p = self.profiles.setdefault(source, MemoryProfile())
        if p.merged_into:
            return Claim(ContactId.parse(p.merged_into), completed=p.merge_completed)
        if self.profiles.get(target, MemoryProfile()).merged_into:
            return Claim(target, target_moved=True)
        p.merged_into = str(target)
        p.stage.pop("due_at", None)  # a merged-away contact is never due again
        return Claim(target)

    def move_events(self, source: ContactId, target: ContactId, limit: int) -> Moved:
        """The source's newest events (by time) first; those the target holds of its own are duplicates."""
        events = self.events_by_contact.get(source, {})
        held = self.events_by_contact.setdefault(target, {})
        newest = sorted(events.values(), key=lambda e: (e.timestamp, e.message_id), reverse=True)[:limit]
        duplicates = []
        for event in newest:
            message_id = event.message_id
            if message_id in held and self.moved_from.get((target, message_id)) != source:
                duplicates.append(event)
                continue
            held[message_id] = events.pop(message_id)
            self.moved_from[(target, message_id)] = source
        return Moved(count=len(newest) - len(duplicates), duplicates=tuple(duplicates))

    def retract(self, source: ContactId, target: ContactId, retraction: Retraction) -> Absorbed:
        if retraction.message_id not in self.events_by_contact.get(source, {}):
            return Absorbed.ALREADY
        p = self.profiles.setdefault(target, MemoryProfile())
        if p.merged_into:
            return Absorbed.MOVED
        del self.events_by_contact[source][retraction.message_id]
        for b, c in retraction.counts.items():
            p.counts[b] = p.counts.get(b, 0) + c
        p.event_count += retraction.event_count
        p.revenue += retraction.revenue
        p.add_scores({d: s.total for d, s in retraction.scores.items()}, _flat_sums(retraction.scores))
        for rule, count in retraction.rule_uses.items():
            used, day = p.rule_uses.get(rule, (0, None))
            p.rule_uses[rule] = (used + count, day)
        return Absorbed.DONE

    def clear_merge_request(self, target: ContactId, marker: str) -> None:
        p = self.profiles.get(target)
        if p is not None and p.merge_requested == marker:
            p.merge_requested = None

    def deliver_merges(self, now: datetime, decay: Decay = Decay()) -> int:
        """Run the merge function on every request so far, as the stream would; merges completed."""
        requests, self.merge_requests = self.merge_requests, []
        deps = Merging(FixedClock(now), self, decay, CountingTelemetry())
        return sum(on_merge_requested(request, deps) for request in requests)

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
    )


@dataclass
class MemoryContactLog:
    """Pages of a contact's event log (by time) and score ledger (scored events only), newest first."""

    store: MemoryContactStore

    def events(self, contact: ContactId, limit: int, before: str | None = None) -> EventPage:
        page, cursor = self._page(contact, limit, before, scored=False)
        return EventPage(events=[EventView.of(e) for e in page], next_cursor=cursor)

    def ledger(self, contact: ContactId, limit: int, before: str | None = None) -> LedgerPage:
        page, cursor = self._page(contact, limit, before, scored=True)
        return LedgerPage(entries=[LedgerEntry.of(e) for e in page], next_cursor=cursor)

    def _page(
        self, contact: ContactId, limit: int, before: str | None, scored: bool
    ) -> tuple[list[StoredEvent], str | None]:
        events = [e for e in self.store.events_by_contact.get(contact, {}).values() if e.ledger or not scored]
        events.sort(key=_log_key, reverse=True)
        if before is not None:
            after = _decode_log_cursor(before, contact)
            events = [e for e in events if _log_key(e) < after]
        page = events[:limit]
        more = len(events) > limit
        cursor = json.dumps([str(contact), *_log_key(page[-1])]) if more else None
        return page, base64.urlsafe_b64encode(cursor.encode()).decode() if cursor else None


def _log_key(event: StoredEvent) -> tuple[str, str]:
    return (event.timestamp.isoformat(), event.message_id)


def _decode_log_cursor(cursor: str, contact: ContactId) -> tuple[str, str]:
    try:
        owner, *key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        valid = owner == str(contact) and len(key) == 2
    except (ValueError, TypeError, binascii.Error):
        valid = False
    if not valid:
        raise InvalidRequest("cursor is not valid for this contact", code="invalid_cursor")
    return key[0], key[1]


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
        p = self.contacts.profiles.get(contact)
        if p is None or p.merged_into or p.stage.get("stage_seq", 0) != record.stage_seq:
            return False
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
        if evaluation.write_due:
            stage["due_at"] = None if evaluation.due_at is None else stored_time(evaluation.due_at)
        stage["pending_outputs"] = stage.get("pending_outputs", 0) + len(outputs)
        entries = self.outbox.setdefault(contact, {})
        for number, output in enumerate(outputs):
            entries[f"STAGE#{seq:08d}#{number:02d}"] = MemoryOutboxEntry(output)
        return True

    def pending(self, contact: ContactId) -> list[Pending]:
        entries = self.outbox.get(contact, {})
        return [
            Pending(key=key, output=e.output, done=frozenset(e.delivered | e.refused.keys()))
            for key, e in sorted(entries.items())
            if not e.published
        ]

    def history(self, contact: ContactId, limit: int) -> list[Output]:
        entries = self.outbox.get(contact, {})
        return [entries[key].output for key in sorted(entries, reverse=True)[:limit]]

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
                stage = self.contacts.profiles[contact].stage
                stage["pending_outputs"] = stage.get("pending_outputs", 0) - 1

    def due(self, now: datetime) -> list[ContactId]:
        return [
            contact
            for contact, p in self.contacts.profiles.items()
            if p.stage.get("due_at") is not None and p.stage["due_at"] <= now and not p.merged_into
        ]


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

    def register(self, write_key: str, source: str, trust: Trust, at: datetime) -> None:
        found = self.keys.get(write_key)
        if found is not None and found[0] != Source(source, trust):
            raise Conflict("that write key already belongs to another source or trust level")
        if found is None:
            self.keys[write_key] = (Source(source, trust), False)

    def disable(self, write_key: str) -> None:
        if write_key not in self.keys:
            raise NotFound("no such write key")
        self.keys[write_key] = (self.keys[write_key][0], True)


@dataclass
class MemoryRuleRepository:
    """Stored rules with versions that never repeat, and their history (tombstones included)."""

    current: dict[str, StoredRule] = field(default_factory=dict)
    versions: dict[str, list[StoredRule]] = field(default_factory=dict)

    def book(self) -> RuleBook:
        return RuleBook(effective(self.stored()))

    def stored(self) -> list[StoredRule]:
        return sorted(self.current.values(), key=lambda r: r.id)

    def history(self, rule_id: str) -> list[StoredRule]:
        return list(reversed(self.versions.get(rule_id, [])))

    def save(self, rule: Rule, at: datetime, expected_version: int | None, base_version: int) -> StoredRule:
        current = self.current.get(rule.id)
        in_force = current.version if current else base_version
        if expected_version is not None and expected_version != in_force:
            raise Conflict(f"rule {rule.id} is at version {in_force}, not {expected_version}")
        latest = max((r.version for r in self.versions.get(rule.id, [])), default=0)
        stored = StoredRule(
            **rule.model_dump(), version=max(in_force, latest) + 1, origin="stored", updated_at=at
        )
        self.current[rule.id] = stored
        self.versions.setdefault(rule.id, []).append(stored)
        return stored

    def remove(self, rule_id: str, at: datetime, expected_version: int | None) -> StoredRule:
        current = self.current.get(rule_id)
        if current is None:
            raise NotFound(f"no stored rule {rule_id}")
        if expected_version is not None and expected_version != current.version:
            raise Conflict(f"rule {rule_id} is at version {current.version}, not {expected_version}")
        del self.current[rule_id]
        self.versions[rule_id].append(current.model_copy(update={"version": current.version + 1}))
        return current


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

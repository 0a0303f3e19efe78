"""In-memory stand-ins for the domain's ports, with the semantics the real adapters promise."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from shared.clock import FixedClock
from shared.contacts.changes import ContactChange
from shared.contacts.identity import ContactId
from shared.contacts.model import ContactRecord
from shared.contacts.views import StoredEvent
from shared.engagement.funnel import Funnel, default_funnel
from shared.engagement.routing import Salesperson, pick
from shared.errors import Conflict, NotFound
from shared.scoring.catalogue import effective
from shared.scoring.decay import Decay
from shared.scoring.rules import Rule, RuleBook, StoredRule
from shared.tracking.trust import Source, Trust
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


@dataclass
class MemoryContactStore:
    capacity: ChangeCapacity = ChangeCapacity(max_events=99, max_keys=300)
    profiles: dict[ContactId, dict[str, Any]] = field(default_factory=dict)
    events_by_contact: dict[ContactId, dict[str, Any]] = field(default_factory=dict)
    markers: set[tuple[ContactId, ContactId]] = field(default_factory=set)
    #: (contact, messageId) -> the contact a merge copied the event from
    moved_from: dict[tuple[ContactId, str], ContactId] = field(default_factory=dict)
    writes: int = 0
    #: make the next N commits fail as a whole (as a throttled or conflicting transaction would)
    fail_next: int = 0
    #: merges asked for by committed changes, not yet delivered (the contacts table's stream)
    merge_requests: list[MergeRequest] = field(default_factory=list)

    def commit(self, changes: Sequence[ContactChange]) -> list[CommitOutcome]:
        outcomes = []
        for change in changes:
            self.writes += 1
            profile = self.profiles.get(change.contact, {})
            known = self.events_by_contact.get(change.contact, {})
            duplicates = frozenset(e.message_id for e in change.events if e.message_id in known)
            merged = profile.get("merged_into")
            if duplicates or merged:
                outcomes.append(CommitOutcome(False, duplicates, ContactId.parse(merged) if merged else None))
                continue
            self._apply(change)
            if change.merge_from:
                marker = json.dumps(sorted(str(source) for source in change.merge_from))
                p = self.profiles[change.contact]
                p["merge_requested"] = marker
                self.merge_requests.append(
                    MergeRequest(change.contact, tuple(sorted(change.merge_from)), marker)
                )
            outcomes.append(CommitOutcome(True))
        return outcomes

    def _apply(self, change: ContactChange) -> None:
        p = self.profiles.setdefault(change.contact, {})
        for key, empty in (("counts", {}), ("traits", {}), ("tags", {}), ("anonymous_ids", set())):
            p.setdefault(key, empty)
        for e in change.events:
            self.events_by_contact.setdefault(change.contact, {})[e.message_id] = e
        p["traits"].update(change.traits_set)
        for k in change.traits_unset:
            p["traits"].pop(k, None)
        for t in change.tags_add:
            p["tags"].setdefault(t, change.last_seen)
        for t in change.tags_remove:
            p["tags"].pop(t, None)
        for b, c in change.counts.items():
            p["counts"][b] = p["counts"].get(b, 0) + c
        p["anonymous_ids"] |= change.anonymous_ids
        p["event_count"] = p.get("event_count", 0) + len(change.events)
        p["revenue"] = p.get("revenue", Decimal(0)) + change.revenue
        p.setdefault("first_seen", change.first_seen)
        p["last_seen"] = change.last_seen

    def profile(self, contact: ContactId) -> ContactRecord | None:
        p = self.profiles.get(contact)
        if p is None:
            return None
        return ContactRecord(
            contact_id=str(contact),
            user_id=contact.value if contact.kind == "user_id" else None,
            anonymous_ids=frozenset(p.get("anonymous_ids", ())),
            traits=dict(p.get("traits", {})),
            tags=dict(p.get("tags", {})),
            counts=dict(p.get("counts", {})),
            event_count=p.get("event_count", 0),
            first_seen_at=p.get("first_seen"),
            last_seen_at=p.get("last_seen"),
            revenue_total=p.get("revenue", Decimal(0)),
            merged_into=p.get("merged_into"),
        )

    def claim(self, source: ContactId, target: ContactId, at: datetime) -> Claim:
        if self.profiles.get(target, {}).get("merged_into"):
            return Claim(target, target_moved=True)
        p = self.profiles.setdefault(source, {})
        owner = p.get("merged_into")
        if owner:
            return Claim(ContactId.parse(owner), completed=p.get("completed", False))
        p["merged_into"] = str(target)
        return Claim(target)

    def move_events(self, source: ContactId, target: ContactId, limit: int) -> Moved:
        events = self.events_by_contact.get(source, {})
        held = self.events_by_contact.setdefault(target, {})
        duplicates = []
        moved = 0
        for message_id in list(events):
            if message_id in held and self.moved_from.get((target, message_id)) != source:
                event = events[message_id]
                duplicates.append(
                    StoredEvent(
                        message_id=message_id,
                        call=event.call,
                        behaviour=event.behaviour.value,
                        timestamp=event.timestamp,
                        received_at=event.received_at,
                        revenue=event.revenue,
                    )
                )
                continue
            held[message_id] = events.pop(message_id)
            self.moved_from[(target, message_id)] = source
            moved += 1
        return Moved(count=moved, duplicates=tuple(duplicates))

    def retract(self, source: ContactId, target: ContactId, retraction: Retraction) -> Absorbed:
        if retraction.message_id not in self.events_by_contact.get(source, {}):
            return Absorbed.ALREADY
        if self.profiles.get(target, {}).get("merged_into"):
            return Absorbed.MOVED
        del self.events_by_contact[source][retraction.message_id]
        p = self.profiles.setdefault(target, {})
        counts = p.setdefault("counts", {})
        for b, c in retraction.counts.items():
            counts[b] = counts.get(b, 0) + c
        p["event_count"] = p.get("event_count", 0) + retraction.event_count
        p["revenue"] = p.get("revenue", Decimal(0)) + retraction.revenue
        return Absorbed.DONE

    def clear_merge_request(self, target: ContactId, marker: str) -> None:
        p = self.profiles.get(target, {})
        if p.get("merge_requested") == marker:
            del p["merge_requested"]

    def deliver_merges(self, now: datetime, decay: Decay = Decay()) -> int:
        """Run the merge function on every request so far, as the stream would; merges completed."""
        requests, self.merge_requests = self.merge_requests, []
        deps = Merging(FixedClock(now), self, decay, CountingTelemetry())
        return sum(on_merge_requested(request, deps) for request in requests)

    def absorb(self, target: ContactId, plan: MergePlan, at: datetime) -> bool:
        if (target, plan.source) in self.markers:
            return Absorbed.ALREADY
        self.markers.add((target, plan.source))
        self.profiles.get(target, {}).pop("merge_requested", None)
        self.profiles.setdefault(plan.source, {})["completed"] = True
        p = self.profiles.setdefault(target, {})
        for key, empty in (("counts", {}), ("traits", {}), ("tags", {}), ("anonymous_ids", set())):
            p.setdefault(key, empty)
        for k, v in plan.traits.items():
            p["traits"].setdefault(k, v)
        for b, c in plan.counts.items():
            p["counts"][b] = p["counts"].get(b, 0) + c
        p["anonymous_ids"] |= plan.anonymous_ids
        p["event_count"] = p.get("event_count", 0) + plan.event_count
        return Absorbed.DONE


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

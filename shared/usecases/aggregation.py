"""Folding new events into profiles, off the request path.

The tracking path appends each event once to its contact's log (``recording.record``). The log's
stream delivers every new event here, at least once and in order per contact. Each contact's new
events in a batch become one blind, conditional profile write (``ContactStore.commit``): counters,
traits, tags, scores with their limits, and the merges that identify and alias calls ask for. The
profile keeps the stream position it has folded in, so a redelivered record changes nothing.

Events recorded for a contact that was merged away meanwhile are folded into the contact it joined,
in the same transaction that copies them into its log (so a replay, or an event the merge already
moved, counts once), then deleted from the merged-away log. When a rule's limit
means an event scored less than the tracking path expected, the event's ledger is corrected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from shared.automations.book import AutomationBook
from shared.automations.engine import watched_since
from shared.contacts.changes import ContactChange, plan_change
from shared.contacts.consent import latest_consent
from shared.contacts.identity import ContactId
from shared.errors import DependencyUnavailable
from shared.scoring.catalogue import RuleSource
from shared.scoring.decay import Decay
from shared.scoring.engine import RuleUse, ScoreChange, ScoringContext
from shared.segments.catalogue import SegmentSource
from shared.tracking.behaviours import LEDGER_CALL
from shared.tracking.messages import TrackedEvent
from shared.usecases.recording import MAX_ROUNDS, Absorbed, ContactStore, resolve, split_change

#: Re-routed events per transaction, with their copies: each up to 32 KB of call, well within 4 MB.
REROUTED_PER_WRITE = 25


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event the log has just recorded, as its stream delivers it."""

    #: the contact it was recorded for (its partition in the log)
    contact: ContactId
    event: TrackedEvent
    #: its key in the log
    key: str
    #: what the tracking path expected it to score
    ledger: tuple[ScoreChange, ...]
    #: where it sits in the stream: text that sorts in stream order
    position: str
    #: the log's item, as stored (opaque here): copied as it is if the event must be re-routed
    item: Mapping[str, Any] = field(default_factory=dict, compare=False)


class Ledgers(Protocol):
    def rewrite_ledger(self, contact: ContactId, key: str, ledger: tuple[ScoreChange, ...]) -> None: ...

    def forget(self, contact: ContactId, keys: Sequence[str]) -> None:
        """Delete these events from the contact's log (their copies live on elsewhere)."""
        ...


class Telemetry(Protocol):
    def count(self, name: str, value: int) -> None: ...


class AutomationSource(Protocol):
    def book(self) -> AutomationBook: ...


@dataclass(frozen=True, slots=True)
class Aggregation:
    contacts: ContactStore
    log: Ledgers
    rules: RuleSource
    decay: Decay
    telemetry: Telemetry
    #: the automations in force: the profile keeps the last time of the behaviours they count from
    automations: AutomationSource | None = None
    #: issue 13: the segments in force: the profile keeps the last time of the behaviours they read too
    segments: SegmentSource | None = None

    def watched(self) -> frozenset[str]:
        automations = watched_since(self.automations.book()) if self.automations is not None else frozenset()
        segments = self.segments.book().last_times() if self.segments is not None else frozenset()
        return automations | segments


@dataclass(frozen=True, slots=True)
class Folded:
    #: events folded into a profile by this call (not those folded before)
    events: int = 0
    #: the first position that failed: the stream resumes there (later records come again and are skipped)
    failed_from: str | None = None
    errors: tuple[Exception, ...] = ()


def aggregate(batch: Sequence[NewEvent], deps: Aggregation) -> Folded:
    """Fold a batch of new events into their contacts' profiles; each contact on its own, so one
    contact's failure holds back only what the stream must deliver again."""
    scoring = ScoringContext(deps.rules.book(), deps.decay)
    by_contact: dict[ContactId, list[NewEvent]] = {}
    for new in batch:
        by_contact.setdefault(new.contact, []).append(new)
    folded = 0
    failed: list[str] = []
    errors: list[Exception] = []
    for contact, news in by_contact.items():
        try:
            for run in _runs(sorted(news, key=lambda e: e.position)):
                folded += _fold(contact, run, deps, scoring)
        except Exception as exc:  # noqa: BLE001 - reported per contact (its first position): the others stand
            failed.append(min(e.position for e in news))
            errors.append(exc)
    deps.telemetry.count("EventsFolded", folded)
    return Folded(events=folded, failed_from=min(failed, default=None), errors=tuple(errors))


def _runs(news: list[NewEvent]) -> list[list[NewEvent]]:
    """A contact's events in stream order, cut where a messageId comes again: the log keys a call by
    its messageId and stated time, so two calls may share one, and a change knows its events by it."""
    runs: list[list[NewEvent]] = []
    ids: set[str] = set()
    for new in news:
        if not runs or new.event.message_id in ids:
            runs.append([])
            ids = set()
        runs[-1].append(new)
        ids.add(new.event.message_id)
    return runs


def _fold(contact: ContactId, news: list[NewEvent], deps: Aggregation, scoring: ScoringContext) -> int:
    """One contact's new events (in stream order) into its profile, or the profile it was merged into."""
    store = deps.contacts
    watched = deps.watched()
    by_id = {new.event.message_id: new for new in news}
    pending = [new.event for new in news]
    target, origin = contact, None
    known: dict[str, RuleUse] = {}
    splits: dict[str, int] = {}
    folded = 0
    #: events the contact's profile had folded in before: its log keeps them (a merge moves them)
    folded_before: set[str] = set()
    #: keys of the merged-away contact's events that are now in its contact's log
    rerouted: list[str] = []
    #: re-routed events the contact held already (the same call sent under it): counted there once
    held: list[NewEvent] = []
    #: the merged-away contacts the events passed through, the contact first (a chain of merges)
    passed: list[ContactId] = []
    for _ in range(MAX_ROUNDS):
        if not pending:
            break
        capacity = (
            store.capacity if origin is None else replace(store.capacity, max_events=REROUTED_PER_WRITE)
        )
        parts = list(split_change(pending, capacity, splits))
        changes = [
            _watched(
                _positioned(plan_change(target, part, replace(scoring, known=known)), part, by_id, origin),
                watched,
            )
            for part in parts
        ]
        copies = {e.message_id: by_id[e.message_id].item for e in pending} if origin else {}
        pending = []
        # one part at a time, in stream order: a part committed after one that was not would move the
        # watermark past it, and its events would be dropped as folded in
        outcomes = (store.commit([change], copies)[0] for change in changes)
        for index, (change, outcome) in enumerate(zip(changes, outcomes, strict=True)):
            if outcome.committed:
                folded += len(change.events)
                _correct_ledgers(change, by_id, deps.log)
                if origin is not None:
                    rerouted += [by_id[e.message_id].key for e in change.events]
                continue
            rest = [e for part in parts[index + 1 :] for e in part]
            rerouted += [by_id[m].key for m in outcome.duplicates]
            held += [by_id[m] for m in outcome.duplicates]
            events = [e for e in change.events if e.message_id not in outcome.duplicates]
            if outcome.applied_through is not None and origin is None:  # folded in before, up to there
                through = outcome.applied_through
                folded_before.update(m for m, new in by_id.items() if new.position <= through)
                events = [e for e in events if e.message_id not in folded_before]
                rest = [e for e in rest if e.message_id not in folded_before]
            if outcome.merged_into is not None:
                origin = origin or target
                passed.append(target)
                target = outcome.merged_into
            elif outcome.oversized:
                if len(events) == 1:  # the tracking path refuses such calls; one stored before that rule
                    deps.telemetry.count("EventsNotFolded", 1)
                    events = []
                else:
                    label = max(splits.values(), default=0) + 1
                    splits.update({e.message_id: label for e in events[len(events) // 2 :]})
            elif outcome.refused is not None:
                events = _without_growth(events, deps)
            elif outcome.rule_uses is not None:
                known = dict(outcome.rule_uses)
            pending = events + rest
            break  # later parts wait, not committed: planned again after this one
    if pending:
        raise DependencyUnavailable("a contact's events could not be folded in after repeated conflicts")
    if rerouted:  # copied into the contact's log with the fold: the merged-away originals go
        deps.log.forget(contact, rerouted)
    for new in held:  # after the originals went: the merge can no longer take one back meanwhile
        _give_back(passed, target, new, store)
    return folded


def _watched(change: ContactChange, watched: frozenset[str]) -> ContactChange:
    """The change with only the last times inactivity automations count from (none: nothing more to write)."""
    kept = {name: at for name, at in change.last_times.items() if name in watched}
    return change if kept == change.last_times else replace(change, last_times=kept)


def _give_back(passed: list[ContactId], target: ContactId, new: NewEvent, store: ContactStore) -> None:
    """A call the contact held already, re-routed from a merged-away identity whose profile never counted
    it: if a merge took it back as if that profile had (the same call on both, this very put still on
    its way), the contact gets it back, so the call counts once.

    The merge that took it back marked the contact whose copy it deleted: the identity the call was sent
    under, or, through a chain of merges (the visitor into bob, bob into ann), any contact the copy was
    moved to on its way, and the re-route passed them all (``passed``). The first mark of this very put
    is given back, and no other can be: a put is in one log at a time, and a copy a re-route counted
    (``folded``) is never marked (``retraction``)."""
    for source in passed:
        for _ in range(MAX_ROUNDS):
            outcome = store.give_back(source, target, new.item)
            if outcome is not Absorbed.MOVED:
                break
            target = resolve(target, store)
        else:
            raise DependencyUnavailable("the contact kept moving while a call was given back; retry")
        if outcome is Absorbed.DONE:
            return


def _positioned(
    change: ContactChange,
    part: Sequence[TrackedEvent],
    by_id: dict[str, NewEvent],
    origin: ContactId | None,
) -> ContactChange:
    positions = [by_id[e.message_id].position for e in part]
    # consent from the calls as recorded: a full profile folds identify calls without their traits
    # (``_without_growth``), never without the consent they state
    recorded = sorted(
        (by_id[e.message_id].event for e in part if e.call != LEDGER_CALL), key=lambda e: e.timestamp
    )
    return replace(
        change,
        first_position=min(positions),
        last_position=max(positions),
        origin=origin,
        consent=latest_consent(recorded),
    )


def _without_growth(events: list[TrackedEvent], deps: Aggregation) -> list[TrackedEvent]:
    """The profile cannot hold more traits: the identify calls that would add some count, without them,
    and no call gives it a timezone (a browser's calls carry one, kept as a trait if it has none)."""
    with_traits = [e for e in events if e.call == "identify" and e.traits]
    grows = [e for e in events if e in with_traits or e.context_timezone]
    if not grows:  # the profile is full (400 KB): nothing more can be folded into it
        deps.telemetry.count("EventsNotFolded", len(events))
        return []
    deps.telemetry.count("TraitsNotKept", len(with_traits))
    return [
        replace(e, traits={} if e in with_traits else e.traits, context_timezone=None) if e in grows else e
        for e in events
    ]


def _correct_ledgers(change: ContactChange, by_id: dict[str, NewEvent], log: Ledgers) -> None:
    """The tracking path scored without the contact's rule limits; where one held, the log is told."""
    for event in change.events:
        new = by_id[event.message_id]
        applied = change.scored.ledger.get(event.message_id, ())
        if tuple(applied) != tuple(new.ledger):
            log.rewrite_ledger(change.contact, new.key, tuple(applied))

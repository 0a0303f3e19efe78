"""Running automations: starting them from tracked events, lifecycle signals and timers, exactly once.

Every run is recorded before anything is done (``RunStore.start``): one item per (contact, automation,
occurrence, first step), written with a condition, in the same transaction as the timer it consumes
and the re-entry mark it takes. A replayed stream batch, a schedule fired twice or a retried function
finds the run recorded and does nothing new. The recorded run is the outbox: its effects (delivery
requests, tags, points, a stage move, timers) are then done, each idempotent, and the run is marked
done. A run left pending by a crash is due a few minutes later, and the timer function finishes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

from shared.automations.book import AutomationBook
from shared.automations.calendar import shift, zone_of
from shared.automations.engine import (
    Occurrence,
    Plan,
    Signal,
    Timer,
    anniversaries,
    event_starts,
    holds,
    lapses,
    next_in_series,
    plan,
    signal_starts,
    thresholds,
    wakeup,
)
from shared.automations.model import StoredAutomation
from shared.campaigns.ports import Exposures
from shared.campaigns.results import Exposure
from shared.clock import Clock
from shared.contacts.consent import granted_channels
from shared.contacts.identity import ContactId
from shared.contacts.model import ContactRecord
from shared.delivery.consent import ConsentChannel
from shared.delivery.consent import state as consent_state
from shared.delivery.requests import DeliveryRequest
from shared.errors import DependencyUnavailable, InvalidRequest, NotFound, PayloadTooLarge
from shared.scoring.decay import Decay
from shared.tracking.behaviours import LEDGER_CALL
from shared.tracking.messages import TrackedEvent
from shared.tracking.timestamps import format_time, parse_time
from shared.usecases.campaigns import automation_exposure

#: a recorded run not marked done by then is finished by the timer function
RESUME_AFTER = timedelta(minutes=5)
#: an event older than this (history sent late) starts nothing now; its series start at what is to come
STALE_AFTER = timedelta(days=1)
#: how long the events trigger waits for the aggregation to fold an event in (seconds, in turn)
FOLD_WAITS = (0.2, 0.5, 1.0, 2.0)
#: the timer function stops taking entries with this much of its run's time left
SAFETY_SECONDS = 30.0
#: how far a contact's merges are followed to the contact that holds its profile
MAX_MERGE_HOPS = 4

Started = Literal["started", "duplicate", "limited"]


class AutomationSource(Protocol):
    def book(self) -> AutomationBook: ...


class ProfileReader(Protocol):
    def profile(self, contact: ContactId) -> ContactRecord | None: ...


@dataclass(frozen=True, slots=True)
class Entry:
    """A re-entry mark the run takes: the automation cannot start again for the contact until ``until``
    (``None``: never again)."""

    automation: str
    until: datetime | None


@dataclass(frozen=True, slots=True)
class Consumed:
    """The timer a run consumes: deleted, or replaced by the series' next occurrence, on condition that
    it is still at occurrence ``n`` (a timer fired twice runs once)."""

    key: str
    n: int
    then: Timer | None = None


@dataclass(frozen=True, slots=True)
class DueItem:
    """An entry of the due index: a contact's profile (stages, lapses, anniversaries), a timer, a run
    left pending, or a send delivery deferred (quiet hours, best hour)."""

    contact: ContactId
    kind: Literal["profile", "timer", "run", "send"]
    #: the timer's or run's key; a send's ledger entry key (its request id without ``<contact>#``)
    key: str = ""


class RunStore(Protocol):
    def start(
        self,
        contact: ContactId,
        run: Plan,
        *,
        now: datetime,
        entry: Entry | None = None,
        consumed: Consumed | None = None,
    ) -> Started:
        """Record the run (pending, due again at ``now + RESUME_AFTER``) with the timers it arms, the
        entry mark it takes and the timer it consumes, in one transaction. ``duplicate``: this run is
        recorded already; ``limited``: the entry mark is taken (nothing written)."""
        ...

    def pending(self, contact: ContactId, run_key: str) -> Plan | None:
        """A recorded run not yet marked done."""
        ...

    def done(self, contact: ContactId, run_key: str) -> None: ...

    def arm(self, contact: ContactId, timers: Sequence[Timer]) -> int:
        """Arm timers that do not exist yet (a replay arms nothing twice); returns how many were new."""
        ...

    def timer(self, contact: ContactId, key: str) -> Timer | None: ...

    def consume(self, contact: ContactId, consumed: Consumed) -> bool:
        """Consume a timer without a run (its automation is gone, or its conditions no longer hold)."""
        ...

    def due(self, now: datetime) -> list[DueItem]: ...

    def take_deferred_send(
        self, contact: ContactId, key: str, now: datetime, retry_at: datetime
    ) -> DeliveryRequest | None:
        """The request of a deferred send that has come due, taken to be queued again: its due time
        moves on to ``retry_at`` on condition it is unchanged, so of two timer runs one takes it, and
        one that never reached delivery falls due again then. None: not deferred, not due, or taken."""
        ...


class DeliveryQueue(Protocol):
    def enqueue(self, requests: Sequence[DeliveryRequest]) -> None:
        """Hand requests to delivery; a request sent twice has one id, and delivery sends it once."""
        ...


class ContactEffects(Protocol):
    def tag(self, contact: ContactId, added: Sequence[str], removed: Sequence[str], at: datetime) -> None: ...

    def award(self, contact: ContactId, run: Plan, at: datetime) -> None:
        """The run's points, as one ledger entry with the automation as the reason (written once)."""
        ...


class StageMover(Protocol):
    def move(self, contact: ContactId, stage: str, reason: str) -> None: ...


class Telemetry(Protocol):
    def count(self, name: str, value: int) -> None: ...

    def failure(self, what: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Automating:
    clock: Clock
    automations: AutomationSource
    contacts: ProfileReader
    runs: RunStore
    queue: DeliveryQueue
    effects: ContactEffects
    stages: StageMover
    decay: Decay
    telemetry: Telemetry
    #: how the events trigger waits for the aggregation (``time.sleep``; tests pass a no-op)
    pause: Callable[[float], object] = time.sleep
    #: consent sources whose grants wait for the contact's confirmation (double opt-in): the events
    #: trigger asks for it, and ``consent.<channel>`` conditions hold once confirmed
    double_opt_in: frozenset[str] = frozenset()
    # --- issue 13: the holdout's uplift report: a run's contact, exposed to an automation with a holdout
    exposures: Exposures | None = None


# --- entry points ---------------------------------------------------------------------------------------


def on_event(
    contact: ContactId, event: TrackedEvent, log_key: str, deps: Automating, position: str | None = None
) -> int:
    """A tracked event (the event log's stream): runs it starts now, and series or delays it arms.

    The aggregation folds the same stream into the profile, in parallel: the conditions must see the
    contact with this event (a first purchase creates the profile), so the profile is read once it has
    folded ``position`` in, waiting a little, else the record is retried. Events older than a day
    (history sent late, ``/v1/import``) start nothing now, and their series start at the first
    occurrence still to come.
    """
    if event.call == LEDGER_CALL:  # points an automation awarded: not the contact's behaviour
        return 0
    now = deps.clock.now()
    fresh = event.timestamp >= now - STALE_AFTER
    grants = granted_channels(event) if deps.double_opt_in and fresh else ()
    book = deps.automations.book()
    if not len(book) and not grants:
        return 0
    found = event_starts(book, event, log_key, {})
    if not (found.now and fresh) and not found.timers and not grants:
        return 0
    record = _folded(contact, position, deps)
    if record is None:
        return 0
    holder = ContactId.parse(record.contact_id)
    if grants:
        _ask_confirmation(record, grants, deps)
    started = sum(_start(holder, record, o, book, deps) for o in found.now) if fresh else 0
    if found.timers:
        timers = event_starts(book, event, log_key, record.traits).timers  # in the contact's time zone
        eligible = [
            upcoming
            for timer in timers
            if _conditions_hold(book.get(timer.automation), record, deps)
            and (upcoming := _upcoming(timer, book, record, now)) is not None
        ]
        deps.telemetry.count("AutomationTimersArmed", deps.runs.arm(holder, eligible))
    return started


#: the automation name, template and version of the double opt-in confirmation requests
CONFIRMATION_AUTOMATION, CONFIRMATION_TEMPLATE = "consent", "consent-confirmation"


def confirmation_request(
    record: ContactRecord, channel: ConsentChannel, now: datetime
) -> DeliveryRequest | None:
    """The confirmation email for the grant of ``channel`` now in force, if it waits for one; its id is
    that grant's (``<contact>#consent#<channel>@<grant time>#0``), so it is one send however often asked."""
    consent = record.consent.get(channel)
    if consent is None or consent.granted is None:
        return None
    occurrence = f"{channel}@{format_time(consent.granted.at)}"
    return DeliveryRequest(
        id=f"{record.contact_id}#{CONFIRMATION_AUTOMATION}#{occurrence}#0",
        contact_id=record.contact_id,
        automation=CONFIRMATION_AUTOMATION,
        version=1,
        occurrence=occurrence,
        step=0,
        channel="email",
        at=now,
        template=CONFIRMATION_TEMPLATE,
        values={"confirm": channel},
        purpose="transactional",
    )


def _ask_confirmation(record: ContactRecord, grants: Sequence[ConsentChannel], deps: Automating) -> None:
    """Double opt-in: a grant from a source that needs the contact's confirmation (the channel's state
    is ``pending`` once folded in) gets one confirmation email, for the grant in force."""
    now = deps.clock.now()
    requests = [
        request
        for channel in dict.fromkeys(grants)
        if consent_state(record.consent.get(channel), deps.double_opt_in) == "pending"
        and (request := confirmation_request(record, channel, now)) is not None
    ]
    if requests:
        deps.queue.enqueue(requests)
        deps.telemetry.count("ConsentConfirmationsQueued", len(requests))


def _folded(contact: ContactId, position: str | None, deps: Automating) -> ContactRecord | None:
    """The contact's profile once it holds the event at ``position`` (its own stream position)."""
    for wait in (*FOLD_WAITS, None):
        record = deps.contacts.profile(contact)
        if record is not None and record.merged_into:
            return _profile(contact, deps)  # moved on: the event is re-routed there, positions differ
        if record is not None and (position is None or (record.aggregated_through or "") >= position):
            return record
        if wait is None:
            break
        deps.pause(wait)
    raise DependencyUnavailable("the event is not folded into its contact yet; retry")


def _upcoming(timer: Timer, book: AutomationBook, record: ContactRecord, now: datetime) -> Timer | None:
    """A series armed from an old event starts at its first occurrence still to come (or has ended)."""
    automation = book.get(timer.automation)
    while timer is not None and automation is not None and timer.due <= now - STALE_AFTER:
        timer = next_in_series(automation, timer, record.traits)
    return timer


def on_signal(signal: Signal, deps: Automating) -> int:
    """A lifecycle event from the bus: a stage or quarter change, a threshold crossed, a segment or
    churn-risk change, an NPS answer. An answer given longer than ``STALE_AFTER`` ago (imported, or sent
    late) starts nothing, as a late tracked event does (the reports still count it)."""
    book = deps.automations.book()
    occurrences = signal_starts(book, signal)
    if not occurrences or _stale_answer(signal, deps.clock.now()):
        return 0
    record = _profile(ContactId.parse(signal.contact_id), deps)
    if record is None:
        return 0
    holder = ContactId.parse(record.contact_id)
    return sum(_start(holder, record, occurrence, book, deps) for occurrence in occurrences)


def _stale_answer(signal: Signal, now: datetime) -> bool:
    """An ``NpsAnswered`` whose answer is older than ``STALE_AFTER``."""
    if signal.detail_type != "NpsAnswered":
        return False
    try:
        answered = parse_time(str(signal.detail.get("at")))
    except ValueError:
        return False
    return answered < now - STALE_AFTER


def on_profile_due(record: ContactRecord, deps: Automating) -> int:
    """A contact's due time: lapses and anniversaries that have come."""
    book = deps.automations.book()
    now = deps.clock.now()
    contact = ContactId.parse(record.contact_id)
    return sum(
        _start(contact, record, occurrence, book, deps)
        for occurrence in [*lapses(book, record, now), *anniversaries(book, record, now)]
    )


def on_timer(contact: ContactId, key: str, deps: Automating) -> int:
    """A timer that fell due: a series' occurrence, the rest of a run after a wait, or a follow-up."""
    timer = deps.runs.timer(contact, key)
    if timer is None or timer.due > deps.clock.now():
        return 0  # consumed meanwhile (a run fired twice), or re-armed later
    book = deps.automations.book()
    automation = book.get(timer.automation)
    record = _profile(contact, deps)
    if automation is None or record is None:
        deps.runs.consume(contact, Consumed(key, timer.n))
        return 0
    holder = ContactId.parse(record.contact_id)
    if holder != contact:  # merged away: the timer moves to the contact that joined it, due as it was
        deps.runs.arm(holder, [timer])
        deps.runs.consume(contact, Consumed(key, timer.n))
        return 0
    then = next_in_series(automation, timer, record.traits) if timer.kind == "series" else None
    consumed = Consumed(key, timer.n, then)
    if automation.paused:
        deps.runs.consume(contact, consumed)  # skipped while paused; a series goes on to its next one
        deps.telemetry.count("AutomationRunsSkippedPaused", 1)
        return 0
    if timer.kind == "series":
        values = {**timer.values, "occurrence_number": timer.n}
        occurrence = Occurrence(automation.id, f"{timer.occurrence}@{timer.n}", values)
    elif timer.kind == "continue":
        occurrence = Occurrence(automation.id, timer.occurrence, timer.values, step=timer.step)
    else:
        occurrence = Occurrence(automation.id, timer.occurrence, timer.values)
    return _start(contact, record, occurrence, book, deps, consumed=consumed)


def resume(contact: ContactId, run_key: str, deps: Automating) -> int:
    """Finish a run recorded but not marked done (a crash between recording and doing). Its effects go
    to the contact holding the profile now; the record is marked done where it is."""
    run = deps.runs.pending(contact, run_key)
    if run is None:
        return 0
    record = _profile(ContactId.parse(run.contact_id), deps)
    holder = ContactId.parse(record.contact_id) if record is not None else contact
    _perform(holder, run, deps)
    deps.runs.done(contact, run.key)
    return 1


def requeue(contact: ContactId, key: str, deps: Automating) -> int:
    """A deferred send whose time has come goes back to the delivery queue. Taken first (its due time
    moved on by ``RESUME_AFTER``), then queued: a schedule fired twice queues it once, and a queueing
    that fails leaves it due again. The delivery function's claim takes it off the index; were it queued
    twice anyway, the ledger sends it once."""
    now = deps.clock.now()
    request = deps.runs.take_deferred_send(contact, key, now, now + RESUME_AFTER)
    if request is None:
        return 0
    deps.queue.enqueue([request])
    deps.telemetry.count("DeferredSendsQueued", 1)
    return 1


def run_timers(
    deps: Automating,
    on_profile: ProfileHandler | None = None,
    time_left: Callable[[], float] | None = None,
) -> int:
    """Everything due: each entry on its own, so one that fails stays due and the others go on. Stops
    with ``SAFETY_SECONDS`` of the run's time left: what is not done stays due for the next run."""
    done = failed = 0
    for item in deps.runs.due(deps.clock.now()):
        if time_left is not None and time_left() < SAFETY_SECONDS:
            deps.telemetry.count("DueLeftForNextRun", 1)
            break
        try:
            if item.kind == "timer":
                on_timer(item.contact, item.key, deps)
            elif item.kind == "run":
                resume(item.contact, item.key, deps)
            elif item.kind == "send":
                requeue(item.contact, item.key, deps)
            else:
                record = deps.contacts.profile(item.contact)
                if record is None or record.merged_into:
                    continue
                on_profile_due(record, deps)
                if on_profile is not None:
                    on_profile(item.contact)
            done += 1
        except Exception:  # noqa: BLE001 - isolate the failure to this entry
            failed += 1
            deps.telemetry.failure("a due entry failed")
    deps.telemetry.count("DueDone", done)
    deps.telemetry.count("DueFailed", failed)
    return done


class ProfileHandler(Protocol):
    def __call__(self, contact: ContactId) -> object: ...


# --- the run --------------------------------------------------------------------------------------------


def _start(
    contact: ContactId,
    record: ContactRecord,
    occurrence: Occurrence,
    book: AutomationBook,
    deps: Automating,
    *,
    consumed: Consumed | None = None,
) -> int:
    automation = book.get(occurrence.automation)
    now = deps.clock.now()
    if automation is None or automation.paused:
        return 0
    entry = None
    if occurrence.step == 0:
        if not _conditions_hold(automation, record, deps):
            if consumed is not None:
                deps.runs.consume(contact, consumed)
            return 0
        entry = _entry(automation, record, now)
        if entry is False:
            if consumed is not None:
                deps.runs.consume(contact, consumed)
            deps.telemetry.count("AutomationRunsLimited", 1)
            return 0
    run = plan(automation, record, occurrence, deps.decay, now)
    outcome = deps.runs.start(contact, run, now=now, entry=entry or None, consumed=consumed)
    if outcome != "started":
        # Recorded already (a replay, a schedule fired twice) or not allowed: nothing is done twice. A
        # run recorded but left pending is finished by the timer function; the timer is consumed.
        if consumed is not None:
            deps.runs.consume(contact, consumed)
        deps.telemetry.count(
            "AutomationRunsLimited" if outcome == "limited" else "AutomationRunsDuplicate", 1
        )
        return 0
    deps.telemetry.count("AutomationRuns" if run.status == "acted" else "AutomationRunsHeldOut", 1)
    _perform(contact, run, deps)
    deps.runs.done(contact, run.key)
    return 1


def _perform(contact: ContactId, run: Plan, deps: Automating) -> None:
    """Do what a recorded run says; each effect is idempotent, so a retry does each once. An effect
    refused for good (a stage the funnel no longer has) is counted and passed; one failing for now
    raises, and the run stays pending for the timer function."""
    now = deps.clock.now()
    effects: list[tuple[str, Callable[[], object]]] = []
    exposed, exposures = _exposure(contact, run, deps, now), deps.exposures
    if exposed is not None and exposures is not None:
        effects.append(("exposure", lambda: exposures.expose([exposed])))
    if run.status == "acted":
        if run.tags_added or run.tags_removed:
            effects.append(("tags", lambda: deps.effects.tag(contact, run.tags_added, run.tags_removed, now)))
        if run.points:
            effects.append(("points", lambda: deps.effects.award(contact, run, now)))
        if run.stage:
            stage = run.stage
            effects.append(
                ("stage", lambda: deps.stages.move(contact, stage, f"automation {run.automation}"))
            )
    if run.requests:
        effects.append(("delivery", lambda: deps.queue.enqueue(run.requests)))
    for name, effect in effects:
        try:
            effect()
        except (NotFound, InvalidRequest, PayloadTooLarge):
            deps.telemetry.count("AutomationEffectsRefused", 1)
            deps.telemetry.failure(f"an automation's {name} effect was refused")
    deps.telemetry.count("DeliveryRequestsQueued", len(run.requests))


def _exposure(contact: ContactId, run: Plan, deps: Automating, now: datetime) -> Exposure | None:
    """Issue 13: the first run of an automation with a holdout exposes its contact (acted or held out),
    once per contact, for the uplift report (``shared.usecases.campaigns``)."""
    if deps.exposures is None or run.step != 0:
        return None
    automation = deps.automations.book().get(run.automation)
    if automation is None or automation.holdout_percent <= 0:
        return None
    return automation_exposure(str(contact), automation, run.status, now)


def _conditions_hold(automation: StoredAutomation | None, record: ContactRecord, deps: Automating) -> bool:
    return automation is not None and holds(
        automation.conditions, record, deps.decay, deps.clock.now(), deps.double_opt_in
    )


def _entry(
    automation: StoredAutomation, record: ContactRecord, now: datetime
) -> Entry | Literal[False] | None:
    """The re-entry mark a start takes, ``False`` if the contact may not enter now, ``None`` if unlimited."""
    if automation.reentry == "always":
        return None
    until = record.entered.get(automation.id)
    if until is not None and (until == "never" or until > format_time(now)):
        return False
    if automation.reentry == "once":
        return Entry(automation.id, None)
    assert automation.period is not None
    return Entry(automation.id, shift(now, automation.period, zone_of(record.traits)))


def _profile(contact: ContactId, deps: Automating) -> ContactRecord | None:
    """The profile holding the contact now: a merged-away contact's events act on the one it joined."""
    for _ in range(MAX_MERGE_HOPS):
        record = deps.contacts.profile(contact)
        if record is None or not record.merged_into:
            return record
        contact = ContactId.parse(record.merged_into)
    return None


# --- what the stage function needs to know ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Watches:
    """What time alone may start, for the contact's due time; and the score thresholds to watch."""

    source: AutomationSource

    def wakeup(self, record: ContactRecord, now: datetime) -> datetime | None:
        return wakeup(self.source.book(), record, now)

    def thresholds(self) -> tuple[tuple[str, float], ...]:
        return thresholds(self.source.book())


__all__ = ["Automating", "Watches", "on_event", "on_signal", "on_timer", "requeue", "resume", "run_timers"]

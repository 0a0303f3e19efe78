"""The automation use case on the fakes: exactly-once runs, re-entry, holdout, waits, follow-ups, and a
run a crash left pending finished by the timer function."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from shared.automations.model import Automation
from shared.clock import FixedClock
from shared.contacts.identity import ContactId
from shared.delivery.requests import DeliveryRequest
from shared.errors import DependencyUnavailable
from shared.scoring.decay import Decay
from shared.usecases.automation import Automating, on_profile_due, on_timer, run_timers
from tests.contract.helpers import change
from tests.fakes import (
    CountingTelemetry,
    MemoryAutomationRepository,
    MemoryContactEffects,
    MemoryContactStore,
    MemoryDeliveryQueue,
    MemoryRunStore,
    MemorySendLedger,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ANN = ContactId.user("ann")


@dataclass
class Moves:
    moved: list[tuple[str, str, str]] = field(default_factory=list)

    def move(self, contact: ContactId, stage: str, reason: str) -> None:
        self.moved.append((str(contact), stage, reason))


@dataclass
class World:
    clock: FixedClock
    contacts: MemoryContactStore
    automations: MemoryAutomationRepository
    runs: MemoryRunStore
    queue: MemoryDeliveryQueue
    stages: Moves
    telemetry: CountingTelemetry

    @property
    def deps(self) -> Automating:
        return Automating(
            clock=self.clock,
            automations=self.automations,
            contacts=self.contacts,
            runs=self.runs,
            queue=self.queue,
            effects=MemoryContactEffects(self.contacts),
            stages=self.stages,
            decay=Decay(timedelta(days=30)),
            telemetry=self.telemetry,
        )

    def add(self, **body) -> None:
        body = {"name": body["id"], **body}
        self.automations.save(Automation.model_validate(body), self.clock.now(), None)

    def visit(self, contact: ContactId = ANN, message: str = "p1") -> None:
        event = {
            "type": "page",
            "userId": contact.value,
            "messageId": message,
            "properties": {"url": "https://x.test/"},
        }
        assert self.contacts.commit([change(contact, event, at=self.clock.now())])[0].committed

    def profile(self, contact: ContactId = ANN):
        return self.contacts.profile(contact)


@pytest.fixture
def world() -> World:
    contacts = MemoryContactStore()
    return World(
        FixedClock(NOW),
        contacts,
        MemoryAutomationRepository(),
        MemoryRunStore(contacts),
        MemoryDeliveryQueue(),
        Moves(),
        CountingTelemetry(),
    )


LAPSE = {"type": "inactivity", "days": 30}
EMAIL = {"action": "email", "subject": "Hi", "text": "Hello"}


def test_a_lapse_runs_once_however_often_the_due_time_is_looked_at(world) -> None:
    world.add(id="lapse", trigger=LAPSE, steps=[EMAIL, {"action": "tag", "add": "lapsed"}])
    world.visit()
    world.clock.advance(timedelta(days=31))
    for _ in range(3):  # double-fired schedules, retried runs
        on_profile_due(world.profile(), world.deps)
    assert [r.subject for r in world.queue.sent] == ["Hi"]
    assert "lapsed" in world.profile().tags


def test_reentry_once_and_once_per_period(world) -> None:
    world.add(id="once", trigger=LAPSE, reentry="once", steps=[EMAIL])
    world.add(id="monthly", trigger=LAPSE, reentry="once_per", period={"days": 60}, steps=[EMAIL])
    for visit in range(3):  # three lapses, 40 days apart
        world.visit(message=f"p{visit}")
        world.clock.advance(timedelta(days=31))
        on_profile_due(world.profile(), world.deps)
        world.clock.advance(timedelta(days=9))
    by_automation = [r.automation for r in world.queue.sent]
    assert by_automation.count("once") == 1
    assert by_automation.count("monthly") == 2, (
        "lapses at day 31 and 111 (80 days apart): the one at 71 was within 60 days"
    )


def test_conditions_are_checked_at_the_start(world) -> None:
    world.add(
        id="pro-only",
        trigger=LAPSE,
        conditions=[{"field": "traits.plan", "op": "eq", "value": "pro"}],
        steps=[EMAIL],
    )
    world.visit()
    world.clock.advance(timedelta(days=31))
    on_profile_due(world.profile(), world.deps)
    assert world.queue.sent == []


def test_a_held_out_contact_is_recorded_and_gets_no_effects(world) -> None:
    from shared.automations.engine import held_out

    contact = next(ContactId.user(f"u{n}") for n in range(200) if held_out(f"user_id:u{n}", "lapse", 50))
    world.add(id="lapse", trigger=LAPSE, holdout_percent=50, steps=[{"action": "tag", "add": "x"}, EMAIL])
    world.visit(contact)
    world.clock.advance(timedelta(days=31))
    on_profile_due(world.profile(contact), world.deps)
    (request,) = world.queue.sent
    assert request.status == "held_out" and "x" not in world.profile(contact).tags
    assert world.telemetry.counts["AutomationRunsHeldOut"] == 1


def test_a_wait_and_a_follow_up_run_later_through_their_timers(world) -> None:
    world.add(
        id="welcome",
        trigger=LAPSE,
        steps=[
            {"action": "tag", "add": "one"},
            {"action": "follow_up", "automation": "survey", "after": {"days": 2}},
            {"action": "wait", "for": {"days": 3}},
            {"action": "stage", "to": "customer"},
            {"action": "sms", "text": "Still there?"},
        ],
    )
    world.add(
        id="survey",
        trigger={"type": "follow_up"},
        steps=[{"action": "email", "subject": "How was it?", "text": "t"}],
    )
    world.visit()
    world.clock.advance(timedelta(days=31))
    on_profile_due(world.profile(), world.deps)
    assert world.queue.sent == [] and "one" in world.profile().tags
    world.clock.advance(timedelta(days=2))
    run_timers(world.deps)
    assert [r.subject for r in world.queue.sent] == ["How was it?"]
    world.clock.advance(timedelta(days=1))
    run_timers(world.deps)
    run_timers(world.deps)  # fired twice: the continuation was consumed
    assert [r.channel for r in world.queue.sent] == ["email", "sms"]
    assert world.stages.moved == [("user_id:ann", "customer", "automation welcome")]


def test_a_run_left_pending_by_a_failure_is_finished_by_the_timers_once(world) -> None:
    world.add(id="lapse", trigger=LAPSE, steps=[EMAIL])
    world.visit()
    world.clock.advance(timedelta(days=31))
    world.queue.unavailable = True
    with pytest.raises(DependencyUnavailable):
        on_profile_due(world.profile(), world.deps)
    assert world.queue.sent == []
    world.queue.unavailable = False
    world.clock.advance(timedelta(minutes=4))
    run_timers(world.deps)
    assert world.queue.sent == [], "not yet: the run is due again five minutes after it was recorded"
    world.clock.advance(timedelta(minutes=2))
    run_timers(world.deps)
    run_timers(world.deps)
    assert [r.subject for r in world.queue.sent] == ["Hi"]


def test_a_deferred_send_is_queued_again_once_when_due_and_again_if_queueing_failed(world) -> None:
    ledger = world.runs.ledger = MemorySendLedger()
    request = DeliveryRequest(
        id="user_id:ann#lapse#o1#0",
        contact_id="user_id:ann",
        automation="lapse",
        version=1,
        occurrence="o1",
        step=0,
        channel="email",
        at=NOW,
        subject="Hi",
        text="Hello",
        best_hour=True,
    )
    assert ledger.claim(request, NOW).outcome == "claimed"
    ledger.defer(request, NOW + timedelta(hours=8), "quiet hours", NOW)
    world.clock.advance(timedelta(hours=8) - timedelta(seconds=1))
    run_timers(world.deps)
    assert world.queue.sent == [], "not due yet"

    world.clock.advance(timedelta(seconds=1))
    world.queue.unavailable = True
    run_timers(world.deps)
    assert world.queue.sent == [] and world.telemetry.counts["DueFailed"] == 1
    world.queue.unavailable = False
    world.clock.advance(timedelta(minutes=4))
    run_timers(world.deps)
    assert world.queue.sent == [], "taken: due again five minutes after the failed attempt, not before"

    world.clock.advance(timedelta(minutes=1))
    run_timers(world.deps)
    run_timers(world.deps)  # a schedule fired twice
    assert world.queue.sent == [request], "queued once, as it was deferred"
    assert world.telemetry.counts["DeferredSendsQueued"] == 1
    assert ledger.record(request.id).status == "deferred"

    world.clock.advance(timedelta(minutes=10))
    run_timers(world.deps)
    assert world.queue.sent == [request, request], "delivery never claimed it: queued again (one send)"
    assert ledger.claim(request, world.clock.now()).outcome == "claimed"
    world.clock.advance(timedelta(days=1))
    run_timers(world.deps)
    assert len(world.queue.sent) == 2, "claimed: off the due index"


def test_a_timer_of_a_deleted_automation_is_dropped(world) -> None:
    world.add(id="later", trigger={"type": "follow_up"}, steps=[EMAIL])
    world.add(
        id="first",
        trigger=LAPSE,
        steps=[{"action": "follow_up", "automation": "later", "after": {"days": 1}}],
    )
    world.visit()
    world.clock.advance(timedelta(days=31))
    on_profile_due(world.profile(), world.deps)
    world.automations.remove("later", world.clock.now(), None)
    world.clock.advance(timedelta(days=2))
    run_timers(world.deps)
    assert world.queue.sent == [] and world.runs.timers(ANN) == []
    assert on_timer(ANN, "later#follow:first:x", world.deps) == 0


def test_a_run_recorded_already_is_not_done_again_by_a_second_start(world) -> None:
    world.add(id="lapse", trigger=LAPSE, steps=[EMAIL])
    world.visit()
    world.clock.advance(timedelta(days=31))
    world.queue.unavailable = True
    with pytest.raises(DependencyUnavailable):
        on_profile_due(world.profile(), world.deps)
    world.queue.unavailable = False
    on_profile_due(world.profile(), world.deps)  # a second timer run at the same moment
    assert world.queue.sent == [] and world.telemetry.counts["AutomationRunsDuplicate"] == 1
    world.clock.advance(timedelta(minutes=6))
    run_timers(world.deps)  # the pending run is finished once, by the timer function
    assert len(world.queue.sent) == 1


def test_an_effect_refused_for_good_is_counted_and_the_rest_is_done(world) -> None:
    from shared.errors import NotFound

    class Refusing(Moves):
        def move(self, contact, stage, reason):
            raise NotFound(f"no stage {stage} in the funnel")

    world.stages = Refusing()
    world.add(id="lapse", trigger=LAPSE, steps=[{"action": "stage", "to": "vip"}, EMAIL])
    world.visit()
    world.clock.advance(timedelta(days=31))
    on_profile_due(world.profile(), world.deps)
    assert len(world.queue.sent) == 1 and world.telemetry.counts["AutomationEffectsRefused"] == 1
    world.clock.advance(timedelta(hours=1))
    run_timers(world.deps)
    assert len(world.queue.sent) == 1, "the run is done: not resumed"


def test_the_events_trigger_waits_for_the_aggregation_then_asks_to_be_retried(world) -> None:
    from shared.contacts.model import ContactRecord
    from shared.usecases.automation import FOLD_WAITS, on_event
    from tests.contract.helpers import calls

    world.add(id="buy", trigger={"type": "event", "behaviour": "purchase"}, steps=[EMAIL])
    (order,) = calls(
        {"type": "track", "event": "Order Completed", "userId": "ann", "messageId": "o1"}, at=NOW
    )

    class Folding:
        """The aggregation folds the event in after ``reads`` reads of the profile."""

        def __init__(self, reads: int) -> None:
            self.reads, self.count = reads, 0

        def profile(self, contact):
            self.count += 1
            folded = self.count > self.reads
            return ContactRecord(contact_id=str(contact), aggregated_through="0007" if folded else "0006")

    pauses: list[float] = []
    deps = world.deps
    from dataclasses import replace

    late = replace(deps, contacts=Folding(reads=2), pause=pauses.append)
    assert on_event(ANN, order, "E#o1", late, position="0007") == 1
    assert pauses == list(FOLD_WAITS[:2]) and len(world.queue.sent) == 1
    never = replace(deps, contacts=Folding(reads=99), pause=lambda s: None)
    with pytest.raises(DependencyUnavailable):
        on_event(ANN, order, "E#o2", never, position="0007")


def test_an_old_event_starts_nothing_now_and_its_series_starts_at_what_is_to_come(world) -> None:
    from shared.usecases.automation import on_event
    from tests.contract.helpers import calls

    world.add(id="buy", trigger={"type": "event", "behaviour": "purchase"}, steps=[EMAIL])
    world.add(
        id="yearly",
        trigger={
            "type": "event",
            "behaviour": "purchase",
            "after": {"years": 1},
            "repeat": {"years": 1},
            "counter": {"name": "age", "from": "child_age", "up_to": 12},
        },
        steps=[EMAIL],
    )
    bought = NOW - timedelta(days=365 * 3 + 30)  # an order imported three years late
    (order,) = calls(
        {
            "type": "track",
            "event": "Order Completed",
            "userId": "ann",
            "messageId": "o1",
            "properties": {"child_age": 6},
        },
        at=bought,
    )
    world.visit()
    on_event(ANN, order, "E#o1", world.deps)
    assert world.queue.sent == [], "history sent late starts nothing now"
    (timer,) = world.runs.timers(ANN)
    assert timer.n == 4 and timer.values["age"] == 10 and timer.due > NOW


def test_a_timer_of_a_merged_away_contact_moves_to_the_contact_that_joined_it(world) -> None:
    from shared.automations.engine import Timer

    visitor = ContactId.anonymous("v1")
    world.add(id="later", trigger={"type": "follow_up"}, steps=[EMAIL])
    world.visit(visitor, "pv")
    world.visit(ANN, "pa")
    world.runs.arm(visitor, [Timer("later", "later#f", NOW, "follow_up", occurrence="f")])
    world.contacts.claim(visitor, ANN, NOW)
    run_timers(world.deps)
    assert world.runs.timers(visitor) == [] and [t.automation for t in world.runs.timers(ANN)] == ["later"]
    run_timers(world.deps)
    (request,) = world.queue.sent
    assert request.contact_id == str(ANN)


# --- issue 13: an automation with a holdout exposes its contacts, for its uplift report -----------------


def test_the_first_run_of_an_automation_with_a_holdout_exposes_the_contact_once(world) -> None:
    from dataclasses import replace

    from shared.automations.engine import held_out
    from tests.fakes import MemoryExposures

    exposures = MemoryExposures()
    world.add(id="lapse", trigger=LAPSE, holdout_percent=50, steps=[EMAIL])
    world.add(id="plain", trigger=LAPSE, steps=[EMAIL])
    contacts = [ContactId.user(f"c{i}") for i in range(12)]
    for contact in contacts:
        world.visit(contact, message=f"v-{contact.value}")
    world.clock.advance(timedelta(days=31))
    deps = replace(world.deps, exposures=exposures)
    for _ in range(2):  # a double-fired schedule
        for contact in contacts:
            on_profile_due(world.profile(contact), deps)
    counts = exposures.counts("automation:lapse")
    expected_held = sum(held_out(str(c), "lapse", 50) for c in contacts)
    assert 0 < expected_held < len(contacts)
    assert counts["held_out"].assigned == expected_held
    assert counts["acted"].assigned == len(contacts) - expected_held
    assert exposures.counts("automation:plain") == {}  # no holdout, no report

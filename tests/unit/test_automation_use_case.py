"""The automation use case on the fakes: exactly-once runs, re-entry, holdout, waits, follow-ups, and a
run a crash left pending finished by the timer function."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from shared.automations.model import Automation
from shared.clock import FixedClock
from shared.contacts.identity import ContactId
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

"""Double opt-in in the events trigger (``shared.usecases.automation.on_event``): a grant from a source
that needs confirmation queues one confirmation email, for the grant in force, however often the event
comes; other grants, revocations and other events queue none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.clock import FixedClock
from shared.contacts.identity import ContactId
from shared.scoring.decay import Decay
from shared.scoring.engine import ScoringContext
from shared.tracking.messages import parse_calls
from shared.tracking.wire import Limits
from shared.usecases.aggregation import NewEvent
from shared.usecases.automation import Automating, on_event
from shared.usecases.recording import record
from tests.fakes import (
    CountingTelemetry,
    MemoryAutomationRepository,
    MemoryContactEffects,
    MemoryContactStore,
    MemoryDeliveryQueue,
    MemoryRunStore,
    StaticRules,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ANN = ContactId.user("ann")
DOI = frozenset({"signup form"})


class World:
    def __init__(self, double_opt_in: frozenset[str] = DOI) -> None:
        self.clock = FixedClock(NOW)
        self.store = MemoryContactStore()
        self.queue = MemoryDeliveryQueue()
        self.telemetry = CountingTelemetry()
        self.deps = Automating(
            clock=self.clock,
            automations=MemoryAutomationRepository(),
            contacts=self.store,
            runs=MemoryRunStore(self.store),
            queue=self.queue,
            effects=MemoryContactEffects(self.store),
            stages=None,  # type: ignore[arg-type]  # no automation moves stages here
            decay=Decay(),
            telemetry=self.telemetry,
            pause=lambda _: None,
            double_opt_in=double_opt_in,
        )

    def send(self, *batch: dict) -> list[NewEvent]:
        """Record the calls, fold them in, and hand back what the stream delivers to the trigger."""
        events = parse_calls(
            "/v1/batch", {"batch": list(batch)}, received_at=self.clock.now(), limits=Limits()
        )
        record(events, self.store, self.clock.now(), ScoringContext(StaticRules().book(), Decay()))
        news = self.store.new_events()
        from shared.usecases.aggregation import aggregate

        aggregate(news, self.store.aggregation())
        return news

    def trigger(self, news: list[NewEvent]) -> None:
        for new in news:
            on_event(new.contact, new.event, new.key, self.deps)  # folded in already (send)


def grant(source: str | None = "signup form", message: str = "m1", minutes: int = 0, **traits) -> dict:
    traits = {"email_opt_in": True, **traits}
    if source is not None:
        traits["consent_source"] = source
    stamp = (NOW - timedelta(minutes=minutes)).isoformat()
    return {"type": "identify", "userId": "ann", "messageId": message, "timestamp": stamp, "traits": traits}


def test_a_grant_that_needs_confirmation_queues_one_confirmation_email() -> None:
    world = World()
    world.trigger(world.send(grant(minutes=2)))
    (request,) = world.queue.sent
    occurrence = "email@" + (NOW - timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert request.id == f"user_id:ann#consent#{occurrence}#0"
    assert (request.automation, request.version, request.occurrence, request.step) == (
        "consent",
        1,
        occurrence,
        0,
    )
    assert (request.channel, request.template, request.values, request.purpose) == (
        "email",
        "consent-confirmation",
        {"confirm": "email"},
        "transactional",
    )
    assert (request.contact_id, request.at) == ("user_id:ann", NOW)


def test_a_redelivered_event_asks_again_with_the_same_id_and_delivery_sends_it_once() -> None:
    world = World()
    news = world.send(grant())
    world.trigger(news)
    world.trigger(news)
    # the queue may hold the same request twice (a retried record): one id, and the ledger sends it once
    assert len({r.id for r in world.queue.sent}) == 1


def test_an_sms_grant_is_confirmed_by_email_too() -> None:
    world = World()
    world.trigger(world.send(grant(email_opt_in=None, sms_consent=True)))
    (request,) = world.queue.sent
    assert (request.channel, request.values) == ("email", {"confirm": "sms"})
    assert "#consent#sms@" in request.id


@pytest.mark.parametrize(
    ("double_opt_in", "call"),
    [
        (DOI, grant(source="checkout")),  # a source without double opt-in: granted at once
        (DOI, grant(source=None)),  # "api"
        (frozenset(), grant()),  # double opt-in off
        (DOI, grant(email_opt_in=False)),  # a revocation
        (DOI, grant(minutes=60 * 48)),  # history sent late asks nobody now
        (DOI, {"type": "track", "userId": "ann", "event": "Order Completed", "properties": {"revenue": 1}}),
    ],
)
def test_nothing_else_asks_for_a_confirmation(double_opt_in, call) -> None:
    world = World(double_opt_in)
    world.trigger(world.send(call))
    assert world.queue.sent == []


def test_a_confirmed_grant_is_not_asked_again_but_a_new_grant_after_a_revocation_is() -> None:
    world = World()
    world.trigger(world.send(grant(message="m1", minutes=30)))
    world.store.profiles[ANN].consent["email"]["confirmed_at"] = NOW - timedelta(minutes=20)
    world.trigger(world.send(grant(message="m2", minutes=10)))  # opts in again from the same form
    assert len(world.queue.sent) == 1
    world.trigger(world.send(grant(message="m3", minutes=5, email_opt_in=False)))
    world.trigger(world.send(grant(message="m4", minutes=1)))
    assert len(world.queue.sent) == 2
    assert (
        world.queue.sent[1].occurrence.startswith("email@")
        and world.queue.sent[1].id != world.queue.sent[0].id
    )


def test_the_queue_failing_fails_the_record_for_a_retry() -> None:
    from shared.errors import DependencyUnavailable

    world = World()
    news = world.send(grant())
    world.queue.unavailable = True
    with pytest.raises(DependencyUnavailable):
        world.trigger(news)
    world.queue.unavailable = False
    world.trigger(news)
    assert len(world.queue.sent) == 1

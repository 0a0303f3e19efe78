"""Issue 15: automations on NPS answers: the ``nps`` trigger (``NpsAnswered``, optionally one category or
one survey), the shipped examples, and a detractor's answer, from the link to the service-recovery
automation's messages, once however often the bus delivers it."""

from __future__ import annotations

import json

import pytest

from functions.automation_signals.handler import BusEvent
from infra.wiring import AUTOMATION_SIGNALS
from shared.automations.catalogue import parse_automation
from shared.automations.engine import signal_starts
from shared.automations.model import Automation
from shared.errors import InvalidRequest
from shared.nps.answers import NpsAnswered
from shared.scoring.catalogue import parse_rule
from shared.usecases.automation import on_signal
from tests.conftest import EVENTS, ROOT
from tests.fakes import MemoryAutomationRepository, MemoryDeliveryQueue, MemoryRunStore
from tests.unit.test_automation_use_case import Moves
from tests.unit.test_automation_use_case import World as AutomationWorld
from tests.unit.test_nps_answers import ANN, NOW
from tests.unit.test_nps_answers import World as AnswerWorld

EXAMPLES = ROOT / "examples" / "nps"


def example(name: str) -> dict:
    return json.loads((EXAMPLES / f"{name}.json").read_text())


def on_the_bus(event: NpsAnswered) -> BusEvent:
    """The event as the events trigger publishes it (its JSON by alias) and the signals function reads it."""
    return BusEvent.model_validate(
        {"detail-type": "NpsAnswered", "source": "lifecycle", "detail": json.loads(event.model_dump_json())}
    )


def test_nps_answered_is_an_automation_signal() -> None:
    assert "NpsAnswered" in AUTOMATION_SIGNALS


def test_the_trigger_takes_a_category_and_a_survey() -> None:
    trigger = Automation.model_validate(example("service-recovery")).trigger
    assert (trigger.type, trigger.category, trigger.survey) == ("nps", "detractor", None)
    body = {"id": "x", "name": "x", "steps": [{"action": "tag", "add": "x"}]}
    assert Automation.model_validate({**body, "trigger": {"type": "nps"}}).trigger.category is None
    with pytest.raises(InvalidRequest) as refused:
        parse_automation("x", {**body, "trigger": {"type": "nps", "category": "critic"}})
    assert refused.value.field == "trigger.category"
    assert "'promoter', 'passive' or 'detractor'" in refused.value.message


def test_the_examples_are_valid_automations_and_rules() -> None:
    for name in ("service-recovery", "referral-ask"):
        Automation.model_validate(example(name))
    for name in ("detractor-points", "promoter-points"):
        parse_rule(name, example(name))


def test_the_sample_event_starts_the_automations_it_matches() -> None:
    sample = json.loads((EVENTS / "automation_signals" / "nps_answered.json").read_text())
    event = NpsAnswered.model_validate(sample["detail"])
    assert json.loads(event.model_dump_json(by_alias=True)) == sample["detail"], "the real shape"
    repository = MemoryAutomationRepository()
    for body in (
        example("service-recovery"),
        example("referral-ask"),
        {"id": "any", "name": "any", "trigger": {"type": "nps"}, "steps": [{"action": "tag", "add": "a"}]},
        {
            "id": "other-survey",
            "name": "o",
            "trigger": {"type": "nps", "survey": "another"},
            "steps": [{"action": "tag", "add": "a"}],
        },
    ):
        repository.save(Automation.model_validate(body), NOW, None)
    signal = BusEvent.model_validate(sample).signal()
    started = sorted(o.automation for o in signal_starts(repository.book(), signal))
    assert started == ["any", "nps-service-recovery"], "a detractor: not the promoters' referral ask"


def test_a_detractor_by_link_triggers_service_recovery_once() -> None:
    answers = AnswerWorld()
    answers.track(
        {
            "type": "identify",
            "userId": "ann",
            "messageId": "i1",
            "traits": {"first_name": "Ann", "email": "ann@example.com"},
        }
    )
    answers.run()
    answers.link(2, comment="Late again")
    assert answers.run() == ["recorded"]
    (answered,) = answers.bus.sent

    automations = AutomationWorld(
        answers.clock,
        answers.store,
        MemoryAutomationRepository(),
        MemoryRunStore(answers.store),
        MemoryDeliveryQueue(),
        Moves(),
        answers.telemetry,
    )
    automations.add(**example("service-recovery"))
    automations.add(**example("referral-ask"))
    signal = on_the_bus(answered).signal()
    assert on_signal(signal, automations.deps) == 1
    assert on_signal(signal, automations.deps) == 0, "the bus delivers it again: started once"
    assert "nps-detractor" in answers.store.profile(ANN).tags
    webhook, email = automations.queue.sent
    assert (webhook.channel, webhook.automation, webhook.url) == (
        "webhook",
        "nps-service-recovery",
        "https://care.example.com/hooks/nps-detractor",
    )
    assert email.channel == "email" and "(2 out of 10)" in email.text
    assert email.text.startswith("Hello Ann,")


def test_a_late_answer_starts_nothing_but_is_still_counted() -> None:
    """An answer older than the automation engine's ``STALE_AFTER`` (history imported, a back-end sending
    late) starts no automation; the reports still count it."""
    from datetime import timedelta

    from shared.usecases.automation import STALE_AFTER
    from shared.usecases.metrics import StageMetering
    from shared.usecases.nps_metrics import count_nps_answer
    from tests.fakes import CountingTelemetry, MemoryMetricStore

    answers = AnswerWorld()
    answers.track(
        {"type": "identify", "userId": "ann", "messageId": "i1", "traits": {"email": "a@example.com"}}
    )
    answers.run()
    late = (NOW - STALE_AFTER - timedelta(hours=1)).isoformat()
    answers.track(
        {
            "type": "track",
            "userId": "ann",
            "messageId": "late",
            "timestamp": late,
            "event": "NPS Submitted",
            "properties": {"survey_id": "nps-q1", "score": 2},
        }
    )
    assert answers.run() == ["recorded"]
    (answered,) = answers.bus.sent
    assert answered.at < NOW - STALE_AFTER
    automations = AutomationWorld(
        answers.clock,
        answers.store,
        MemoryAutomationRepository(),
        MemoryRunStore(answers.store),
        MemoryDeliveryQueue(),
        Moves(),
        answers.telemetry,
    )
    automations.add(**example("service-recovery"))
    assert on_signal(on_the_bus(answered).signal(), automations.deps) == 0, "too late to start anything"
    assert automations.queue.sent == [] and "nps-detractor" not in answers.store.profile(ANN).tags
    assert count_nps_answer(answered, StageMetering(MemoryMetricStore(), CountingTelemetry()))
    # a fresh answer (to another survey) starts it
    answers.link(3, survey="nps-q2")
    answers.run()
    fresh = answers.bus.sent[-1]
    assert on_signal(on_the_bus(fresh).signal(), automations.deps) == 1


def test_an_event_trigger_on_nps_answered_starts_only_on_a_servers() -> None:
    """An automation may name the log's ``NPS Answered`` as an event trigger: a browser key's (anyone's
    page may send one) starts nothing, the product's own does."""
    from dataclasses import replace
    from datetime import UTC, datetime

    from shared.automations.book import AutomationBook
    from shared.automations.engine import event_starts
    from shared.tracking.messages import parse_calls
    from shared.tracking.proofs import Provenance
    from shared.tracking.wire import Limits
    from tests.unit.test_automation_engine import stored

    book = AutomationBook(
        [
            stored(
                id="thanks",
                trigger={"type": "event", "behaviour": "custom", "match": {"event": "NPS Answered"}},
                steps=[{"action": "tag", "add": "answered"}],
            )
        ]
    )
    call = {"userId": "ann", "event": "NPS Answered", "properties": {"category": "promoter"}}
    (event,) = parse_calls("/v1/track", call, received_at=datetime(2026, 6, 1, tzinfo=UTC), limits=Limits())
    assert event.provenance is Provenance.BROWSER
    assert not event_starts(book, event, "k", {}).now
    server = replace(event, provenance=Provenance.SERVER)
    assert [o.automation for o in event_starts(book, server, "k", {}).now] == ["thanks"]

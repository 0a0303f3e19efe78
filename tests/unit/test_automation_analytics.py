"""Automations on the nightly analytics: ``SegmentChanged`` and ``ChurnRiskChanged`` triggers, conditions
and coupon tables on ``analytics.*``, the shipped examples and signal samples, on the engine and on the
use case with the fakes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from functions.automation_signals.handler import BusEvent
from shared.analytics.events import ChurnRiskChanged, SegmentChanged, rfm_segment
from shared.analytics.facts import SEGMENT_NAMES, Analytics, ChurnFacts, RfmFacts, RiskLevel, Segment
from shared.automations.book import AutomationBook
from shared.automations.catalogue import parse_automation
from shared.automations.engine import Occurrence, Signal, holds, plan, signal_starts
from shared.automations.model import Automation, Condition, StoredAutomation, table_key
from shared.clock import FixedClock
from shared.contacts.identity import ContactId
from shared.contacts.model import ContactRecord
from shared.errors import InvalidRequest
from shared.scoring.decay import Decay
from shared.usecases.automation import on_signal
from tests.conftest import EVENTS, ROOT
from tests.fakes import (
    CountingTelemetry,
    MemoryAutomationRepository,
    MemoryContactStore,
    MemoryDeliveryQueue,
    MemoryRunStore,
)
from tests.unit.test_automation_use_case import Moves, World

NOW = datetime(2026, 11, 23, 3, 12, tzinfo=UTC)
DAY = date(2026, 11, 22)
DECAY = Decay(timedelta(days=30))
ANN = ContactId.user("ann")
EXAMPLES = ROOT / "examples" / "automations"
EMAIL = {"action": "email", "subject": "s", "text": "t"}
FIRST = "trigger: initial takes a contact's first scoring, which comes from nothing (from null): "


def example(name: str) -> dict:
    return json.loads((EXAMPLES / f"{name}.json").read_text())


def stored(**fields) -> StoredAutomation:
    return StoredAutomation.model_validate({"name": fields.get("id", "x"), "version": 1, **fields})


def scored(
    segment: Segment | None = "champions",
    premium: bool = False,
    level: RiskLevel = "low",
    rfm: tuple[int, int, int] = (5, 5, 5),
) -> Analytics:
    r, f, m = rfm
    return Analytics(
        day=DAY,
        rfm=None if segment is None else RfmFacts(r=r, f=f, m=m, segment=segment, premium=premium),
        churn=ChurnFacts(
            p_no_purchase=0.81,
            churn_risk={"low": 0.1, "medium": 0.5, "high": 0.94}[level],
            level=level,
            expected_next_purchase=date(2026, 8, 25),
            typical_gap_days=30.0,
        ),
    )


def contact(analytics: Analytics | None = None, **fields) -> ContactRecord:
    return ContactRecord(contact_id=str(ANN), user_id="ann", analytics=analytics, **fields)


def moved(
    source: Segment | None, target: Segment | None, *, premium: bool = False, initial: bool = False
) -> tuple[SegmentChanged, ...]:
    """What the nightly pass announces for a move: a ``left`` and an ``entered``, each with both ends
    (``initial``: the contact's first scoring)."""
    ends = {"from_segment": rfm_segment(source), "to_segment": rfm_segment(target)}
    return tuple(
        SegmentChanged(
            event_id=f"{ANN}#{name}#{change}#{DAY}",
            contact_id=str(ANN),
            at=NOW,
            day=DAY,
            initial=initial,
            segment=name,
            change=change,
            premium=premium,
            r=2,
            f=5,
            m=5,
            **ends,
        )
        for change, name in (("left", rfm_segment(source)), ("entered", rfm_segment(target)))
        if name is not None
    )


def risk(source: RiskLevel | None, target: RiskLevel, *, initial: bool = False) -> ChurnRiskChanged:
    return ChurnRiskChanged(
        event_id=f"{ANN}#churn#{target}#{DAY}",
        contact_id=str(ANN),
        at=NOW,
        day=DAY,
        initial=initial,
        from_level=source,
        to_level=target,
        churn_risk=0.94,
        p_no_purchase=0.81,
        expected_next_purchase=date(2026, 8, 25),
        typical_gap_days=30.0,
    )


def on_the_bus(event: SegmentChanged | ChurnRiskChanged) -> Signal:
    """The event as the nightly pass publishes it (its JSON by alias) and the signals function reads it."""
    envelope = {
        "detail-type": event.detail_type,
        "source": "lifecycle",
        "detail": json.loads(event.model_dump_json(by_alias=True)),
    }
    return BusEvent.model_validate(envelope).signal()


# --- validation -----------------------------------------------------------------------------------------


def automation(**changes) -> dict:
    return {
        "name": "A",
        "trigger": {"type": "segment", "segment": "rfm:at_risk"},
        "steps": [EMAIL],
        **changes,
    }


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"trigger": {"type": "segment", "segment": "rfm:champs"}},
            "trigger.segment: 'rfm:champs' is not an RFM segment; they are rfm:champions, rfm:loyal, ",
        ),
        (
            {"trigger": {"type": "segment", "segment": "rfm:at_risk", "from": "rfm:champ"}},
            "trigger.from: 'rfm:champ' is not an RFM segment",
        ),
        (
            {"trigger": {"type": "segment", "segment": "rfm:at_risk", "to": "rfm:lost"}},
            "trigger: an entry goes to the segment itself: narrow it with from",
        ),
        (
            {"trigger": {"type": "segment", "segment": "rfm:at_risk", "change": "left", "from": "rfm:lost"}},
            "trigger: a departure comes from the segment itself: narrow it with to",
        ),
        (
            {"trigger": {"type": "segment", "segment": "rfm:at_risk", "from": "rfm:at_risk"}},
            "trigger: from and to name the other end of the change, not 'rfm:at_risk' itself",
        ),
        (
            {"trigger": {"type": "segment", "segment": "rfm:at_risk", "from": "newsletter"}},
            "trigger: an RFM segment changes only from and to RFM segments",
        ),
        (
            {"trigger": {"type": "churn_risk", "from": "high", "to": "high"}},
            "trigger: from and to are both 'high': a change moves between two levels",
        ),
        ({"trigger": {"type": "churn_risk", "to": "severe"}}, "trigger.to: Input should be 'low', 'medium'"),
        (
            {"trigger": {"type": "segment", "segment": "rfm:at_risk", "change": "left", "initial": True}},
            FIRST + "it enters a segment and leaves none",
        ),
        (
            {"trigger": {"type": "segment", "segment": "rfm:at_risk", "from": "rfm:loyal", "initial": True}},
            FIRST + "give initial or from, not both",
        ),
        (
            {"trigger": {"type": "churn_risk", "from": "low", "to": "high", "initial": True}},
            FIRST + "give initial or from, not both",
        ),
        (
            {"trigger": {"type": "churn_risk", "to": "high", "initial": "sometimes"}},
            "trigger.initial: Input should be a valid boolean",
        ),
        (
            {"conditions": [{"field": "analytics.segment", "op": "in", "value": ["at_risk", "champs"]}]},
            "conditions.0: analytics.segment is one of champions, loyal, potential_loyalist, ",
        ),
        (
            {"conditions": [{"field": "analytics.premium", "op": "eq", "value": "true"}]},
            "conditions.0: analytics.premium is one of true, false; not 'true'",
        ),
        (
            {"conditions": [{"field": "analytics.r", "op": "eq", "value": True}]},
            "conditions.0: analytics.r is one of 1, 2, 3, 4, 5; not True",
        ),
        (
            {"conditions": [{"field": "analytics.risk_level", "op": "ne", "value": "severe"}]},
            "conditions.0: analytics.risk_level is one of low, medium, high; not 'severe'",
        ),
        ({"conditions": [{"field": "analytics.mood", "op": "exists"}]}, "conditions.0.field: String should"),
        (
            {
                "steps": [
                    {
                        "action": "coupon",
                        "value_from": {"field": "analytics.premium", "values": {"yes": 20, "false": 10}},
                    }
                ]
            },
            "steps.0.value_from: analytics.premium is one of true, false; not 'yes'",
        ),
        (
            {
                "steps": [
                    {
                        "action": "coupon",
                        "value_from": {"field": "analytics.segment", "values": {"rfm:champions": 20}},
                    }
                ]
            },
            "steps.0.value_from: analytics.segment is one of champions, ",
        ),
        (
            {"steps": [{"action": "coupon", "value_from": {"field": "analytics.m", "values": {"5": -20}}}]},
            "steps.0.value_from.values.5: Input should be greater than or equal to 0",
        ),
    ],
)
def test_a_bad_analytics_automation_is_a_400_naming_the_problem(changes, message) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_automation("a", automation(**changes))
    assert refused.value.code == "invalid_automation"
    assert str(refused.value).startswith(message), str(refused.value)


def test_segments_of_other_kinds_keep_names_of_their_own_and_every_rfm_segment_is_accepted() -> None:
    for name in ("newsletter-readers", "champions", "rfm-fans"):
        assert parse_automation("a", automation(trigger={"type": "segment", "segment": name}))
    for segment in SEGMENT_NAMES:
        trigger = {"type": "segment", "segment": f"rfm:{segment}", "change": "left", "to": "rfm:lost"}
        if segment != "lost":
            assert parse_automation("a", automation(trigger=trigger)).trigger.to == "rfm:lost"


def test_the_new_trigger_fields_are_stored_by_the_names_the_json_has() -> None:
    save = parse_automation("champions-at-risk", example("champions-at-risk"))
    assert save.model_dump(mode="json")["trigger"] == {
        "type": "segment",
        "segment": "rfm:at_risk",
        "change": "entered",
        "from": "rfm:champions",
        "to": None,
        "initial": False,
    }
    churn = parse_automation("a", automation(trigger={"type": "churn_risk", "from": "medium", "to": "high"}))
    assert churn.model_dump(mode="json")["trigger"] == {
        "type": "churn_risk",
        "to": "high",
        "from": "medium",
        "initial": False,
    }
    assert Automation.model_validate(churn.model_dump()) == churn, "what is stored reads back the same"
    now = parse_automation("a", automation(trigger={"type": "churn_risk", "to": "high", "initial": True}))
    assert Automation.model_validate(now.model_dump(mode="json")).trigger.initial is True


# --- triggers -------------------------------------------------------------------------------------------


def test_a_move_from_champions_to_at_risk_starts_entry_and_departure_triggers_by_their_other_end() -> None:
    left, entered = (on_the_bus(e) for e in moved("champions", "at_risk"))
    book = AutomationBook(
        [
            stored(id="any-at-risk", trigger={"type": "segment", "segment": "rfm:at_risk"}, steps=[EMAIL]),
            stored(
                id="champions-at-risk",
                trigger={"type": "segment", "segment": "rfm:at_risk", "from": "rfm:champions"},
                steps=[EMAIL],
            ),
            stored(
                id="loyal-at-risk",
                trigger={"type": "segment", "segment": "rfm:at_risk", "from": "rfm:loyal"},
                steps=[EMAIL],
            ),
            stored(
                id="champions-lost",
                trigger={"type": "segment", "segment": "rfm:champions", "change": "left"},
                steps=[EMAIL],
            ),
            stored(
                id="champions-to-lost",
                trigger={"type": "segment", "segment": "rfm:champions", "change": "left", "to": "rfm:lost"},
                steps=[EMAIL],
            ),
        ]
    )
    assert sorted(o.automation for o in signal_starts(book, entered)) == ["any-at-risk", "champions-at-risk"]
    assert [o.automation for o in signal_starts(book, left)] == ["champions-lost"]
    (came_back,) = (on_the_bus(e) for e in moved(None, "at_risk"))
    assert [o.automation for o in signal_starts(book, came_back)] == ["any-at-risk"], (
        "a contact back in a segment after none comes from nowhere"
    )
    (first_scored,) = (on_the_bus(e) for e in moved(None, "at_risk", initial=True))
    assert signal_starts(book, first_scored) == [], "a first scoring is what the contact already was"


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [
        ("low", "high", ["any-high", "low-high"]),
        ("medium", "high", ["any-high"]),
        (None, "high", ["any-high"]),  # scored before, without a level
        ("high", "medium", []),
    ],
)
def test_a_churn_risk_trigger_matches_the_new_level_and_optionally_the_old(source, target, expected) -> None:
    book = AutomationBook(
        [
            stored(id="any-high", trigger={"type": "churn_risk", "to": "high"}, steps=[EMAIL]),
            stored(id="low-high", trigger={"type": "churn_risk", "from": "low", "to": "high"}, steps=[EMAIL]),
        ]
    )
    assert sorted(o.automation for o in signal_starts(book, on_the_bus(risk(source, target)))) == expected


def test_a_first_scoring_starts_only_the_triggers_that_ask_for_it() -> None:
    book = AutomationBook(
        [
            stored(id="any-at-risk", trigger={"type": "segment", "segment": "rfm:at_risk"}, steps=[EMAIL]),
            stored(
                id="at-risk-now",
                trigger={"type": "segment", "segment": "rfm:at_risk", "initial": True},
                steps=[EMAIL],
            ),
            stored(id="any-high", trigger={"type": "churn_risk", "to": "high"}, steps=[EMAIL]),
            stored(
                id="high-now", trigger={"type": "churn_risk", "to": "high", "initial": True}, steps=[EMAIL]
            ),
        ]
    )

    def started(event: SegmentChanged | ChurnRiskChanged) -> list[str]:
        return sorted(o.automation for o in signal_starts(book, on_the_bus(event)))

    (first_entered,) = moved(None, "at_risk", initial=True)
    assert started(first_entered) == ["at-risk-now"]
    assert started(risk(None, "high", initial=True)) == ["high-now"]
    (came_back,) = moved(None, "at_risk")
    assert started(came_back) == ["any-at-risk", "at-risk-now"], "initial: true takes changes too"
    assert started(moved("champions", "at_risk")[1]) == ["any-at-risk", "at-risk-now"]
    assert started(risk("low", "high")) == ["any-high", "high-now"]
    assert started(risk(None, "medium", initial=True)) == [], "the level still has to match"
    published_before = on_the_bus(risk("low", "high"))
    detail = {k: v for k, v in published_before.detail.items() if k != "initial"}
    older = Signal(published_before.detail_type, published_before.event_id, str(ANN), detail)
    assert sorted(o.automation for o in signal_starts(book, older)) == ["any-high", "high-now"], (
        "an event without the field (published before it was added, and retried) is a change"
    )


def test_the_event_the_nightly_pass_publishes_is_the_signal_the_automation_sees() -> None:
    _, entered = moved("champions", "at_risk", premium=True)
    signal = on_the_bus(entered)
    assert (signal.detail_type, signal.event_id, signal.contact_id) == (
        "SegmentChanged",
        entered.event_id,
        str(ANN),
    )
    assert signal.detail == json.loads(entered.model_dump_json(by_alias=True))
    shown = stored(
        id="shown",
        trigger={"type": "segment", "segment": "rfm:at_risk"},
        steps=[
            {
                "action": "email",
                "subject": "{{ signal.to }} from {{ signal.from }}",
                "text": "premium {{ signal.premium }}, R{{ signal.r }}F{{ signal.f }}M{{ signal.m }} on {{ signal.day }}",
            }
        ],
    )
    (occurrence,) = signal_starts(AutomationBook([shown]), signal)
    (email,) = plan(shown, contact(), occurrence, DECAY, NOW).requests
    assert (email.subject, email.text) == ("rfm:at_risk from rfm:champions", f"premium yes, R2F5M5 on {DAY}")
    churn = on_the_bus(risk("low", "high"))
    assert churn.detail == {
        "event_id": f"{ANN}#churn#high#{DAY}",
        "contact_id": str(ANN),
        "at": "2026-11-23T03:12:00Z",
        "day": "2026-11-22",
        "initial": False,
        "from": "low",
        "to": "high",
        "churn_risk": 0.94,
        "p_no_purchase": 0.81,
        "expected_next_purchase": "2026-08-25",
        "typical_gap_days": 30.0,
    }


# --- conditions, coupons, content -----------------------------------------------------------------------


def test_conditions_read_the_analytics_on_the_contact() -> None:
    ann = contact(scored("at_risk", premium=True, level="high", rfm=(2, 5, 4)))
    cases = [
        (Condition(field="analytics.segment", op="eq", value="at_risk"), True),
        (Condition(field="analytics.segment", op="in", value=["champions", "loyal"]), False),
        (Condition(field="analytics.premium", op="eq", value=True), True),
        (Condition(field="analytics.risk_level", op="eq", value="high"), True),
        (Condition(field="analytics.churn_risk", op="gte", value=0.9), True),
        (Condition(field="analytics.p_no_purchase", op="lt", value=0.5), False),
        (Condition(field="analytics.r", op="lte", value=2), True),
        (Condition(field="analytics.f", op="eq", value=5), True),
        (Condition(field="analytics.m", op="gte", value=5), False),
        (Condition(field="analytics.typical_gap_days", op="lt", value=45), True),
    ]
    for condition, expected in cases:
        assert holds([condition], ann, DECAY, NOW) is expected, condition
    unscored = contact()
    assert holds([Condition(field="analytics.segment", op="missing")], unscored, DECAY, NOW)
    assert not holds([Condition(field="analytics.premium", op="eq", value=False)], unscored, DECAY, NOW)
    assert holds([Condition(field="analytics.premium", op="ne", value=True)], unscored, DECAY, NOW)
    no_rfm = contact(scored(None, level="high"))  # scored, but no purchase within the look-back window
    assert holds([Condition(field="analytics.risk_level", op="eq", value="high")], no_rfm, DECAY, NOW)
    assert holds([Condition(field="analytics.segment", op="missing")], no_rfm, DECAY, NOW)


def coupon_value(step: dict, record: ContactRecord) -> float | None:
    run = stored(id="c", trigger={"type": "churn_risk", "to": "high"}, steps=[step])
    coupon = plan(run, record, Occurrence("c", "o1"), DECAY, NOW).coupon
    return None if coupon is None else coupon.value


def test_a_coupon_takes_its_value_from_the_segment_and_from_premium() -> None:
    (by_segment, _) = example("churn-win-back")["steps"]
    assert coupon_value(by_segment, contact(scored("cant_lose_them"))) == 25
    assert coupon_value(by_segment, contact(scored("champions"))) == 20
    assert coupon_value(by_segment, contact(scored("at_risk"))) == 15
    assert coupon_value(by_segment, contact(scored("hibernating"))) == 10, "the default"
    assert coupon_value(by_segment, contact()) == 10, "not scored: the default"
    (by_premium, *_) = example("champions-at-risk")["steps"]
    assert coupon_value(by_premium, contact(scored("at_risk", premium=True))) == 25
    assert coupon_value(by_premium, contact(scored("at_risk", premium=False))) == 15
    assert coupon_value(by_premium, contact()) is None, "no value and no default: no coupon"
    by_m = {"action": "coupon", "value_from": {"field": "analytics.m", "values": {"5": 30, "4": 20}}}
    assert coupon_value(by_m, contact(scored(rfm=(1, 1, 4)))) == 20


def test_coupon_tables_look_values_up_as_json_names_them() -> None:
    by_trait = {"action": "coupon", "value_from": {"field": "traits.vip", "values": {"true": 30, "false": 5}}}
    assert coupon_value(by_trait, contact(traits={"vip": True})) == 30
    assert coupon_value(by_trait, contact(traits={"vip": False})) == 5
    by_level = {"action": "coupon", "value_from": {"field": "traits.level", "values": {"3": 15, "2.5": 12}}}
    assert coupon_value(by_level, contact(traits={"level": 3})) == 15
    assert coupon_value(by_level, contact(traits={"level": Decimal(3)})) == 15, "as DynamoDB reads it"
    assert coupon_value(by_level, contact(traits={"level": 2.5})) == 12
    keys = (True, False, 5, 5.0, Decimal(5), Decimal("2.50"), 0.25, float("nan"), "gold", None)
    assert [table_key(v) for v in keys] == [
        "true",
        "false",
        "5",
        "5",
        "5",
        "2.5",
        "0.25",
        "nan",
        "gold",
        None,
    ]


def test_content_can_name_the_analytics() -> None:
    run = stored(
        id="c",
        trigger={"type": "churn_risk", "to": "high"},
        steps=[
            {
                "action": "sms",
                "text": "{{ analytics.segment_name }}/{{ analytics.risk_level }}/every "
                "{{ analytics.typical_gap_days }} days, due {{ analytics.expected_next_purchase }}",
            }
        ],
    )
    (sms,) = plan(
        run, contact(scored("cant_lose_them", level="high")), Occurrence("c", "o"), DECAY, NOW
    ).requests
    assert sms.text == "Can't Lose Them/high/every 30 days, due 2026-08-25"
    (bare,) = plan(run, contact(), Occurrence("c", "o"), DECAY, NOW).requests
    assert bare.text == "//every  days, due "


# --- the use case, with the fakes -----------------------------------------------------------------------


@dataclass
class ScoredContacts(MemoryContactStore):
    """The contact store, with what the nightly pass wrote on the profiles."""

    analytics: dict[ContactId, Analytics] = field(default_factory=dict)

    def profile(self, contact: ContactId) -> ContactRecord | None:
        record = super().profile(contact)
        if record is None or contact not in self.analytics:
            return record
        return record.model_copy(update={"analytics": self.analytics[contact]})


@pytest.fixture
def world() -> World:
    contacts = ScoredContacts()
    world = World(
        FixedClock(NOW),
        contacts,
        MemoryAutomationRepository(),
        MemoryRunStore(contacts),
        MemoryDeliveryQueue(),
        Moves(),
        CountingTelemetry(),
    )
    world.visit()
    for name in ("churn-win-back", "champions-at-risk"):
        world.automations.save(Automation.model_validate(example(name)), NOW, None)
    return world


@pytest.mark.parametrize(
    ("reentry", "refused_as"),
    [
        ({}, "AutomationRunsLimited"),  # as shipped: once in six months, the re-entry mark refuses it
        ({"reentry": "always", "period": None}, "AutomationRunsDuplicate"),  # the run's record refuses it
    ],
)
def test_champions_moving_to_at_risk_start_the_save_once_with_the_premium_coupon(
    world, reentry, refused_as
) -> None:
    world.automations.save(Automation.model_validate({**example("champions-at-risk"), **reentry}), NOW, None)
    world.contacts.analytics[ANN] = scored("at_risk", premium=True, level="medium", rfm=(2, 5, 5))
    announced = moved("champions", "at_risk", premium=True)
    started = [on_signal(on_the_bus(event), world.deps) for event in (*announced, *announced)]
    assert started == [0, 1, 0, 0], "the left is no start; the entered starts it once, however often it comes"
    (email,) = world.queue.sent
    assert email.automation == "champions-at-risk" and email.occurrence == announced[1].event_id
    assert "25% off" in email.text and "SAVE-" in email.text
    assert "champion-save" in world.profile().tags
    assert world.telemetry.counts[refused_as] == 1


def test_a_save_for_a_customer_who_was_not_a_champion_does_not_start(world) -> None:
    world.contacts.analytics[ANN] = scored("at_risk", level="medium")
    assert [on_signal(on_the_bus(e), world.deps) for e in moved("loyal", "at_risk")] == [0, 0]
    assert world.queue.sent == []


@pytest.mark.parametrize(
    ("segment", "premium", "value"),
    [("cant_lose_them", True, 25), ("champions", True, 20), ("at_risk", False, 15), ("promising", False, 10)],
)
def test_a_churn_risk_rising_to_high_starts_the_win_back_with_the_coupon_of_the_segment(
    world, segment, premium, value
) -> None:
    from shared.automations.engine import held_out

    contact_id = next(
        ContactId.user(f"u{n}") for n in range(100) if not held_out(f"user_id:u{n}", "churn-win-back", 10)
    )
    world.visit(contact_id, "p2")
    world.contacts.analytics[contact_id] = scored(segment, premium=premium, level="high")
    rising = risk("low", "high").model_copy(
        update={"contact_id": str(contact_id), "event_id": f"{contact_id}#h"}
    )
    assert on_signal(on_the_bus(rising), world.deps) == 1
    assert on_signal(on_the_bus(rising), world.deps) == 0, "the same event again"
    (email,) = world.queue.sent
    assert email.automation == "churn-win-back" and f"{value}% off" in email.text


def test_the_win_back_leaves_lost_customers_and_falling_risk_alone(world) -> None:
    world.contacts.analytics[ANN] = scored("lost", level="high")
    assert on_signal(on_the_bus(risk("medium", "high")), world.deps) == 0, "the condition: not for Lost"
    world.contacts.analytics[ANN] = scored("at_risk", level="low")
    assert on_signal(on_the_bus(risk("high", "low")), world.deps) == 0
    assert world.queue.sent == []


def shipped(name: str, **trigger) -> Automation:
    """A shipped example, its trigger changed by ``trigger`` (a key set to None is removed)."""
    body = example(name)
    changed = {k: v for k, v in {**body["trigger"], **trigger}.items() if v is not None}
    return Automation.model_validate({**body, "trigger": changed})


def acted_on(automation: str) -> ContactId:
    """A contact the automation acts on (not in its holdout)."""
    from shared.automations.engine import held_out

    return next(ContactId.user(f"u{n}") for n in range(100) if not held_out(f"user_id:u{n}", automation, 10))


def announced(world: World, event: SegmentChanged | ChurnRiskChanged, contact: ContactId) -> int:
    """The event for ``contact`` on the bus, as the signals function takes it: how many runs it started."""
    update = {"contact_id": str(contact), "event_id": f"{contact}#{event.event_id}"}
    return on_signal(on_the_bus(event.model_copy(update=update)), world.deps)


def test_the_first_night_starts_no_win_back_for_customers_already_high_and_a_later_rise_does(world) -> None:
    customer = acted_on("churn-win-back")
    world.visit(customer, "p2")
    world.contacts.analytics[customer] = scored("at_risk", level="high")
    assert announced(world, risk(None, "high", initial=True), customer) == 0, "high when first scored"
    assert world.queue.sent == []
    world.contacts.analytics[customer] = scored("at_risk", level="low")
    assert announced(world, risk("high", "low"), customer) == 0
    world.contacts.analytics[customer] = scored("at_risk", level="high")
    assert announced(world, risk("low", "high"), customer) == 1, "a later night: low -> high"
    (email,) = world.queue.sent
    assert email.automation == "churn-win-back" and "15% off" in email.text


def test_a_win_back_that_asks_for_first_scorings_takes_customers_already_high(world) -> None:
    world.automations.save(shipped("churn-win-back", initial=True), NOW, None)
    customer = acted_on("churn-win-back")
    world.visit(customer, "p2")
    world.contacts.analytics[customer] = scored("cant_lose_them", level="high")
    assert announced(world, risk(None, "high", initial=True), customer) == 1
    (email,) = world.queue.sent
    assert email.automation == "churn-win-back" and "25% off" in email.text


@pytest.mark.parametrize("initial", [False, True])
def test_a_segment_entry_takes_first_scorings_only_when_it_asks_for_them(world, initial) -> None:
    world.automations.save(shipped("champions-at-risk", initial=initial, **{"from": None}), NOW, None)
    world.contacts.analytics[ANN] = scored("at_risk", premium=True, level="medium", rfm=(2, 5, 5))
    (first,) = moved(None, "at_risk", premium=True, initial=True)
    assert announced(world, first, ANN) == int(initial)
    assert [e.automation for e in world.queue.sent] == ["champions-at-risk"] * initial
    if not initial:
        _, entered = moved("champions", "at_risk", premium=True)
        assert announced(world, entered, ANN) == 1, "a later night: Champions -> At Risk"
        (email,) = world.queue.sent
        assert "25% off" in email.text


# --- shipped files --------------------------------------------------------------------------------------


def test_the_signal_samples_are_the_events_the_nightly_pass_publishes_and_start_the_examples() -> None:
    book = AutomationBook([stored(**example(name)) for name in ("churn-win-back", "champions-at-risk")])
    models = {"SegmentChanged": SegmentChanged, "ChurnRiskChanged": ChurnRiskChanged}
    started = {}
    for kind, name in (("SegmentChanged", "segment_changed"), ("ChurnRiskChanged", "churn_risk_changed")):
        sample = json.loads((EVENTS / "automation_signals" / f"{name}.json").read_text())
        assert (sample["source"], sample["detail-type"]) == ("lifecycle", kind)
        event = models[kind].model_validate(sample["detail"])
        assert json.loads(event.model_dump_json(by_alias=True)) == sample["detail"], "the real shape"
        started[kind] = [o.automation for o in signal_starts(book, BusEvent.model_validate(sample).signal())]
    assert started == {"SegmentChanged": ["champions-at-risk"], "ChurnRiskChanged": ["churn-win-back"]}


def test_the_documentation_names_every_analytics_field_and_example() -> None:
    from shared.automations.model import ANALYTICS_FIELDS

    text = (ROOT / "docs" / "automations.md").read_text()
    conditions = text.split("## Conditions", 1)[1].split("\n## ", 1)[0]
    for name in ANALYTICS_FIELDS:
        assert f"`analytics.{name}`" in conditions, name
    for path in EXAMPLES.glob("*.json"):
        assert f"examples/automations/{path.name}" in text, path.name

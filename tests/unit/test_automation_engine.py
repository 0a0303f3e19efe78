"""The automation engine and its calendar: triggers, series, lapses, anniversaries, runs. Pure."""

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.automations.book import AutomationBook
from shared.automations.calendar import latest_date_occurrence, occurrences_of_date, shift, zone_of
from shared.automations.engine import (
    Occurrence,
    Signal,
    anniversaries,
    event_starts,
    held_out,
    holds,
    lapses,
    next_in_series,
    plan,
    signal_starts,
    wakeup,
)
from shared.automations.model import Automation, Condition, Delay, StoredAutomation
from shared.contacts.model import ContactRecord
from shared.delivery.consent import ConsentFact, ConsentRecord
from shared.engagement.funnel import default_funnel
from shared.engagement.index import Thresholds
from shared.engagement.transitions import Watching, evaluate, watch_key
from shared.scoring.decay import Decay
from shared.tracking.messages import parse_calls
from shared.tracking.wire import Limits
from tests.unit.test_engagement import scored

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DECAY = Decay(timedelta(days=30))
WARSAW = zone_of({"timezone": "Europe/Warsaw"})
UTC_ZONE = zone_of({})


def stored(**fields) -> StoredAutomation:
    return StoredAutomation.model_validate({"name": fields.get("id", "x"), "version": 1, **fields})


KIDS = stored(
    id="kids",
    trigger={
        "type": "event",
        "behaviour": "purchase",
        "match": {"event": "Order Completed"},
        "items": "properties.products",
        "after": {"years": 1},
        "repeat": {"years": 1},
        "counter": {"name": "age", "from": "child_age", "up_to": 8},
    },
    steps=[
        {"action": "email", "subject": "Ideas for your {{ age }}-year-old", "text": "Hi {{ traits.name }}"}
    ],
)
WIN_BACK = stored(
    id="win-back",
    trigger={"type": "inactivity", "days": 90},
    steps=[
        {"action": "coupon", "prefix": "BACK", "value": 15},
        {
            "action": "email",
            "subject": "We miss you",
            "text": "Use {{ coupon.code }} for {{ coupon.value }}%",
        },
    ],
)


def order(at: datetime, properties: dict) -> object:
    call = {
        "type": "track",
        "event": "Order Completed",
        "userId": "ann",
        "messageId": "m-1",
        "timestamp": at.isoformat(),
        "properties": properties,
    }
    (event,) = parse_calls("/v1/track", call, received_at=at, limits=Limits())
    return event


def contact(**fields) -> ContactRecord:
    return ContactRecord(contact_id="user_id:ann", user_id="ann", **fields)


# --- calendar -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "delay", "expected"),
    [
        (datetime(2025, 1, 31, 9, tzinfo=UTC), Delay(months=1), datetime(2025, 2, 28, 9, tzinfo=UTC)),
        (datetime(2024, 1, 31, 9, tzinfo=UTC), Delay(months=1), datetime(2024, 2, 29, 9, tzinfo=UTC)),
        (datetime(2024, 2, 29, 9, tzinfo=UTC), Delay(years=1), datetime(2025, 2, 28, 9, tzinfo=UTC)),
        (datetime(2024, 2, 29, 9, tzinfo=UTC), Delay(years=4), datetime(2028, 2, 29, 9, tzinfo=UTC)),
        (datetime(2025, 12, 15, 9, tzinfo=UTC), Delay(months=2), datetime(2026, 2, 15, 9, tzinfo=UTC)),
        (datetime(2025, 3, 1, 9, tzinfo=UTC), Delay(days=90), datetime(2025, 5, 30, 9, tzinfo=UTC)),
    ],
)
def test_calendar_spans_clamp_month_ends_and_keep_leap_days(start, delay, expected) -> None:
    assert shift(start, delay, UTC_ZONE) == expected


def test_months_keep_the_local_time_of_day_across_a_dst_change() -> None:
    nine_am_winter = datetime(2026, 1, 15, 8, 0, tzinfo=UTC)  # 09:00 in Warsaw (UTC+1)
    later = shift(nine_am_winter, Delay(months=6), WARSAW)
    assert later.astimezone(WARSAW).hour == 9 and later == datetime(2026, 7, 15, 7, 0, tzinfo=UTC)
    # exact days are exact durations, whatever the clocks do
    assert shift(nine_am_winter, Delay(days=180), WARSAW) - nine_am_winter == timedelta(days=180)


def test_a_local_time_in_the_spring_gap_moves_forward() -> None:
    start = datetime(2026, 1, 29, 1, 30, tzinfo=UTC)  # 02:30 in Warsaw
    moved = shift(start, Delay(months=2), WARSAW)  # 29 March 2026 02:30 does not exist there
    assert moved.astimezone(WARSAW).hour == 3 and moved.astimezone(WARSAW).minute == 30


def test_a_birthday_on_29_february_falls_on_28_february_in_common_years() -> None:
    born = date(2012, 2, 29)
    after = datetime(2026, 1, 1, tzinfo=UTC)
    assert occurrences_of_date(born, UTC_ZONE, hour=9, offset_days=0, after=after) == datetime(
        2026, 2, 28, 9, tzinfo=UTC
    )
    leap = datetime(2028, 1, 1, tzinfo=UTC)
    assert occurrences_of_date(born, UTC_ZONE, hour=9, offset_days=0, after=leap).day == 29
    year, moment = latest_date_occurrence(born, WARSAW, hour=9, offset_days=0, upto=NOW)
    assert year == 2026 and moment == datetime(2026, 2, 28, 8, tzinfo=UTC)


def test_an_unknown_zone_is_utc() -> None:
    assert zone_of({"timezone": "Mars/Olympus"}).key == "UTC"
    assert zone_of({"timezone": "America/New_York"}).key == "America/New_York"


# --- the model ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"trigger": {"type": "inactivity", "days": 0}}, "days"),
        ({"steps": [{"action": "email", "subject": "x"}]}, "email"),
        ({"reentry": "once_per"}, "period"),
        ({"steps": [{"action": "tag", "add": "a"}, {"action": "wait", "for": {"days": 1}}]}, "wait"),
        ({"trigger": {"type": "event", "behaviour": "purchase", "repeat": {"years": 1}}}, "after"),
    ],
)
def test_invalid_automations_are_refused_naming_what_is_wrong(change, field) -> None:
    body = {
        "id": "a",
        "name": "A",
        "trigger": {"type": "inactivity", "days": 3},
        "steps": [{"action": "tag", "add": "x"}],
    }
    with pytest.raises(ValidationError, match=field):
        Automation.model_validate({**body, **change})


def test_the_examples_are_valid_automations() -> None:
    folder = Path(__file__).parents[2] / "examples" / "automations"
    for path in sorted(folder.glob("*.json")):
        Automation.model_validate(json.loads(path.read_text()))


# --- triggers -------------------------------------------------------------------------------------------


def test_a_purchase_for_two_children_starts_two_yearly_series_with_the_next_age() -> None:
    bought = datetime(2024, 2, 29, 10, tzinfo=UTC)
    event = order(
        bought,
        {"products": [{"sku": "lego", "child_age": 6}, {"sku": "book", "child_age": 3}, {"sku": "pen"}]},
    )
    starts = event_starts(AutomationBook([KIDS]), event, "E#k", {})
    assert not starts.now
    first, second = starts.timers
    assert (first.values["age"], second.values["age"]) == (7, 4)
    assert first.due == datetime(2025, 2, 28, 10, tzinfo=UTC) and first.key != second.key
    # the series goes on every year from its origin, and ends at up_to (8)
    following = next_in_series(KIDS, first, {})
    assert (
        following.values["age"] == 8
        and following.n == 2
        and following.due == datetime(2026, 2, 28, 10, tzinfo=UTC)
    )
    assert next_in_series(KIDS, following, {}) is None
    younger = second
    for age in (5, 6, 7, 8):
        younger = next_in_series(KIDS, younger, {})
        assert younger.values["age"] == age
    assert younger.due == datetime(2029, 2, 28, 10, tzinfo=UTC) and next_in_series(KIDS, younger, {}) is None


def test_the_age_can_be_a_property_of_the_call_itself() -> None:
    event = order(NOW, {"child_age": 6, "products": [{"sku": "lego"}]})
    (timer,) = event_starts(AutomationBook([KIDS]), event, "E#k", {}).timers
    assert timer.values["age"] == 7


def test_a_child_already_past_the_last_age_starts_nothing() -> None:
    event = order(NOW, {"products": [{"sku": "lego", "child_age": 8}]})
    assert not event_starts(AutomationBook([KIDS]), event, "E#k", {}).timers


def test_a_lapse_fires_once_per_last_visit_and_again_after_a_return() -> None:
    book = AutomationBook([WIN_BACK])
    last = NOW - timedelta(days=89)
    assert lapses(book, contact(last_seen_at=last), NOW) == []
    assert wakeup(book, contact(last_seen_at=last), NOW) == last + timedelta(days=90)
    (lapse,) = lapses(book, contact(last_seen_at=last), NOW + timedelta(days=1))
    assert lapses(book, contact(last_seen_at=last), NOW + timedelta(days=30))[0].key == lapse.key
    back = NOW + timedelta(days=40)
    (again,) = lapses(book, contact(last_seen_at=back), back + timedelta(days=91))
    assert again.key != lapse.key
    assert (
        lapses(
            AutomationBook([WIN_BACK.model_copy(update={"paused": True})]),
            contact(last_seen_at=last),
            NOW + timedelta(days=2),
        )
        == []
    )


def test_a_birthday_comes_once_a_year_at_the_hour_in_the_contacts_zone() -> None:
    birthday = stored(
        id="bday",
        trigger={"type": "date", "trait": "birthday", "hour": 9},
        steps=[{"action": "tag", "add": "b"}],
    )
    book = AutomationBook([birthday])
    ann = contact(traits={"birthday": "1990-03-05", "timezone": "Europe/Warsaw"})
    due = wakeup(book, ann, NOW)
    assert due == datetime(2026, 3, 5, 8, tzinfo=UTC)
    assert anniversaries(book, ann, due - timedelta(minutes=1)) == []
    (found,) = anniversaries(book, ann, due + timedelta(hours=1))
    assert found.key == "birthday@2026" and found.values["years"] == 36
    assert anniversaries(book, ann, due + timedelta(days=2)) == [], "a day late is too late"


def test_signals_start_the_automations_they_match() -> None:
    retention = stored(
        id="retain",
        trigger={"type": "quarter", "to": "exit", "direction": "falling"},
        steps=[{"action": "email", "subject": "s", "text": "t"}],
    )
    book = AutomationBook([retention])
    falling = Signal(
        "EngagementQuarterChanged",
        "e1",
        "user_id:ann",
        {"from": "retention", "to": "exit", "direction": "falling"},
    )
    steady = Signal(
        "EngagementQuarterChanged",
        "e2",
        "user_id:ann",
        {"from": "retention", "to": "exit", "direction": "steady"},
    )
    assert [o.key for o in signal_starts(book, falling)] == ["e1"]
    assert signal_starts(book, steady) == []
    hot = stored(id="hot", trigger={"type": "score", "threshold": 50}, steps=[{"action": "sms", "text": "t"}])
    crossed = Signal(
        "ScoreThresholdCrossed", "e3", "c", {"dimension": "global", "threshold": 50.0, "direction": "up"}
    )
    assert len(signal_starts(AutomationBook([hot]), crossed)) == 1
    assert (
        signal_starts(
            AutomationBook([hot]),
            Signal("ScoreThresholdCrossed", "e4", "c", {**crossed.detail, "direction": "down"}),
        )
        == []
    )


# --- conditions, holdout, runs --------------------------------------------------------------------------


def test_conditions_read_traits_tags_stage_and_consent() -> None:
    granted = ConsentRecord(granted=ConsentFact(source="api", at=NOW))
    # the trait alone is no consent: the consent facts on the profile are
    ann = contact(
        traits={"plan": "pro", "sms_consent": True},
        tags={"vip": NOW},
        stage="customer",
        consent={"email": granted},
    )
    cases = [
        ([Condition(field="traits.plan", op="eq", value="pro")], True),
        ([Condition(field="traits.plan", op="eq", value="free")], False),
        ([Condition(field="tags", op="contains", value="vip")], True),
        ([Condition(field="tags", op="not_in", value=["vip"])], False),
        ([Condition(field="stage", op="in", value=["customer", "loyal"])], True),
        ([Condition(field="consent.email", op="eq", value=True)], True),
        ([Condition(field="consent.sms", op="eq", value=True)], False),
        ([Condition(field="score.global", op="lt", value=1)], True),
    ]
    for conditions, expected in cases:
        assert holds(conditions, ann, DECAY, NOW) is expected, conditions


def test_consent_conditions_wait_for_the_double_opt_in_confirmation() -> None:
    email = Condition(field="consent.email", op="eq", value=True)
    grant = ConsentFact(source="signup form", at=NOW - timedelta(hours=2))
    pending = contact(consent={"email": ConsentRecord(granted=grant)})
    confirmed = contact(consent={"email": ConsentRecord(granted=grant, confirmed_at=NOW)})
    revoked = contact(
        consent={
            "email": ConsentRecord(
                granted=grant, confirmed_at=NOW - timedelta(hours=1), revoked=ConsentFact(source="x", at=NOW)
            )
        }
    )
    assert holds([email], pending, DECAY, NOW) is True, "no double opt-in for this source"
    assert holds([email], pending, DECAY, NOW, {"signup form"}) is False
    assert holds([email], confirmed, DECAY, NOW, {"signup form"}) is True
    assert holds([email], revoked, DECAY, NOW, {"signup form"}) is False
    assert holds([email], revoked, DECAY, NOW) is False


def test_the_holdout_group_is_stable_and_about_the_share_asked() -> None:
    held = [held_out(f"user_id:{n}", "win-back", 10) for n in range(5000)]
    assert 0.08 < sum(held) / len(held) < 0.12
    assert held == [held_out(f"user_id:{n}", "win-back", 10) for n in range(5000)]
    assert not any(held_out(f"user_id:{n}", "win-back", 0) for n in range(100))


def test_a_run_renders_its_content_with_the_coupon_and_the_computed_age() -> None:
    run = plan(WIN_BACK, contact(traits={"name": "Ann"}), Occurrence("win-back", "lapse@x"), DECAY, NOW)
    (email,) = run.requests
    assert run.coupon.code.startswith("BACK-") and email.text == f"Use {run.coupon.code} for 15%"
    assert email.id == "user_id:ann#win-back#lapse@x#1" and email.status == "queued"
    again = plan(WIN_BACK, contact(), Occurrence("win-back", "lapse@x"), DECAY, NOW)
    assert again.coupon == run.coupon, "the same occurrence, the same coupon"
    kids = plan(KIDS, contact(traits={"name": "Ann"}), Occurrence("kids", "k@1", {"age": 7}), DECAY, NOW)
    assert kids.requests[0].subject == "Ideas for your 7-year-old" and kids.requests[0].text == "Hi Ann"


def test_best_hour_is_passed_to_the_delivery_request_of_emails_and_texts_only_when_asked() -> None:
    timed = stored(
        id="timed",
        trigger={"type": "follow_up"},
        steps=[
            {"action": "email", "subject": "s", "text": "t", "best_hour": True},
            {"action": "sms", "text": "t", "best_hour": True},
            {"action": "email", "subject": "s", "text": "t"},
            {"action": "sms", "text": "t"},
        ],
    )
    run = plan(timed, contact(), Occurrence("timed", "o"), DECAY, NOW)
    assert [(r.channel, r.best_hour) for r in run.requests] == [
        ("email", True),
        ("sms", True),
        ("email", False),
        ("sms", False),
    ]
    with pytest.raises(ValidationError, match="best_hour"):
        stored(
            id="w",
            trigger={"type": "follow_up"},
            steps=[{"action": "webhook", "url": "https://x", "best_hour": True}],
        )


def test_a_wait_stops_the_run_and_arms_its_continuation() -> None:
    nurture = stored(
        id="nurture",
        trigger={"type": "follow_up"},
        steps=[
            {"action": "tag", "add": "nurtured"},
            {"action": "wait", "for": {"days": 3}},
            {"action": "points", "points": 5},
            {"action": "email", "subject": "s", "text": "t"},
        ],
    )
    first = plan(nurture, contact(), Occurrence("nurture", "o"), DECAY, NOW)
    assert first.tags_added == ("nurtured",) and not first.requests and not first.points
    (timer,) = first.timers
    assert timer.kind == "continue" and timer.step == 2 and timer.due == NOW + timedelta(days=3)
    rest = plan(nurture, contact(), Occurrence("nurture", "o", step=2), DECAY, NOW)
    assert rest.points[0].points == 5 and rest.requests[0].step == 3 and rest.key != first.key


def test_a_held_out_contact_gets_held_out_records_and_no_effects() -> None:
    always = WIN_BACK.model_copy(
        update={"holdout_percent": 50, "steps": (*WIN_BACK.steps, WIN_BACK.steps[0].model_copy())}
    )
    held = next(f"user_id:{n}" for n in range(100) if held_out(f"user_id:{n}", "win-back", 50))
    run = plan(always, ContactRecord(contact_id=held), Occurrence("win-back", "x"), DECAY, NOW)
    assert run.status == "held_out" and run.coupon is None
    assert [r.status for r in run.requests] == ["held_out"]


# --- threshold crossings in the stage evaluation ------------------------------------------------------------


def test_watched_thresholds_are_crossed_up_then_down_by_decay() -> None:
    funnel = default_funnel(Thresholds(sales=50, exit=10))
    watching = Watching(thresholds=(("global", 40.0),))
    key = watch_key("global", 40.0)
    hot = contact(scores={"global": scored(80, NOW)})
    up = evaluate(hot, funnel, DECAY, NOW, watching)
    assert [(m.kind, m.target, m.reason) for m in up.moves if m.kind == "threshold"] == [
        ("threshold", "above", key)
    ]
    assert up.score_above == {key}
    # decay alone brings it below 40 after one half-life: the due time covers that moment
    assert up.due_at <= NOW + timedelta(days=30, minutes=1)
    later = evaluate(
        hot.model_copy(update={"score_above": frozenset({key})}),
        funnel,
        DECAY,
        NOW + timedelta(days=31),
        watching,
    )
    assert [(m.source, m.target) for m in later.moves if m.kind == "threshold"] == [("above", "below")]
    steady = evaluate(hot.model_copy(update={"score_above": frozenset({key})}), funnel, DECAY, NOW, watching)
    assert not [m for m in steady.moves if m.kind == "threshold"]


def test_an_automation_wakeup_joins_the_due_time() -> None:
    funnel = default_funnel(Thresholds(sales=50, exit=10))
    soon = NOW + timedelta(days=2)
    result = evaluate(contact(), funnel, DECAY, NOW, Watching(wakeup=soon))
    assert result.due_at == soon and result.write_due


def test_a_visit_is_counted_from_the_last_page_view_not_any_call() -> None:
    visit_lapse = stored(
        id="v",
        trigger={"type": "inactivity", "days": 30, "since": "visit"},
        steps=[{"action": "tag", "add": "x"}],
    )
    book = AutomationBook([visit_lapse])
    ann = contact(last_seen_at=NOW, last_times={"visit": NOW - timedelta(days=31)})
    (lapse,) = lapses(book, ann, NOW)
    assert lapse.key.startswith("lapse@")
    assert lapses(book, contact(last_seen_at=NOW), NOW) == [], "never visited: nothing to lapse from"


def test_two_follow_ups_of_one_run_are_two_timers() -> None:
    twice = stored(
        id="twice",
        trigger={"type": "follow_up"},
        steps=[
            {"action": "follow_up", "automation": "survey", "after": {"days": 1}},
            {"action": "follow_up", "automation": "survey", "after": {"days": 7}},
        ],
    )
    first, second = plan(twice, contact(), Occurrence("twice", "o"), DECAY, NOW).timers
    assert first.key != second.key and first.occurrence != second.occurrence


def test_watched_thresholds_keep_their_exact_value() -> None:
    assert watch_key("global", 12.34567) != watch_key("global", 12.3457)
    assert float(watch_key("global", 1234567.0).rsplit("@", 1)[1]) == 1234567.0


def test_a_series_named_by_an_item_key_is_one_per_child_however_many_purchases() -> None:
    by_child = KIDS.model_copy(update={"trigger": KIDS.trigger.model_copy(update={"series_by": "child_id"})})
    book = AutomationBook([by_child])
    one = order(NOW, {"products": [{"sku": "a", "child_age": 6, "child_id": "kid-1"}]})
    two = order(NOW + timedelta(days=30), {"products": [{"sku": "b", "child_age": 6, "child_id": "kid-1"}]})
    (first,) = event_starts(book, one, "E#1", {}).timers
    (second,) = event_starts(book, two, "E#2", {}).timers
    assert first.key == second.key, "the same child: the store arms the series once"

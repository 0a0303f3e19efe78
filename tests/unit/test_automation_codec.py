"""The run store's codec: a plan, with its requests, points, coupon and timers, round-trips exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from shared.adapters.automation_runs import plan_json, plan_of, timer_data, timer_of
from shared.automations.engine import Coupon, Plan, Timer
from shared.automations.model import PointsStep
from shared.delivery.requests import DeliveryRequest

AT = datetime(2026, 3, 31, 9, 15, 7, 123456, tzinfo=UTC)
PARIS = timezone(timedelta(hours=2))


def test_a_plan_with_every_part_round_trips_exactly():
    email = DeliveryRequest(
        id="c#a#o#0",
        contact_id="user_id:ann",
        automation="a",
        version=2,
        occurrence="o",
        step=0,
        channel="email",
        at=AT,
        subject="Hi {{x}}",
        text="é ✓",
        template="t1",
        values={"n": 1.5, "l": [1, "x"]},
    )
    hook = DeliveryRequest(
        id="c#a#o#1",
        contact_id="user_id:ann",
        automation="a",
        version=2,
        occurrence="o",
        step=1,
        channel="webhook",
        status="held_out",
        reason="held out",
        at=AT,
        url="https://x.example/h",
        body={"deep": {"k": [None, True]}},
    )
    plan = Plan(
        contact_id="user_id:ann",
        automation="a",
        version=2,
        occurrence="o",
        step=3,
        status="acted",
        requests=(email, hook),
        tags_added=("x", "y"),
        tags_removed=("z",),
        points=(
            PointsStep(action="points", points=7),
            PointsStep(action="points", points=-2, dimension="tag:s"),
        ),
        stage="customer",
        coupon=Coupon("LC-AB12", 12.5, "amount"),
        timers=(
            Timer(
                "a", "a#o#continue", AT.astimezone(PARIS), "continue", occurrence="o", step=4, values={"v": 1}
            ),
            Timer("a", "a#o", AT, "series", n=3, occurrence="o", origin=AT - timedelta(days=400), values={}),
        ),
        notes=("email", "wait 2 days, until 2026-04-02T09:15:07.123Z"),
    )
    again = plan_of(plan_json(plan))
    assert again == plan
    assert again.timers[0].due.utcoffset() == timedelta(hours=2)


def test_a_plan_without_extras_round_trips():
    plan = Plan(
        contact_id="anonymous_id:v", automation="a", version=1, occurrence="o", step=0, status="held_out"
    )
    assert plan_of(plan_json(plan)) == plan


def test_a_timer_round_trips_through_its_data():
    timer = Timer(
        "f", "f#follow:a:o", AT, "follow_up", occurrence="follow:a:o", values={"event": {"name": "x"}}
    )
    assert timer_of(timer_data(timer)) == timer
